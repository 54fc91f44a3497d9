import type { ApiRecord } from '../model.js'
import type { Alongside } from './alongside.js'

/** The protected API's records (work orders among them), each of a kind (resources.ts), kept per tenant. */
export interface RecordStore {
  createRecord(record: ApiRecord, also?: Alongside): Promise<ApiRecord>
  getRecord(tenantId: string, kind: string, id: string): Promise<ApiRecord | undefined>
  /** Newest first; only those `createdByClientId` made when it is given; `before` is the cursor. */
  listRecords(tenantId: string, kind: string, opts: { limit: number; createdByClientId?: string; before?: { createdAt: number; id: string } }): Promise<ApiRecord[]>
}

import type { ApiRecord, WorkOrder } from '../model.js'
import type { Alongside } from './alongside.js'

/** The protected API's records, each of a kind (core/resources.ts), kept per tenant. */
export interface RecordStore {
  createWorkOrder(order: WorkOrder, also?: Alongside): Promise<WorkOrder>
  /** Newest first; `before` is the cursor (an id returned earlier). */
  listWorkOrders(tenantId: string, opts: { limit: number; before?: { createdAt: number; id: string } }): Promise<WorkOrder[]>

  createRecord(record: ApiRecord, also?: Alongside): Promise<ApiRecord>
  getRecord(tenantId: string, kind: string, id: string): Promise<ApiRecord | undefined>
  /** Newest first; only those `createdByClientId` made when it is given; `before` is the cursor. */
  listRecords(tenantId: string, kind: string, opts: { limit: number; createdByClientId?: string; before?: { createdAt: number; id: string } }): Promise<ApiRecord[]>
}

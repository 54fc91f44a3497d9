import type { Alongside, ApiRecord, RecordStore, WorkOrder } from '@fieldgate/core'
import type { Kysely } from 'kysely'
import type { Database } from '../schema.js'
import { precompiler } from './precompiled.js'
import { toRecord, writeAlongside } from './rows.js'

/** The protected API's records. */
export function sqlRecordStore(db: Kysely<Database>): RecordStore {
  const precompiled = precompiler(db)
  return {
    // work orders

    async createWorkOrder(order: WorkOrder, also: Alongside = {}): Promise<WorkOrder> {
      await db.transaction().execute(async (tx) => {
        await tx.insertInto('workOrders').values(order).execute()
        await writeAlongside(tx, also)
      })
      return order
    },

    async listWorkOrders(tenantId: string, opts: { limit: number; before?: { createdAt: number; id: string } }): Promise<WorkOrder[]> {
      const { limit, before } = opts
      const page = (b?: { createdAt: number; id: string }) => {
        let q = db.selectFrom('workOrders').selectAll().where('tenantId', '=', tenantId)
        if (b) {
          q = q.where((eb) => eb.or([
            eb('createdAt', '<', b.createdAt),
            eb.and([eb('createdAt', '=', b.createdAt), eb('id', '<', b.id)]),
          ]))
        }
        return q.orderBy('createdAt', 'desc').orderBy('id', 'desc').limit(limit)
      }
      // The API's hottest read: compiled once per shape, parameters in the order they appear in the SQL.
      return before
        ? precompiled('workOrdersBefore', () => page(before), [tenantId, before.createdAt, before.createdAt, before.id, limit])
        : precompiled('workOrders', () => page(), [tenantId, limit])
    },

    // records

    async createRecord(record: ApiRecord, also: Alongside = {}): Promise<ApiRecord> {
      await db.transaction().execute(async (tx) => {
        await tx.insertInto('records').values({ ...record, data: JSON.stringify(record.data) }).execute()
        await writeAlongside(tx, also)
      })
      return record
    },

    async getRecord(tenantId: string, kind: string, id: string): Promise<ApiRecord | undefined> {
      const row = await db.selectFrom('records').selectAll().where('tenantId', '=', tenantId).where('kind', '=', kind).where('id', '=', id).executeTakeFirst()
      return row && toRecord(row)
    },

    async listRecords(
      tenantId: string, kind: string, opts: { limit: number; createdByClientId?: string; before?: { createdAt: number; id: string } },
    ): Promise<ApiRecord[]> {
      let q = db.selectFrom('records').selectAll().where('tenantId', '=', tenantId).where('kind', '=', kind)
      if (opts.createdByClientId !== undefined) q = q.where('createdByClientId', '=', opts.createdByClientId)
      const b = opts.before
      if (b) q = q.where((eb) => eb.or([eb('createdAt', '<', b.createdAt), eb.and([eb('createdAt', '=', b.createdAt), eb('id', '<', b.id)])]))
      const rows = await q.orderBy('createdAt', 'desc').orderBy('id', 'desc').limit(opts.limit).execute()
      return rows.map(toRecord)
    },
  }
}

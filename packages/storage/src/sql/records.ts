import type { Alongside, ApiRecord, RecordStore } from '@fieldgate/core'
import type { Kysely } from 'kysely'
import type { Database } from '../schema.js'
import { precompiler } from './precompiled.js'
import { toRecord, writeAlongside } from './rows.js'

/** The protected API's records, work orders among them. */
export function sqlRecordStore(db: Kysely<Database>): RecordStore {
  const precompiled = precompiler(db)
  return {
    async createRecord(record: ApiRecord, also: Alongside = {}): Promise<ApiRecord> {
      await db.transaction().execute(async (tx) => {
        await tx
          .insertInto('records')
          .values({ ...record, data: JSON.stringify(record.data) })
          .execute()
        await writeAlongside(tx, also)
      })
      return record
    },

    async getRecord(tenantId: string, kind: string, id: string): Promise<ApiRecord | undefined> {
      const row = await db.selectFrom('records').selectAll().where('tenantId', '=', tenantId).where('kind', '=', kind).where('id', '=', id).executeTakeFirst()
      return row && toRecord(row)
    },

    async listRecords(tenantId: string, kind: string, opts: { limit: number; createdByClientId?: string; before?: { createdAt: number; id: string } }): Promise<ApiRecord[]> {
      const { limit, createdByClientId: creator, before: b } = opts
      const page = () => {
        let q = db.selectFrom('records').selectAll().where('tenantId', '=', tenantId).where('kind', '=', kind)
        if (creator !== undefined) q = q.where('createdByClientId', '=', creator)
        if (b) q = q.where((eb) => eb.or([eb('createdAt', '<', b.createdAt), eb.and([eb('createdAt', '=', b.createdAt), eb('id', '<', b.id)])]))
        return q.orderBy('createdAt', 'desc').orderBy('id', 'desc').limit(limit)
      }
      // The API's hottest read (GET /api/rest/v2/workorders among others): compiled once per shape,
      // parameters in the order they appear in the SQL.
      const parameters = [tenantId, kind, ...(creator !== undefined ? [creator] : []), ...(b ? [b.createdAt, b.createdAt, b.id] : []), limit]
      const shape = `records${creator !== undefined ? ' by creator' : ''}${b ? ' before' : ''}`
      return (await precompiled(shape, page, parameters)).map(toRecord)
    },
  }
}

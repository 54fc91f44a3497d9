import type { AuditEntry, AuditStore, Page } from '@fieldgate/core'
import type { Kysely } from 'kysely'
import type { Database } from '../schema.js'
import { insertAudit, paged } from './rows.js'

/** The audit log. */
export function sqlAuditStore(db: Kysely<Database>): AuditStore {
  return {
    async recordAudit(entry: AuditEntry): Promise<void> {
      await insertAudit(db, [entry])
    },

    async listAudit(filter: { appIds?: string[]; tenantIds?: string[]; limit: number } & Omit<Page, 'limit'>): Promise<AuditEntry[]> {
      let q = db.selectFrom('auditEntries').selectAll()
      const { appIds, tenantIds } = filter
      if (appIds || tenantIds) {
        // Owners see entries about their apps or their tenants; owning neither, nothing.
        if (!appIds?.length && !tenantIds?.length) return []
        q = q.where((eb) => eb.or([...(appIds?.length ? [eb('appId', 'in', appIds)] : []), ...(tenantIds?.length ? [eb('tenantId', 'in', tenantIds)] : [])]))
      }
      const rows = await paged(q.orderBy('at', 'desc').orderBy('id', 'desc'), ['actor', 'action', 'clientId'], filter).execute()
      return rows.map((r) => ({ ...r, details: JSON.parse(r.details) as Record<string, unknown> }))
    },
  }
}

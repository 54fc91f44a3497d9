import type { AuditEntry } from '../model.js'
import type { Page } from './tenants.js'

/** The audit log. Entries usually commit alongside the change they record (see Alongside). */
export interface AuditStore {
  recordAudit(entry: AuditEntry): Promise<void>
  /** Newest first; `query` matches the actor, action or client_id. */
  listAudit(filter: { appIds?: string[]; tenantIds?: string[]; limit: number } & Omit<Page, 'limit'>): Promise<AuditEntry[]>
}

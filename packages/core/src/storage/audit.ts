import type { AuditEntry } from '../model.js'

/** The audit log. Entries usually commit alongside the change they record (see Alongside). */
export interface AuditStore {
  recordAudit(entry: AuditEntry): Promise<void>
  /** Newest first. */
  listAudit(filter: { appIds?: string[]; tenantIds?: string[]; limit: number }): Promise<AuditEntry[]>
}

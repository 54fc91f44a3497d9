import { randomUUID } from 'node:crypto'
import type { AuditEntry } from './model.js'
import type { Storage } from './storage.js'

/** Who is acting, for the audit log: a person (from an address), the CLI, or the admin API. */
export interface Actor {
  name: string
  userId?: string | null
  address?: string | null
}

export const cliActor: Actor = { name: 'cli' }

/** What admin operations take besides their input. */
export interface AdminOptions {
  now?: number
  actor?: Actor
  /** Seals a new client secret so install redirects can be signed with it; without it they cannot. */
  masterKey?: Buffer
}

export interface AuditAbout {
  objectId: string
  appId?: string | null
  /** When not given, the store fills it in from `appId` (the app as it is when the entry is written). */
  clientId?: string | null
  tenantId?: string | null
}

/** An audit entry is written in the transaction of the change it records (Storage `Alongside`), never after it. */
export function auditEntry(opts: AdminOptions, action: string, about: AuditAbout, details: Record<string, unknown> = {}): AuditEntry {
  const actor = opts.actor ?? cliActor
  return {
    id: randomUUID(),
    at: opts.now ?? Date.now(),
    actor: actor.name,
    actorUserId: actor.userId ?? null,
    action,
    appId: about.appId ?? null,
    clientId: about.clientId ?? null,
    tenantId: about.tenantId ?? null,
    objectId: about.objectId,
    address: actor.address ?? null,
    details,
  }
}

/** For what has no change to ride with. */
export async function recordAudit(
  storage: Storage, opts: AdminOptions, action: string, about: AuditAbout, details: Record<string, unknown> = {},
): Promise<void> {
  await storage.recordAudit(auditEntry(opts, action, about, details))
}

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

export async function recordAudit(
  storage: Storage, opts: AdminOptions, action: string,
  about: { objectId: string; appId?: string | null; tenantId?: string | null }, details: Record<string, unknown> = {},
): Promise<void> {
  const actor = opts.actor ?? cliActor
  const entry: AuditEntry = {
    id: randomUUID(),
    at: opts.now ?? Date.now(),
    actor: actor.name,
    actorUserId: actor.userId ?? null,
    action,
    appId: about.appId ?? null,
    tenantId: about.tenantId ?? null,
    objectId: about.objectId,
    address: actor.address ?? null,
    details,
  }
  await storage.recordAudit(entry)
}

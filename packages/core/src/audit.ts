import { randomUUID } from 'node:crypto'
import type { AuditEntry, User } from './model.js'

/**
 * Who runs an operation. An operator (the CLI beside the store, the admin API with its token, a person
 * with the operator role on the operator console) may do everything; a person signed in to the portal may act on their own apps and on tenants they own or
 * administer (operations/access.ts); a visitor is not signed in and may only sign up.
 */
export type Actor =
  | { readonly kind: 'operator'; readonly name: 'cli' | 'admin-api'; readonly address?: string }
  | { readonly kind: 'operator'; readonly name: 'console'; readonly user: User; readonly address?: string }
  | { readonly kind: 'person'; readonly user: User; readonly address?: string }
  | { readonly kind: 'visitor'; readonly address?: string }

export type Person = Extract<Actor, { kind: 'person' }>

export const cliActor: Actor = { kind: 'operator', name: 'cli' }
export const adminApiActor = (address: string): Actor => ({ kind: 'operator', name: 'admin-api', address })
export const personActor = (user: User, address: string): Person => ({ kind: 'person', user, address })
export const visitorActor = (address: string): Actor => ({ kind: 'visitor', address })
/** A person with the operator role, on the operator console. */
export const consoleActor = (user: User, address: string): Actor => ({ kind: 'operator', name: 'console', user, address })

/** The person behind an actor, if there is one: a portal user or an operator on the console. */
export const actingUser = (actor: Actor): User | undefined => ('user' in actor ? actor.user : undefined)

export interface AuditAbout {
  objectId: string
  appId?: string | null
  /** When not given, the store fills it in from `appId` (the app as it is when the entry is written). */
  clientId?: string | null
  tenantId?: string | null
}

/** An audit entry is written in the transaction of the change it records (Storage `Alongside`), never after it. */
export function auditEntry(actor: Actor, now: number, action: string, about: AuditAbout, details: Record<string, unknown> = {}): AuditEntry {
  return {
    id: randomUUID(),
    at: now,
    actor: actingUser(actor)?.email ?? (actor.kind === 'operator' ? actor.name : 'visitor'),
    actorUserId: actingUser(actor)?.id ?? null,
    action,
    appId: about.appId ?? null,
    clientId: about.clientId ?? null,
    tenantId: about.tenantId ?? null,
    objectId: about.objectId,
    address: actor.address ?? null,
    details,
  }
}

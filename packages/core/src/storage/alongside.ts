import type { AuditEntry, EmailToken, Install, MailMessage, OutboxEvent, SecurityEvent, Tenant } from '../model.js'

/**
 * Rows that belong to a change and commit in its transaction, so a crash keeps all of them or none:
 * its audit entries, its outbox events, and for createApp the sandbox tenant made for the app, for a
 * grant the install it is made for, and the security events and mail (e.g. a review decision's notice) it causes,
 * with the links that mail carries.
 */
export interface Alongside {
  audit?: AuditEntry[]
  security?: SecurityEvent[]
  mail?: MailMessage[]
  /** The links a message carries (their hashes), so a message never names a link that was not saved. */
  emailTokens?: EmailToken[]
  events?: OutboxEvent[]
  tenant?: Tenant
  install?: Install
}

/** `also` with `events` ahead of its own. */
export const withEvents = (events: OutboxEvent[], also: Alongside = {}): Alongside => ({ ...also, events: [...events, ...(also.events ?? [])] })

import type { EmailToken, MailMessage, SecurityEvent, SecurityEventKind } from '../model.js'
import type { Alongside } from './alongside.js'
import type { Page } from './tenants.js'

/** What accounts need besides users: the links mailed to people, the mail itself, and security events. */
export interface AccountStore {
  /** Saves a link, with what goes alongside (the mail carrying it, its audit entry) in one transaction. */
  saveEmailToken(token: EmailToken, also?: Alongside): Promise<void>
  /** The token if it is unused and has not expired at `now`. */
  getEmailToken(idHash: string, now: number): Promise<EmailToken | undefined>
  /** Marks the token used if it is unused and unexpired: exactly one of concurrent calls gets it. */
  useEmailToken(idHash: string, now: number): Promise<EmailToken | undefined>
  /** Invitations unused and unexpired at `now`, to `tenantId` (null: to be an operator), newest first. */
  listInvitations(tenantId: string | null, now: number): Promise<EmailToken[]>

  saveMail(mail: MailMessage): Promise<void>
  /**
   * Up to `limit` pending messages, oldest first, leased to the caller for `leaseMs`: until the lease
   * ends no other mailer (process or instance) gets them, so a message is sent once; a mailer that
   * dies mid-send leaves it to be claimed again when the lease ends. Each claim counts an attempt.
   */
  claimMail(now: number, leaseMs: number, limit: number): Promise<MailMessage[]>
  /**
   * Saves a message's delivery state (state, attempts, error, sentAt, text) and ends its lease; a
   * message still pending with `retryAt` is not claimed again before then.
   */
  updateMail(mail: MailMessage, retryAt?: number): Promise<void>
  /** Newest first; `query` matches the recipient or subject. */
  listMail(filter?: { state?: MailMessage['state'] } & Page): Promise<MailMessage[]>

  recordSecurityEvent(event: SecurityEvent): Promise<void>
  /** Newest first; `query` matches the email, client_id or address. */
  listSecurityEvents(filter?: { kinds?: SecurityEventKind[]; userId?: string; address?: string } & Page): Promise<SecurityEvent[]>
}

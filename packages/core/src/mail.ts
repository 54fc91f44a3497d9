import { randomUUID } from 'node:crypto'
import type { MailMessage } from './model.js'

/**
 * A message for the mail outbox: written with the change it tells of (Storage `Alongside`) or on its
 * own, then sent by the serving processes' mailer over SMTP, or kept in the local mailbox without one.
 */
export function newMail(now: number, message: Pick<MailMessage, 'to' | 'subject' | 'text' | 'kind'>): MailMessage {
  return { id: randomUUID(), ...message, state: 'pending', attempts: 0, error: null, createdAt: now, sentAt: null }
}

import type { AccountStore, Alongside, EmailToken, MailMessage, Page, SecurityEvent, SecurityEventKind } from '@fieldgate/core'
import { sql, type Kysely, type SqlBool } from 'kysely'
import type { Database } from '../schema.js'
import { fromSecurityEvent, paged, toMail, toSecurityEvent, writeAlongside, type Row } from './rows.js'

const toEmailToken = (row: Row<'emailTokens'>): EmailToken => ({ ...row, purpose: row.purpose as EmailToken['purpose'], role: row.role as EmailToken['role'] })

/** Links mailed to people, the mail, and security events. */
export function sqlAccountStore(db: Kysely<Database>): AccountStore {
  return {
    async saveEmailToken(token: EmailToken, also: Alongside = {}): Promise<void> {
      await db.transaction().execute(async (tx) => {
        // Spent and expired links are dropped as new ones are made; a day's grace keeps "already used" answerable.
        await tx
          .deleteFrom('emailTokens')
          .where('expiresAt', '<', token.createdAt - 86_400_000)
          .execute()
        await tx.insertInto('emailTokens').values(token).execute()
        await writeAlongside(tx, also)
      })
    },

    async getEmailToken(idHash: string, now: number): Promise<EmailToken | undefined> {
      const row = await db.selectFrom('emailTokens').selectAll().where('idHash', '=', idHash).where('expiresAt', '>', now).where('usedAt', 'is', null).executeTakeFirst()
      return row && toEmailToken(row)
    },

    async useEmailToken(idHash: string, now: number): Promise<EmailToken | undefined> {
      // One conditional UPDATE: of concurrent uses exactly one changes the row.
      const row = await db
        .updateTable('emailTokens')
        .set({ usedAt: now })
        .where('idHash', '=', idHash)
        .where('expiresAt', '>', now)
        .where('usedAt', 'is', null)
        .returningAll()
        .executeTakeFirst()
      return row && toEmailToken(row)
    },

    async listInvitations(tenantId: string | null, now: number): Promise<EmailToken[]> {
      const rows = await db
        .selectFrom('emailTokens')
        .selectAll()
        .where('purpose', '=', 'invite')
        .where('tenantId', tenantId === null ? 'is' : '=', tenantId)
        .where('expiresAt', '>', now)
        .where('usedAt', 'is', null)
        .orderBy('createdAt', 'desc')
        .execute()
      return rows.map(toEmailToken)
    },

    async saveMail(mail: MailMessage): Promise<void> {
      await db.insertInto('mail').values(mail).execute()
    },

    async claimMail(now: number, leaseMs: number, limit: number): Promise<MailMessage[]> {
      const claimable = sql<SqlBool>`state = 'pending' AND (lease_until IS NULL OR lease_until < ${now})`
      // The condition is repeated outside the subquery: a concurrent claim that updated a row first
      // makes it false on PostgreSQL's recheck, so two mailers never lease the same message.
      const rows = await db
        .updateTable('mail')
        .set((eb) => ({ leaseUntil: now + leaseMs, attempts: eb('attempts', '+', 1) }))
        .where('id', 'in', db.selectFrom('mail').select('id').where(claimable).orderBy('createdAt').limit(limit))
        .where(claimable)
        .returningAll()
        .execute()
      return rows.map(toMail).sort((a, b) => a.createdAt - b.createdAt)
    },

    async updateMail(mail: MailMessage, retryAt?: number): Promise<void> {
      const { state, attempts, error, sentAt, text } = mail
      const leaseUntil = state === 'pending' && retryAt !== undefined ? retryAt : null
      await db.updateTable('mail').set({ state, attempts, error, sentAt, text, leaseUntil }).where('id', '=', mail.id).execute()
    },

    async listMail(filter: { state?: MailMessage['state'] } & Page = {}): Promise<MailMessage[]> {
      const { state, ...page } = filter
      let q = db.selectFrom('mail').selectAll()
      if (state) q = q.where('state', '=', state)
      const rows = await paged(q.orderBy('createdAt', 'desc').orderBy('id', 'desc'), ['to', 'subject'], page).execute()
      return rows.map(toMail)
    },

    async recordSecurityEvent(event: SecurityEvent): Promise<void> {
      await db.insertInto('securityEvents').values(fromSecurityEvent(event)).execute()
    },

    async listSecurityEvents(filter: { kinds?: SecurityEventKind[]; userId?: string; address?: string } & Page = {}): Promise<SecurityEvent[]> {
      const { kinds, userId, address, ...page } = filter
      let q = db.selectFrom('securityEvents').selectAll()
      if (kinds?.length) q = q.where('kind', 'in', kinds)
      if (userId) q = q.where('userId', '=', userId)
      if (address) q = q.where('address', '=', address)
      const rows = await paged(q.orderBy('at', 'desc').orderBy('id', 'desc'), ['email', 'clientId', 'address', 'kind'], page).execute()
      return rows.map(toSecurityEvent)
    },
  }
}

import { reviewedFields, type AppCategory } from '@fieldgate/core'
import type { Alongside, ApiRecord, App, AuditEntry, Change, Grant, Install, MailMessage, OutboxEvent, Page, ReviewedFields, SecurityEvent, Tenant, User } from '@fieldgate/core'
import { sql, type Expression, type Kysely, type Selectable, type SelectQueryBuilder, type SqlBool, type Transaction } from 'kysely'
import type { Database } from '../schema.js'

// Shared by every aggregate: how rows map to the model, and the writes a change carries along.

export type Engine = 'sqlite' | 'postgres'
export type Row<T extends keyof Database> = Selectable<Database[T]>
export type Db = Kysely<Database> | Transaction<Database>

export const appendChange = (db: Db, kind: Change['kind'], ref: string, now: number) => db.insertInto('changes').values({ kind, ref, createdAt: now }).execute()

const enqueue = async (db: Db, events: OutboxEvent[]) => {
  if (events.length) await db.insertInto('events').values(events).execute()
}

export const insertAudit = async (db: Db, entries: AuditEntry[]) => {
  if (!entries.length) return
  // An entry that names only the app's id gets its client_id from the app, in the same statement.
  const clientIdOf = (e: AuditEntry) => e.clientId ?? (e.appId ? db.selectFrom('apps').select('clientId').where('id', '=', e.appId) : null)
  await db
    .insertInto('auditEntries')
    .values(entries.map((e) => ({ ...e, clientId: clientIdOf(e), details: JSON.stringify(e.details) })))
    .execute()
}

export const upsertInstall = async (db: Db, install: Install) => {
  const { grantId: _g, createdAt: _c, ...update } = install
  await db
    .insertInto('installs')
    .values(install)
    .onConflict((oc) => oc.column('grantId').doUpdateSet(update))
    .execute()
}

/** What a change carries along (core's `Alongside`), written inside the change's transaction. */
export async function writeAlongside(db: Db, also: Alongside): Promise<void> {
  if (also.tenant) await db.insertInto('tenants').values(also.tenant).execute()
  if (also.install) await upsertInstall(db, also.install)
  await enqueue(db, also.events ?? [])
  await insertAudit(db, also.audit ?? [])
  if (also.security?.length) await db.insertInto('securityEvents').values(also.security.map(fromSecurityEvent)).execute()
  if (also.emailTokens?.length) await db.insertInto('emailTokens').values(also.emailTokens).execute()
  if (also.mail?.length) await db.insertInto('mail').values(also.mail).execute()
}

/**
 * `query` as a case-insensitive substring of any of `columns` (LIKE with its wildcards escaped; lower()
 * on both sides, since PostgreSQL's LIKE is case-sensitive and SQLite's is not).
 */
export function matching(columns: string[], query: string | undefined): Expression<SqlBool> | undefined {
  // NUL can be in no stored text, and PostgreSQL refuses it in a query: it matches nothing more without it.
  const q = query?.replace(/\0/g, '').trim().toLowerCase()
  if (!q) return undefined
  const pattern = `%${q.replace(/[!%_]/g, (c) => `!${c}`)}%`
  return sql<SqlBool>`(${sql.join(
    columns.map((c) => sql`lower(${sql.ref(c)}) LIKE ${pattern} ESCAPE '!'`),
    sql` OR `,
  )})`
}

/** A page of a listing: at most 500 rows, 50 when not said. */
export function paged<DB, TB extends keyof DB, O>(q: SelectQueryBuilder<DB, TB, O>, columns: string[], page: Page): SelectQueryBuilder<DB, TB, O> {
  const match = matching(columns, page.query)
  const limited = q.limit(Math.min(Math.max(page.limit ?? 50, 1), 500)).offset(Math.max(page.offset ?? 0, 0))
  return match ? limited.where(match) : limited
}

export function toUser(row: Row<'users'> | undefined): User | undefined {
  return row && { ...row, operator: row.operator === 1 }
}

export const fromUser = (user: User): Database['users'] => ({ ...user, operator: user.operator ? 1 : 0 })

export const fromSecurityEvent = (e: SecurityEvent): Database['securityEvents'] => ({ ...e, details: JSON.stringify(e.details) })

export const toSecurityEvent = (row: Row<'securityEvents'>): SecurityEvent => ({
  ...row,
  kind: row.kind as SecurityEvent['kind'],
  details: JSON.parse(row.details) as Record<string, unknown>,
})

export const toMail = ({ leaseUntil: _lease, ...row }: Row<'mail'>): MailMessage => ({ ...row, state: row.state as MailMessage['state'] })

export const toEvent = (row: Row<'events'>): OutboxEvent => ({ ...row, state: row.state as OutboxEvent['state'] })

export const toRecord = (row: Row<'records'>): ApiRecord => ({ ...row, data: JSON.parse(row.data) as Record<string, unknown> })

export const toChange = (row: Row<'changes'>): Change => ({ ...row, kind: row.kind as Change['kind'] })

export const splitScopes = (s: string): string[] => (s === '' ? [] : s.split(' '))

export function toTenant(row: Row<'tenants'> | undefined): Tenant | undefined {
  return row && { ...row, environment: row.environment as Tenant['environment'] }
}

export function toApp(row: Row<'apps'> | undefined): App | undefined {
  if (!row) return undefined
  const app: App = {
    ...row,
    listed: row.listed === 1,
    kind: row.kind as App['kind'],
    environment: row.environment as App['environment'],
    redirectUris: JSON.parse(row.redirectUris) as string[],
    scopes: splitScopes(row.scopes),
    categories: JSON.parse(row.categories) as AppCategory[],
    review: row.review as App['review'],
    proposed: null,
    suspendedWithAccount: row.suspendedWithAccount === 1,
    publicClient: row.publicClient === 1,
    refreshTokens: row.refreshTokens === 1,
    accessTokenFormat: row.accessTokenFormat as App['accessTokenFormat'],
    requireDpop: row.requireDpop === 1,
    requirePar: row.requirePar === 1,
    registration: row.registration as App['registration'],
  }
  // A proposal saved before the listing was reviewed lacks its fields: they stay as in force.
  if (row.proposed !== null) app.proposed = { ...reviewedFields(app), ...(JSON.parse(row.proposed) as Partial<ReviewedFields>) }
  return app
}

export function fromApp(app: App): Database['apps'] {
  return {
    ...app,
    redirectUris: JSON.stringify(app.redirectUris),
    scopes: app.scopes.join(' '),
    listed: app.listed ? 1 : 0,
    categories: JSON.stringify(app.categories),
    proposed: app.proposed && JSON.stringify(app.proposed),
    suspendedWithAccount: app.suspendedWithAccount ? 1 : 0,
    publicClient: app.publicClient ? 1 : 0,
    refreshTokens: app.refreshTokens ? 1 : 0,
    requireDpop: app.requireDpop ? 1 : 0,
    requirePar: app.requirePar ? 1 : 0,
  }
}

export function toGrant(row: Row<'grants'> | undefined): Grant | undefined {
  return row && { ...row, status: row.status as Grant['status'], scopes: splitScopes(row.scopes) }
}

export function fromGrant(grant: Grant): Database['grants'] {
  return { ...grant, scopes: grant.scopes.join(' ') }
}

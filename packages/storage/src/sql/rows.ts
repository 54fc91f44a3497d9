import type { Alongside, ApiRecord, App, AuditEntry, Change, Grant, Install, OutboxEvent, Tenant } from '@fieldgate/core'
import type { Kysely, Selectable, Transaction } from 'kysely'
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
}

export const toEvent = (row: Row<'events'>): OutboxEvent => ({ ...row, state: row.state as OutboxEvent['state'] })

export const toRecord = (row: Row<'records'>): ApiRecord => ({ ...row, data: JSON.parse(row.data) as Record<string, unknown> })

export const toChange = (row: Row<'changes'>): Change => ({ ...row, kind: row.kind as Change['kind'] })

export const splitScopes = (s: string): string[] => (s === '' ? [] : s.split(' '))

export function toTenant(row: Row<'tenants'> | undefined): Tenant | undefined {
  return row && { ...row, environment: row.environment as Tenant['environment'] }
}

export function toApp(row: Row<'apps'> | undefined): App | undefined {
  return (
    row && {
      ...row,
      listed: row.listed === 1,
      kind: row.kind as App['kind'],
      environment: row.environment as App['environment'],
      redirectUris: JSON.parse(row.redirectUris) as string[],
      scopes: splitScopes(row.scopes),
    }
  )
}

export function fromApp(app: App): Database['apps'] {
  return { ...app, redirectUris: JSON.stringify(app.redirectUris), scopes: app.scopes.join(' '), listed: app.listed ? 1 : 0 }
}

export function toGrant(row: Row<'grants'> | undefined): Grant | undefined {
  return row && { ...row, status: row.status as Grant['status'], scopes: splitScopes(row.scopes) }
}

export function fromGrant(grant: Grant): Database['grants'] {
  return { ...grant, scopes: grant.scopes.join(' ') }
}

import assert from 'node:assert/strict'
import { randomBytes, randomUUID } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import Sqlite from 'better-sqlite3'
import { Kysely, Migrator, PostgresDialect, sql } from 'kysely'
import pg from 'pg'
import type { ApiRecord, Storage } from '@fieldgate/core'
import { openPostgres, openSqlite } from '../src/index.js'
import { migrationsFor } from '../src/migrations/index.js'
import { SqliteDialect } from '../src/sqlite-dialect.js'

/** The migration before work orders became records. */
const BEFORE_RECORDS = '0007_audit_client_id_secret_handles'

const T = 1_700_000_000_000

/**
 * A store left at BEFORE_RECORDS with two work orders in its work_orders table, migrated to the latest:
 * both come back as records of kind `work_order`, with their title and status as data, and the table is gone.
 */
async function workOrdersBecomeRecords(
  engine: 'sqlite' | 'postgres',
  early: Kysely<unknown>,
  migrationTableSchema: string | undefined,
  open: () => Storage,
  tableExists: (store: Kysely<unknown>) => Promise<boolean>,
): Promise<void> {
  const tenantId = randomUUID()
  const orders = [
    { id: randomUUID(), title: 'Fix the "boiler" — über \\ quickly', status: 'published', createdByClientId: 'fg_client', createdAt: T + 1 },
    { id: randomUUID(), title: 'Read the meter', status: 'draft', createdByClientId: null, createdAt: T + 2 },
  ]
  try {
    const { error } = await new Migrator({ db: early, provider: migrationsFor(engine), ...(migrationTableSchema ? { migrationTableSchema } : {}) }).migrateTo(BEFORE_RECORDS)
    if (error) throw error
    await sql`INSERT INTO tenants (id, name, environment, marketplace_id, created_at) VALUES (${tenantId}, 'Acme', 'live', ${randomUUID()}, ${T})`.execute(early)
    for (const o of orders) {
      await sql`INSERT INTO work_orders (id, tenant_id, title, status, created_by_client_id, created_at)
        VALUES (${o.id}, ${tenantId}, ${o.title}, ${o.status}, ${o.createdByClientId}, ${o.createdAt})`.execute(early)
    }
    assert.equal(await tableExists(early), true)
  } finally {
    await early.destroy()
  }

  const store = open()
  try {
    await store.migrate()
    const expected: ApiRecord[] = [...orders].reverse().map((o) => ({
      id: o.id,
      tenantId,
      kind: 'work_order',
      data: { title: o.title, status: o.status },
      createdByClientId: o.createdByClientId,
      createdByUserId: null,
      createdAt: o.createdAt,
    }))
    assert.deepEqual(await store.listRecords(tenantId, 'work_order', { limit: 10 }), expected, 'newest first, as records')
    assert.deepEqual(await store.getRecord(tenantId, 'work_order', orders[0]!.id), expected[1])
    assert.deepEqual(await store.listRecords(tenantId, 'work_order', { limit: 10, createdByClientId: 'fg_client' }), [expected[1]])
  } finally {
    await store.close()
  }
}

describe('migration 0008: work orders become records', () => {
  it('SQLite', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fg-migrate-'))
    try {
      const file = 'migrate.db'
      const connection = new Sqlite(join(dir, file))
      connection.pragma('foreign_keys = ON')
      const tableExists = async (db: Kysely<unknown>) =>
        (await sql<{ n: number }>`SELECT count(*) AS n FROM sqlite_master WHERE type = 'table' AND name = 'work_orders'`.execute(db)).rows[0]?.n === 1
      await workOrdersBecomeRecords('sqlite', new Kysely<unknown>({ dialect: new SqliteDialect(connection) }), undefined, () => openSqlite(dir, file), tableExists)
      const after = new Sqlite(join(dir, file), { readonly: true })
      try {
        assert.deepEqual(after.prepare(`SELECT name FROM sqlite_master WHERE name LIKE 'work_orders%'`).all(), [], 'the table and its index are gone')
      } finally {
        after.close()
      }
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  const url = process.env.DATABASE_URL
  it('PostgreSQL', { skip: url ? false : 'DATABASE_URL is not set: PostgreSQL migration tests need a server' }, async () => {
    if (!url) return
    const schema = `fg_test_migrate_${randomBytes(6).toString('hex')}`
    const admin = new pg.Client({ connectionString: url })
    await admin.connect()
    try {
      await admin.query(`CREATE SCHEMA ${schema}`)
      const pool = new pg.Pool({ connectionString: url, options: `-c search_path=${schema}` })
      const tableExists = async (db: Kysely<unknown>) =>
        (await sql<{ t: string | null }>`SELECT to_regclass(${`${schema}.work_orders`})::text AS t`.execute(db)).rows[0]?.t !== null
      await workOrdersBecomeRecords('postgres', new Kysely<unknown>({ dialect: new PostgresDialect({ pool }) }), schema, () => openPostgres(url, { schema }), tableExists)
      const gone = await admin.query(`SELECT to_regclass($1)::text AS t`, [`${schema}.work_orders`])
      assert.equal(gone.rows[0]?.t, null, 'the table is gone')
    } finally {
      await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).catch(() => {})
      await admin.end()
    }
  })
})

/**
 * An app with a waiting proposal, stored before the listing existed (0010), migrated to the latest: it
 * reads with an empty listing, and its proposal with the listing as in force.
 */
async function appsGetAListing(engine: 'sqlite' | 'postgres', early: Kysely<unknown>, migrationTableSchema: string | undefined, open: () => Storage): Promise<void> {
  const id = randomUUID()
  const proposed = { name: 'Hay 2', scopes: ['api'], installUrl: 'https://hay.example/i', redirectUris: [], dataApiUrl: null }
  try {
    const { error } = await new Migrator({ db: early, provider: migrationsFor(engine), ...(migrationTableSchema ? { migrationTableSchema } : {}) }).migrateTo('0010_mail_lease')
    if (error) throw error
    await sql`INSERT INTO apps (id, client_id, name, kind, environment, install_url, redirect_uris, scopes, created_at, description, listed, review, approved_at, proposed)
      VALUES (${id}, ${`fg_${randomBytes(8).toString('hex')}`}, 'Hay', 'public', 'live', 'https://hay.example/i', '[]', 'api', ${T}, '', 1, 'pending', ${T}, ${JSON.stringify(proposed)})`.execute(
      early,
    )
  } finally {
    await early.destroy()
  }
  const store = open()
  try {
    await store.migrate()
    const app = await store.getApp(id)
    const listing = { logoUrl: null, shortDescription: '', categories: [], publisher: null, supportUrl: null, privacyPolicyUrl: null }
    assert.deepEqual({ ...app, proposed: null }, { ...app, ...listing, proposed: null }, 'an empty listing')
    assert.deepEqual(app?.proposed, { ...proposed, ...listing }, 'the proposal as it was, the listing as in force')
  } finally {
    await store.close()
  }
}

describe('migration 0011: apps get a marketplace listing', () => {
  it('SQLite', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fg-migrate-'))
    try {
      const connection = new Sqlite(join(dir, 'listing.db'))
      connection.pragma('foreign_keys = ON')
      await appsGetAListing('sqlite', new Kysely<unknown>({ dialect: new SqliteDialect(connection) }), undefined, () => openSqlite(dir, 'listing.db'))
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  const url = process.env.DATABASE_URL
  it('PostgreSQL', { skip: url ? false : 'DATABASE_URL is not set: PostgreSQL migration tests need a server' }, async () => {
    if (!url) return
    const schema = `fg_test_listing_${randomBytes(6).toString('hex')}`
    const admin = new pg.Client({ connectionString: url })
    await admin.connect()
    try {
      await admin.query(`CREATE SCHEMA ${schema}`)
      const pool = new pg.Pool({ connectionString: url, options: `-c search_path=${schema}` })
      await appsGetAListing('postgres', new Kysely<unknown>({ dialect: new PostgresDialect({ pool }) }), schema, () => openPostgres(url, { schema }))
    } finally {
      await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).catch(() => {})
      await admin.end()
    }
  })
})

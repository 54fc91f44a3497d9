// Installs in bulk for the scale run of bench/run.mjs: N sandbox tenants and, for each, an active grant
// of one public app (what a marketplace install leaves for the token endpoint to read: a tenant and the
// app's grant on it, packages/core/src/grants/client-credentials.ts), written straight into a store the
// CLI has already migrated and made the app in. Columns: packages/storage/src/migrations/tables.ts.
//
// Nothing is written to the change feed (`changes`): a serving process starts its feed at the latest
// sequence number (packages/server/src/runtime.ts) and reads tenants and grants through its cache on
// first use, so the rows need no announcement, and a million changes would only be read by nobody.
// No `installs` rows either: they record how a marketplace install went, which the token path never reads.
//
// Ids are derived from the index, so the load generator can name any seeded tenant without a list:
// tenant i (1 ≤ i ≤ N) is tenantId(i). They are valid version-4 UUIDs (RFC 9562 §5.4's version and
// variant bits), in three blocks that cannot collide with each other or with random ones.
import { readdir, stat } from 'node:fs/promises'
import path from 'node:path'
import { pgClient, schemaBytes } from './postgres.mjs'

const hex12 = (i) => i.toString(16).padStart(12, '0')
export const tenantId = (i) => `00000000-0000-4000-8000-${hex12(i)}`
const SQL_ID = {
  // The same shapes in each engine's SQL.
  sqlite: (block, i) => `printf('${block}-0000-4000-8000-%012x', ${i})`,
  postgres: (block, i) => `'${block}-0000-4000-8000-' || lpad(to_hex(${i}), 12, '0')`,
}
const TENANT = '00000000'
const MARKETPLACE = '00000001'
const GRANT = '00000002'

/** The tenants 1..N, from the engine's row source of `i` (`numbers`); `now` is a bound parameter. */
const tenantInsert = (engine, numbers, now) =>
  `INSERT INTO tenants (id, name, environment, marketplace_id, created_at)
     SELECT ${SQL_ID[engine](TENANT, 'i')}, 'Bench Farm ' || i, 'sandbox', ${SQL_ID[engine](MARKETPLACE, 'i')}, ${now} FROM ${numbers}`

/** Tenant i's active grant of the app; `app`, `scopes` and `now` are bound parameters. */
const grantInsert = (engine, numbers, { app, scopes, now }) =>
  `INSERT INTO grants (id, app_id, tenant_id, scopes, status, created_at, updated_at)
     SELECT ${SQL_ID[engine](GRANT, 'i')}, ${app}, ${SQL_ID[engine](TENANT, 'i')}, ${scopes}, 'active', ${now}, ${now} FROM ${numbers}`

/**
 * Seeds `installs` installs of the app `clientId` into the SQLite store in `dataDir` (the server is not
 * running): one transaction, the numbers from a recursive CTE. Returns the seconds it took, the changes
 * before and after (they must be equal) and the store's size on disk after a checkpoint.
 */
export async function seedSqlite(dataDir, clientId, installs) {
  const { default: Sqlite } = await import('better-sqlite3')
  const db = new Sqlite(path.join(dataDir, 'fieldgate.db'))
  try {
    db.pragma('journal_mode = WAL')
    db.pragma('foreign_keys = ON')
    db.pragma('busy_timeout = 5000')
    const app = db.prepare('SELECT id, scopes FROM apps WHERE client_id = ?').get(clientId)
    if (!app) throw new Error(`no app ${clientId} in ${dataDir}`)
    const changes = () => db.prepare('SELECT count(*) AS n FROM changes').get().n
    const changesBefore = changes()
    const started = performance.now()
    const numbers = `(WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ${Number(installs)}) SELECT i FROM n)`
    const tenants = db.prepare(tenantInsert('sqlite', numbers, '@now'))
    const grants = db.prepare(grantInsert('sqlite', numbers, { app: '@app', scopes: '@scopes', now: '@now' }))
    const now = Date.now()
    db.transaction(() => {
      tenants.run({ now })
      grants.run({ app: app.id, scopes: app.scopes, now })
    })()
    // No ANALYZE: the server never runs it, so its store has no statistics either (and needs none: every
    // lookup on the token path is by primary key or a unique index). The WAL goes back into the file.
    db.pragma('wal_checkpoint(TRUNCATE)')
    const seconds = (performance.now() - started) / 1000
    return { seconds, changesBefore, changesAfter: changes(), bytes: await dirBytes(dataDir, 'fieldgate.db') }
  } finally {
    db.close()
  }
}

/** The same on PostgreSQL, in `schema` (through `url`'s search_path): generate_series, one transaction. */
export async function seedPostgres(url, schema, clientId, installs) {
  const client = await pgClient(url)
  try {
    const app = (await client.query('SELECT id, scopes FROM apps WHERE client_id = $1', [clientId])).rows[0]
    if (!app) throw new Error(`no app ${clientId} in schema ${schema}`)
    const changes = async () => Number((await client.query('SELECT count(*) AS n FROM changes')).rows[0].n)
    const changesBefore = await changes()
    const started = performance.now()
    const numbers = `generate_series(1, ${Number(installs)}) AS i`
    const now = Date.now()
    await client.query('BEGIN')
    try {
      await client.query(tenantInsert('postgres', numbers, '$1'), [now])
      await client.query(grantInsert('postgres', numbers, { app: '$1', scopes: '$2', now: '$3' }), [app.id, app.scopes, now])
      await client.query('COMMIT')
    } catch (err) {
      await client.query('ROLLBACK')
      throw err
    }
    // Statistics for the planner now, as autovacuum would gather them a moment after such an insert.
    await client.query('ANALYZE tenants')
    await client.query('ANALYZE grants')
    const seconds = (performance.now() - started) / 1000
    return { seconds, changesBefore, changesAfter: await changes(), bytes: await schemaBytes(schema) }
  } finally {
    await client.end()
  }
}

/** Bytes of the files in `dir` whose names start with `prefix` (the database, its WAL and shared memory). */
async function dirBytes(dir, prefix) {
  let bytes = 0
  for (const name of await readdir(dir)) if (name.startsWith(prefix)) bytes += (await stat(path.join(dir, name))).size
  return bytes
}

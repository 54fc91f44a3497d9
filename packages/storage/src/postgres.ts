import type { Storage } from '@fieldgate/core'
import { CamelCasePlugin, Kysely, PostgresDialect } from 'kysely'
import pg from 'pg'
import { PreparedStatements, preparingPool } from './prepared.js'
import type { Database } from './schema.js'
import { sqlStorage, type ChangeWatcher } from './sql/index.js'

const INT8 = 20

/**
 * PostgreSQL, the store several instances share. `schema` isolates a deployment (or a test run) inside
 * one database. BIGINT epoch-ms columns come back as numbers; they fit easily in a double.
 */
export function openPostgres(connectionString: string, opts: { schema?: string; max?: number } = {}): Storage {
  const pool = new pg.Pool({
    connectionString,
    max: opts.max ?? 10,
    // A database that does not answer a connect (a dropped route, a full backlog) fails the request with
    // 503 after 5 s instead of holding it until the OS gives up; TCP keep-alive notices dead peers.
    connectionTimeoutMillis: 5000,
    keepAlive: true,
    ...(opts.schema ? { options: `-c search_path=${opts.schema}` } : {}),
    types: { getTypeParser: ((oid: number, format?: 'text' | 'binary') => (oid === INT8 ? Number : pg.types.getTypeParser(oid, format))) as typeof pg.types.getTypeParser },
  })
  const schema = opts.schema
  if (schema !== undefined && !/^[a-z_][a-z0-9_]*$/.test(schema)) throw new Error('schema must be a plain lower-case identifier')
  // A connection that drops must not crash the process: an idle client's error reaches the pool, a
  // checked-out one's the client itself (its query fails on its own). The next query reconnects.
  pool.on('error', () => {})
  pool.on('connect', (client) => client.on('error', () => {}))
  const prepared = new PreparedStatements()
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool: preparingPool(pool, prepared) }), plugins: [new CamelCasePlugin()] })
  const createSchema = schema
    ? async () => {
        await pool.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`)
      }
    : undefined
  // The schema named, or the one search_path (perhaps set in the URL's options) makes the connections write to.
  let found: string | undefined = schema
  const schemaName = async (): Promise<string> => (found ??= (await pool.query<{ schema: string }>('SELECT current_schema() AS schema')).rows[0]!.schema)
  return sqlStorage({ engine: 'postgres', db, schemaName, prepare: createSchema, watcher: listenForChanges(connectionString, schemaName), keepPrepared: prepared.keep })
}

/** How long the listener waits before reconnecting after its connection dropped. */
const RELISTEN_MS = 1000

/**
 * LISTENs on a session connection of its own (the pool's connections come and go) for the NOTIFY that
 * migration 0006 sends when a change commits in the store's schema. A dropped connection is reopened
 * after RELISTEN_MS, and every (re)connection wakes the feed once, for whatever was committed while deaf.
 */
function listenForChanges(connectionString: string, schemaName: () => Promise<string>): ChangeWatcher {
  return (wake, onError) => {
    let stopped = false
    let client: pg.Client | undefined
    let retry: NodeJS.Timeout | undefined
    const listen = (): void => {
      schemaName().then(
        (schema) => {
          if (!stopped) listenIn(schema)
        },
        (err: unknown) => {
          if (stopped) return
          onError(err)
          retry = setTimeout(listen, RELISTEN_MS)
        },
      )
    }
    const listenIn = (schema: string): void => {
      // Named, so pg_stat_activity tells an operator what the long-lived idle connection is.
      const c = new pg.Client({ connectionString, application_name: `fieldgate listener ${schema}`.slice(0, 63), connectionTimeoutMillis: 5000, keepAlive: true })
      client = c
      let lost = false
      const drop = (err?: unknown): void => {
        if (lost) return
        lost = true
        if (err !== undefined && !stopped) onError(err)
        void c.end().catch(() => {})
        if (!stopped) retry = setTimeout(listen, RELISTEN_MS)
      }
      c.on('error', drop)
      c.on('end', () => drop())
      c.on('notification', (n) => {
        if (n.payload === schema) wake()
      })
      c.connect()
        .then(() => c.query('LISTEN fieldgate_changes'))
        .then(() => wake(), drop)
    }
    listen()
    return async () => {
      stopped = true
      clearTimeout(retry)
      await client?.end().catch(() => {})
    }
  }
}

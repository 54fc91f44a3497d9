import { CamelCasePlugin, Kysely, PostgresDialect } from 'kysely'
import pg from 'pg'
import type { Database } from './schema.js'
import { SqlStorage } from './sql-storage.js'

const INT8 = 20

/**
 * PostgreSQL, the store several instances share. `schema` isolates a deployment (or a test run) inside
 * one database. BIGINT epoch-ms columns come back as numbers; they fit easily in a double.
 */
export function openPostgres(connectionString: string, opts: { schema?: string; max?: number } = {}): SqlStorage {
  const pool = new pg.Pool({
    connectionString,
    max: opts.max ?? 10,
    ...(opts.schema ? { options: `-c search_path=${opts.schema}` } : {}),
    types: { getTypeParser: ((oid: number, format?: 'text' | 'binary') => (oid === INT8 ? Number : pg.types.getTypeParser(oid, format))) as typeof pg.types.getTypeParser },
  })
  const schema = opts.schema
  if (schema !== undefined && !/^[a-z_][a-z0-9_]*$/.test(schema)) throw new Error('schema must be a plain lower-case identifier')
  // A connection that drops must not crash the process: an idle client's error reaches the pool, a
  // checked-out one's the client itself (its query fails on its own). The next query reconnects.
  pool.on('error', () => {})
  pool.on('connect', (client) => client.on('error', () => {}))
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }), plugins: [new CamelCasePlugin()] })
  const createSchema = schema ? async () => { await pool.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`) } : undefined
  return new SqlStorage('postgres', db, schema, createSchema)
}

// PostgreSQL stores for bench/run.mjs: a fresh schema per server, selected through DATABASE_URL's
// `options=-c search_path=…` (as bench/soak.mjs does), migrated here and dropped at the end.
import { randomBytes } from 'node:crypto'
import os from 'node:os'

export const DATABASE_URL = process.env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/test'
export const REDIS_URL = process.env.REDIS_URL || 'redis://127.0.0.1:6379'

/** A pg client on `url`, connected; the caller ends it. */
export async function pgClient(url = DATABASE_URL) {
  const { default: pg } = await import('pg')
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  return client
}

export async function pgQuery(sql, params = [], url = DATABASE_URL) {
  const client = await pgClient(url)
  try {
    return await client.query(sql, params)
  } finally {
    await client.end()
  }
}

/** DATABASE_URL with the schema as the connection's search_path. */
export function schemaUrl(schema) {
  const url = new URL(DATABASE_URL)
  url.searchParams.set('options', `-c search_path=${schema}`)
  return url.toString()
}

const schemas = new Set()

/**
 * A new schema `fg_bench_<random>`, migrated: Kysely's migrator, given no schema (as the CLI and `serve`
 * are, with only search_path), takes a migration table in any schema of the database for its own, so the
 * migrations run here, where the store is told its schema.
 */
export async function freshSchema() {
  const schema = `fg_bench_${randomBytes(4).toString('hex')}`
  await pgQuery(`CREATE SCHEMA ${schema}`)
  schemas.add(schema)
  const { openStorage } = await import('@fieldgate/storage')
  const store = openStorage({ databaseUrl: DATABASE_URL, dataDir: os.tmpdir(), schema })
  try {
    await store.migrate()
  } finally {
    await store.close()
  }
  return { schema, url: schemaUrl(schema) }
}

export async function dropSchema(schema) {
  await pgQuery(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)
  schemas.delete(schema)
}

/** Drops every schema freshSchema() made and nobody dropped yet (the harness's cleanup). */
export async function dropSchemas(log) {
  for (const schema of [...schemas]) await dropSchema(schema).catch((err) => log(`could not drop schema ${schema}: ${err.message}`))
}

/** Bytes of the schema's tables with their indexes and TOAST. */
export async function schemaBytes(schema) {
  const { rows } = await pgQuery(
    `SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint AS bytes
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = $1 AND c.relkind = 'r'`,
    [schema],
  )
  return Number(rows[0].bytes)
}

/** Deletes the Redis keys under `prefix` (rate-limit counters a run left; they would expire with their window anyway). */
export async function dropRedisKeys(prefix) {
  const { Redis } = await import('ioredis')
  const redis = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 })
  try {
    await redis.connect()
    let cursor = '0'
    let deleted = 0
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000)
      cursor = next
      if (keys.length) deleted += await redis.del(...keys)
    } while (cursor !== '0')
    return deleted
  } finally {
    redis.disconnect()
  }
}

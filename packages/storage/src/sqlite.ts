import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import Sqlite from 'better-sqlite3'
import type { Storage } from '@fieldgate/core'
import { CamelCasePlugin, Kysely } from 'kysely'
import type { Database } from './schema.js'
import { SqliteDialect } from './sqlite-dialect.js'
import { sqlStorage } from './sql/index.js'

/**
 * The embedded default: one SQLite file in the data directory. WAL lets several processes read while
 * one writes; synchronous=FULL makes every acknowledged commit survive a power cut.
 */
export function openSqlite(dataDir: string, file = 'fieldgate.db'): Storage {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 })
  const connection = new Sqlite(join(dataDir, file))
  connection.pragma('journal_mode = WAL')
  connection.pragma('synchronous = FULL')
  connection.pragma('foreign_keys = ON')
  // Other processes (workers, the CLI) may hold the write lock for a moment.
  connection.pragma('busy_timeout = 5000')
  const db = new Kysely<Database>({ dialect: new SqliteDialect(connection), plugins: [new CamelCasePlugin()] })
  return sqlStorage({ engine: 'sqlite', db })
}

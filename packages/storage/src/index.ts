export { sqlStorage, type ChangeWatcher, type SqlStorageOptions } from './sql/index.js'
export { openSqlite } from './sqlite.js'
export { openPostgres } from './postgres.js'
export type { Database } from './schema.js'

import type { Storage } from '@fieldgate/core'
import { openPostgres } from './postgres.js'
import { openSqlite } from './sqlite.js'

/** PostgreSQL when a database URL is given, else the embedded SQLite file in `dataDir`. */
export function openStorage(opts: { databaseUrl?: string | undefined; dataDir: string; schema?: string }): Storage {
  return opts.databaseUrl ? openPostgres(opts.databaseUrl, opts.schema ? { schema: opts.schema } : {}) : openSqlite(opts.dataDir)
}
export { isStoreUnavailable } from './unavailable.js'
export { backupSqlite, restoreSqlite } from './backup.js'
export { DataDirBusyError, holdForServing } from './lock.js'

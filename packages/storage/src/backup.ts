import { copyFileSync, existsSync, renameSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import Sqlite from 'better-sqlite3'
import { whileNotServing } from './lock.js'

const file = 'fieldgate.db'

/**
 * A consistent copy of the embedded store while the server runs: SQLite's online backup API copies
 * pages under a read transaction, so writers go on and the copy is one committed state.
 */
export async function backupSqlite(dataDir: string, destination: string): Promise<{ pages: number }> {
  const source = join(dataDir, file)
  if (!existsSync(source)) throw new Error(`no store at ${source}`)
  if (existsSync(destination)) throw new Error(`${destination} exists; choose a new file`)
  const db = new Sqlite(source, { readonly: true, fileMustExist: true })
  try {
    const { totalPages } = await db.backup(destination)
    return { pages: totalPages }
  } finally {
    db.close()
  }
}

/**
 * Puts a backup in place of the store. The server must be stopped, as the file is swapped underneath
 * it: while a server holds the data directory's lock this throws and changes nothing. The backup is checked first (integrity_check, and that it is a Fieldgate store), then copied
 * beside the store and renamed over it, so a failure midway leaves the old store whole.
 */
export function restoreSqlite(dataDir: string, source: string): void {
  whileNotServing(dataDir, () => replaceStore(dataDir, source))
}

function replaceStore(dataDir: string, source: string): void {
  const check = new Sqlite(source, { readonly: true, fileMustExist: true })
  try {
    const integrity = check.pragma('integrity_check', { simple: true })
    if (integrity !== 'ok') throw new Error(`${source} fails integrity_check: ${String(integrity)}`)
    const tables = check.prepare(`SELECT name FROM sqlite_master WHERE type = 'table' AND name IN ('kysely_migration', 'tenants', 'apps')`).all()
    if (tables.length !== 3) throw new Error(`${source} is not a Fieldgate store`)
  } catch (err) {
    throw new Error(`cannot restore from ${source}: ${(err as Error).message}`)
  } finally {
    check.close()
  }
  const target = join(dataDir, file)
  const staged = `${target}.restoring`
  copyFileSync(source, staged)
  for (const side of ['-wal', '-shm']) rmSync(target + side, { force: true })
  renameSync(staged, target)
}

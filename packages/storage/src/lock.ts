import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

/**
 * Who uses a SQLite data directory. Every serving process (several may share one directory, and
 * `--workers` forks more) leaves `serve-<pid>.lock`; a restore leaves `restore.lock`. Each side writes
 * its own file first and then looks for the other's, so a server starting during a restore, or a
 * restore starting while a server runs, always sees the other. A file whose pid no longer runs
 * (the process was killed) is stale and ignored.
 */
const serveLock = (pid: number) => `serve-${pid}.lock`
const restoreLock = 'restore.lock'

export class DataDirBusyError extends Error {}

/** Marks this process as serving from `dataDir` until it exits; throws while a restore runs there. */
export function holdForServing(dataDir: string): void {
  const file = join(dataDir, serveLock(process.pid))
  mkdirSync(dataDir, { recursive: true, mode: 0o700 })
  writeFileSync(file, `${process.pid}\n`, { mode: 0o600 })
  process.once('exit', () => rmSync(file, { force: true }))
  const restoring = livePid(join(dataDir, restoreLock))
  if (restoring !== undefined && restoring !== process.pid) {
    rmSync(file, { force: true })
    throw new DataDirBusyError(`a restore (pid ${restoring}) is replacing the store in ${dataDir}; start the server once it has finished`)
  }
}

/** Runs `work` holding the restore lock; throws, changing nothing, while a server uses `dataDir`. */
export function whileNotServing<T>(dataDir: string, work: () => T): T {
  const file = join(dataDir, restoreLock)
  mkdirSync(dataDir, { recursive: true, mode: 0o700 })
  takeRestoreLock(file, dataDir)
  try {
    const serving = servingPids(dataDir)
    if (serving.length > 0) {
      throw new DataDirBusyError(
        `a server (pid ${serving.join(', ')}) is using ${dataDir}: stop it first, as restore replaces the store underneath it. ` +
          `If no server runs there, delete ${join(dataDir, serveLock(serving[0]!))}`,
      )
    }
    return work()
  } finally {
    rmSync(file, { force: true })
  }
}

/** Creates the restore lock exclusively; a stale one (its restore was killed) is replaced once. */
function takeRestoreLock(file: string, dataDir: string): void {
  for (let tries = 0; ; tries++) {
    try {
      writeFileSync(file, `${process.pid}\n`, { mode: 0o600, flag: 'wx' })
      return
    } catch (err) {
      if (!(err instanceof Error && 'code' in err && err.code === 'EEXIST')) throw err
      const other = livePid(file)
      if (other !== undefined || tries > 0) throw new DataDirBusyError(`another restore (pid ${other ?? 'new'}) is running in ${dataDir}`)
      rmSync(file, { force: true })
    }
  }
}

function servingPids(dataDir: string): number[] {
  let names: string[]
  try {
    names = readdirSync(dataDir)
  } catch {
    return []
  }
  const pids: number[] = []
  for (const name of names) {
    if (!/^serve-\d+\.lock$/.test(name)) continue
    const pid = livePid(join(dataDir, name))
    if (pid === undefined) rmSync(join(dataDir, name), { force: true })
    else pids.push(pid)
  }
  return pids
}

/** The pid in a lock file if that process still runs; undefined for no file or a stale one. */
function livePid(file: string): number | undefined {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch {
    return undefined
  }
  const pid = Number(text.trim())
  return Number.isSafeInteger(pid) && pid > 0 && isRunning(pid) ? pid : undefined
}

/** Signal 0 checks existence only; EPERM means it runs under another user, which still counts. */
function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return err instanceof Error && 'code' in err && err.code === 'EPERM'
  }
}

/**
 * A power cut of the SQLite store, simulated. kill -9 leaves the OS page cache intact, so it says
 * nothing about durability; here `fieldgate serve` runs under an LD_PRELOAD shim
 * (fixtures/power-cut-shim.c, compiled with the machine's cc) that journals every write, truncate,
 * sync, create and unlink on the files of the data directory. After a SIGKILL the directory is rebuilt
 * as a power cut would leave it, in a fresh folder:
 *
 * - durable: the files as they were when the server started, plus each write or truncate only once a
 *   later fsync/fdatasync of that file returned; a file created after the start (the -wal) exists
 *   only once a later fsync of the directory returned, an unlink counts only then too;
 * - torn: the same plus a random subset of what was not yet durable, some writes cut to a random
 *   number of 512-byte sectors, and some pending creates and unlinks.
 *
 * The cut falls where the SIGKILL fell, and, since a kill rarely lands between a write and its sync,
 * also right after random writes earlier in the journal: each record carries its CLOCK_MONOTONIC time,
 * as does each acknowledgement (process.hrtime), so the writes acknowledged before a cut are known.
 * Then PRAGMA integrity_check must be ok, every write acknowledged before the cut must be there, and
 * (at the SIGKILL's cut) a server must start on the rebuilt store and serve. First, as a check of the
 * journal itself, replaying all of it must give back exactly the files the killed server left.
 *
 * Not covered: the -shm file (shared memory, never synced; SQLite rebuilds it from the WAL, so it is
 * dropped), a disk that lies about fsync or reorders across it, writes torn inside a sector (SQLite's
 * powersafe-overwrite assumption), metadata other than names (mode, size changes by extension are
 * covered as writes), mmap writes to the database (mmap_size is 0), and the master key and other files
 * written before the start (they are in the starting state).
 */
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { cpSync, existsSync, mkdirSync, readFileSync, readdirSync, realpathSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { isDeepStrictEqual } from 'node:util'
import { describe, it } from 'node:test'
import Sqlite from 'better-sqlite3'
import { bearer, freePort, getToken, openStore, postJson, privateApp, repoRoot, request, spawnServe, tempDir, type ServerProcess } from './helpers.js'
import { killHard, randomInt, readyz } from './faults-helpers.js'

const shimSource = join(repoRoot, 'packages/server/test/fixtures/power-cut-shim.c')
const adminToken = `power-cut-admin-${randomBytes(24).toString('hex')}`
/** How long writes run before the cut, at most; the journal stays a few MB. */
const RUN_MS = 2500
const IN_FLIGHT = 6
/** Cuts right after a random write, each rebuilt durable-only and torn. */
const EARLIER_CUTS = 6

const noCompiler = spawnSync('cc', ['--version']).error ? 'no C compiler (cc) on this machine to build the LD_PRELOAD shim' : undefined
const notLinux = process.platform !== 'linux' ? 'LD_PRELOAD interposition of glibc calls needs Linux' : undefined

describe('SQLite power cut, simulated by journalling writes and syncs under LD_PRELOAD', () => {
  it('keeps every acknowledged write, passes integrity_check and serves, durable-only and torn', { skip: notLinux ?? noCompiler, timeout: 120_000 }, async (t) => {
    const started = performance.now()
    const work = realpathSync(tempDir('fg-power-cut-'))
    try {
      const shim = compileShim(work)
      const run = await prepareStore(join(work, 'data'), join(work, 'start'))
      const journalFile = join(work, 'journal')
      const acked = await writeUntilCut(run, shim, journalFile)
      assert.ok(existsSync(journalFile), 'the shim was loaded into the server (LD_PRELOAD took effect)')
      const ops = parseJournal(readFileSync(journalFile))
      assert.ok(ops.some((o) => o.type === 'W') && ops.some((o) => o.type === 'S'), 'the shim saw the server write and sync')
      const figures = journalFigures(ops)
      assert.ok(acked.orders.length > 0, 'some writes were acknowledged before the cut')
      checkJournal(run, ops)
      assert.ok(ops[0]!.at > run.spawnedAt && ops.at(-1)!.at < process.hrtime.bigint(), 'the shim and process.hrtime read one clock')
      let pendingAtCuts = 0
      for (const [i, cut] of cutPoints(ops).entries()) {
        const prefix = ops.slice(0, cut)
        pendingAtCuts += journalFigures(prefix).pending
        for (const mode of ['durable', 'torn'] as const) {
          const label = `${mode} cut at record ${cut} of ${ops.length}`
          const dir = join(work, `cut-${i}-${mode}`)
          writeDir(dir, rebuild(run.startDir, prefix, mode))
          // At the kill's cut every acknowledgement counts, so a write the shim missed would show.
          checkStore(dir, cut === ops.length ? acked : ackedBefore(acked, prefix.at(-1)!.at), label)
          if (cut === ops.length) await servesAgain(dir, run.client, label)
          rmSync(dir, { recursive: true, force: true })
        }
      }
      t.diagnostic(
        `power cut: ${acked.orders.length} work orders and ${acked.apps.length} apps acknowledged, ${figures.writes} writes ` +
          `(${figures.bytes} bytes) and ${figures.syncs} syncs journalled; ${EARLIER_CUTS + 1} cuts, ${pendingAtCuts} writes not durable at them; ` +
          `${Math.round(performance.now() - started)} ms`,
      )
    } finally {
      rmSync(work, { recursive: true, force: true })
    }
  })
})

function compileShim(work: string): string {
  const out = join(work, 'power-cut-shim.so')
  const cc = spawnSync('cc', ['-shared', '-fPIC', '-O2', '-Wall', '-o', out, shimSource, '-ldl', '-lpthread'], { encoding: 'utf8' })
  assert.equal(cc.status, 0, `cc failed: ${cc.stderr}`)
  return out
}

interface Run {
  /** process.hrtime before the server was spawned. */
  spawnedAt: bigint
  dataDir: string
  /** A copy of the data dir as the server found it. */
  startDir: string
  client: { clientId: string; clientSecret: string }
}

/** Store, keys, master key and a private app, made before the shim watches; then the starting copy. */
async function prepareStore(dataDir: string, startDir: string): Promise<Run> {
  const rt = await openStore(dataDir)
  const fixture = await privateApp(rt.storage, { scopes: 'api' })
  await rt.close()
  assert.equal(existsSync(join(dataDir, 'fieldgate.db-wal')), false, 'a clean close checkpoints and removes the WAL')
  cpSync(dataDir, startDir, { recursive: true })
  return { spawnedAt: 0n, dataDir, startDir, client: { clientId: fixture.clientId, clientSecret: fixture.clientSecret } }
}

/** What was acknowledged, each with the process.hrtime its answer arrived at. */
interface Acked {
  orders: [string, bigint][]
  apps: [string, bigint][]
}

const ackedBefore = (acked: Acked, at: bigint): Acked => ({
  orders: acked.orders.filter(([, t]) => t < at),
  apps: acked.apps.filter(([, t]) => t < at),
})

/** The SIGKILL's cut (the whole journal), and right after EARLIER_CUTS random writes. */
function cutPoints(ops: Op[]): number[] {
  const writes = ops.flatMap((op, i) => (op.type === 'W' ? [i + 1] : []))
  const earlier = Array.from({ length: EARLIER_CUTS }, () => writes[randomInt(0, writes.length - 1)]!)
  return [ops.length, ...earlier]
}

/** Writes from IN_FLIGHT loops under the shim, SIGKILLed at a random moment; returns what was acknowledged. */
async function writeUntilCut(run: Run, shim: string, journal: string): Promise<Acked> {
  run.spawnedAt = process.hrtime.bigint()
  const server = await spawnServe(await freePort(), {
    FIELDGATE_DATA_DIR: run.dataDir,
    FIELDGATE_ADMIN_TOKEN: adminToken,
    FIELDGATE_RATE_LIMIT_PER_TOKEN: '0',
    FIELDGATE_RATE_LIMIT_PER_CLIENT: '0',
    LD_PRELOAD: shim,
    FG_SHIM_DIR: run.dataDir,
    FG_SHIM_JOURNAL: journal,
  })
  const acked: Acked = { orders: [], apps: [] }
  try {
    const token = await getToken({ url: (p) => server.origin + p }, run.client)
    const cut = setTimeout(() => void killHard(server), randomInt(RUN_MS / 2, RUN_MS))
    const until = performance.now() + RUN_MS + 1000
    await Promise.all(Array.from({ length: IN_FLIGHT }, (_, loop) => writeLoop(server, token, loop, acked, until)))
    clearTimeout(cut)
  } finally {
    await killHard(server)
  }
  return acked
}

async function writeLoop(server: ServerProcess, token: string, loop: number, acked: Acked, until: number): Promise<void> {
  for (let i = 0; i < 5000 && performance.now() < until; i++) {
    try {
      if (loop === 0 && i % 4 === 0) {
        const res = await postJson(`${server.origin}/admin/v1/apps`, { name: `Cut app ${i}`, kind: 'public', environment: 'sandbox' }, { authorization: `Bearer ${adminToken}` })
        if (res.status === 201) acked.apps.push([res.json.client_id as string, process.hrtime.bigint()])
      } else {
        const res = await postJson(`${server.origin}/api/rest/v2/workorders`, { title: `Order ${loop}.${i}` }, bearer(token))
        if (res.status === 201) acked.orders.push([res.json.id as string, process.hrtime.bigint()])
      }
    } catch {
      return // the server is gone
    }
  }
}

// ---- the journal and the rebuild ----

type OpType = 'O' | 'W' | 'S' | 'D' | 'T' | 'U'
interface Op {
  type: OpType
  name: string
  /** O: 1 if it created the file; W: where; T: the new size. */
  offset: number
  length: number
  /** CLOCK_MONOTONIC ns when it was journalled (a W, T or U: just before it was made). */
  at: bigint
  data: Buffer | undefined
}

const HEAD = 29

/**
 * The journal's records, each R folded into the change before it. The SIGKILL may have cut the last
 * record short; its change had not started (records precede their calls), so it is dropped.
 */
function parseJournal(buf: Buffer): Op[] {
  const ops: Op[] = []
  for (let at = 0; at < buf.length; ) {
    if (at + HEAD > buf.length) break
    const type = String.fromCharCode(buf[at]!)
    const nameLength = buf.readUInt32LE(at + 1)
    const offset = Number(buf.readBigUInt64LE(at + 5))
    const length = Number(buf.readBigUInt64LE(at + 13))
    const time = buf.readBigUInt64LE(at + 21)
    const end = at + HEAD + nameLength + (type === 'W' ? length : 0)
    if (end > buf.length) break
    assert.ok(isOpType(type) || type === 'R', `journal record at ${at} has a known type, not ${JSON.stringify(type)}`)
    const name = buf.toString('utf8', at + HEAD, at + HEAD + nameLength)
    const data = type === 'W' ? buf.subarray(at + HEAD + nameLength, end) : undefined
    at = end
    if (isOpType(type)) ops.push({ type, name, offset, length, at: time, data })
    else foldResult(ops, name, offset)
  }
  return ops
}

const isOpType = (type: string): type is OpType => type.length === 1 && 'OWSDTU'.includes(type)

/** An R: the change before it did less than it announced (a short write) or nothing. */
function foldResult(ops: Op[], name: string, done: number): void {
  const last = ops.at(-1)
  assert.ok(last && last.name === name && 'WTU'.includes(last.type), `an R record follows the W, T or U of ${name}`)
  if (last.type === 'W' && done > 0) Object.assign(last, { length: done, data: last.data!.subarray(0, done) })
  else ops.pop()
}

/**
 * The journal against the files the killed server left. Every change is journalled before it is made,
 * so the last one may not have been made when the SIGKILL fell; either way is the journal whole.
 */
function checkJournal(run: Run, ops: Op[]): void {
  const left = filesOf(readDir(run.dataDir))
  const last = ops.at(-1)
  const inFlight = last !== undefined && 'WTU'.includes(last.type)
  if (inFlight && isDeepStrictEqual(filesOf(rebuild(run.startDir, ops.slice(0, -1), 'all')), left)) return
  assert.deepEqual(filesOf(rebuild(run.startDir, ops, 'all')), left, 'replaying the whole journal gives back the files the server left')
}

function journalFigures(ops: Op[]): { writes: number; bytes: number; syncs: number; pending: number } {
  const pending = new Map<string, number>()
  for (const op of ops) {
    if (op.type === 'W') pending.set(op.name, (pending.get(op.name) ?? 0) + 1)
    if (op.type === 'S') pending.set(op.name, 0)
  }
  const writes = ops.filter((o) => o.type === 'W')
  return {
    writes: writes.length,
    bytes: writes.reduce((n, o) => n + o.length, 0),
    syncs: ops.filter((o) => o.type === 'S' || o.type === 'D').length,
    pending: [...pending.values()].reduce((a, b) => a + b, 0),
  }
}

type Mode = 'all' | 'durable' | 'torn'

/** A file's bytes, changed in place (a rebuild applies thousands of writes to megabytes). */
class Bytes {
  private buf: Buffer
  private len: number
  constructor(start: Buffer) {
    this.buf = Buffer.from(start)
    this.len = start.length
  }

  apply(op: Op): void {
    const end = op.type === 'T' ? op.offset : op.offset + op.length
    if (end > this.buf.length) {
      const grown = Buffer.alloc(Math.max(end, this.buf.length * 2))
      this.buf.copy(grown, 0, 0, this.len)
      this.buf = grown
    }
    // Bytes past the old end read as zeros, after a truncate too.
    if (op.offset > this.len) this.buf.fill(0, this.len, op.offset)
    if (op.type === 'T') this.len = op.offset
    else if (op.type === 'W') {
      op.data!.copy(this.buf, op.offset)
      this.len = Math.max(this.len, end)
    }
  }

  copy(): Bytes {
    return new Bytes(this.view())
  }

  view(): Buffer {
    return this.buf.subarray(0, this.len)
  }
}

/** One file's inode: its durable bytes and what was done to it since its last sync. */
interface FileState {
  durable: Bytes
  pending: Op[]
}

type DirOp = { kind: 'create'; name: string; file: FileState } | { kind: 'unlink'; name: string }

/** The directory after the power cut: name → bytes. `all` replays everything (what the page cache held). */
function rebuild(startDir: string, ops: Op[], mode: Mode): Map<string, Buffer> {
  const current = new Map<string, FileState>() // what each name refers to while the server ran
  const entries = new Map<string, FileState>() // names a power cut keeps
  for (const [name, bytes] of readDir(startDir)) {
    const file = { durable: new Bytes(bytes), pending: [] }
    current.set(name, file)
    entries.set(name, file)
  }
  let dirPending: DirOp[] = []
  for (const op of ops) {
    if (op.type === 'O' && op.offset === 1) {
      const file = { durable: new Bytes(Buffer.alloc(0)), pending: [] }
      current.set(op.name, file)
      dirPending.push({ kind: 'create', name: op.name, file })
    } else if (op.type === 'U') {
      current.delete(op.name)
      dirPending.push({ kind: 'unlink', name: op.name })
    } else if (op.type === 'D') {
      for (const d of dirPending) applyDirOp(entries, d)
      dirPending = []
    } else if (op.type === 'W' || op.type === 'T') {
      current.get(op.name)?.pending.push(op)
    } else if (op.type === 'S') {
      const file = current.get(op.name)
      for (const o of file?.pending.splice(0) ?? []) file!.durable.apply(o)
    }
  }
  return cutAt(entries, dirPending, mode)
}

function cutAt(entries: Map<string, FileState>, dirPending: DirOp[], mode: Mode): Map<string, Buffer> {
  const keep = (p: number) => mode === 'all' || (mode === 'torn' && Math.random() < p)
  for (const d of dirPending) if (keep(0.5)) applyDirOp(entries, d)
  const out = new Map<string, Buffer>()
  for (const [name, file] of entries) {
    const pending = mode === 'all' ? file.pending : mode === 'torn' ? file.pending.filter(() => keep(0.5)).map(tear) : []
    const bytes = file.durable.copy()
    for (const o of pending) bytes.apply(o)
    out.set(name, bytes.view())
  }
  return out
}

function applyDirOp(entries: Map<string, FileState>, d: DirOp): void {
  if (d.kind === 'create') entries.set(d.name, d.file)
  else entries.delete(d.name)
}

/** A write that reached the disk only in part: its first few 512-byte sectors, counted from its start. */
function tear(op: Op): Op {
  if (op.type !== 'W' || op.length <= 512 || Math.random() < 0.7) return op
  const length = 512 * randomInt(1, Math.ceil(op.length / 512) - 1)
  return { ...op, length, data: op.data!.subarray(0, length) }
}

/** Regular files of a directory, but the -shm (see the top comment). */
function readDir(dir: string): Map<string, Buffer> {
  const files = new Map<string, Buffer>()
  for (const name of readdirSync(dir).sort()) {
    if (name.endsWith('-shm') || !statSync(join(dir, name)).isFile()) continue
    files.set(name, readFileSync(join(dir, name)))
  }
  return files
}

/** Name → length and SHA-256, for comparing directories without printing megabytes. */
const filesOf = (files: Map<string, Buffer>) => Object.fromEntries([...files].map(([n, b]) => [n, `${b.length} ${createHash('sha256').update(b).digest('hex')}`]))

function writeDir(dir: string, files: Map<string, Buffer>): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 })
  for (const [name, bytes] of files) writeFileSync(join(dir, name), bytes, { mode: 0o600 })
}

// ---- the checks ----

function checkStore(dir: string, acked: Acked, label: string): void {
  const db = new Sqlite(join(dir, 'fieldgate.db'))
  try {
    assert.deepEqual(db.pragma('integrity_check'), [{ integrity_check: 'ok' }], `${label}: integrity_check`)
    const orders = new Set((db.prepare(`SELECT id FROM records WHERE kind = 'work_order'`).all() as { id: string }[]).map((r) => r.id))
    assert.deepEqual(
      acked.orders.filter(([id]) => !orders.has(id)),
      [],
      `${label}: every acknowledged work order is stored`,
    )
    const apps = new Set((db.prepare('SELECT client_id FROM apps').all() as { client_id: string }[]).map((r) => r.client_id))
    assert.deepEqual(
      acked.apps.filter(([id]) => !apps.has(id)),
      [],
      `${label}: every acknowledged app is stored`,
    )
  } finally {
    db.close()
  }
}

async function servesAgain(dir: string, client: Run['client'], label: string): Promise<void> {
  const server = await spawnServe(await freePort(), { FIELDGATE_DATA_DIR: dir })
  try {
    assert.equal(await readyz(server.origin), 200, `${label}: /readyz`)
    const token = await getToken({ url: (p) => server.origin + p }, client)
    const list = await request(`${server.origin}/api/rest/v2/workorders?limit=1`, { headers: bearer(token) })
    assert.equal(list.status, 200, `${label}: the API serves`)
    const made = await postJson(`${server.origin}/api/rest/v2/workorders`, { title: 'After the cut' }, bearer(token))
    assert.equal(made.status, 201, `${label}: and takes writes`)
  } finally {
    await server.stop()
  }
}

/**
 * PostgreSQL restarted under load. A throwaway cluster (never the machine's shared one) serves a real
 * `fieldgate serve` child while lanes of valid requests run; the cluster is restarted once cleanly
 * (`-m fast`) and once as a crash (`-m immediate`). Clients may see 503 temporarily_unavailable with
 * Retry-After, never a 500 or a 4xx; every acknowledged write and revocation survives; the server
 * recovers by itself.
 */
import assert from 'node:assert/strict'
import { execFile, spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { chownSync, existsSync, readdirSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import pg from 'pg'
import { loadConfig } from '@fieldgate/core'
import { openRuntime, type Runtime } from '@fieldgate/server'
import {
  bearer,
  freePort,
  getToken,
  postJson,
  privateApp,
  request,
  silentLogger,
  spawnServe,
  tempDir,
  waitUntil,
  type PrivateFixture,
  type Res,
  type ServerProcess,
} from './helpers.js'

const WORKORDERS = '/api/rest/v2/workorders'
const ADMIN_TOKEN = randomBytes(24).toString('hex')
/** Bounds of the load: per lane, and overall. */
const MAX_OPS_PER_LANE = 5000
const LOAD_DEADLINE_MS = 60_000
/** The server must be back (readyz 200 and a write 201) this soon after PostgreSQL accepts connections. */
const RECOVERY_BOUND_MS = 5000

/** PostgreSQL's binaries: pg_config's bindir, else the newest /usr/lib/postgresql/<v>/bin. */
function pgBinDir(): string | undefined {
  const dirs: string[] = []
  const cfg = spawnSync('pg_config', ['--bindir'], { encoding: 'utf8' })
  if (cfg.status === 0) dirs.push(cfg.stdout.trim())
  try {
    const versions = readdirSync('/usr/lib/postgresql').sort((a, b) => Number(b) - Number(a))
    for (const v of versions) dirs.push(`/usr/lib/postgresql/${v}/bin`)
  } catch {
    /* no Debian layout */
  }
  return dirs.find((d) => existsSync(join(d, 'initdb')) && existsSync(join(d, 'pg_ctl')))
}

function skipReason(): string | false {
  if (process.getuid?.() !== 0) return 'needs root (initdb runs as the postgres user through runuser)'
  if (!pgBinDir()) return 'no PostgreSQL binaries (initdb, pg_ctl) found'
  if (spawnSync('id', ['-u', 'postgres']).status !== 0) return 'no postgres system user'
  if (spawnSync('runuser', ['--help'], { stdio: 'ignore' }).error) return 'no runuser to run initdb as postgres'
  return false
}

/** A PostgreSQL cluster of our own in a temp dir, on a loopback port, sockets in the same dir. */
class Cluster {
  readonly dir = tempDir('fg-pgrestart-')
  readonly data = join(this.dir, 'data')
  constructor(
    private readonly bin: string,
    readonly port: number,
  ) {}

  get url(): string {
    return `postgres://postgres@127.0.0.1:${this.port}/postgres`
  }

  async init(): Promise<void> {
    const uid = Number(spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).stdout.trim())
    const gid = Number(spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).stdout.trim())
    chownSync(this.dir, uid, gid)
    await this.run('initdb', ['-D', this.data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-instructions'])
    const opts = `-p ${this.port} -k ${this.dir} -c listen_addresses=127.0.0.1 -c max_connections=40 -c shared_buffers=16MB`
    await this.pgCtl(['start', '-o', opts])
  }

  /** `pg_ctl restart`, which waits until the cluster accepts connections again; resolves with its duration. */
  async restart(mode: 'fast' | 'immediate'): Promise<number> {
    const start = performance.now()
    await this.pgCtl(['restart', '-m', mode])
    return performance.now() - start
  }

  /** Stops the cluster if it runs; never throws (used in cleanup). */
  stopNow(): void {
    if (existsSync(join(this.data, 'postmaster.pid'))) {
      spawnSync('runuser', ['-u', 'postgres', '--', join(this.bin, 'pg_ctl'), '-D', this.data, 'stop', '-m', 'immediate', '-w', '-t', '30'], { stdio: 'ignore', timeout: 40_000 })
    }
    rmSync(this.dir, { recursive: true, force: true })
  }

  private pgCtl(args: string[]): Promise<void> {
    return this.run('pg_ctl', ['-D', this.data, '-l', join(this.dir, 'log'), '-w', '-t', '60', ...args])
  }

  private run(tool: string, args: string[]): Promise<void> {
    return new Promise((ok, fail) => {
      execFile('runuser', ['-u', 'postgres', '--', join(this.bin, tool), ...args], { timeout: 90_000 }, (err, _out, stderr) => {
        if (err) fail(new Error(`${tool} ${args.join(' ')} failed: ${err.message}\n${stderr}`))
        else ok()
      })
    })
  }
}

type Kind = 'token' | 'read' | 'write' | 'revoke'
interface Outcome {
  kind: Kind
  /** HTTP status, or 0 when no answer came (connection refused, reset, timeout). */
  status: number
  startedAt: number
  endedAt: number
  res: Res | undefined
  error: string | undefined
}

/** Runs one request, recording whatever happens to it. */
async function attempt(log: Outcome[], kind: Kind, send: () => Promise<Res>): Promise<Outcome> {
  const startedAt = performance.now()
  let out: Outcome
  try {
    const res = await send()
    out = { kind, status: res.status, startedAt, endedAt: performance.now(), res, error: undefined }
  } catch (err) {
    out = { kind, status: 0, startedAt, endedAt: performance.now(), res: undefined, error: String(err) }
  }
  log.push(out)
  return out
}

interface Victim {
  fixture: PrivateFixture
  token: string
}

describe('PostgreSQL restarted under load', { skip: skipReason() }, () => {
  let cluster: Cluster
  let server: ServerProcess
  let store: Runtime
  let dataDir: string
  // Stop the cluster even if the test process dies before its after hook.
  const onExit = () => cluster?.stopNow()

  before(async () => {
    process.once('exit', onExit)
    dataDir = tempDir('fg-pgrestart-data-')
    cluster = new Cluster(pgBinDir()!, await freePort())
    await cluster.init()
  })
  after(async () => {
    await server?.stop()
    await store?.close().catch(() => {})
    cluster?.stopNow()
    process.removeListener('exit', onExit)
    if (dataDir) rmSync(dataDir, { recursive: true, force: true })
  })

  it('answers only successes or 503 with Retry-After, keeps every acknowledged write and revocation, and recovers by itself', { timeout: 180_000 }, async (t) => {
    const masterKey = randomBytes(32).toString('hex')
    const port = await freePort()
    server = await spawnServe(port, {
      DATABASE_URL: cluster.url,
      FIELDGATE_LOG_LEVEL: 'error',
      FIELDGATE_MASTER_KEY: masterKey,
      FIELDGATE_DATA_DIR: dataDir,
      FIELDGATE_ADMIN_TOKEN: ADMIN_TOKEN,
      // The lanes send more than a real client would; limits would only add 429s unrelated to the store.
      FIELDGATE_RATE_LIMIT_PER_TOKEN: '0',
      FIELDGATE_RATE_LIMIT_PER_CLIENT: '0',
      FIELDGATE_RATE_LIMIT_TOKEN_PER_CLIENT: '0',
      FIELDGATE_RATE_LIMIT_TOKEN_PER_ADDRESS: '0',
    })
    const url = (p: string) => server.origin + p
    store = await openRuntime(loadConfig({}, { databaseUrl: cluster.url, masterKey, dataDir, logLevel: 'silent' }), silentLogger(), { prepare: false, follow: false })
    const loadApp = await privateApp(store.storage)
    const victims: Victim[] = []
    for (let i = 0; i < 60; i++) {
      const fixture = await privateApp(store.storage)
      victims.push({ fixture, token: await getToken({ url }, fixture) })
    }
    let token = await getToken({ url }, loadApp)

    const log: Outcome[] = []
    const written: string[] = []
    const revoked: Victim[] = []
    let stopping = false
    const deadline = performance.now() + LOAD_DEADLINE_MS
    const running = () => !stopping && performance.now() < deadline

    const kinds: Kind[] = ['read', 'write', 'read', 'token']
    const lane = async (offset: number) => {
      for (let n = 0; n < MAX_OPS_PER_LANE && running(); n++) {
        const kind = kinds[(n + offset) % kinds.length]!
        if (kind === 'token') {
          const o = await attempt(log, kind, () =>
            postJson(url('/oauth/token'), { grant_type: 'client_credentials', client_id: loadApp.clientId, client_secret: loadApp.clientSecret }),
          )
          if (o.status === 200) token = o.res!.json.access_token
        } else if (kind === 'read') {
          await attempt(log, kind, () => request(url(`${WORKORDERS}?limit=5`), { headers: bearer(token) }))
        } else {
          const o = await attempt(log, kind, () => postJson(url(WORKORDERS), { title: `load ${offset}.${n}` }, bearer(token)))
          if (o.status === 201) written.push(o.res!.json.id)
        }
      }
    }
    // Revocations are paced so they span both restarts; each victim is revoked at most once.
    const revoker = async () => {
      for (let n = 0; n < victims.length && running(); n++) {
        const v = victims[n]!
        const o = await attempt(log, 'revoke', () => postJson(url(`/admin/v1/grants/${v.fixture.grant.id}/revoke`), {}, bearer(ADMIN_TOKEN)))
        if (o.status === 200) revoked.push(v)
        await new Promise((r) => setTimeout(r, 150))
      }
    }

    const ready = async () => (await request(url('/readyz')).catch(() => undefined))?.status === 200
    const writeWorks = async () => (await postJson(url(WORKORDERS), { title: 'probe' }, bearer(token)).catch(() => undefined))?.status === 201
    const windows: { mode: string; from: number; dbBack: number; recovered: number; pgCtlMs: number }[] = []
    const restarts = (async () => {
      await new Promise((r) => setTimeout(r, 1000))
      for (const mode of ['fast', 'immediate'] as const) {
        const from = performance.now()
        const pgCtlMs = await cluster.restart(mode)
        const dbBack = performance.now()
        await waitUntil(async () => (await ready()) && (await writeWorks()), RECOVERY_BOUND_MS + 5000, 25)
        windows.push({ mode, from, dbBack, recovered: performance.now(), pgCtlMs })
        await new Promise((r) => setTimeout(r, 1000))
      }
      stopping = true
    })()
    const lanes = [0, 1, 2, 3].map(lane)
    await Promise.all([
      restarts.finally(() => {
        stopping = true
      }),
      ...lanes,
      revoker(),
    ])

    report(t, log, windows)
    for (const o of log) {
      assert.notEqual(o.status, 0, `${o.kind} got no answer at all: ${o.error}`)
      assert.ok(o.status < 500 || o.status === 503, `${o.kind} answered ${o.status}: ${o.res?.text}`)
      assert.ok(o.status < 400 || o.status >= 500, `${o.kind} blamed the client during a store restart: ${o.status} ${o.res?.text}`)
      if (o.status === 503) {
        assert.equal(o.res!.json?.error, 'temporarily_unavailable', o.res!.text)
        assert.ok(Number(o.res!.headers.get('retry-after')) >= 1, 'a 503 says when to retry')
      }
    }
    for (const w of windows) {
      const ms = w.recovered - w.dbBack
      assert.ok(ms < RECOVERY_BOUND_MS, `recovered ${Math.round(ms)} ms after PostgreSQL was back (${w.mode})`)
    }
    assert.ok(written.length > 0 && revoked.length > 0, 'the load acknowledged writes and revocations')

    // Every acknowledged write is stored.
    const client = new pg.Client({ connectionString: cluster.url })
    await client.connect()
    try {
      const found = await client.query<{ id: string }>(`SELECT id FROM records WHERE kind = 'work_order' AND id = ANY($1)`, [written])
      assert.equal(found.rowCount, written.length, 'every 201 write is in the store')
    } finally {
      await client.end()
    }
    // Every acknowledged revocation is stored, and its token is refused.
    for (const v of revoked) {
      assert.equal((await store.storage.getGrant(v.fixture.grant.id))?.status, 'revoked')
      const res = await request(url(WORKORDERS), { headers: bearer(v.token) })
      assert.equal(res.status, 401, `a revoked grant's token is refused (${res.status})`)
      assert.equal(res.json.error, 'invalid_token')
    }
    assert.equal(server.child.exitCode, null, 'the server never stopped')
    // An outage is logged as a warning; an error line would be a 500 or a crash in the making.
    const errors = server
      .output()
      .split('\n')
      .filter((l) => /"level":(50|60)/.test(l))
    assert.deepEqual(errors, [], 'nothing logged at error level')
  })
})

/** Statuses by kind for each restart window (from the restart command to recovery) and outside them. */
function report(t: { diagnostic(msg: string): void }, log: Outcome[], windows: { mode: string; from: number; dbBack: number; recovered: number; pgCtlMs: number }[]): void {
  for (const w of windows) {
    const inside = log.filter((o) => o.endedAt >= w.from && o.startedAt <= w.recovered)
    const failed = inside.filter((o) => o.status !== 200 && o.status !== 201)
    const outage = failed.length ? Math.max(...failed.map((o) => o.endedAt)) - Math.min(...failed.map((o) => o.startedAt)) : 0
    t.diagnostic(
      `restart -m ${w.mode}: pg_ctl ${Math.round(w.pgCtlMs)} ms; recovered ${Math.round(w.recovered - w.dbBack)} ms after PostgreSQL was back; ` +
        `clients saw failures for ${Math.round(outage)} ms; ${tally(inside)}`,
    )
  }
  t.diagnostic(`all ${log.length} requests: ${tally(log)}`)
}

function tally(log: Outcome[]): string {
  const counts = new Map<string, number>()
  for (const o of log) counts.set(`${o.kind} ${o.status}`, (counts.get(`${o.kind} ${o.status}`) ?? 0) + 1)
  return [...counts]
    .sort()
    .map(([k, v]) => `${k}: ${v}`)
    .join(', ')
}

import assert from 'node:assert/strict'
import { Socket, createServer, type Server } from 'node:net'
import { after, before, describe, it } from 'node:test'
import { cliActor, ConfigError, loadConfig, revokeGrant, type Config } from '@fieldgate/core'
import { spawnSync } from 'node:child_process'
import { existsSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import {
  RawConnection,
  bearer,
  databaseUrl,
  freePort,
  runCli,
  spawnServe,
  tempDir,
  getToken,
  postForm,
  postJson,
  privateApp,
  request,
  startServer,
  waitUntil,
  type PrivateFixture,
  type TestServer,
} from './helpers.js'

describe('probes, request ids and metrics', () => {
  let server: TestServer
  let f: PrivateFixture
  before(async () => {
    server = await startServer()
    f = await privateApp(server.storage)
  })
  after(() => server.close())

  it('answers /healthz and /readyz', async () => {
    const health = await request(server.url('/healthz'))
    assert.deepEqual(health.json, { status: 'ok' })
    const ready = await request(server.url('/readyz'))
    assert.equal(ready.status, 200)
    assert.deepEqual(ready.json, { status: 'ready', checks: { store: true, keys: true } })
  })

  it('puts a request id on every response, keeping a plain one the caller sent', async () => {
    const a = await request(server.url('/healthz'))
    const b = await request(server.url('/nope'))
    assert.match(a.headers.get('x-request-id')!, /^[0-9a-f-]{36}$/)
    assert.notEqual(a.headers.get('x-request-id'), b.headers.get('x-request-id'))
    assert.equal(b.status, 404)
    const mine = await request(server.url('/healthz'), { headers: { 'x-request-id': 'lb-1234.abc_9' } })
    assert.equal(mine.headers.get('x-request-id'), 'lb-1234.abc_9')
    const injected = await request(server.url('/healthz'), { headers: { 'x-request-id': 'a b\tc<script>' } })
    assert.match(injected.headers.get('x-request-id')!, /^[0-9a-f-]{36}$/)
  })

  it('exports Prometheus metrics by route, status, grant and dialect, without tokens', async () => {
    const token = await getToken(server, f)
    await postJson(server.url('/authentication/api/oauth/token'), { grant_type: 'client_credentials', client_id: f.clientId, client_secret: f.clientSecret, scope: 'api' })
    await request(server.url(`/api/rest/v2/workorders?access_token=${token}`))
    await postForm(server.url('/oauth/token'), { grant_type: 'client_credentials', client_id: f.clientId, client_secret: 'wrong' })
    const res = await request(server.url('/metrics'))
    assert.equal(res.status, 200)
    assert.match(res.headers.get('content-type')!, /^text\/plain/)
    const m = res.text
    assert.match(m, /fieldgate_tokens_issued_total\{grant_type="client_credentials",dialect="oauth"\} 1/)
    assert.match(m, /fieldgate_tokens_issued_total\{grant_type="client_credentials",dialect="fieldnation"\} 1/)
    assert.match(m, /fieldgate_http_requests_total\{method="POST",route="\/oauth\/token",status="401"\} 1/)
    assert.match(m, /fieldgate_http_requests_total\{method="GET",route="\/api\/rest\/v2\/workorders",status="200"\} 1/)
    assert.match(m, /fieldgate_http_request_duration_seconds_bucket\{le="0.05",method="POST",route="\/oauth\/token"\}/)
    assert.match(m, /fieldgate_webhook_backlog 0/)
    assert.match(m, /fieldgate_process_cpu_seconds_total/)
    assert.equal(m.includes(token), false)
    assert.equal(m.includes(f.clientSecret), false)
  })
})

describe('a request arriving while the process drains', () => {
  it('gets 503 temporarily_unavailable with Retry-After, a request id and Connection: close', async () => {
    const server = await startServer()
    const connection = await RawConnection.open(Number(new URL(server.origin).port))
    try {
      const closing = server.app.close()
      // A connection opened before the close, its request sent after: one a balancer had already picked.
      await connection.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n')
      const res = await connection.response()
      assert.equal(res.status, 503)
      assert.deepEqual(Object.keys(res.json as object).sort(), ['error', 'error_description'])
      assert.equal((res.json as { error: string }).error, 'temporarily_unavailable')
      assert.equal(res.headers['retry-after'], '1')
      assert.equal(res.headers.connection, 'close')
      assert.match(res.headers['x-request-id']!, /^[0-9a-f-]{36}$/)
      await closing
    } finally {
      connection.destroy()
      await server.close()
    }
  })
})

/**
 * A TCP hop to PostgreSQL that the test can cut and restore: a store outage without stopping the
 * database. Muted, it accepts connections and never answers, as a black-holed route does.
 */
class Cable {
  private server: Server | undefined
  private readonly sockets = new Set<Socket>()
  private muted = false
  constructor(
    readonly port: number,
    private readonly target: { host: string; port: number },
  ) {}

  async plug(): Promise<void> {
    this.server = createServer((client) => {
      if (this.muted) {
        this.sockets.add(client.on('error', () => client.destroy()).on('close', () => this.sockets.delete(client)))
        return
      }
      const upstream = new Socket()
      upstream.connect(this.target.port, this.target.host)
      for (const s of [client, upstream]) {
        this.sockets.add(s)
        s.on('close', () => this.sockets.delete(s))
        s.on('error', () => s.destroy())
      }
      client.pipe(upstream).pipe(client)
    })
    await new Promise<void>((ok) => this.server!.listen(this.port, '127.0.0.1', ok))
  }

  /** Drops every open connection; new ones are accepted and left unanswered. */
  mute(): void {
    this.muted = true
    for (const s of this.sockets) s.destroy()
  }

  async cut(): Promise<void> {
    for (const s of this.sockets) s.destroy()
    await new Promise<void>((ok) => (this.server ? this.server.close(() => ok()) : ok()))
    this.server = undefined
  }
}

/** A server on PostgreSQL through a Cable, plugged in. */
async function behindCable(): Promise<{ cable: Cable; server: TestServer }> {
  const target = new URL(databaseUrl!)
  const cable = new Cable(await freePort(), { host: target.hostname, port: Number(target.port || 5432) })
  await cable.plug()
  const viaCable = new URL(databaseUrl!)
  viaCable.host = `127.0.0.1:${cable.port}`
  return { cable, server: await startServer({ engine: 'postgres', overrides: { databaseUrl: viaCable.href } }) }
}

describe('a store outage', { skip: databaseUrl ? false : 'DATABASE_URL is not set' }, () => {
  it('answers 503 temporarily_unavailable with Retry-After, stores no revocation, and recovers without a restart', { timeout: 60_000 }, async () => {
    const { cable, server } = await behindCable()
    try {
      const f = await privateApp(server.storage)
      const token = await getToken(server, f)
      assert.equal((await request(server.url('/api/rest/v2/workorders'), { headers: bearer(token) })).status, 200)

      await cable.cut()
      const created = await postJson(server.url('/api/rest/v2/workorders'), { title: 'during the outage' }, bearer(token))
      assert.equal(created.status, 503, created.text)
      assert.equal(created.json.error, 'temporarily_unavailable')
      assert.equal(created.headers.get('retry-after'), '1')
      const ready = await request(server.url('/readyz'))
      assert.equal(ready.status, 503)
      assert.equal(ready.json.checks.store, false)
      await assert.rejects(revokeGrant(server.runtime.ctx, cliActor, { grantId: f.grant.id }), 'a revocation that cannot be stored is an error, not a success')
      const fresh = await postJson(server.url('/oauth/token'), { grant_type: 'client_credentials', client_id: f.clientId, client_secret: `${f.clientSecret}` })
      assert.ok(fresh.status === 200 || fresh.status === 503, `cached clients may still get tokens; never a 4xx: ${fresh.status}`)

      await cable.plug()
      await waitUntil(async () => (await request(server.url('/readyz'))).status === 200, 10_000, 100)
      const after = await postJson(server.url('/api/rest/v2/workorders'), { title: 'after the outage' }, bearer(token))
      assert.equal(after.status, 201, after.text)
      assert.equal((await server.storage.getGrant(f.grant.id))?.status, 'active', 'the failed revocation stored nothing')
    } finally {
      await server.close()
      await cable.cut()
    }
  })
})

describe('a store that accepts connections and never answers', { skip: databaseUrl ? false : 'DATABASE_URL is not set' }, () => {
  it('answers 503 within the connect timeout instead of holding the request', { timeout: 60_000 }, async () => {
    const { cable, server } = await behindCable()
    try {
      const f = await privateApp(server.storage)
      const token = await getToken(server, f)
      cable.mute()
      const started = performance.now()
      const created = await postJson(server.url('/api/rest/v2/workorders'), { title: 'into the void' }, bearer(token))
      const ms = performance.now() - started
      assert.equal(created.status, 503, created.text)
      assert.equal(created.json.error, 'temporarily_unavailable')
      assert.ok(ms < 8000, `answered after ${Math.round(ms)} ms`)
    } finally {
      await cable.cut()
      await server.close()
    }
  })
})

describe('fieldgate backup and restore (SQLite)', () => {
  it('backs up a live store and restores it, refusing files that are not a Fieldgate store', { timeout: 60_000 }, async () => {
    const dataDir = tempDir('fg-backup-')
    const env = { FIELDGATE_DATA_DIR: dataDir }
    const kept = await runCli(['tenants', 'create', '--name', 'Kept', '--environment', 'sandbox', '--json'], env)
    const file = join(tempDir('fg-backup-out-'), 'fieldgate-backup.db')
    const backup = await runCli(['backup', file, '--json'], env)
    assert.equal(backup.code, 0, backup.stderr)
    assert.ok(backup.json.pages > 0)
    assert.ok(existsSync(file))
    assert.equal((await runCli(['backup', file], env)).code, 1, 'never overwrites')
    await runCli(['tenants', 'create', '--name', 'Later', '--environment', 'sandbox', '--json'], env)

    const restored = await runCli(['restore', file, '--json'], env)
    assert.equal(restored.code, 0, restored.stderr)
    const names = (await runCli(['tenants', 'list', '--json'], env)).json.map((t: { name: string }) => t.name)
    assert.deepEqual(names, ['Kept'])
    assert.equal((await runCli(['tenants', 'list', '--json'], env)).json[0].id, kept.json.id)

    const junk = join(dataDir, 'junk.db')
    writeFileSync(junk, 'not a database')
    const refused = await runCli(['restore', junk], env)
    assert.equal(refused.code, 1)
    assert.match(refused.stderr, /cannot restore/)
    assert.deepEqual(
      (await runCli(['tenants', 'list', '--json'], env)).json.map((t: { name: string }) => t.name),
      ['Kept'],
      'the store is untouched',
    )
  })
})

describe('where /metrics is served (FIELDGATE_METRICS_LISTEN, FIELDGATE_METRICS_TOKEN)', () => {
  const metricsToken = 'm'.repeat(16) + Math.random().toString(36).slice(2).padEnd(16, 'x')
  const servers: TestServer[] = []
  after(async () => {
    for (const s of servers) await s.close()
  })
  const start = async (metrics: Config['metrics'], issuer?: string) => {
    const s = await startServer({ overrides: { metrics, ...(issuer ? { issuer } : {}) } })
    servers.push(s)
    return s
  }

  it('with an https issuer and nothing set, the public port answers 404, as for any unknown path', async () => {
    const s = await start({ listen: undefined, token: undefined }, 'https://auth.example')
    const res = await request(s.url('/metrics'))
    assert.equal(res.status, 404)
    assert.equal(res.json?.error, 'not_found')
    assert.doesNotMatch(res.text, /fieldgate_/)
  })

  it('with a token, the public port asks for it (Bearer, RFC 6750) and serves the metrics with it', async () => {
    const s = await start({ listen: undefined, token: metricsToken }, 'https://auth.example')
    const none = await request(s.url('/metrics'))
    assert.equal(none.status, 401)
    assert.match(none.headers.get('www-authenticate')!, /^Bearer /)
    const wrong = await request(s.url('/metrics'), { headers: bearer(`${metricsToken}x`) })
    assert.equal(wrong.status, 401)
    assert.equal(wrong.json?.error, 'invalid_token')
    assert.equal((await request(s.url('/metrics'), { headers: { authorization: `Basic ${metricsToken}` } })).status, 401)
    const ok = await request(s.url('/metrics'), { headers: bearer(metricsToken) })
    assert.equal(ok.status, 200)
    assert.match(ok.text, /fieldgate_http_requests_total/)
  })

  it('with a listener of its own, metrics are there and not on the public port; a token guards both', async () => {
    const port = await freePort()
    const s = await start({ listen: { host: '127.0.0.1', port }, token: undefined })
    assert.equal((await request(s.url('/metrics'))).status, 404, 'not on the public port, even with an http issuer')
    const res = await request(`http://127.0.0.1:${port}/metrics`)
    assert.equal(res.status, 200)
    assert.match(res.headers.get('content-type')!, /^text\/plain/)
    assert.match(res.text, /fieldgate_http_requests_total\{method="GET",route="unmatched",status="404"\} 1/, 'the public 404 counted as any unknown path')
    assert.equal((await request(`http://127.0.0.1:${port}/oauth/token`)).status, 404, 'the listener serves nothing else')

    const guardedPort = await freePort()
    const g = await start({ listen: { host: '127.0.0.1', port: guardedPort }, token: metricsToken })
    assert.equal((await request(`http://127.0.0.1:${guardedPort}/metrics`)).status, 401)
    assert.equal((await request(`http://127.0.0.1:${guardedPort}/metrics`, { headers: bearer(metricsToken) })).status, 200)
    assert.equal((await request(g.url('/metrics'), { headers: bearer(metricsToken) })).status, 200)
    await g.close()
    await assert.rejects(request(`http://127.0.0.1:${guardedPort}/metrics`), 'the listener closes with the app')
  })

  it('fieldgate serve opens the listener from FIELDGATE_METRICS_LISTEN', async () => {
    const dataDir = tempDir('fg-metrics-')
    const [port, metricsPort] = [await freePort(), await freePort()]
    const proc = await spawnServe(port, { FIELDGATE_DATA_DIR: dataDir, FIELDGATE_METRICS_LISTEN: `127.0.0.1:${metricsPort}` })
    try {
      assert.equal((await request(`${proc.origin}/metrics`)).status, 404)
      assert.match((await request(`http://127.0.0.1:${metricsPort}/metrics`)).text, /fieldgate_process_cpu_seconds_total/)
    } finally {
      await proc.stop()
      rmSync(dataDir, { recursive: true, force: true })
    }
  })

  it('settings: parsed once, and bad values are clear startup errors', () => {
    assert.deepEqual(loadConfig({}).metrics, { listen: undefined, token: undefined })
    assert.deepEqual(loadConfig({ FIELDGATE_METRICS_LISTEN: '10.0.0.5:9100' }).metrics.listen, { host: '10.0.0.5', port: 9100 })
    assert.deepEqual(loadConfig({ FIELDGATE_METRICS_LISTEN: '[::1]:9100' }).metrics.listen, { host: '::1', port: 9100 })
    assert.equal(loadConfig({ FIELDGATE_METRICS_TOKEN: metricsToken }).metrics.token, metricsToken)
    assert.ok(Object.isFrozen(loadConfig({ FIELDGATE_METRICS_LISTEN: '127.0.0.1:9100' }).metrics.listen))
    for (const bad of ['9100', '127.0.0.1', '127.0.0.1:0', '127.0.0.1:70000', 'metrics.internal:9100', '::1:9100', 'http://127.0.0.1:9100']) {
      assert.throws(
        () => loadConfig({ FIELDGATE_METRICS_LISTEN: bad }),
        (e: unknown) => e instanceof ConfigError && /FIELDGATE_METRICS_LISTEN/.test(e.message),
        bad,
      )
    }
    assert.throws(
      () => loadConfig({ FIELDGATE_METRICS_TOKEN: 'short' }),
      (e: unknown) => e instanceof ConfigError && /FIELDGATE_METRICS_TOKEN/.test(e.message),
    )
  })
})

describe('fieldgate restore while a server runs (SQLite)', () => {
  it('refuses with a clear message and changes nothing; after the server stops it restores; a stale lock does not block it', { timeout: 60_000 }, async () => {
    const dataDir = tempDir('fg-restore-lock-')
    const env = { FIELDGATE_DATA_DIR: dataDir }
    const names = async () => (await runCli(['tenants', 'list', '--json'], env)).json.map((t: { name: string }) => t.name).sort()
    await runCli(['tenants', 'create', '--name', 'Kept', '--environment', 'sandbox', '--json'], env)
    const file = join(tempDir('fg-restore-lock-out-'), 'backup.db')
    assert.equal((await runCli(['backup', file], env)).code, 0)
    const server = await spawnServe(await freePort(), env)
    try {
      await runCli(['tenants', 'create', '--name', 'Later', '--environment', 'sandbox', '--json'], env)
      const refused = await runCli(['restore', file], env)
      assert.equal(refused.code, 1, refused.stdout)
      assert.match(refused.stderr, new RegExp(`a server \\(pid ${server.child.pid}\\) is using ${dataDir}: stop it first`))
      assert.deepEqual(await names(), ['Kept', 'Later'], 'the store is untouched')
    } finally {
      await server.stop()
    }
    assert.deepEqual(
      readdirSync(dataDir).filter((n) => n.endsWith('.lock')),
      [],
      'the server released its lock on shutdown',
    )
    // A server killed with SIGKILL leaves its lock behind; its pid no longer runs, so the lock is stale.
    const dead = spawnSync(process.execPath, ['-e', '']).pid
    writeFileSync(join(dataDir, `serve-${dead}.lock`), `${dead}\n`)
    const restored = await runCli(['restore', file, '--json'], env)
    assert.equal(restored.code, 0, restored.stderr)
    assert.deepEqual(await names(), ['Kept'])
    assert.deepEqual(
      readdirSync(dataDir).filter((n) => n.endsWith('.lock')),
      [],
    )
  })

  it('a server does not start while a restore runs in its data directory', { timeout: 30_000 }, async () => {
    const dataDir = tempDir('fg-restore-running-')
    // This test process stands in for a running restore: its pid is alive.
    writeFileSync(join(dataDir, 'restore.lock'), `${process.pid}\n`)
    await assert.rejects(spawnServe(await freePort(), { FIELDGATE_DATA_DIR: dataDir }), /a restore \(pid \d+\) is replacing the store/)
    assert.deepEqual(
      readdirSync(dataDir).filter((n) => n.startsWith('serve-')),
      [],
      'the refused server left no lock',
    )
  })
})

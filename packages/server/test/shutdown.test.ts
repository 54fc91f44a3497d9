/**
 * Graceful shutdown of a real `fieldgate serve` child: SIGTERM drains the requests in flight, refuses
 * new connections, does not wait on idle keep-alive connections, cuts stuck ones at the deadline, and
 * exits 0; with `--workers 2` the primary forwards the signal and exits once every worker has drained.
 */
import assert from 'node:assert/strict'
import type { ChildProcess } from 'node:child_process'
import { rmSync } from 'node:fs'
import { after, describe, it } from 'node:test'
import { resourceKinds } from '@fieldgate/core'
import {
  RawConnection,
  freePort,
  getToken,
  openStore,
  privateApp,
  sleep,
  spawnServe,
  tempDir,
  waitUntil,
  type PrivateFixture,
  type RawResponse,
  type ServerProcess,
} from './helpers.js'

const WORKORDERS = '/api/rest/v2/workorders'

async function seed(dataDir: string): Promise<PrivateFixture> {
  const rt = await openStore(dataDir)
  try {
    return await privateApp(rt.storage)
  } finally {
    await rt.close()
  }
}

/** Titles of the tenant's stored work orders, read after the server is gone. */
async function storedTitles(dataDir: string, tenantId: string): Promise<string[]> {
  const rt = await openStore(dataDir)
  try {
    return (await rt.storage.listRecords(tenantId, resourceKinds.workOrder.kind, { limit: 100 })).map((w) => String(w.data.title))
  } finally {
    await rt.close()
  }
}

interface Exit {
  code: number | null
  signal: NodeJS.Signals | null
  at: number
}
const exitOf = (child: ChildProcess): Promise<Exit> => new Promise((ok) => child.once('exit', (code, signal) => ok({ code, signal, at: performance.now() })))

/** A work order POSTed on its own connection, its JSON body trickled in pieces over `overMs`. */
async function slowCreate(port: number, token: string, title: string, overMs: number): Promise<RawResponse> {
  const c = await RawConnection.open(port)
  return c.send('POST', WORKORDERS, {
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ title }),
    pieces: 8,
    overMs,
  })
}

/** A client-credentials token request on its own connection, body trickled over `overMs`. */
async function slowToken(port: number, f: PrivateFixture, overMs: number): Promise<RawResponse> {
  const c = await RawConnection.open(port)
  const body = JSON.stringify({ grant_type: 'client_credentials', client_id: f.clientId, client_secret: f.clientSecret })
  return c.send('POST', '/oauth/token', { headers: { 'content-type': 'application/json' }, body, pieces: 5, overMs })
}

/** Every response, waiting for all first so that one failure does not leave the others trickling past the test. */
async function answers(pending: Promise<RawResponse>[]): Promise<RawResponse[]> {
  const settled = await Promise.allSettled(pending)
  return settled.map((r, i) => {
    if (r.status === 'rejected') throw new Error(`request ${i} got no answer: ${String(r.reason)}`)
    return r.value
  })
}

/** Resolves with the ms until a fresh connection to `port` is refused (bounded). */
const refusedWithin = (port: number, withinMs: number) =>
  waitUntil(
    async () => {
      try {
        ;(await RawConnection.open(port)).destroy()
        return false
      } catch (err) {
        return (err as NodeJS.ErrnoException).code === 'ECONNREFUSED'
      }
    },
    withinMs,
    10,
  )

/** Pids of the processes that logged `msg` (JSON lines at info level; pino puts the pid on each). */
const pidsThatLogged = (output: string, msg: string): number[] =>
  output
    .split('\n')
    .filter((l) => l.includes(`"msg":"${msg}"`))
    .map((l) => JSON.parse(l).pid as number)
const listeningPids = (output: string) => pidsThatLogged(output, 'fieldgate listening')

const alive = (pid: number) => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

describe('graceful shutdown', () => {
  const children: ServerProcess[] = []
  const dirs: string[] = []
  after(async () => {
    await Promise.all(children.map((c) => c.stop()))
    for (const d of dirs) rmSync(d, { recursive: true, force: true })
  })

  async function start(env: Record<string, string> = {}, args: string[] = []) {
    const dataDir = tempDir('fg-shutdown-')
    dirs.push(dataDir)
    const f = await seed(dataDir)
    const port = await freePort()
    const server = await spawnServe(port, { FIELDGATE_DATA_DIR: dataDir, FIELDGATE_LOG_LEVEL: 'info', ...env }, args)
    children.push(server)
    const exit = exitOf(server.child)
    const token = await getToken({ url: (p) => server.origin + p }, f)
    return { dataDir, f, port, server, exit, token }
  }

  it('on SIGTERM answers the requests in flight, refuses new connections, drops idle keep-alive ones and exits 0', { timeout: 60_000 }, async (t) => {
    const { dataDir, f, port, server, exit, token } = await start()
    const idle = await RawConnection.open(port)
    assert.equal((await idle.send('GET', '/healthz')).status, 200, 'a kept-alive connection, now idle')
    const creates = [500, 1000, 1500].map((ms, i) => slowCreate(port, token, `in flight ${i}`, ms))
    const tokens = [300, 600, 900].map((ms) => slowToken(port, f, ms))
    await sleep(200) // every request's head has arrived; bodies are still trickling

    const signalledAt = performance.now()
    process.kill(server.child.pid!, 'SIGTERM')
    await sleep(100)
    process.kill(server.child.pid!, 'SIGTERM') // a second signal must not cut the drain short

    const refusedMs = await refusedWithin(port, 1000)
    const idleClosedMs = (await idle.closed) - signalledAt
    const created = await answers(creates)
    const issued = await answers(tokens)
    const drainedMs = performance.now() - signalledAt
    const { code, signal, at } = await exit
    const exitMs = at - signalledAt
    t.diagnostic(
      `new connections refused ${Math.round(refusedMs)} ms after SIGTERM; idle keep-alive closed after ${Math.round(idleClosedMs)} ms; ` +
        `in-flight requests answered within ${Math.round(drainedMs)} ms; exited ${code} after ${Math.round(exitMs)} ms`,
    )

    for (const [i, res] of created.entries()) {
      assert.equal(res.status, 201, res.body)
      assert.equal(res.json.title, `in flight ${i}`)
    }
    for (const res of issued) {
      assert.equal(res.status, 200, res.body)
      assert.equal(typeof res.json.access_token, 'string')
    }
    assert.ok(idleClosedMs < 1000, `the idle connection was closed ${Math.round(idleClosedMs)} ms after SIGTERM`)
    assert.equal(code, 0, server.output())
    assert.equal(signal, null)
    // The slowest body takes 1.5 s; nothing else (the idle connection, the store) may add much to it.
    assert.ok(exitMs < 3000, `exited ${Math.round(exitMs)} ms after SIGTERM`)
    assert.match(server.output(), /already shutting down/)
    assert.deepEqual((await storedTitles(dataDir, f.tenant.id)).sort(), ['in flight 0', 'in flight 1', 'in flight 2'])
  })

  it('cuts a stuck connection at FIELDGATE_SHUTDOWN_TIMEOUT_MS and still exits 0', { timeout: 60_000 }, async (t) => {
    const timeoutMs = 1000
    const { port, server, exit, token } = await start({ FIELDGATE_SHUTDOWN_TIMEOUT_MS: String(timeoutMs) })
    // Announces 100 bytes of body and sends 10: the server waits for the rest, forever without a deadline.
    const stuck = await RawConnection.open(port)
    await stuck.write(`POST ${WORKORDERS} HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: Bearer ${token}\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{"title":`)
    const normal = slowCreate(port, token, 'beside the stuck one', 300)
    await sleep(150)
    const signalledAt = performance.now()
    process.kill(server.child.pid!, 'SIGTERM')
    assert.equal((await normal).status, 201, 'a request in flight beside the stuck one is answered')
    const cutMs = (await stuck.closed) - signalledAt
    const { code, at } = await exit
    const exitMs = at - signalledAt
    t.diagnostic(`stuck connection cut ${Math.round(cutMs)} ms after SIGTERM; exited ${code} after ${Math.round(exitMs)} ms (deadline ${timeoutMs} ms)`)
    assert.ok(cutMs >= timeoutMs - 50, `the stuck connection was given its ${timeoutMs} ms (cut after ${Math.round(cutMs)} ms)`)
    assert.ok(exitMs < timeoutMs + 1500, `exited ${Math.round(exitMs)} ms after SIGTERM`)
    assert.equal(code, 0, server.output())
    assert.match(server.output(), /shutdown deadline passed/)
  })

  const signalWays = [
    { name: 'SIGTERM to the primary, which passes it on', signal: 'SIGTERM', group: false },
    // Ctrl-C in a terminal, or systemd's KillMode=control-group: every worker hears it twice.
    { name: 'SIGINT to the whole process group', signal: 'SIGINT', group: true },
  ] as const
  for (const way of signalWays)
    it(`serve --workers 2, ${way.name}: every worker drains and the primary exits 0`, { timeout: 60_000 }, async (t) => {
      const { dataDir, f, port, server, exit, token } = await start({}, ['--workers', '2'])
      await waitUntil(async () => listeningPids(server.output()).length === 2, 10_000)
      const workers = listeningPids(server.output())
      // Connections are dealt round-robin, so four slow ones keep both workers busy.
      const creates = [800, 1000, 1200, 1400].map((ms, i) => slowCreate(port, token, `worker load ${i}`, ms))
      await sleep(200)

      const signalledAt = performance.now()
      process.kill(way.group ? -server.child.pid! : server.child.pid!, way.signal)
      const refusedMs = await refusedWithin(port, 2000)
      const created = await answers(creates)
      const { code, signal, at } = await exit
      const exitMs = at - signalledAt
      t.diagnostic(`workers ${workers.join(', ')}; new connections refused after ${Math.round(refusedMs)} ms; primary exited ${code} after ${Math.round(exitMs)} ms`)

      for (const [i, res] of created.entries()) {
        assert.equal(res.status, 201, res.body)
        assert.equal(res.json.title, `worker load ${i}`)
      }
      assert.equal(code, 0, server.output())
      assert.equal(signal, null)
      assert.ok(exitMs < 4000, `the primary exited ${Math.round(exitMs)} ms after ${way.signal}`)
      const out = server.output()
      assert.doesNotMatch(out, /worker died; starting another/, 'no worker was restarted')
      assert.deepEqual(pidsThatLogged(out, 'stopped').sort(), [...workers].sort(), 'every worker drained and said so')
      for (const pid of workers) assert.equal(alive(pid), false, `worker ${pid} is gone`)
      assert.equal(listeningPids(out).length, 2, 'no worker was started again')
      assert.deepEqual((await storedTitles(dataDir, f.tenant.id)).sort(), ['worker load 0', 'worker load 1', 'worker load 2', 'worker load 3'])
    })
})

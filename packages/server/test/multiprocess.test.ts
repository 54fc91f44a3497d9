import assert from 'node:assert/strict'
import { rmSync } from 'node:fs'
import { after, describe, it } from 'node:test'
import { bearer, freePort, getToken, openStore, privateApp, request, runCli, spawnServe, tempDir, waitUntil, type PrivateFixture, type ServerProcess } from './helpers.js'

const WORKORDERS = '/api/rest/v2/workorders'

/** A tenant and a private app in a fresh data dir, made through the core admin functions, then closed. */
async function seed(dataDir: string, count = 1): Promise<PrivateFixture[]> {
  const rt = await openStore(dataDir)
  try {
    const out: PrivateFixture[] = []
    for (let i = 0; i < count; i++) out.push(await privateApp(rt.storage))
    return out
  } finally {
    await rt.close()
  }
}

const status = async (origin: string, token: string) => (await request(`${origin}${WORKORDERS}`, { headers: bearer(token) })).status

describe('several server processes on one store', () => {
  const children: ServerProcess[] = []
  const dirs: string[] = []
  after(async () => {
    await Promise.all(children.map((c) => c.stop()))
    for (const d of dirs) rmSync(d, { recursive: true, force: true })
  })

  it('a grant revoked with the CLI stops its token on every process within 1 s', { timeout: 60_000 }, async (t) => {
    const dataDir = tempDir('fg-mp-')
    dirs.push(dataDir)
    const [f] = await seed(dataDir)
    const [portA, portB] = [await freePort(), await freePort()]
    const issuer = `http://127.0.0.1:${portA}`
    const env = { FIELDGATE_DATA_DIR: dataDir, FIELDGATE_ISSUER: issuer }
    const a = await spawnServe(portA, env)
    children.push(a)
    const b = await spawnServe(portB, env)
    children.push(b)

    // Both processes publish the same issuer, whichever origin they listen on.
    for (const p of [a, b]) {
      const meta = await request(`${p.origin}/.well-known/oauth-authorization-server`)
      assert.equal(meta.json.issuer, issuer)
    }
    const token = await getToken({ url: (path) => a.origin + path }, f!)
    const fromB = await getToken({ url: (path) => b.origin + path }, f!)
    for (const t of [token, fromB]) {
      assert.equal(await status(a.origin, t), 200, 'accepted by the process that issued it or its peer')
      assert.equal(await status(b.origin, t), 200)
    }

    const cli = await runCli(['grants', 'revoke', f!.grant.id, '--json'], { FIELDGATE_DATA_DIR: dataDir })
    assert.equal(cli.code, 0, cli.stderr)
    assert.equal(cli.json.id, f!.grant.id)
    assert.equal(cli.json.status, 'revoked')

    const stopped = async (origin: string) => {
      await waitUntil(async () => (await status(origin, token)) === 401, 2000, 50)
      return performance.now() - cli.exitedAt
    }
    const [elapsedA, elapsedB] = await Promise.all([stopped(a.origin), stopped(b.origin)])
    t.diagnostic(`refused ${Math.round(elapsedA)} ms (A) and ${Math.round(elapsedB)} ms (B) after the CLI exited`)
    assert.ok(elapsedA < 1000, `process A refused the token ${Math.round(elapsedA)} ms after the CLI exited`)
    assert.ok(elapsedB < 1000, `process B refused the token ${Math.round(elapsedB)} ms after the CLI exited`)
    for (const p of [a, b]) {
      const res = await request(`${p.origin}${WORKORDERS}?access_token=${fromB}`)
      assert.equal(res.status, 401)
      assert.equal(res.json.error, 'invalid_token')
    }
  })

  it('two processes started at the same moment on an empty data dir both serve', {
    timeout: 60_000,
  }, async () => {
    const dataDir = tempDir('fg-mp-race-')
    dirs.push(dataDir)
    const [portA, portB] = [await freePort(), await freePort()]
    const env = { FIELDGATE_DATA_DIR: dataDir, FIELDGATE_ISSUER: `http://127.0.0.1:${portA}` }
    const started = await Promise.allSettled([spawnServe(portA, env), spawnServe(portB, env)])
    for (const s of started) if (s.status === 'fulfilled') children.push(s.value)
    for (const s of started) if (s.status === 'rejected') throw s.reason
    const [a, b] = started.map((s) => (s as PromiseFulfilledResult<ServerProcess>).value)
    const [f] = await seed(dataDir)
    // Each process signs with its newest active key; a token from either must be accepted by both.
    const fromA = await getToken({ url: (path) => a!.origin + path }, f!)
    const fromB = await getToken({ url: (path) => b!.origin + path }, f!)
    await waitUntil(async () => (await status(a!.origin, fromB)) === 200 && (await status(b!.origin, fromA)) === 200, 1000)
    const jwksA = await request(`${a!.origin}/.well-known/jwks.json`)
    const jwksB = await request(`${b!.origin}/.well-known/jwks.json`)
    assert.deepEqual(jwksA.json, jwksB.json, 'both processes publish the same keys')
    // One of them created the keys; the other found them: one active and one next, not two of each.
    assert.equal(jwksA.json.keys.length, 2)
  })

  it('serve --workers 2 starts, serves tokens, and revocation reaches every worker', { timeout: 60_000 }, async (t) => {
    const dataDir = tempDir('fg-workers-')
    dirs.push(dataDir)
    const [f] = await seed(dataDir)
    const port = await freePort()
    const server = await spawnServe(port, { FIELDGATE_DATA_DIR: dataDir }, ['--workers', '2'])
    children.push(server)
    const meta = await request(`${server.origin}/.well-known/oauth-authorization-server`)
    assert.equal(meta.json.issuer, server.origin, 'the issuer defaults to the listening origin')
    const tokens: string[] = []
    for (let i = 0; i < 6; i++) tokens.push(await getToken({ url: (path) => server.origin + path }, f!))
    assert.equal(new Set(tokens).size, 6)
    // Requests are spread over the workers; every token works on whichever answers.
    for (const t of tokens) for (let i = 0; i < 2; i++) assert.equal(await status(server.origin, t), 200)

    const cli = await runCli(['grants', 'revoke', f!.grant.id, '--json'], { FIELDGATE_DATA_DIR: dataDir })
    assert.equal(cli.code, 0, cli.stderr)
    // Requests are spread over both workers: poll until a burst of them is refused everywhere.
    await waitUntil(
      async () => {
        const burst = await Promise.all(tokens.flatMap((t) => [status(server.origin, t), status(server.origin, t)]))
        return burst.every((s) => s === 401)
      },
      2000,
      50,
    )
    const elapsed = performance.now() - cli.exitedAt
    t.diagnostic(`every worker refused ${Math.round(elapsed)} ms after the CLI exited`)
    assert.ok(elapsed < 1000, `every worker refused the tokens ${Math.round(elapsed)} ms after the CLI exited`)
  })
})

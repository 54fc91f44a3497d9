import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { createServer, request as httpRequest, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { after, describe, it } from 'node:test'
import { cliActor, ConfigError, createTenant, createUser, loadConfig, type Config, type ConfigOverrides } from '@fieldgate/core'
import { send, signInFrom } from './from-address.js'
import { startServer, type TestServer } from './helpers.js'
import { Person } from './person.js'

/**
 * FIELDGATE_TRUST_PROXY, through a real reverse proxy on loopback: clients reach the proxy from
 * 127.0.0.2 and 127.0.0.3, the proxy reaches Fieldgate from 127.0.0.1 and appends the client's
 * address to X-Forwarded-For, as a load balancer does. Direct requests come from 127.0.0.5.
 */

/** A reverse proxy to `upstream` that appends the peer's address to X-Forwarded-For, from 127.0.0.1. */
async function reverseProxy(upstream: string): Promise<{ origin: string; close(): Promise<void> }> {
  const server: Server = createServer((req, res) => {
    const forwarded = req.headers['x-forwarded-for']
    const peer = req.socket.remoteAddress ?? ''
    const headers = { ...req.headers, 'x-forwarded-for': forwarded ? `${String(forwarded)}, ${peer}` : peer }
    const out = httpRequest(upstream + (req.url ?? '/'), { method: req.method, headers, localAddress: '127.0.0.1' }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers)
      answer.pipe(res)
    })
    out.on('error', () => {
      res.writeHead(502).end()
    })
    req.pipe(out)
  })
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok))
  const { port } = server.address() as AddressInfo
  return {
    origin: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise((ok) => {
        server.closeAllConnections()
        server.close(() => ok())
      }),
  }
}

/** Creates a private app through the admin API and returns the address its audit entry names. */
async function auditedAddress(server: TestServer, base: string, localAddress: string, headers: Record<string, string> = {}): Promise<string | null> {
  const tenant = await createTenant(server.runtime.ctx, cliActor, { name: `Farm ${randomBytes(3).toString('hex')}`, environment: 'sandbox' })
  const name = `Audited ${randomBytes(4).toString('hex')}`
  const res = await send(`${base}/admin/v1/apps`, {
    localAddress,
    method: 'POST',
    body: JSON.stringify({ name, kind: 'private', tenant_id: tenant.id }),
    headers: { 'content-type': 'application/json', authorization: `Bearer ${adminToken}`, ...headers },
  })
  assert.equal(res.status, 201, res.text)
  const app = await server.storage.getAppByClientId((JSON.parse(res.text) as { client_id: string }).client_id)
  assert.ok(app)
  const entry = (await server.storage.listAudit({ appIds: [app.id], limit: 10 }))[0]
  assert.ok(entry, 'the app creation is audited')
  return entry.address
}

const adminToken = randomBytes(32).toString('base64url')
const FORGED = '198.51.100.9'

describe('trusted proxies (FIELDGATE_TRUST_PROXY)', () => {
  const cleanups: (() => Promise<void>)[] = []
  after(async () => {
    for (const c of cleanups.reverse()) await c()
  })

  async function behindProxy(trustProxy: Config['trustProxy'], extra: ConfigOverrides = {}): Promise<{ server: TestServer; proxy: string }> {
    const server = await startServer({ overrides: { trustProxy, adminToken, ...extra } })
    cleanups.push(() => server.close())
    const proxy = await reverseProxy(server.origin)
    cleanups.push(() => proxy.close())
    return { server, proxy: proxy.origin }
  }

  it("trusting the proxy's address: audit entries name the client behind it; a forged header from elsewhere is ignored", async () => {
    const { server, proxy } = await behindProxy(['127.0.0.1'])
    assert.equal(await auditedAddress(server, proxy, '127.0.0.2'), '127.0.0.2')
    assert.equal(await auditedAddress(server, proxy, '127.0.0.3'), '127.0.0.3')
    // 127.0.0.5 is not a trusted proxy: what it claims in X-Forwarded-For counts for nothing.
    assert.equal(await auditedAddress(server, server.origin, '127.0.0.5', { 'x-forwarded-for': FORGED }), '127.0.0.5')
  })

  it('a hop count trusts only what the last proxy appended: an address the client put first is ignored', async () => {
    const { server, proxy } = await behindProxy(1)
    assert.equal(await auditedAddress(server, proxy, '127.0.0.2', { 'x-forwarded-for': FORGED }), '127.0.0.2')
  })

  it("off (the default): the proxy's own address, whatever the headers say", async () => {
    const { server, proxy } = await behindProxy(false)
    assert.equal(await auditedAddress(server, proxy, '127.0.0.2', { 'x-forwarded-for': FORGED }), '127.0.0.1')
  })

  it('the per-address sign-in limit throttles the client behind the proxy, not everyone behind it', async () => {
    const { server, proxy } = await behindProxy(['loopback'], {
      signInLimits: { windowSeconds: 60, perAddress: 3 },
    })
    const email = `owner-${randomBytes(4).toString('hex')}@farm.example`
    await createUser(server.runtime.ctx, cliActor, { email, password: Person.password })
    for (let i = 0; i < 3; i++) assert.equal((await signInFrom(proxy, '127.0.0.2', `nobody-${i}@farm.example`, 'wrong password')).status, 401)
    const throttled = await signInFrom(proxy, '127.0.0.2', email, Person.password)
    assert.equal(throttled.status, 429, 'the guessing client is out of attempts')
    assert.ok(Number(throttled.headers['retry-after']) > 0)
    const other = await signInFrom(proxy, '127.0.0.3', email, Person.password)
    assert.equal(other.status, 303, `another client behind the same proxy signs in: ${other.status}`)
  })

  it('the per-address token limit counts each client behind the proxy on its own', async () => {
    const { proxy } = await behindProxy(['127.0.0.1'], { rateLimits: { tokenPerAddress: 2 } })
    const token = (from: string) =>
      send(`${proxy}/oauth/token`, {
        localAddress: from,
        method: 'POST',
        body: 'grant_type=client_credentials&client_id=nobody&client_secret=nothing',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
      })
    for (let i = 0; i < 2; i++) assert.equal((await token('127.0.0.2')).status, 401)
    assert.equal((await token('127.0.0.2')).status, 429, 'the client at 127.0.0.2 spent its budget')
    assert.equal((await token('127.0.0.3')).status, 401, 'the client at 127.0.0.3 has its own')
  })

  it('settings: off by default, hop counts, lists; anything else is a clear startup error', () => {
    assert.equal(loadConfig({}).trustProxy, false)
    assert.equal(loadConfig({ FIELDGATE_TRUST_PROXY: '0' }).trustProxy, false)
    assert.equal(loadConfig({ FIELDGATE_TRUST_PROXY: '2' }).trustProxy, 2)
    const list = loadConfig({ FIELDGATE_TRUST_PROXY: ' 10.0.0.0/8, 192.0.2.7,loopback, fd00::/8, 172.16.0.0/255.240.0.0' }).trustProxy
    assert.deepEqual(list, ['10.0.0.0/8', '192.0.2.7', 'loopback', 'fd00::/8', '172.16.0.0/255.240.0.0'])
    assert.ok(Object.isFrozen(list))
    for (const bad of ['true', '*', '10.0.0.0/33', 'fd00::/129', 'proxy.internal', '1.5', '-1', '10.0.0.1/8/8', '99']) {
      assert.throws(
        () => loadConfig({ FIELDGATE_TRUST_PROXY: bad }),
        (err: unknown) => err instanceof ConfigError && /FIELDGATE_TRUST_PROXY/.test(err.message),
        bad,
      )
    }
  })
})

/**
 * @fieldgate/client against a real server over loopback. Nothing of the server is mocked; between the
 * SDK and the server sits FaultProxy, a small forwarding proxy that counts what passes and, when told,
 * answers 429 or 500 itself, delays, drops the connection, or refuses a token as expired.
 */
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { createServer, request as httpRequest, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { after, before, beforeEach, describe, it } from 'node:test'
import { cliActor, createApp, createTenant, createUser, revokeGrant, signEvent, verifyEventSignature, type Tenant } from '@fieldgate/core'
import { FieldgateClient, FieldgateError, FieldgateIntegration, readWebhook, verifyWebhookSignature, type FieldgateClientOptions } from '@fieldgate/client'
import { bearer, privateApp, publicSandboxApp, request, sleep, startServer, waitUntil, type TestServer } from './helpers.js'
import { Person, hiddenFields } from './person.js'

const CALLBACK = 'https://partner.example/callback'

// ---- the fault-injecting proxy ----

type Fault = { status: number; headers?: Record<string, string>; body?: unknown } | { delayMs: number } | { drop: true }

type Kind = 'token' | 'revoke' | 'api' | 'other'

interface Seen {
  kind: Kind
  method: string
  path: string
  query: URLSearchParams
  headers: IncomingHttpHeaders
  body: string
  /** The status the client got (from the server or a fault); undefined for a dropped connection. */
  status?: number
  retryAfter?: string
}

const tokenPaths = new Set(['/oauth/token', '/authentication/api/oauth/token', '/v1/token.exchange'])
const revokePaths = new Set(['/oauth/revoke', '/v1/token.revoke'])

function kindOf(path: string): Kind {
  if (tokenPaths.has(path)) return 'token'
  if (revokePaths.has(path)) return 'revoke'
  return /^\/(api|v1)\//.test(path) ? 'api' : 'other'
}

const expiredBody = { error: 'invalid_token', error_description: 'The access token expired' }
const expiredChallenge = 'Bearer realm="fieldgate", error="invalid_token", error_description="The access token expired"'

class FaultProxy {
  origin = ''
  seen: Seen[] = []
  /** Held before forwarding each token request, so concurrent callers pile up behind one. */
  tokenDelayMs = 0
  private server: Server | undefined
  private faults: { kind: Kind; fault: Fault; times: number }[] = []
  private readonly expired = new Set<string>()

  constructor(private readonly target: string) {}

  async listen(): Promise<this> {
    this.server = createServer((req, res) => void this.handle(req, res))
    await new Promise<void>((ok) => this.server!.listen(0, '127.0.0.1', ok))
    this.origin = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`
    return this
  }

  close(): Promise<void> {
    return new Promise((ok) => {
      this.server?.closeAllConnections()
      this.server ? this.server.close(() => ok()) : ok()
    })
  }

  reset(): void {
    this.seen = []
    this.faults = []
    this.expired.clear()
    this.tokenDelayMs = 0
  }

  /** The next `times` requests of `kind` get `fault` instead of (or, for a delay, before) the server. */
  inject(kind: Kind, fault: Fault, times = 1): void {
    this.faults.push({ kind, fault, times })
  }

  /** From now on, API requests carrying `token` are refused as expired, as the server would once it expires. */
  expire(token: string): void {
    this.expired.add(token)
  }

  count(kind: Kind): number {
    return this.seen.filter((s) => s.kind === kind).length
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    res.on('error', () => {})
    const chunks: Buffer[] = []
    for await (const c of req) chunks.push(c as Buffer)
    const body = Buffer.concat(chunks)
    const url = new URL(req.url!, 'http://proxy')
    const seen: Seen = { kind: kindOf(url.pathname), method: req.method!, path: url.pathname, query: url.searchParams, headers: req.headers, body: body.toString() }
    this.seen.push(seen)
    const answer = (status: number, headers: Record<string, string>, payload: unknown) => {
      seen.status = status
      seen.retryAfter = headers['retry-after']
      res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(payload === undefined ? '' : JSON.stringify(payload))
    }

    const at = this.faults.findIndex((f) => f.kind === seen.kind && f.times > 0)
    if (at !== -1) {
      const entry = this.faults[at]!
      if (--entry.times === 0) this.faults.splice(at, 1)
      const { fault } = entry
      if ('drop' in fault) return void req.socket.destroy()
      if ('status' in fault) return answer(fault.status, fault.headers ?? {}, fault.body)
      await sleep(fault.delayMs)
    }
    if (seen.kind === 'token' && this.tokenDelayMs) await sleep(this.tokenDelayMs)
    if (seen.kind === 'api') {
      const token = req.headers.authorization?.replace(/^Bearer /i, '') ?? url.searchParams.get('access_token') ?? ''
      if (this.expired.has(token)) return answer(401, { 'www-authenticate': expiredChallenge }, expiredBody)
    }
    if (req.socket.destroyed) return // the client gave up while we waited
    const target = new URL(this.target)
    const upstream = httpRequest({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers: { ...req.headers, host: target.host } }, (up) => {
      seen.status = up.statusCode
      seen.retryAfter = up.headers['retry-after']
      res.writeHead(up.statusCode!, up.headers)
      up.pipe(res)
    })
    upstream.on('error', () => res.destroy())
    upstream.end(body)
  }
}

// ---- helpers ----

/** An assert.rejects check: a FieldgateError with this code, then whatever else `more` asserts. */
const failsWith =
  (code: string, more: (err: FieldgateError) => void = () => {}) =>
  (err: unknown) => {
    assert.ok(err instanceof FieldgateError, `expected a FieldgateError, got ${String(err)}`)
    assert.equal(err.code, code, err.message)
    more(err)
    return true
  }

const fastRetry = { baseDelayMs: 20, maxDelayMs: 100, maxAttempts: 4, maxElapsedMs: 8_000 }

const elapsedOf = async (fn: () => Promise<unknown>): Promise<number> => {
  const start = performance.now()
  await fn()
  return performance.now() - start
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never
type OptionsWithoutBase = DistributiveOmit<FieldgateClientOptions, 'baseUrl'> & { baseUrl?: string }

const noLimits = { windowSeconds: 60, perToken: 0, perClient: 0, tokenPerClient: 0, tokenPerAddress: 0 }
const fastWebhooks = { allowPrivateTargets: true, pollMs: 50, timeoutMs: 1000, leaseMs: 3000, baseDelayMs: 100, maxDelayMs: 400, maxAgeSeconds: 86400, batch: 20 }

describe('@fieldgate/client against a real server', () => {
  let server: TestServer
  let proxy: FaultProxy
  before(async () => {
    server = await startServer({ overrides: { rateLimits: noLimits, webhooks: fastWebhooks } })
    proxy = await new FaultProxy(server.origin).listen()
  })
  after(async () => {
    await proxy.close()
    await server.close()
  })
  beforeEach(() => proxy.reset())

  const client = (options: OptionsWithoutBase) => new FieldgateClient({ baseUrl: proxy.origin, timeoutMs: 3_000, retry: fastRetry, ...options } as FieldgateClientOptions)

  const fieldNation = async (extra: Partial<FieldgateClientOptions> = {}) => {
    const app = await privateApp(server.storage)
    return { app, client: client({ dialect: 'fieldnation', clientId: app.clientId, clientSecret: app.clientSecret, ...extra } as FieldgateClientOptions) }
  }

  describe('client credentials', () => {
    it('speaks each dialect on the wire, and the server accepts each', async () => {
      // FieldEdge: JSON with target_id, to /oauth/token; a marketplace app on its sandbox tenant.
      const pub = await publicSandboxApp(server.storage)
      const fe = client({ dialect: 'fieldedge', clientId: pub.clientId, clientSecret: pub.clientSecret, targetId: pub.sandboxTenant.id })
      const lead = await fe.api.leads.create({ name: 'Ada Lovelace', email: 'ada@example.com' })
      assert.equal(lead.name, 'Ada Lovelace')
      assert.deepEqual(lead.created_by, { client_id: pub.clientId })
      assert.deepEqual(await fe.api.leads.get(lead.id), lead)
      const feToken = proxy.seen.find((s) => s.kind === 'token')!
      assert.equal(feToken.path, '/oauth/token')
      assert.match(String(feToken.headers['content-type']), /^application\/json/)
      assert.deepEqual(JSON.parse(feToken.body), { client_id: pub.clientId, client_secret: pub.clientSecret, target_id: pub.sandboxTenant.id, grant_type: 'client_credentials' })
      await assert.rejects(
        fe.api.customers.get('00000000-0000-0000-0000-000000000000'),
        failsWith('not_found', (e) => assert.equal(e.status, 404)),
      )
      // Another tenant is another cache key: its own token request, refused as the app is not installed there.
      const elsewhere = await createTenant(server.runtime.ctx, cliActor, { name: 'Not installed', environment: 'sandbox' })
      await assert.rejects(
        fe.withTarget(elsewhere.id).api.leads.list(),
        failsWith('invalid_grant', (e) => assert.equal(e.description, 'the app is not installed for this target_id')),
      )
      assert.equal(proxy.count('token'), 2)
      assert.equal(JSON.parse(proxy.seen.filter((s) => s.kind === 'token')[1]!.body).target_id, elsewhere.id)
      await fe.api.leads.list()
      assert.equal(proxy.count('token'), 2, 'the first tenant still has its token')

      // Field Nation: JSON with scope "api" to its own path; the token as ?access_token= when asked.
      proxy.reset()
      const fn = await fieldNation({ tokenIn: 'query' })
      const order = await fn.client.api.workOrders.create({ title: 'Replace the compressor', status: 'published' })
      assert.equal(order.status, 'published')
      assert.equal(order.created_by, fn.app.clientId)
      const page = await fn.client.api.workOrders.list()
      assert.deepEqual(
        page.results.map((o) => o.id),
        [order.id],
      )
      const fnToken = proxy.seen.find((s) => s.kind === 'token')!
      assert.equal(fnToken.path, '/authentication/api/oauth/token')
      assert.deepEqual(JSON.parse(fnToken.body), { grant_type: 'client_credentials', client_id: fn.app.clientId, client_secret: fn.app.clientSecret, scope: 'api' })
      const token = await fn.client.getAccessToken()
      for (const call of proxy.seen.filter((s) => s.kind === 'api')) {
        assert.equal(call.query.get('access_token'), token)
        assert.equal(call.headers.authorization, undefined)
      }
      // ... and in the header by default.
      proxy.reset()
      const fnHeader = client({ dialect: 'fieldnation', clientId: fn.app.clientId, clientSecret: fn.app.clientSecret })
      await fnHeader.api.workOrders.list()
      const headerCall = proxy.seen.find((s) => s.kind === 'api')!
      assert.equal(headerCall.query.get('access_token'), null)
      assert.match(String(headerCall.headers.authorization), /^Bearer ey/)

      // Standard: a form, with Basic or with the secret in the body.
      for (const auth of ['client_secret_basic', 'client_secret_post'] as const) {
        proxy.reset()
        const app = await privateApp(server.storage, { scopes: 'api alerts:write' })
        const std = client({ dialect: 'standard', auth, clientId: app.clientId, clientSecret: app.clientSecret, scope: ['api'] })
        const customer = await std.api.customers.create({ name: 'Acme Farms' })
        assert.equal(customer.name, 'Acme Farms')
        const seen = proxy.seen.find((s) => s.kind === 'token')!
        assert.match(String(seen.headers['content-type']), /^application\/x-www-form-urlencoded/)
        const form = new URLSearchParams(seen.body)
        assert.equal(form.get('grant_type'), 'client_credentials')
        assert.equal(form.get('scope'), 'api')
        if (auth === 'client_secret_basic') {
          assert.equal(seen.headers.authorization, `Basic ${Buffer.from(`${app.clientId}:${app.clientSecret}`).toString('base64')}`)
          assert.equal(form.get('client_secret'), null)
        } else {
          assert.equal(seen.headers.authorization, undefined)
          assert.equal(form.get('client_secret'), app.clientSecret)
        }
        // The token carries only the scope asked for: alerts:write was granted but not requested.
        await assert.rejects(
          std.api.alerts.create({ title: 'Frost' }),
          failsWith('missing_scope', (e) => {
            assert.equal(e.status, 403)
            assert.equal(e.scope, 'alerts:write')
            assert.equal(e.description, 'This call needs the scope alerts:write')
          }),
        )
      }
    })

    it('reports a wrong secret as invalid_client with the server description, without retrying', async () => {
      const app = await privateApp(server.storage)
      const bad = client({ dialect: 'fieldnation', clientId: app.clientId, clientSecret: `${app.clientSecret}x` })
      await assert.rejects(
        bad.api.workOrders.list(),
        failsWith('invalid_client', (e) => {
          assert.equal(e.status, 401)
          assert.equal(e.description, 'Client authentication failed')
          assert.equal(e.attempts, 1)
        }),
      )
      assert.equal(proxy.count('token'), 1)
      assert.equal(proxy.count('api'), 0)
    })

    it('1,000 concurrent calls through one client make exactly one token request', async () => {
      // A generous per-attempt timeout: a timed-out attempt would be sent again and spoil the count.
      const { client: fn } = await fieldNation({ timeoutMs: 20_000 })
      proxy.tokenDelayMs = 300 // every caller arrives while the one token request is in flight
      const pages = await Promise.all(Array.from({ length: 1000 }, () => fn.api.workOrders.list({ limit: 1 })))
      assert.equal(pages.length, 1000)
      for (const p of pages) assert.deepEqual(p, { results: [], next_cursor: null })
      assert.equal(proxy.count('token'), 1)
      assert.equal(proxy.count('api'), 1000)
      const tokens = new Set(proxy.seen.filter((s) => s.kind === 'api').map((s) => s.headers.authorization))
      assert.equal(tokens.size, 1, 'every call used the same token')
    })

    it('replaces a token refused mid-flight as expired once, shared by every caller; a second refusal is reported', async () => {
      const { client: fn } = await fieldNation()
      const first = await fn.getAccessToken()
      assert.equal(proxy.count('token'), 1)
      proxy.expire(first)
      const results = await Promise.all(Array.from({ length: 200 }, () => fn.api.workOrders.list({ limit: 1 })))
      assert.equal(results.length, 200)
      assert.equal(proxy.count('token'), 2, 'one new token for all 200 refused callers')
      const refused = proxy.seen.filter((s) => s.kind === 'api' && s.status === 401).length
      assert.ok(refused >= 1 && refused <= 200, `${refused} calls were refused`)
      assert.equal(proxy.count('api'), 200 + refused, 'each refused call was sent again exactly once')
      const second = await fn.getAccessToken()
      assert.notEqual(second, first)

      // A fresh token refused as well: reported after one retry, not a loop.
      proxy.reset()
      proxy.inject('api', { status: 401, headers: { 'www-authenticate': expiredChallenge }, body: expiredBody }, 10)
      await assert.rejects(
        fn.api.workOrders.list(),
        failsWith('invalid_token', (e) => {
          assert.equal(e.status, 401)
          assert.equal(e.description, 'The access token expired')
        }),
      )
      assert.equal(proxy.count('api'), 2)
      assert.equal(proxy.count('token'), 1)
    })

    it('refreshes refreshEarlyMs before expiry, by the injected clock', async () => {
      const app = await privateApp(server.storage, { tokenTtl: 120 })
      let clock = Date.now()
      const withClock = (extra: Partial<FieldgateClientOptions> = {}) =>
        client({ dialect: 'fieldnation', clientId: app.clientId, clientSecret: app.clientSecret, now: () => clock, ...extra } as FieldgateClientOptions)

      // Default: 60 s early, and a 120 s token's half-life is 60 s as well.
      const start = clock
      const fn = withClock()
      await fn.api.workOrders.list()
      assert.equal(proxy.count('token'), 1)
      clock = start + 59_999
      await fn.api.workOrders.list()
      assert.equal(proxy.count('token'), 1, 'still fresh 1 ms before the refresh point')
      clock = start + 60_000
      await fn.api.workOrders.list()
      assert.equal(proxy.count('token'), 2, 'replaced at expiry minus 60 s')

      // Explicit refreshEarlyMs: 10 s before a 120 s token expires.
      proxy.reset()
      clock = Date.now()
      const early = clock
      const fn10 = withClock({ refreshEarlyMs: 10_000 })
      await fn10.getAccessToken()
      clock = early + 109_999
      await fn10.getAccessToken()
      assert.equal(proxy.count('token'), 1)
      clock = early + 110_000
      await fn10.getAccessToken()
      assert.equal(proxy.count('token'), 2)

      // A 60 s token with the default: replaced at half its life, not fetched on every call.
      proxy.reset()
      const short = await privateApp(server.storage, { tokenTtl: 60 })
      clock = Date.now()
      const shortStart = clock
      const fnShort = client({ dialect: 'fieldnation', clientId: short.clientId, clientSecret: short.clientSecret, now: () => clock })
      await fnShort.getAccessToken()
      await fnShort.getAccessToken()
      clock = shortStart + 29_999
      await fnShort.getAccessToken()
      assert.equal(proxy.count('token'), 1)
      clock = shortStart + 30_000
      await fnShort.getAccessToken()
      assert.equal(proxy.count('token'), 2)
    })

    it('retries 429 and 500 with backoff that honours Retry-After, and gives up within the bounds', async () => {
      const { client: fn } = await fieldNation()
      await fn.getAccessToken()

      // 429 twice with Retry-After: 1 → two waits of at least a second, then the answer.
      proxy.reset()
      proxy.inject('api', { status: 429, headers: { 'retry-after': '1' }, body: { error: 'rate_limited', error_description: 'slow down' } }, 2)
      const waited = await elapsedOf(() => fn.api.workOrders.list())
      assert.equal(proxy.count('api'), 3)
      assert.ok(waited >= 2000, `waited ${waited} ms`)
      assert.ok(waited < 3000, `waited ${waited} ms`)

      // Retry-After as an HTTP date, two seconds ahead (one-second resolution: at least one second).
      proxy.reset()
      proxy.inject('api', { status: 429, headers: { 'retry-after': new Date(Date.now() + 2000).toUTCString() } })
      const byDate = await elapsedOf(() => fn.api.workOrders.list())
      assert.equal(proxy.count('api'), 2)
      assert.ok(byDate >= 950 && byDate < 2500, `waited ${byDate} ms`)

      // A Retry-After past the time budget: given up at once, with the wait the server asked for.
      proxy.reset()
      proxy.inject('api', { status: 429, headers: { 'retry-after': '120' }, body: { error: 'rate_limited', error_description: 'retry in 120 s' } })
      const rushed = performance.now()
      await assert.rejects(
        fn.api.workOrders.list(),
        failsWith('rate_limited', (e) => {
          assert.equal(e.status, 429)
          assert.equal(e.retryAfterMs, 120_000)
          assert.equal(e.attempts, 1)
        }),
      )
      assert.ok(performance.now() - rushed < 1000)
      assert.equal(proxy.count('api'), 1)

      // 429 without end: maxAttempts (4) tries, then rate_limited.
      proxy.reset()
      proxy.inject('api', { status: 429, headers: { 'retry-after': '0' } }, 100)
      await assert.rejects(
        fn.api.workOrders.list(),
        failsWith('rate_limited', (e) => assert.equal(e.attempts, 4)),
      )
      assert.equal(proxy.count('api'), 4)

      // 500 at the token endpoint twice: a token on the third attempt, quickly (no Retry-After, 20 ms base).
      proxy.reset()
      proxy.inject('token', { status: 500, body: { error: 'server_error', error_description: 'The server could not complete the request' } }, 2)
      const recovered = await elapsedOf(() => fn.getAccessToken({ forceRefresh: true }))
      assert.equal(proxy.count('token'), 3)
      assert.ok(recovered < 1000, `took ${recovered} ms`)

      // 500 without end: server_error after 4 attempts.
      proxy.reset()
      proxy.inject('token', { status: 500, body: { error: 'server_error', error_description: 'The server could not complete the request' } }, 100)
      await assert.rejects(
        fn.getAccessToken({ forceRefresh: true }),
        failsWith('server_error', (e) => {
          assert.equal(e.status, 500)
          assert.equal(e.attempts, 4)
          assert.equal(e.description, 'The server could not complete the request')
        }),
      )
      assert.equal(proxy.count('token'), 4)

      // A bounded total time: 503 with Retry-After 2 against a 3 s budget stops after the first wait.
      proxy.reset()
      const tight = client({
        dialect: 'fieldnation',
        clientId: (await privateApp(server.storage)).clientId,
        clientSecret: 'unused',
        retry: { ...fastRetry, maxAttempts: 10, maxElapsedMs: 3000 },
      })
      proxy.inject('token', { status: 503, headers: { 'retry-after': '2' } }, 100)
      const bounded = performance.now()
      await assert.rejects(
        tight.getAccessToken(),
        failsWith('temporarily_unavailable', (e) => assert.equal(e.attempts, 2)),
      )
      const took = performance.now() - bounded
      assert.ok(took >= 2000 && took < 3000, `gave up after ${took} ms`)

      // A create is not repeated after a 500 (it may have been done), but is after a 429 (it was not).
      proxy.reset()
      proxy.inject('api', { status: 500, body: { error: 'server_error' } })
      await assert.rejects(
        fn.api.workOrders.create({ title: 'Once' }),
        failsWith('server_error', (e) => assert.equal(e.attempts, 1)),
      )
      assert.equal(proxy.count('api'), 1)
      proxy.inject('api', { status: 429, headers: { 'retry-after': '0' } })
      const created = await fn.api.workOrders.create({ title: 'Twice asked, once made' })
      assert.equal(created.title, 'Twice asked, once made')
      assert.equal(proxy.count('api'), 3)
    })

    it('waits out a real 429 from the server rate limiter, honouring its Retry-After', async () => {
      const limited = await startServer({ overrides: { rateLimits: { ...noLimits, windowSeconds: 1, perToken: 2 } } })
      const limitedProxy = await new FaultProxy(limited.origin).listen()
      try {
        const app = await privateApp(limited.storage)
        const fn = new FieldgateClient({ baseUrl: limitedProxy.origin, dialect: 'fieldnation', clientId: app.clientId, clientSecret: app.clientSecret, retry: fastRetry })
        await fn.getAccessToken()
        const took = await elapsedOf(() => Promise.all([fn.api.workOrders.list(), fn.api.workOrders.list(), fn.api.workOrders.list()]))
        const limitedCalls = limitedProxy.seen.filter((s) => s.kind === 'api' && s.status === 429)
        assert.ok(limitedCalls.length >= 1, 'the server refused at least one call')
        for (const s of limitedCalls) assert.match(String(s.retryAfter), /^\d+$/)
        assert.ok(took >= 1000 * Number(limitedCalls[0]!.retryAfter), `answered after ${took} ms`)
        assert.equal(limitedProxy.seen.filter((s) => s.kind === 'api' && s.status === 200).length, 3)
      } finally {
        await limitedProxy.close()
        await limited.close()
      }
    })

    it('handles dropped connections, slow answers and AbortSignal', async () => {
      const { client: fn } = await fieldNation()
      await fn.getAccessToken()

      // Dropped twice: a read is sent again.
      proxy.reset()
      proxy.inject('api', { drop: true }, 2)
      assert.deepEqual(await fn.api.workOrders.list(), { results: [], next_cursor: null })
      assert.equal(proxy.count('api'), 3)

      // Dropped on a create: reported as network, not sent again.
      proxy.reset()
      proxy.inject('api', { drop: true })
      await assert.rejects(
        fn.api.workOrders.create({ title: 'Maybe made' }),
        failsWith('network', (e) => assert.equal(e.attempts, 1)),
      )
      assert.equal(proxy.count('api'), 1)

      // Slow once: the attempt times out and the next one answers.
      proxy.reset()
      const quick = client({ dialect: 'fieldnation', clientId: fn.options.clientId, clientSecret: fn.options.clientSecret, timeoutMs: 300 })
      await quick.getAccessToken()
      proxy.inject('api', { delayMs: 1500 })
      const once = await elapsedOf(() => quick.api.workOrders.list())
      assert.equal(proxy.count('api'), 2)
      assert.ok(once >= 300 && once < 1200, `took ${once} ms`)

      // Slow every time: timeout after maxAttempts.
      proxy.reset()
      const three = client({
        dialect: 'fieldnation',
        clientId: fn.options.clientId,
        clientSecret: fn.options.clientSecret,
        timeoutMs: 200,
        retry: { ...fastRetry, maxAttempts: 3 },
      })
      await three.getAccessToken()
      proxy.inject('api', { delayMs: 1000 }, 10)
      const slow = performance.now()
      await assert.rejects(
        three.api.workOrders.list(),
        failsWith('timeout', (e) => assert.equal(e.attempts, 3)),
      )
      assert.ok(performance.now() - slow < 1200)
      assert.equal(proxy.count('api'), 3)

      // Aborted while waiting out a Retry-After: rejected at once.
      proxy.reset()
      proxy.inject('api', { status: 429, headers: { 'retry-after': '5' } })
      const controller = new AbortController()
      setTimeout(() => controller.abort(), 100)
      const aborting = performance.now()
      await assert.rejects(fn.api.workOrders.list({ signal: controller.signal }), failsWith('aborted'))
      assert.ok(performance.now() - aborting < 1000)

      // One caller leaving a shared token request does not fail the others.
      proxy.reset()
      const shared = client({ dialect: 'fieldnation', clientId: fn.options.clientId, clientSecret: fn.options.clientSecret })
      proxy.tokenDelayMs = 400
      const leaving = new AbortController()
      const left = shared.getAccessToken({ signal: leaving.signal })
      const stays = shared.getAccessToken()
      setTimeout(() => leaving.abort(), 50)
      await assert.rejects(left, failsWith('aborted'))
      assert.match(await stays, /^ey/)
      assert.equal(proxy.count('token'), 1)
    })

    it('surfaces a revoked grant as a typed error, not a loop', async () => {
      const { app, client: fn } = await fieldNation()
      await fn.api.workOrders.list()
      const token = await fn.getAccessToken()
      await revokeGrant(server.runtime.ctx, cliActor, { grantId: app.grant.id })
      // The server learns of it through its change feed (every 250 ms).
      await waitUntil(async () => (await request(server.url('/api/rest/v2/workorders'), { headers: bearer(token) })).status === 401, 5000)

      proxy.reset()
      await assert.rejects(
        fn.api.workOrders.list(),
        failsWith('invalid_grant', (e) => {
          assert.equal(e.status, 400)
          assert.equal(e.description, "the app's access to its tenant was revoked")
        }),
      )
      assert.equal(proxy.count('api'), 1, 'the refused call was not sent again')
      assert.equal(proxy.count('token'), 1, 'one attempt at a fresh token')
      // The next call tries for a token once more (an app may be reinstalled), and fails the same way.
      await assert.rejects(fn.api.workOrders.list(), failsWith('invalid_grant'))
      assert.equal(proxy.count('api'), 1)
      assert.equal(proxy.count('token'), 2)
    })
  })

  describe('authorization code', () => {
    interface Farm {
      tenant: Tenant
      person: Person
      integration: FieldgateIntegration
    }

    async function farm(): Promise<Farm> {
      const tenant = await createTenant(server.runtime.ctx, cliActor, { name: `Farm ${randomBytes(3).toString('hex')}`, environment: 'sandbox' })
      const email = `owner-${randomBytes(4).toString('hex')}@farm.example`
      await createUser(server.runtime.ctx, cliActor, { email, password: Person.password, tenantId: tenant.id, role: 'owner' })
      const created = await createApp(server.runtime.ctx, cliActor, {
        name: 'Field Mapper',
        kind: 'public',
        environment: 'sandbox',
        scopes: 'fields:read:all maps:write vehicles:write',
        redirectUris: [CALLBACK],
        contactEmail: 'dev@partner.example',
      })
      const person = new Person(server, email)
      assert.equal((await person.signIn()).status, 303)
      const integration = new FieldgateIntegration({
        baseUrl: proxy.origin,
        issuer: server.issuer,
        clientId: created.app.clientId,
        clientSecret: created.clientSecret,
        redirectUri: CALLBACK,
        retry: fastRetry,
      })
      return { tenant, person, integration }
    }

    /** The person opens the URL the SDK built and answers the consent page; returns where they are sent. */
    async function consent(f: Farm, url: string, decision: 'allow' | 'deny'): Promise<URL> {
      const u = new URL(url)
      const page = await f.person.get(u.pathname + u.search)
      assert.equal(page.status, 200, page.text.slice(0, 300))
      const decided = await f.person.post('/consent', { ...hiddenFields(page.text), decision })
      assert.equal(decided.status, 303, decided.text.slice(0, 300))
      return new URL(decided.headers.get('location')!)
    }

    it('runs the fieldmargin flow end to end: URL with state and PKCE, callback, token.exchange, permissions, API, disconnect', async () => {
      const f = await farm()
      const req = await f.integration.authorizationUrl({ scope: ['fields:read:all', 'maps:write'] })
      const url = new URL(req.url)
      assert.equal(url.origin + url.pathname, `${proxy.origin}/oauth/authorize`)
      assert.equal(url.searchParams.get('state'), req.state)
      assert.equal(url.searchParams.get('redirect_uri'), CALLBACK)
      assert.equal(url.searchParams.get('scope'), 'fields:read:all maps:write')
      assert.equal(url.searchParams.get('code_challenge_method'), 'S256')
      assert.match(req.codeVerifier!, /^[A-Za-z0-9_-]{43}$/)
      assert.equal(url.searchParams.get('code_challenge'), createHash('sha256').update(req.codeVerifier!).digest('base64url'))
      assert.notEqual((await f.integration.authorizationUrl()).state, req.state, 'a fresh state each time')

      const location = await consent(f, req.url, 'allow')
      assert.equal(location.origin + location.pathname, CALLBACK)
      assert.throws(() => f.integration.validateCallback(location, { state: `${req.state}x` }), failsWith('state_mismatch'))
      const blank = new URL(location)
      blank.searchParams.set('state', '')
      assert.throws(() => f.integration.validateCallback(blank, { state: '' }), failsWith('state_mismatch'), 'an empty state protects nothing')
      const forged = new URL(location)
      forged.searchParams.set('iss', 'https://evil.example')
      assert.throws(() => f.integration.validateCallback(forged, { state: req.state }), failsWith('issuer_mismatch'))
      const callback = f.integration.validateCallback(location.toString(), { state: req.state })
      assert.equal(callback.iss, server.issuer)

      // The wrong verifier is refused (PKCE really binds the code) and not retried; the right one works.
      proxy.reset()
      await assert.rejects(
        f.integration.exchangeCode({ code: callback.code, codeVerifier: 'a'.repeat(43) }),
        failsWith('invalid_grant', (e) => assert.equal(e.status, 400)),
      )
      assert.equal(proxy.count('token'), 1)
      const connection = await f.integration.exchangeCode({ code: callback.code, codeVerifier: req.codeVerifier! })
      assert.match(connection.accessToken, /^[0-9a-f]{64}$/)
      assert.equal(connection.farmId, f.tenant.id)
      assert.deepEqual(await f.integration.permissions(connection.accessToken), ['fields:read:all', 'maps:write'])

      const api = f.integration.connection(connection.accessToken)
      const field = await api.fields.create({
        name: 'North paddock',
        area_ha: 12.5,
        boundary: [
          [0, 0],
          [0, 1],
          [1, 1],
          [0, 0],
        ],
      })
      assert.equal(field.name, 'North paddock')
      assert.deepEqual(await api.fields.get(field.id), field)
      const all = []
      for await (const x of api.fields.all({ limit: 1 })) all.push(x.id)
      assert.deepEqual(all, [field.id])
      await assert.rejects(
        api.vehicleLocations.create({ vehicle_id: 'tractor-1', position: [1, 2] }),
        failsWith('missing_scope', (e) => {
          assert.equal(e.status, 403)
          assert.equal(e.scope, 'vehicles:write')
        }),
      )

      assert.equal(await f.integration.disconnect(connection.accessToken), true)
      assert.equal(await f.integration.disconnect(connection.accessToken), false)
      proxy.reset()
      await assert.rejects(
        f.integration.permissions(connection.accessToken),
        failsWith('invalid_token', (e) => {
          assert.equal(e.status, 401)
          assert.equal(e.description, 'The access token was revoked')
        }),
      )
      assert.equal(proxy.count('api'), 1, 'a fixed token is not retried')
      assert.equal(proxy.count('token'), 0)
    })

    it('reports a denial as access_denied, and runs the RFC exchange and RFC 7009 revocation', async () => {
      const f = await farm()
      const denied = await f.integration.authorizationUrl({ scope: 'maps:write' })
      const deniedAt = await consent(f, denied.url, 'deny')
      assert.throws(
        () => f.integration.validateCallback(deniedAt, { state: denied.state }),
        failsWith('access_denied', (e) => {
          assert.equal(e.description, 'The user denied the request')
        }),
      )

      const req = await f.integration.authorizationUrl({ scope: 'fields:read:all maps:write' })
      const { code } = f.integration.validateCallback(await consent(f, req.url, 'allow'), { state: req.state })
      proxy.reset()
      const connection = await f.integration.exchangeCode({ code, codeVerifier: req.codeVerifier!, via: 'oauth' })
      const seen = proxy.seen.find((s) => s.kind === 'token')!
      assert.equal(seen.path, '/oauth/token')
      assert.equal(new URLSearchParams(seen.body).get('code_verifier'), req.codeVerifier)
      assert.deepEqual(connection.scope, ['fields:read:all', 'maps:write'])
      assert.deepEqual(await f.integration.permissions(connection.accessToken), ['fields:read:all', 'maps:write'])
      // The code is single-use: a second exchange is refused (and revokes what the first one gave).
      await assert.rejects(f.integration.exchangeCode({ code, codeVerifier: req.codeVerifier!, via: 'oauth' }), failsWith('invalid_grant'))

      const again = await f.integration.authorizationUrl({ scope: 'fields:read:all' })
      const second = await f.integration.exchangeCode({
        code: f.integration.validateCallback(await consent(f, again.url, 'allow'), { state: again.state }).code,
        codeVerifier: again.codeVerifier!,
      })
      assert.ok((await f.integration.permissions(second.accessToken)).includes('fields:read:all'))
      await f.integration.revokeToken(second.accessToken)
      await assert.rejects(f.integration.permissions(second.accessToken), failsWith('invalid_token'))
    })
  })

  describe('Data API signatures', () => {
    const secret = 'fgs_sandbox_current'
    const old = 'fgs_sandbox_previous'
    const body = JSON.stringify({ id: 'evt_1', type: 'record.created', created_at: new Date().toISOString(), client_id: 'c', farm_id: 't', tenant_id: 't', data: { n: 1 } })

    it('accepts a signature made by core signEvent and rejects tampered, stale, wrong-secret and malformed ones', async () => {
      const now = Math.floor(Date.now() / 1000)
      const header = signEvent(body, [secret], now)
      const cases: { name: string; header: string | null; body: string | Uint8Array; secrets: string | string[]; expect: true | string }[] = [
        { name: 'genuine', header, body, secrets: secret, expect: true },
        { name: 'genuine, body as bytes', header, body: new TextEncoder().encode(body), secrets: secret, expect: true },
        { name: 'tampered body', header, body: body.replace('"n":1', '"n":2'), secrets: secret, expect: 'mismatch' },
        { name: 'tampered signature', header: header.replace(/v1=(.)/, (_, c: string) => `v1=${c === '0' ? '1' : '0'}`), body, secrets: secret, expect: 'mismatch' },
        { name: 'tampered timestamp', header: header.replace(`t=${now}`, `t=${now - 1}`), body, secrets: secret, expect: 'mismatch' },
        { name: 'wrong secret', header, body, secrets: 'fgs_sandbox_other', expect: 'mismatch' },
        { name: 'stale', header: signEvent(body, [secret], now - 301), body, secrets: secret, expect: 'stale' },
        { name: 'from the future', header: signEvent(body, [secret], now + 320), body, secrets: secret, expect: 'stale' },
        { name: 'old but within tolerance', header: signEvent(body, [secret], now - 290), body, secrets: secret, expect: true },
        { name: 'rotation: held the new secret', header: signEvent(body, [old, secret], now), body, secrets: secret, expect: true },
        { name: 'rotation: held the old secret', header: signEvent(body, [old, secret], now), body, secrets: old, expect: true },
        { name: 'rotation: holds several', header: signEvent(body, [secret], now), body, secrets: ['fgs_sandbox_other', secret], expect: true },
        { name: 'rotation: none match', header: signEvent(body, [old, secret], now), body, secrets: 'fgs_sandbox_other', expect: 'mismatch' },
        { name: 'no timestamp', header: header.replace(`t=${now},`, ''), body, secrets: secret, expect: 'malformed' },
        { name: 'bad timestamp', header: header.replace(`t=${now}`, 't=soon'), body, secrets: secret, expect: 'malformed' },
        { name: 'no header', header: null, body, secrets: secret, expect: 'missing' },
      ]
      for (const c of cases) {
        const result = await verifyWebhookSignature({ body: c.body, signature: c.header, secret: c.secrets })
        assert.deepEqual(result, c.expect === true ? { valid: true, timestamp: Number(/t=(\d+)/.exec(c.header!)![1]) } : { valid: false, reason: c.expect }, c.name)
        // Core's own receiver check agrees wherever it applies (one secret, text body).
        if (c.header !== null && typeof c.body === 'string' && typeof c.secrets === 'string') {
          assert.equal(verifyEventSignature(c.header, c.body, c.secrets, now), c.expect === true, `core disagrees: ${c.name}`)
        }
      }
      const event = await readWebhook({ body, signature: header, secret, eventId: 'evt_1' })
      assert.equal(event.type, 'record.created')
      assert.deepEqual(event.data, { n: 1 })
      await assert.rejects(
        readWebhook({ body, signature: signEvent(body, [secret], now - 600), secret }),
        failsWith('invalid_signature', (e) => assert.equal(e.description, 'stale')),
      )
      await assert.rejects(readWebhook({ body, signature: header, secret, eventId: 'evt_2' }), failsWith('invalid_response'))
      // A custom tolerance and clock.
      assert.deepEqual(await verifyWebhookSignature({ body, signature: header, secret, toleranceSeconds: 10, now: () => (now + 11) * 1000 }), { valid: false, reason: 'stale' })
      assert.equal((await verifyWebhookSignature({ body, signature: header, secret, toleranceSeconds: 10, now: () => (now + 10) * 1000 })).valid, true)
    })

    it('verifies a real delivery from the server for a record the SDK created', async () => {
      const deliveries: { id: string; signature: string; body: string }[] = []
      const receiver = createServer((req, res) => {
        let text = ''
        req.setEncoding('utf8').on('data', (c: string) => {
          text += c
        })
        req.on('end', () => {
          deliveries.push({ id: String(req.headers['fieldgate-event-id']), signature: String(req.headers['fieldgate-signature']), body: text })
          res.writeHead(204).end()
        })
      })
      await new Promise<void>((ok) => receiver.listen(0, '127.0.0.1', ok))
      try {
        const tenant = await createTenant(server.runtime.ctx, cliActor, { name: 'Hooked farm', environment: 'sandbox' })
        const created = await createApp(server.runtime.ctx, cliActor, {
          name: 'Alerts app',
          kind: 'private',
          tenantId: tenant.id,
          scopes: 'api alerts:write',
          dataApiUrl: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/data-api`,
        })
        const fg = client({ dialect: 'standard', clientId: created.app.clientId, clientSecret: created.clientSecret, scope: 'alerts:write' })
        const alert = await fg.api.alerts.create({ title: 'Frost tonight', severity: 'warning' })
        await waitUntil(async () => deliveries.some((d) => d.body.includes(alert.id)), 10_000)
        const delivery = deliveries.find((d) => d.body.includes(alert.id))!
        const event = await readWebhook<{ record: { id: string; title: string } }>({
          body: delivery.body,
          signature: delivery.signature,
          eventId: delivery.id,
          secret: created.clientSecret,
        })
        assert.equal(event.type, 'record.created')
        assert.equal(event.tenant_id, tenant.id)
        assert.equal(event.data.record.id, alert.id)
        assert.equal(event.data.record.title, 'Frost tonight')
        await assert.rejects(
          readWebhook({ body: delivery.body.replace('Frost', 'Fro5t'), signature: delivery.signature, secret: created.clientSecret }),
          failsWith('invalid_signature'),
        )
        await assert.rejects(readWebhook({ body: delivery.body, signature: delivery.signature, secret: `${created.clientSecret}x` }), failsWith('invalid_signature'))
      } finally {
        receiver.closeAllConnections()
        await new Promise<void>((ok) => receiver.close(() => ok()))
      }
    })
  })
})

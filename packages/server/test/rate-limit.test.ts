import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { rmSync } from 'node:fs'
import { request as httpRequest } from 'node:http'
import { after, describe, it } from 'node:test'
import { cliActor, ConfigError, createUser, loadConfig, type Config, type ConfigOverrides } from '@fieldgate/core'
import {
  basicAuth,
  bearer,
  freePort,
  getToken,
  openStore,
  postForm,
  postJson,
  privateApp,
  request,
  spawnServe,
  startServer,
  tempDir,
  type PrivateFixture,
  type Res,
  type ServerProcess,
  type TestServer,
} from './helpers.js'
import { Person } from './person.js'

const WORKORDERS = '/api/rest/v2/workorders'
const TOKEN_PATHS = ['/oauth/token', '/authentication/api/oauth/token'] as const
const roomy: Config['rateLimits'] = { windowSeconds: 60, perToken: 1000, perClient: 1000, tokenPerClient: 1000, tokenPerAddress: 1000, registerPerAddress: 1000 }

const limited = (limits: Partial<Config['rateLimits']>, extra: Partial<Config> = {}) => startServer({ overrides: { rateLimits: { ...roomy, ...limits }, ...extra } })

const clientCredentials = (server: { url(p: string): string }, f: { clientId: string; clientSecret: string }, path: string = TOKEN_PATHS[0]) =>
  postJson(server.url(path), { grant_type: 'client_credentials', client_id: f.clientId, client_secret: f.clientSecret })

function assertHeaders(res: Res, limit: number, remaining: number): void {
  assert.equal(res.headers.get('ratelimit-limit'), String(limit), `ratelimit-limit of ${res.status} ${res.text}`)
  assert.equal(res.headers.get('ratelimit-remaining'), String(remaining), `ratelimit-remaining of ${res.status} ${res.text}`)
  const reset = Number(res.headers.get('ratelimit-reset'))
  assert.ok(reset >= 1 && reset <= 60, `ratelimit-reset ${reset}`)
}

function assertLimited(res: Res, limit: number, what: RegExp): void {
  assert.equal(res.status, 429, res.text)
  assert.equal(res.json?.error, 'rate_limited', res.text)
  assert.match(res.json.error_description, what)
  const retryAfter = Number(res.headers.get('retry-after'))
  assert.ok(Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= 60, `retry-after ${res.headers.get('retry-after')}`)
  assert.match(res.json.error_description, new RegExp(`retry in ${retryAfter} s`))
  assert.equal(res.headers.get('cache-control'), 'no-store')
  assert.match(res.headers.get('content-type') ?? '', /^application\/json/)
  assertHeaders(res, limit, 0)
}

/** POST from another loopback address (127.0.0.2), which fetch cannot choose. */
function postFrom(localAddress: string, url: string, body: unknown): Promise<Res> {
  return new Promise((ok, fail) => {
    const data = JSON.stringify(body)
    const req = httpRequest(url, { method: 'POST', localAddress, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) } }, (res) => {
      let text = ''
      res
        .setEncoding('utf8')
        .on('data', (d: string) => {
          text += d
        })
        .on('end', () => {
          const headers = new Headers()
          for (const [k, v] of Object.entries(res.headers)) if (typeof v === 'string') headers.set(k, v)
          let json: unknown
          try {
            json = JSON.parse(text)
          } catch {
            json = undefined
          }
          ok({ status: res.statusCode!, headers, text, json })
        })
    })
    req.on('error', fail)
    req.end(data)
  })
}

describe('rate limits', () => {
  const servers: TestServer[] = []
  after(async () => {
    await Promise.all(servers.map((s) => s.close()))
  })
  const start = async (limits: Partial<Config['rateLimits']>, extra: Partial<Config> = {}) => {
    const s = await limited(limits, extra)
    servers.push(s)
    return s
  }

  it('token endpoint: every request counts per address, across the token paths; 429 with Retry-After and RateLimit headers', async () => {
    const server = await start({ tokenPerAddress: 4 })
    const f = await privateApp(server.storage)
    const ok = await clientCredentials(server, f)
    assert.equal(ok.status, 200, ok.text)
    assertHeaders(ok, 4, 3)
    // Failures count too: the per-address limit is what bounds secret guessing.
    const wrong = await clientCredentials(server, { clientId: f.clientId, clientSecret: 'wrong' }, TOKEN_PATHS[1])
    assert.equal(wrong.status, 401)
    assertHeaders(wrong, 4, 2)
    const bad = await postForm(server.url('/v1/token.exchange'), { code: 'nope', client_id: f.clientId, client_secret: 'wrong' })
    assert.equal(bad.status, 401, bad.text)
    assertHeaders(bad, 4, 1)
    assert.equal((await clientCredentials(server, f, TOKEN_PATHS[1])).status, 200)
    for (const path of TOKEN_PATHS) assertLimited(await clientCredentials(server, f, path), 4, /per client address/)
    assertLimited(await postForm(server.url('/v1/token.exchange'), { code: 'x' }), 4, /per client address/)

    // Another address has its own budget; the API is not the token endpoint's budget.
    const other = await postFrom('127.0.0.2', server.url('/oauth/token'), { grant_type: 'client_credentials', client_id: f.clientId, client_secret: f.clientSecret })
    assert.equal(other.status, 200, other.text)
    assertHeaders(other, 4, 3)
    assert.equal((await request(server.url(WORKORDERS), { headers: bearer(other.json.access_token) })).status, 200)
  })

  it('token endpoint: per client, shared by its token paths; another client is not affected', async () => {
    const server = await start({ tokenPerClient: 3 })
    const a = await privateApp(server.storage)
    const b = await privateApp(server.storage)
    const first = await clientCredentials(server, a)
    assert.equal(first.status, 200)
    assertHeaders(first, 3, 2)
    const basic = await postForm(server.url(TOKEN_PATHS[1]), { grant_type: 'client_credentials' }, { authorization: basicAuth(a.clientId, a.clientSecret) })
    assert.equal(basic.status, 200, basic.text)
    assertHeaders(basic, 3, 1)
    // Authenticated, then refused by the grant: it still counts for the client.
    const badCode = await postForm(server.url('/v1/token.exchange'), { code: 'unknown', client_id: a.clientId, client_secret: a.clientSecret })
    assert.equal(badCode.status, 400, badCode.text)
    assertHeaders(badCode, 3, 0)
    assertLimited(await clientCredentials(server, a), 3, /per client at the token endpoint/)
    assertLimited(await postForm(server.url('/v1/token.exchange'), { code: 'unknown', client_id: a.clientId, client_secret: a.clientSecret }), 3, /per client/)

    const fromB = await clientCredentials(server, b, TOKEN_PATHS[1])
    assert.equal(fromB.status, 200, fromB.text)
    assertHeaders(fromB, 3, 2)
  })

  it("token endpoint: failed client authentication does not spend the claimed client's budget", async () => {
    const server = await start({ tokenPerClient: 2 })
    const victim = await privateApp(server.storage)
    for (let i = 0; i < 10; i++) {
      const res =
        i % 2
          ? await clientCredentials(server, { clientId: victim.clientId, clientSecret: `guess-${i}` })
          : await postForm(server.url(TOKEN_PATHS[1]), { grant_type: 'client_credentials' }, { authorization: basicAuth(victim.clientId, `guess-${i}`) })
      assert.equal(res.status, 401, res.text)
      assert.equal(res.headers.get('ratelimit-limit'), '1000', 'only the per-address limit counted it')
    }
    const mine = await clientCredentials(server, victim)
    assert.equal(mine.status, 200, mine.text)
    assertHeaders(mine, 2, 1)
    assert.equal((await clientCredentials(server, victim)).status, 200)
    assertLimited(await clientCredentials(server, victim), 2, /per client/)
  })

  it('API: per access token and per client, counted only for accepted tokens, /v1/permissions included', async () => {
    const server = await start({ perToken: 3, perClient: 5 })
    const a = await privateApp(server.storage)
    const b = await privateApp(server.storage)
    const [t1, t2, t3] = [await getToken(server, a), await getToken(server, a), await getToken(server, a)]

    // Refused tokens are not counted against anything.
    for (let i = 0; i < 6; i++) assert.equal((await request(server.url(WORKORDERS), { headers: bearer(`${t1}x`) })).status, 401)

    // The headers show the tightest limit: the token's 3 before the client's 5.
    const r1 = await request(server.url(WORKORDERS), { headers: bearer(t1!) })
    assert.equal(r1.status, 200, r1.text)
    assertHeaders(r1, 3, 2)
    const r2 = await request(server.url('/v1/permissions'), { headers: bearer(t1!) })
    assert.equal(r2.status, 200, r2.text)
    assertHeaders(r2, 3, 1)
    assert.equal((await request(server.url(`${WORKORDERS}?access_token=${t1}`))).status, 200)
    assertLimited(await request(server.url(WORKORDERS), { headers: bearer(t1!) }), 3, /per access token/)

    // A second token of the same client: its own 3, but the client has 2 of 5 left.
    const s1 = await request(server.url(WORKORDERS), { headers: bearer(t2!) })
    assert.equal(s1.status, 200)
    assertHeaders(s1, 5, 1)
    const s2 = await postJson(server.url(WORKORDERS), { title: 'counted' }, bearer(t2!))
    assert.equal(s2.status, 201, s2.text)
    assertHeaders(s2, 5, 0)
    assertLimited(await request(server.url('/v1/permissions'), { headers: bearer(t3!) }), 5, /per client;/)

    // Another client is not affected.
    const other = await request(server.url(WORKORDERS), { headers: bearer(await getToken(server, b)) })
    assert.equal(other.status, 200, other.text)
    assertHeaders(other, 3, 2)
  })

  it('an unreachable Redis neither stops the server nor fails requests: they go through without limits', async () => {
    const server = await start({ tokenPerAddress: 1, tokenPerClient: 1, perToken: 1, perClient: 1 }, { redisUrl: `redis://127.0.0.1:${await freePort()}` })
    const f = await privateApp(server.storage)
    for (let i = 0; i < 3; i++) {
      const res = await clientCredentials(server, f)
      assert.equal(res.status, 200, res.text)
      assert.equal(res.headers.get('ratelimit-limit'), null)
      assert.equal((await request(server.url(WORKORDERS), { headers: bearer(res.json.access_token) })).status, 200)
    }
  })

  it('settings: defaults, environment, validation', () => {
    const d = loadConfig({}, { issuer: 'https://auth.example' })
    assert.deepEqual(d.rateLimits, { windowSeconds: 60, perToken: 600, perClient: 1200, tokenPerClient: 300, tokenPerAddress: 600, registerPerAddress: 30 })
    assert.equal(d.redisUrl, undefined)
    assert.equal(d.rateLimitPrefix, 'fieldgate:https://auth.example:')
    const e = loadConfig({
      REDIS_URL: 'redis://127.0.0.1:6379/2',
      FIELDGATE_RATE_LIMIT_PREFIX: 'acme:',
      FIELDGATE_RATE_LIMIT_WINDOW: '10',
      FIELDGATE_RATE_LIMIT_PER_TOKEN: '5',
      FIELDGATE_RATE_LIMIT_TOKEN_PER_ADDRESS: '0',
    })
    assert.deepEqual(e.rateLimits, { windowSeconds: 10, perToken: 5, perClient: 1200, tokenPerClient: 300, tokenPerAddress: 0, registerPerAddress: 30 })
    assert.equal(e.redisUrl, 'redis://127.0.0.1:6379/2')
    assert.equal(e.rateLimitPrefix, 'acme:')
    assert.ok(Object.isFrozen(e.rateLimits))
    assert.throws(() => loadConfig({ FIELDGATE_RATE_LIMIT_PER_CLIENT: '1.5' }), ConfigError)
    assert.throws(() => loadConfig({ FIELDGATE_RATE_LIMIT_PER_CLIENT: '-1' }), ConfigError)
    assert.throws(() => loadConfig({ FIELDGATE_RATE_LIMIT_WINDOW: '0' }), ConfigError)
    assert.throws(() => loadConfig({ REDIS_URL: 'http://127.0.0.1:6379' }), ConfigError)
  })
})

describe('rate limits shared across two server processes on Redis', () => {
  const redisUrl = process.env.REDIS_URL || undefined
  const children: ServerProcess[] = []
  const dirs: string[] = []
  after(async () => {
    await Promise.all(children.map((c) => c.stop()))
    for (const d of dirs) rmSync(d, { recursive: true, force: true })
  })

  it('N requests split over both processes spend one budget: the (N+1)-th is 429 on either', {
    timeout: 30_000,
    skip: redisUrl ? false : 'REDIS_URL is not set (CI sets REDIS_URL=redis://127.0.0.1:6379)',
  }, async () => {
    const dataDir = tempDir('fg-rl-')
    dirs.push(dataDir)
    const rt = await openStore(dataDir)
    let a: PrivateFixture, b: PrivateFixture
    try {
      a = await privateApp(rt.storage)
      b = await privateApp(rt.storage)
    } finally {
      await rt.close()
    }
    const [portA, portB] = [await freePort(), await freePort()]
    const env = {
      FIELDGATE_DATA_DIR: dataDir,
      FIELDGATE_ISSUER: `http://127.0.0.1:${portA}`,
      REDIS_URL: redisUrl!,
      // A fresh prefix: no other run or test shares these counters.
      FIELDGATE_RATE_LIMIT_PREFIX: `fieldgate-test:${randomBytes(8).toString('hex')}:`,
      FIELDGATE_RATE_LIMIT_TOKEN_PER_CLIENT: '4',
      FIELDGATE_RATE_LIMIT_PER_TOKEN: '6',
    }
    const started = await Promise.allSettled([spawnServe(portA, env), spawnServe(portB, env)])
    for (const s of started) if (s.status === 'fulfilled') children.push(s.value)
    for (const s of started) if (s.status === 'rejected') throw s.reason
    const procs = children.slice(-2)
    const at = (i: number) => ({ url: (path: string) => procs[i % 2]!.origin + path })

    // Token endpoint, per client: 4 tokens alternating between the processes, then 429 on both.
    const tokens: string[] = []
    for (let i = 0; i < 4; i++) {
      const res = await clientCredentials(at(i), a!)
      assert.equal(res.status, 200, res.text)
      assertHeaders(res, 4, 3 - i)
      tokens.push(res.json.access_token)
    }
    for (let i = 0; i < 2; i++) assertLimited(await clientCredentials(at(i), a!), 4, /per client/)
    // The other client has its own budget on both.
    for (let i = 0; i < 2; i++) assert.equal((await clientCredentials(at(i), b!)).status, 200)

    // API, per token: 6 calls alternating, then 429 on both; another token of the client still works.
    for (let i = 0; i < 6; i++) {
      const res = await request(at(i).url(WORKORDERS), { headers: bearer(tokens[0]!) })
      assert.equal(res.status, 200, res.text)
      assertHeaders(res, 6, 5 - i)
    }
    for (let i = 0; i < 2; i++) assertLimited(await request(at(i).url(WORKORDERS), { headers: bearer(tokens[0]!) }), 6, /per access token/)
    for (let i = 0; i < 2; i++) assert.equal((await request(at(i).url('/v1/permissions'), { headers: bearer(tokens[1]!) })).status, 200)
  })
})

describe('sign-in attempts shared across two servers on Redis', () => {
  const redisUrl = process.env.REDIS_URL || undefined
  const servers: TestServer[] = []
  after(async () => {
    for (const s of servers.reverse()) await s.close()
  })

  /** Two servers on one store (one data dir, so one master key) and one issuer, as a deployment has. */
  async function pair(overrides: ConfigOverrides): Promise<[TestServer, TestServer]> {
    const signInLimits = { windowSeconds: 60, perAccountAddress: 4, delaySeconds: 60, perAddress: 1000 }
    const a = await startServer({ overrides: { signInLimits, ...overrides } })
    servers.push(a)
    const b = await startServer({ dataDir: a.dataDir, overrides: { signInLimits, issuer: a.issuer, ...overrides } })
    servers.push(b)
    return [a, b]
  }

  async function guessAlternately(a: TestServer, b: TestServer): Promise<[Res, Res]> {
    const email = `farmer-${randomBytes(4).toString('hex')}@example.com`
    await createUser(a.runtime.ctx, cliActor, { email, password: Person.password })
    const at = [new Person(a, email), new Person(b, email)]
    for (let i = 0; i < 4; i++) assert.equal((await at[i % 2]!.signIn('not the password')).status, 401, `guess ${i + 1}`)
    return [await at[0]!.signIn(), await at[1]!.signIn()]
  }

  it('failed sign-ins at either server count against one budget per account and address', {
    skip: redisUrl ? false : 'REDIS_URL is not set (CI sets REDIS_URL=redis://127.0.0.1:6379)',
  }, async () => {
    const [a, b] = await pair({ redisUrl: redisUrl!, rateLimitPrefix: `fieldgate-test:${randomBytes(8).toString('hex')}:` })
    for (const res of await guessAlternately(a, b)) {
      assert.equal(res.status, 429, 'the right password, after the account used its guesses across both servers')
      assert.ok(Number(res.headers.get('retry-after')) > 0)
    }
  })

  it('while Redis is unreachable each server still counts on its own, and sign-in stays up', async () => {
    const [a, b] = await pair({ redisUrl: `redis://127.0.0.1:${await freePort()}` })
    const [first, second] = await guessAlternately(a, b)
    assert.equal(first.status, 303, 'two guesses here are under the limit of 4: the right password signs in')
    assert.equal(second.status, 303)
    const email = `farmer-${randomBytes(4).toString('hex')}@example.com`
    await createUser(a.runtime.ctx, cliActor, { email, password: Person.password })
    const person = new Person(a, email)
    for (let i = 0; i < 4; i++) assert.equal((await person.signIn('wrong')).status, 401)
    assert.equal((await person.signIn()).status, 429, 'four guesses at one server are counted in its memory')
  })
})

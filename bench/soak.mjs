#!/usr/bin/env node
// Fieldgate soak run: two `fieldgate serve` instances on one PostgreSQL schema (fresh, dropped at the
// end) with REDIS_URL, behind a loopback round-robin TCP proxy, SOAK_SECONDS of mixed traffic through
// the proxy, then a 5x overload phase. Markdown report on stdout and in bench/results/soak-latest.md
// (raw figures in soak-latest.json); progress on stderr.
//
//   npx tsc -b && node bench/soak.mjs          # 10 minutes of mixed traffic, then the overload phase
//   SOAK_SECONDS=60 node bench/soak.mjs        # smoke run
//
// Everything listens on 127.0.0.1; every loop stops at its deadline; every child runs in its own
// process group and is killed at the end, on error and on SIGINT/SIGTERM. The process-group, port and
// CLI helpers are bench/lib/children.mjs, shared with bench/run.mjs.
import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdir, stat, writeFile } from 'node:fs/promises'
import http from 'node:http'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { HOST, cli, fieldgateCli, freePort, onInterrupt, packageVersion, root, runFacts, sleep, startChild, stopChildren, tail, waitReady } from './lib/children.mjs'

const execFileP = promisify(execFile)

const benchDir = path.dirname(fileURLToPath(import.meta.url))

const number = (name, fallback, min, max) => {
  const raw = process.env[name]
  if (raw === undefined || raw === '') return fallback
  const n = Number(raw)
  if (!Number.isFinite(n) || n < min || n > max) throw new Error(`${name} must be a number from ${min} to ${max}`)
  return n
}
const SOAK_SECONDS = number('SOAK_SECONDS', 600, 5, 24 * 3600)
const USERS = Math.round(number('SOAK_USERS', 8, 1, 40)) // concurrent closed-loop clients, each with its own person and browser
const OVERLOAD_SECONDS = number('SOAK_OVERLOAD_SECONDS', 15, 3, 600)
const CAPACITY_CONNECTIONS = Math.round(number('SOAK_CAPACITY_CONNECTIONS', 50, 1, 1000))
const OVERLOAD_FACTOR = 5
const RSS_EVERY_MS = 5000
const REVOKED_AFTER_MS = 1500 // revocations reach every instance through the change feed within 1 s
const JWT_REVOKE_EVERY_MS = 10_000
const DATABASE_URL = process.env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/test'
const REDIS_URL = process.env.REDIS_URL || 'redis://127.0.0.1:6379'
const NO_RATE_LIMITS = {
  FIELDGATE_RATE_LIMIT_PER_TOKEN: '0',
  FIELDGATE_RATE_LIMIT_PER_CLIENT: '0',
  FIELDGATE_RATE_LIMIT_TOKEN_PER_CLIENT: '0',
  FIELDGATE_RATE_LIMIT_TOKEN_PER_ADDRESS: '0',
}
const SCOPE = 'alerts:write'

const log = (msg) => process.stderr.write(`[soak] ${msg}\n`)

// ---------------------------------------------------------------------------------------------------
// Child processes (bench/lib/children.mjs); the schema is dropped with them.

let schemaToDrop

async function cleanup() {
  await stopChildren()
  if (schemaToDrop) {
    await dropSchema(schemaToDrop).catch((err) => log(`could not drop schema ${schemaToDrop}: ${err.message}`))
    schemaToDrop = undefined
  }
}

onInterrupt(log, cleanup)

// ---------------------------------------------------------------------------------------------------
// PostgreSQL: a fresh schema per run, through DATABASE_URL's `options` (search_path).

async function pgQuery(sql) {
  const { default: pg } = await import('pg')
  const client = new pg.Client({ connectionString: DATABASE_URL })
  await client.connect()
  try {
    await client.query(sql)
  } finally {
    await client.end()
  }
}
const dropSchema = (schema) => pgQuery(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)

function schemaUrl(schema) {
  const url = new URL(DATABASE_URL)
  url.searchParams.set('options', `-c search_path=${schema}`)
  return url.toString()
}

// ---------------------------------------------------------------------------------------------------
// HTTP through the proxy: node:http on keep-alive agents, each request timed and judged.

const form = (fields) => new URLSearchParams(fields).toString()

function send(agent, port, method, target, { headers = {}, body } = {}) {
  const start = performance.now()
  return new Promise((resolve) => {
    const req = http.request(
      { host: HOST, port, method, path: target, agent, headers: body === undefined ? headers : { ...headers, 'content-length': Buffer.byteLength(body) } },
      (res) => {
        let text = ''
        res.setEncoding('utf8').on('data', (d) => {
          text += d
        })
        res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, text, ms: performance.now() - start }))
        res.on('error', (err) => resolve({ status: 0, headers: {}, text: err.message, ms: performance.now() - start }))
      },
    )
    req.setTimeout(10_000, () => req.destroy(new Error('timeout after 10 s')))
    req.on('error', (err) => resolve({ status: 0, headers: {}, text: err.message, ms: performance.now() - start }))
    req.end(body)
  })
}

/** Per kind of request: latencies, and what was answered against what was expected. */
class Tally {
  constructor() {
    this.kinds = new Map()
    this.samples = []
  }
  kind(name) {
    let k = this.kinds.get(name)
    if (!k) {
      k = { name, ms: [], ok: 0, refused: 0, unexpected: 0, network: 0, shed: 0 }
      this.kinds.set(name, k)
    }
    return k
  }
  /** `refusal` marks a request that must be refused (a revoked token): its 401 is counted apart. */
  record(name, res, expected, refusal = false) {
    const k = this.kind(name)
    k.ms.push(res.ms)
    if (res.status === expected) {
      if (refusal) k.refused++
      else k.ok++
      return true
    }
    if (res.status === 0) k.network++
    else k.unexpected++
    if (res.status === 503 && res.text.includes('temporarily_unavailable')) k.shed++
    if (this.samples.length < 20) this.samples.push(`${name}: ${res.status || 'network'} (expected ${expected}) ${res.text.slice(0, 160)}`)
    return false
  }
}

// ---------------------------------------------------------------------------------------------------
// One simulated customer: a person who owns a tenant, signed in once through the real pages, and an
// integration that connects through the consent page, calls the API and disconnects. Requests alternate
// between two connections made one after the other, so through the round-robin proxy they alternate
// between the instances: a token revoked on one is checked on the other.

const hiddenFields = (html) =>
  Object.fromEntries([...html.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)].map((m) => [m[1], m[2].replace(/&amp;/g, '&').replace(/&quot;/g, '"')]))

const pkce = async () => {
  const { createHash } = await import('node:crypto')
  const verifier = randomBytes(32).toString('base64url')
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') }
}

class Customer {
  constructor(world, person, tally) {
    Object.assign(this, { world, person, tally })
    this.agents = [new http.Agent({ keepAlive: true, maxSockets: 1 }), new http.Agent({ keepAlive: true, maxSockets: 1 })]
    this.turn = 0
    this.cookies = new Map()
    this.jwt = world.jwt
    this.live = [] // opaque tokens of this person's current grant
    this.revoked = [] // { token, at }
    this.exchanges = 0
  }

  request(method, target, opts = {}) {
    const cookie = [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ')
    const headers = { ...opts.headers, ...(cookie ? { cookie } : {}) }
    return send(this.agents[this.turn++ % 2], this.world.port, method, target, { ...opts, headers }).then((res) => {
      for (const c of [res.headers['set-cookie'] ?? []].flat()) {
        const [pair] = c.split(';')
        const i = pair.indexOf('=')
        this.cookies.set(pair.slice(0, i), pair.slice(i + 1))
      }
      return res
    })
  }

  postForm(target, fields, headers = {}) {
    return this.request('POST', target, { headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers }, body: form(fields) })
  }

  /** Opens both connections in turn (the proxy alternates instances) and signs in. */
  async start() {
    for (const _ of this.agents) await this.request('GET', '/healthz')
    const page = await this.request('GET', '/login')
    const res = await this.postForm('/login', { ...hiddenFields(page.text), email: this.person.email, password: this.person.password })
    this.tally.record('sign-in (POST /login)', res, 303)
    if (res.status !== 303) throw new Error(`sign-in failed: ${res.status} ${res.text.slice(0, 200)}`)
  }

  async clientCredentials() {
    const res = await this.postForm('/oauth/token', this.world.ccBody)
    if (this.tally.record('token: client_credentials', res, 200)) this.jwt = JSON.parse(res.text).access_token
  }

  async apiWithJwt() {
    this.tally.record('API with a JWT (GET /v1/alerts)', await this.request('GET', '/v1/alerts', { headers: { authorization: `Bearer ${this.jwt}` } }), 200)
  }

  async apiWithOpaque() {
    if (this.live.length === 0) return this.consent()
    const token = this.live[Math.floor(Math.random() * this.live.length)]
    this.tally.record('API with an opaque token (GET /v1/alerts)', await this.request('GET', '/v1/alerts', { headers: { authorization: `Bearer ${token}` } }), 200)
  }

  /** The consent page with its CSRF token, then the code exchanged at either endpoint in turn. */
  async consent() {
    const app = this.world.publicApp
    const usePkce = this.exchanges % 2 === 1
    const p = usePkce ? await pkce() : undefined
    const query = form({ client_id: app.client_id, scope: SCOPE, state: 'soak', ...(p ? { code_challenge: p.challenge, code_challenge_method: 'S256' } : {}) })
    const page = await this.request('GET', `/authorize?${query}`)
    if (!this.tally.record('consent page (GET /authorize)', page, 200)) return
    const decided = await this.postForm('/consent', { ...hiddenFields(page.text), decision: 'allow' })
    if (!this.tally.record('consent form (POST /consent)', decided, 303)) return
    const code = new URL(decided.headers.location).searchParams.get('code')
    this.exchanges++
    const res = usePkce
      ? await this.postForm('/oauth/token', { grant_type: 'authorization_code', code, code_verifier: p.verifier, client_id: app.client_id, client_secret: app.client_secret })
      : await this.postForm('/v1/token.exchange', { code, client_id: app.client_id, client_secret: app.client_secret })
    if (this.tally.record(usePkce ? 'code exchange (POST /oauth/token)' : 'code exchange (POST /v1/token.exchange)', res, 200)) this.live.push(JSON.parse(res.text).access_token)
  }

  /** RFC 7009 revocation of one token, or the fieldmargin disconnect that ends the grant and all its tokens. */
  async revoke() {
    if (this.live.length === 0) return this.consent()
    const at = performance.now()
    if (Math.random() < 0.5) {
      const token = this.live.pop()
      const app = this.world.publicApp
      const res = await this.postForm('/oauth/revoke', { token, client_id: app.client_id, client_secret: app.client_secret })
      if (this.tally.record('revoke a token (POST /oauth/revoke)', res, 200)) this.revoked.push({ token, at })
      else this.live.push(token)
    } else {
      const res = await this.postForm('/v1/token.revoke', { access_token: this.live[0] })
      if (this.tally.record('disconnect: revoke the grant (POST /v1/token.revoke)', res, 200)) {
        for (const token of this.live) this.revoked.push({ token, at })
        this.live = []
      }
    }
    if (this.revoked.length > 50) this.revoked.splice(0, this.revoked.length - 50)
  }

  /** A token revoked a while ago (on either instance) must be refused. */
  async useRevoked() {
    const old = this.revoked.filter((r) => performance.now() - r.at > REVOKED_AFTER_MS)
    if (old.length === 0) return this.apiWithJwt()
    const { token } = old[Math.floor(Math.random() * old.length)]
    this.tally.record('API with a revoked token (must be 401)', await this.request('GET', '/v1/alerts', { headers: { authorization: `Bearer ${token}` } }), 401, true)
  }

  close() {
    for (const a of this.agents) a.destroy()
  }
}

/**
 * JWTs end with their grant: every JWT_REVOKE_EVERY_MS an operator makes a tenant and a private app with
 * the admin API, has a JWT issued, sees it accepted on both instances, revokes the grant, and 1.5 s later
 * must see the JWT refused on both (the instance that did not revoke learns it from the change feed).
 */
async function revokeJwtGrants(world, tally, deadline) {
  const agents = [new http.Agent({ keepAlive: true, maxSockets: 1 }), new http.Agent({ keepAlive: true, maxSockets: 1 })]
  const admin = { authorization: `Bearer ${world.adminToken}`, 'content-type': 'application/json' }
  const on = (i, method, target, opts) => send(agents[i], world.port, method, target, opts)
  const json = (i, method, target, body) => on(i, method, target, { headers: admin, ...(body ? { body: JSON.stringify(body) } : {}) })
  const both = async (name, jwt, expected) => {
    for (const i of [0, 1]) tally.record(name, await on(i, 'GET', '/v1/alerts', { headers: { authorization: `Bearer ${jwt}` } }), expected, expected === 401)
  }
  // Opened one after the other, so the proxy puts them on different instances.
  for (const i of [0, 1]) await on(i, 'GET', '/healthz')
  for (let n = 0; performance.now() + JWT_REVOKE_EVERY_MS < deadline; n++) {
    const next = performance.now() + JWT_REVOKE_EVERY_MS
    const t = await json(n % 2, 'POST', '/admin/v1/tenants', { name: `Soak revoked ${n}`, environment: 'sandbox' })
    if (!tally.record('admin: create a tenant', t, 201)) break
    const a = await json(n % 2, 'POST', '/admin/v1/apps', { name: `soak doomed ${n}`, kind: 'private', tenant_id: JSON.parse(t.text).id, scopes: SCOPE })
    if (!tally.record('admin: create a private app', a, 201)) break
    const app = JSON.parse(a.text)
    const tok = await on(n % 2, 'POST', '/oauth/token', {
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: form({ grant_type: 'client_credentials', client_id: app.client_id, client_secret: app.client_secret, scope: SCOPE }),
    })
    if (!tally.record('token: client_credentials', tok, 200)) break
    const jwt = JSON.parse(tok.text).access_token
    await both('API with a JWT (GET /v1/alerts)', jwt, 200)
    const grants = await json(n % 2, 'GET', `/admin/v1/grants?tenant_id=${JSON.parse(t.text).id}`)
    if (!tally.record('admin: list grants', grants, 200)) break
    const revoked = await json(n % 2, 'POST', `/admin/v1/grants/${JSON.parse(grants.text)[0].id}/revoke`)
    if (!tally.record("revoke a JWT's grant (POST /admin/v1/grants/:id/revoke)", revoked, 200)) break
    await sleep(REVOKED_AFTER_MS)
    await both('API with a JWT whose grant is revoked (must be 401)', jwt, 401)
    await sleep(Math.max(0, next - performance.now()))
  }
  for (const a of agents) a.destroy()
}

// Operations and their weights; a consent is 3 requests, so revocations are about 10 % of requests.
const MIX = [
  ['clientCredentials', 15],
  ['apiWithJwt', 30],
  ['apiWithOpaque', 25],
  ['consent', 8],
  ['revoke', 10],
  ['useRevoked', 5],
]
const MIX_TOTAL = MIX.reduce((s, [, w]) => s + w, 0)
function pick() {
  let r = Math.random() * MIX_TOTAL
  for (const [op, w] of MIX) {
    r -= w
    if (r < 0) return op
  }
  return MIX[0][0]
}

async function soak(world, customers, tally, seconds) {
  const deadline = performance.now() + seconds * 1000
  await Promise.all([
    ...customers.map(async (c) => {
      while (performance.now() < deadline) await c[pick()]()
    }),
    revokeJwtGrants(world, tally, deadline),
  ])
}

// ---------------------------------------------------------------------------------------------------
// Memory: RSS of each instance's process group, every few seconds.

async function groupRssKb(pgid) {
  const { stdout } = await execFileP('ps', ['-o', 'rss=', '-g', String(pgid)]).catch(() => ({ stdout: '' }))
  return stdout
    .split('\n')
    .map(Number)
    .filter((n) => n > 0)
    .reduce((a, b) => a + b, 0)
}

function sampleRss(instances) {
  const series = instances.map(() => [])
  const started = performance.now()
  const take = async () => {
    const t = (performance.now() - started) / 1000
    const kb = await Promise.all(instances.map((i) => groupRssKb(i.info.child.pid)))
    kb.forEach((v, i) => {
      series[i].push({ t, mb: v / 1024 })
    })
  }
  const timer = setInterval(take, RSS_EVERY_MS)
  return {
    series,
    first: take(),
    stop: async () => {
      clearInterval(timer)
      await take()
    },
  }
}

// ---------------------------------------------------------------------------------------------------
// Overload: raw keep-alive sockets repeating one token request (a light client, so the servers are what
// is busy); every answer's status, latency, and for 503s the OAuth shape and Retry-After.

function hammer(port, raw, more, answers) {
  return new Promise((resolve) => {
    const socket = net.connect(port, HOST)
    let buf = Buffer.alloc(0)
    let start = 0
    const next = () => {
      if (!more()) return socket.end()
      start = performance.now()
      socket.write(raw)
    }
    socket.on('connect', next)
    socket.on('data', (chunk) => {
      buf = Buffer.concat([buf, chunk])
      for (;;) {
        const end = buf.indexOf('\r\n\r\n')
        if (end < 0) return
        const head = buf.subarray(0, end).toString('latin1')
        const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0)
        if (buf.length < end + 4 + length) return
        const status = Number(head.slice(9, 12))
        const answer = { status, ms: performance.now() - start }
        if (status !== 200) {
          answer.body = buf.subarray(end + 4, end + 4 + length).toString('utf8')
          answer.retryAfter = /\r\nretry-after: *(\S+)/i.exec(head)?.[1]
        }
        answers.push(answer)
        buf = buf.subarray(end + 4 + length)
        next()
      }
    })
    socket.setTimeout(15_000, () => socket.destroy(new Error('timeout')))
    socket.on('error', (err) => answers.push({ status: 0, ms: performance.now() - start, body: err.message }))
    socket.on('close', resolve)
  })
}

const quantile = (xs, q) => {
  if (xs.length === 0) return NaN
  const s = Float64Array.from(xs).sort()
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]
}

async function loadPhase(world, connections, seconds) {
  const raw = Buffer.from(
    `POST /oauth/token HTTP/1.1\r\nhost: ${HOST}:${world.port}\r\ncontent-type: application/x-www-form-urlencoded\r\n` +
      `content-length: ${Buffer.byteLength(world.ccBody)}\r\n\r\n${world.ccBody}`,
  )
  const answers = []
  const ready = world.instances.map(() => [])
  let probing = true
  const probe = (async () => {
    while (probing) {
      const rs = await Promise.all(world.instances.map((i) => send(undefined, i.port, 'GET', '/readyz')))
      rs.forEach((r, i) => {
        ready[i].push(r.status)
      })
      await sleep(250)
    }
  })()
  const deadline = performance.now() + seconds * 1000
  const started = performance.now()
  await Promise.all(Array.from({ length: connections }, () => hammer(world.port, raw, () => performance.now() < deadline, answers)))
  const elapsed = (performance.now() - started) / 1000
  probing = false
  await probe
  const ok = answers.filter((a) => a.status === 200)
  const shed = answers.filter((a) => a.status === 503)
  const badShed = shed.filter((a) => !a.retryAfter || !/"error":"temporarily_unavailable"/.test(a.body ?? ''))
  const others = answers.filter((a) => a.status !== 200 && a.status !== 503)
  const statuses = {}
  for (const a of answers) statuses[a.status] = (statuses[a.status] ?? 0) + 1
  return {
    connections,
    seconds: elapsed,
    requests: answers.length,
    statuses,
    okPerSecond: ok.length / elapsed,
    shedShare: answers.length ? shed.length / answers.length : 0,
    ok: {
      count: ok.length,
      p50: quantile(
        ok.map((a) => a.ms),
        0.5,
      ),
      p99: quantile(
        ok.map((a) => a.ms),
        0.99,
      ),
    },
    shed: {
      count: shed.length,
      p50: quantile(
        shed.map((a) => a.ms),
        0.5,
      ),
      p99: quantile(
        shed.map((a) => a.ms),
        0.99,
      ),
      malformed: badShed.length,
    },
    serverErrors: answers.filter((a) => a.status >= 500 && a.status !== 503).length,
    others: others.length,
    otherSamples: others.slice(0, 5).map((a) => `${a.status} ${(a.body ?? '').slice(0, 120)}`),
    unready: ready.map((r) => ({ probes: r.length, unavailable: r.filter((s) => s === 503).length })),
  }
}

async function shedCounts(instances) {
  return Promise.all(
    instances.map(async (i) => {
      const res = await send(undefined, i.port, 'GET', '/metrics')
      return Number(/^fieldgate_requests_shed_total (\d+)/m.exec(res.text)?.[1] ?? NaN)
    }),
  )
}

// ---------------------------------------------------------------------------------------------------
// Set-up: schema, tenants, apps and people through the CLI, two instances, the proxy.

async function setUp() {
  const id = randomBytes(4).toString('hex')
  const schema = `fg_soak_${id}`
  await pgQuery(`CREATE SCHEMA ${schema}`)
  schemaToDrop = schema
  // Migrated here, where the store knows its schema: Kysely's migrator, given none (as the CLI and
  // `serve` are, with only search_path), takes a migration table in any schema of the database for its own.
  const { openStorage } = await import('@fieldgate/storage')
  const store = openStorage({ databaseUrl: DATABASE_URL, dataDir: os.tmpdir(), schema })
  try {
    await store.migrate()
  } finally {
    await store.close()
  }
  const [port1, port2, proxyPort] = [await freePort(), await freePort(), await freePort()]
  const issuer = `http://${HOST}:${proxyPort}`
  const adminToken = randomBytes(24).toString('hex')
  const env = {
    DATABASE_URL: schemaUrl(schema),
    REDIS_URL,
    FIELDGATE_MASTER_KEY: randomBytes(32).toString('hex'),
    FIELDGATE_ISSUER: issuer,
    FIELDGATE_ADMIN_TOKEN: adminToken,
    FIELDGATE_RATE_LIMIT_PREFIX: `fieldgate-soak-${id}:`,
    FIELDGATE_LOG_LEVEL: 'warn',
    ...NO_RATE_LIMITS,
    FIELDGATE_HOST: undefined,
    FIELDGATE_PORT: undefined,
    FIELDGATE_AUDIENCE: undefined,
    FIELDGATE_DATA_DIR: undefined,
  }
  for (const [k, v] of Object.entries(env)) if (v === undefined) delete env[k]
  log(`schema ${schema}; creating tenants, apps and ${USERS} people`)
  const tenant = await fieldgateCli(env, 'tenants', 'create', '--name', 'Soak Field Services', '--environment', 'sandbox')
  const privateApp = await fieldgateCli(env, 'apps', 'create', '--name', 'soak client', '--kind', 'private', '--tenant', tenant.id, '--scopes', `api ${SCOPE}`)
  const publicApp = await fieldgateCli(
    env,
    'apps',
    'create',
    '--name',
    'soak integration',
    '--kind',
    'public',
    '--environment',
    'sandbox',
    '--tenant',
    tenant.id,
    '--scopes',
    SCOPE,
    '--redirect-uri',
    'https://bench.example/cb',
  )
  // One tenant per person: a grant is per app and tenant, so one person's disconnect ends only their tokens.
  const people = await Promise.all(
    Array.from({ length: USERS }, async (_, i) => {
      const t = await fieldgateCli(env, 'tenants', 'create', '--name', `Soak Farm ${i}`, '--environment', 'sandbox')
      const person = { email: `owner${i}@soak.example`, password: `soak password ${id} ${i}` }
      await fieldgateCli(env, 'users', 'create', '--email', person.email, '--password', person.password, '--tenant', t.id, '--role', 'owner')
      return person
    }),
  )
  const instances = []
  for (const port of [port1, port2]) {
    const info = startChild(`fieldgate serve on ${port}`, [cli, 'serve', '--workers', '1', '--port', String(port), '--host', HOST], env)
    instances.push({ info, port })
  }
  for (const i of instances) await waitReady(i.info, async () => ((await send(undefined, i.port, 'GET', '/readyz')).status === 200 ? true : undefined))
  const proxy = startChild('round-robin proxy', [fileURLToPath(import.meta.url), '--proxy', String(proxyPort), String(port1), String(port2)], {})
  await waitReady(proxy, async () => (proxy.output.includes('READY') ? true : undefined))
  const ccBody = form({ grant_type: 'client_credentials', client_id: privateApp.client_id, client_secret: privateApp.client_secret, scope: SCOPE })
  const first = await send(undefined, proxyPort, 'POST', '/oauth/token', { headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: ccBody })
  if (first.status !== 200) throw new Error(`the first token request answered ${first.status}: ${first.text.slice(0, 200)}`)
  const jwt = JSON.parse(first.text).access_token
  for (let i = 0; i < 5; i++) {
    const res = await send(undefined, proxyPort, 'POST', '/v1/alerts', {
      headers: { authorization: `Bearer ${jwt}`, 'content-type': 'application/json' },
      body: JSON.stringify({ title: `Soak alert ${i}` }),
    })
    if (res.status !== 201) throw new Error(`POST /v1/alerts answered ${res.status}: ${res.text.slice(0, 200)}`)
  }
  return { schema, port: proxyPort, issuer, instances, proxy, ccBody, jwt, publicApp, people, adminToken }
}

// ---------------------------------------------------------------------------------------------------
// Report

const fmtInt = (n) => Math.round(n).toLocaleString('en-US')
const fmtMs = (n) => (Number.isNaN(n) ? '–' : n < 10 ? n.toFixed(1) : fmtInt(n))
const pct = (n) => `${(n * 100).toFixed(n < 0.01 ? 3 : 1)} %`

async function environment() {
  return {
    ...(await runFacts('node bench/soak.mjs', ['SOAK_SECONDS', 'SOAK_USERS', 'SOAK_OVERLOAD_SECONDS', 'SOAK_CAPACITY_CONNECTIONS'])),
    pg: await packageVersion('node_modules/pg/package.json'),
  }
}

function summarize(tally, seconds) {
  const kinds = [...tally.kinds.values()].map((k) => ({
    name: k.name,
    requests: k.ms.length,
    ok: k.ok,
    refused: k.refused,
    unexpected: k.unexpected,
    network: k.network,
    shed: k.shed,
    p50: quantile(k.ms, 0.5),
    p99: quantile(k.ms, 0.99),
  }))
  const requests = kinds.reduce((s, k) => s + k.requests, 0)
  const errors = kinds.reduce((s, k) => s + k.unexpected + k.network, 0)
  return { kinds, requests, errors, errorRate: requests ? errors / requests : 0, perSecond: requests / seconds, samples: tally.samples }
}

function rssSummary(series) {
  return series.map((s) => {
    const mbs = s.map((x) => x.mb)
    const start = mbs[0] ?? NaN
    const end = mbs.at(-1) ?? NaN
    // Growth over the second half, where start-up allocation has settled: a leak shows as a steady rise.
    const half = s.filter((x) => x.t >= (s.at(-1)?.t ?? 0) / 2)
    return { samples: s.length, start, peak: Math.max(...mbs), end, growth: end - start, secondHalfGrowth: (half.at(-1)?.mb ?? NaN) - (half[0]?.mb ?? NaN) }
  })
}

function report(env, r) {
  const L = []
  L.push('# Fieldgate soak run', '')
  L.push(`- Date: ${env.date}`)
  L.push(`- Command: \`${env.command}\``)
  L.push(`- Node ${env.node}; CPU ${env.cpu}; ${env.os}; ${env.memory}; load average at start ${env.loadAtStart}, at end ${r.loadAtEnd}`)
  L.push(
    `- Fieldgate at ${env.commit}; two \`fieldgate serve --workers 1\` instances on one PostgreSQL schema (fresh, dropped at the end; pg ${env.pg}), REDIS_URL set, rate limits off, overload shedding at its defaults`,
  )
  L.push(
    `- Traffic: ${USERS} closed-loop customers through a loopback round-robin TCP proxy for ${r.soakSeconds} s; each has its own tenant and person, signed in once through the login page`,
  )
  L.push('')
  const s = r.soak
  L.push('## Mixed traffic', '')
  L.push(
    `${fmtInt(s.requests)} requests in ${r.soakSeconds} s: **${fmtInt(s.perSecond)} req/s**; unexpected answers and network errors: **${s.errors}** (${pct(s.errorRate)}).`,
    '',
  )
  L.push('| Kind | requests | as expected | refused as expected | unexpected | network errors | p50 | p99 |')
  L.push('|---|---:|---:|---:|---:|---:|---:|---:|')
  for (const k of s.kinds)
    L.push(
      `| ${k.name} | ${fmtInt(k.requests)} | ${fmtInt(k.ok)} | ${k.refused ? fmtInt(k.refused) : ''} | ${k.unexpected}${k.shed ? ` (${k.shed} shed)` : ''} | ${k.network} | ${fmtMs(k.p50)} ms | ${fmtMs(k.p99)} ms |`,
    )
  L.push('')
  const revocations = s.kinds.filter((k) => /revoke/.test(k.name)).reduce((a, k) => a + k.requests, 0)
  L.push(
    `Revocations are ${pct(revocations / s.requests)} of the requests: opaque tokens and their grants by the customers, and every ${JWT_REVOKE_EVERY_MS / 1000} s a private app's grant through the admin API, after its JWT was accepted by both instances. A revoked token is used again only after ${REVOKED_AFTER_MS} ms (the change feed carries revocations to the other instance); its 401 is counted as refused as expected, a 200 would be unexpected.`,
  )
  if (s.samples.length) L.push('', 'First unexpected answers:', '', ...s.samples.map((x) => `- \`${x.replace(/`/g, "'")}\``))
  L.push('')
  L.push(`## Memory (RSS of each instance, sampled every ${RSS_EVERY_MS / 1000} s)`, '')
  L.push('| Instance | samples | start | peak | end | growth | growth over the second half |')
  L.push('|---|---:|---:|---:|---:|---:|---:|')
  for (const [i, m] of r.rss.entries())
    L.push(
      `| ${i + 1} | ${m.samples} | ${m.start.toFixed(0)} MB | ${m.peak.toFixed(0)} MB | ${m.end.toFixed(0)} MB | ${m.growth >= 0 ? '+' : ''}${m.growth.toFixed(1)} MB | ${m.secondHalfGrowth >= 0 ? '+' : ''}${m.secondHalfGrowth.toFixed(1)} MB |`,
    )
  L.push('')
  L.push(`## Overload: ${OVERLOAD_FACTOR}x the connections`, '')
  const flat = r.capacity.okPerSecond / r.below.okPerSecond
  L.push(
    `\`POST /oauth/token\` client_credentials through the proxy from raw keep-alive sockets, ${OVERLOAD_SECONDS} s per phase: at ${r.below.connections} and ${CAPACITY_CONNECTIONS} connections to find capacity, then at ${OVERLOAD_FACTOR}x ${CAPACITY_CONNECTIONS}. ` +
      `Doubling the connections from ${r.below.connections} to ${CAPACITY_CONNECTIONS} changed the served rate by a factor of ${flat.toFixed(2)}${flat < 1.15 ? ': flat, so ' + CAPACITY_CONNECTIONS + ' connections is at capacity' : ': **still rising, so capacity is above ' + CAPACITY_CONNECTIONS + ' connections** (raise SOAK_CAPACITY_CONNECTIONS)'}.`,
    '',
  )
  L.push('| Phase | connections | requests | 200/s | 503 share | 200 p50 / p99 | 503 p50 / p99 | 5xx other than 503 | other | readyz unavailable (instance 1, 2) |')
  L.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|---|')
  for (const [name, p] of [
    ['half the connections', r.below],
    ['capacity', r.capacity],
    ['overload', r.overload],
  ]) {
    L.push(
      `| ${name} | ${p.connections} | ${fmtInt(p.requests)} | ${fmtInt(p.okPerSecond)} | ${pct(p.shedShare)} | ${fmtMs(p.ok.p50)} / ${fmtMs(p.ok.p99)} ms | ${fmtMs(p.shed.p50)} / ${fmtMs(p.shed.p99)} ms | ${p.serverErrors} | ${p.others} | ${p.unready.map((u) => `${u.unavailable} of ${u.probes}`).join(', ')} |`,
    )
  }
  L.push('')
  const o = r.overload
  L.push(
    `- Statuses in the overload phase: ${Object.entries(o.statuses)
      .map(([k, v]) => `${k === '0' ? 'network error' : k} × ${fmtInt(v)}`)
      .join(', ')}; ${o.shed.malformed} of the 503s lacked Retry-After or the temporarily_unavailable body.`,
  )
  L.push(
    `- Shed requests counted by the instances (\`fieldgate_requests_shed_total\`, whole run): ${r.shedCounted.join(' + ')} = ${fmtInt(r.shedCounted.reduce((a, b) => a + b, 0))}; 503s seen by the clients: ${fmtInt(r.below.shed.count + r.capacity.shed.count + o.shed.count + r.soak.kinds.reduce((a, k) => a + k.shed, 0))}.`,
  )
  L.push(
    `- ${o.serverErrors === 0 && o.others === 0 ? 'No 500 and no network error appeared.' : `**${o.serverErrors} 5xx other than 503 and ${o.others} other answers appeared**: ${o.otherSamples.join('; ')}`}`,
  )
  L.push(
    `- Served tokens per second went from ${fmtInt(r.capacity.okPerSecond)} at capacity to ${fmtInt(o.okPerSecond)} at ${OVERLOAD_FACTOR}x: while an instance sheds it serves nothing for a sample (500 ms), and a closed-loop client resends at once, where a real one waits Retry-After.`,
  )
  L.push('')
  L.push('## Notes', '')
  L.push(`- The load generator, the proxy and both instances share the ${env.cores} cores; figures measure the whole loop on one machine.`)
  L.push('- The proxy does not read /readyz; a real balancer would send the shed share to the instance that is ready.')
  if (Number(env.loadAtStart.split(' ')[0]) > env.cores * 0.25)
    L.push(`- **The machine was not quiet** (load average ${env.loadAtStart} at start): treat these figures as provisional.`)
  return L.join('\n') + '\n'
}

// ---------------------------------------------------------------------------------------------------

async function main() {
  try {
    await stat(path.join(root, 'packages/cli/dist/src/main.js'))
  } catch {
    throw new Error('packages/cli/dist is missing: build first with `npx tsc -b`')
  }
  const env = await environment()
  log(
    `${env.command}: ${SOAK_SECONDS} s of mixed traffic, ${USERS} customers, then ${OVERLOAD_SECONDS} s at ${CAPACITY_CONNECTIONS} and at ${OVERLOAD_FACTOR * CAPACITY_CONNECTIONS} connections`,
  )
  const world = await setUp()
  const tally = new Tally()
  const customers = world.people.map((p) => new Customer(world, p, tally))
  for (const c of customers) await c.start()
  const rss = sampleRss(world.instances)
  await rss.first
  log(`mixed traffic for ${SOAK_SECONDS} s`)
  const started = performance.now()
  const progress = setInterval(
    () => log(`${Math.round((performance.now() - started) / 1000)} s: ${fmtInt([...tally.kinds.values()].reduce((a, k) => a + k.ms.length, 0))} requests`),
    30_000,
  )
  await soak(world, customers, tally, SOAK_SECONDS)
  clearInterval(progress)
  const soakSeconds = (performance.now() - started) / 1000
  await rss.stop()
  for (const c of customers) c.close()
  for (const i of world.instances) if (i.info.exited) throw new Error(`${i.info.label} died during the soak:\n${tail(i.info.output)}`)
  // Capacity: the served rate at half the connections and at CAPACITY_CONNECTIONS; equal rates mean the
  // servers were already saturated, so CAPACITY_CONNECTIONS is at (or past) capacity.
  const half = Math.max(1, Math.round(CAPACITY_CONNECTIONS / 2))
  log(`capacity: ${OVERLOAD_SECONDS} s at ${half} connections`)
  const below = await loadPhase(world, half, OVERLOAD_SECONDS)
  await sleep(2000)
  log(`capacity: ${OVERLOAD_SECONDS} s at ${CAPACITY_CONNECTIONS} connections`)
  const capacity = await loadPhase(world, CAPACITY_CONNECTIONS, OVERLOAD_SECONDS)
  log(`capacity: ${fmtInt(capacity.okPerSecond)} tokens/s, 503 share ${pct(capacity.shedShare)}`)
  await sleep(2000) // let the instances settle between phases
  log(`overload: ${OVERLOAD_SECONDS} s at ${OVERLOAD_FACTOR * CAPACITY_CONNECTIONS} connections`)
  const overload = await loadPhase(world, OVERLOAD_FACTOR * CAPACITY_CONNECTIONS, OVERLOAD_SECONDS)
  log(`overload: ${fmtInt(overload.okPerSecond)} tokens/s, 503 share ${pct(overload.shedShare)}, 503 p50 ${fmtMs(overload.shed.p50)} ms, other 5xx ${overload.serverErrors}`)
  const shedCounted = await shedCounts(world.instances)
  for (const i of world.instances) if (i.info.exited) throw new Error(`${i.info.label} died during the overload:\n${tail(i.info.output)}`)
  const r = {
    soakSeconds: Math.round(soakSeconds),
    soak: summarize(tally, soakSeconds),
    rss: rssSummary(rss.series),
    rssSeries: rss.series,
    below,
    capacity,
    overload,
    shedCounted,
    loadAtEnd: os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(' '),
  }
  const md = report(env, r)
  const out = path.join(benchDir, 'results')
  await mkdir(out, { recursive: true })
  await writeFile(path.join(out, 'soak-latest.md'), md)
  await writeFile(
    path.join(out, 'soak-latest.json'),
    JSON.stringify({ env, settings: { SOAK_SECONDS, USERS, OVERLOAD_SECONDS, CAPACITY_CONNECTIONS, OVERLOAD_FACTOR, MIX }, results: { ...r, soak: { ...r.soak } } }, null, 2) +
      '\n',
  )
  process.stdout.write(md)
  log(`written ${path.relative(process.cwd(), path.join(out, 'soak-latest.md'))}`)
  if (r.soak.errorRate > 0.001 || overload.serverErrors > 0) process.exitCode = 1
}

if (process.argv[2] === '--proxy') {
  const [port, ...upstreams] = process.argv.slice(3).map(Number)
  let next = 0
  const server = net.createServer((client) => {
    const upstream = net.connect(upstreams[next++ % upstreams.length], HOST)
    client.setNoDelay(true)
    upstream.setNoDelay(true)
    client.pipe(upstream).pipe(client)
    const close = () => {
      client.destroy()
      upstream.destroy()
    }
    client.on('error', close).on('close', close)
    upstream.on('error', close).on('close', close)
  })
  server.listen(port, HOST, () => process.stdout.write(`READY ${port}\n`))
} else {
  main()
    .catch((err) => {
      process.stderr.write(`\nsoak failed: ${err?.stack ?? err}\n`)
      process.exitCode = 1
    })
    .finally(cleanup)
}

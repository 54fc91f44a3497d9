#!/usr/bin/env node
// Fieldgate load benchmark (issues 2, 5 and 17). Writes a Markdown report to bench/results/latest.md and
// every figure as one JSON object to bench/results/latest.json; prints the report on stdout, or with
// --json the JSON object instead. Progress goes to stderr.
//
//   npx tsc -b && node bench/run.mjs          # or: npm run bench. Two cores shared by server and load.
//   node bench/run.mjs --pinned --json        # issue 17: each server on CPU 0, the load on CPU 1
//   BENCH_DURATION=3 node bench/run.mjs       # short smoke run
//
// Flags: --pinned (one core per server, below), --json, --only <sections> (comma-separated, e.g.
// `--only tokens,scale`), --engine sqlite|postgres|both (the store of the token and scale sections;
// default sqlite; postgres runs with Redis rate limits), --scale-curve (the scale section at 1,000 /
// 100,000 / 1,000,000 installs, or BENCH_SCALE_CURVE), --skip-missing (skip, with a note, an algorithm
// the server refuses at start instead of failing). bench/README.md lists the sections and the JSON.
//
// Environment: BENCH_DURATION measured seconds per measurement (default 15), BENCH_WARMUP discarded
// warm-up seconds (default 3), BENCH_SIGN_INFLIGHT jose signatures outstanding per thread for the
// two-core ceiling (default 2), BENCH_SCALE_INSTALLS installs of the scale run (default 1,000,000),
// BENCH_SCALE_CURVE its points with --scale-curve, BENCH_CPU_PROF a directory for a V8 CPU profile of
// every `fieldgate serve` (written when it stops); DATABASE_URL and REDIS_URL for --engine postgres.
//
// --pinned: each server under test is one process started under `taskset -c 0`; this process, the load
// generator (autocannon runs in process), moves itself to CPU 1 (`taskset -a -p -c 1`); the signing
// ceiling is one worker thread in a process of its own on CPU 0; 50 connections.
//
// Everything listens on 127.0.0.1; one thing runs at a time (the signing ceiling, then each server on
// its own), every load loop is bounded by autocannon's `duration`, and every child process is started
// in its own process group and killed at the end, on error and on SIGINT/SIGTERM (lib/children.mjs);
// temporary stores and PostgreSQL schemas are removed then too.
import { randomBytes } from 'node:crypto'
import { mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises'
import http from 'node:http'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { Worker } from 'node:worker_threads'
import {
  HOST,
  NO_RATE_LIMITS,
  cli,
  fieldgateCli,
  freePort,
  onInterrupt,
  packageVersion,
  root,
  runFacts,
  sleep,
  startChild,
  stopChild,
  stopChildren,
  tail,
  waitReady,
} from './lib/children.mjs'
import { connectThroughConsent } from './lib/consent.mjs'
import { assertJwt, loader, postToken } from './lib/measure.mjs'
import { REDIS_URL, dropRedisKeys, dropSchema, dropSchemas, freshSchema } from './lib/postgres.mjs'
import { allowedCpus, coreShares, coreTimes, groupCpuSeconds, memoryMiB, pinSelf, sampleRss } from './lib/proc.mjs'
import { pinnedJson, pinnedReport, twoCoreJson, twoCoreReport } from './lib/report.mjs'
import { seedPostgres, seedSqlite, tenantId } from './lib/seed-installs.mjs'

const benchDir = path.dirname(fileURLToPath(import.meta.url))
const log = (msg) => process.stderr.write(`[bench] ${msg}\n`)

// ---------------------------------------------------------------------------------------------------
// Flags and settings

const SECTIONS = {
  twoCore: ['ceiling', 'tokens', 'validation', 'resource', 'dispatch'],
  pinned: ['ceiling', 'tokens', 'algs', 'validation', 'resource', 'alerts_post', 'dispatch', 'scale'],
}

function options() {
  const { values } = parseArgs({
    options: {
      pinned: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      only: { type: 'string' },
      engine: { type: 'string', default: 'sqlite' },
      'scale-curve': { type: 'boolean', default: false },
      'skip-missing': { type: 'boolean', default: false },
    },
    strict: true,
  })
  const known = values.pinned ? SECTIONS.pinned : SECTIONS.twoCore
  const only =
    values.only === undefined
      ? known
      : values.only
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean)
  for (const s of only) if (!known.includes(s)) throw new Error(`--only: no section "${s}"${values.pinned ? '' : ' without --pinned'}; sections: ${known.join(', ')}`)
  const engines = { sqlite: ['sqlite'], postgres: ['postgres'], both: ['sqlite', 'postgres'] }[values.engine]
  if (!engines) throw new Error('--engine is sqlite, postgres or both')
  if (values['scale-curve'] && !(values.pinned && only.includes('scale')))
    throw new Error('--scale-curve is the scale section of --pinned: e.g. `--pinned --only scale --scale-curve`')
  return {
    pinned: values.pinned,
    json: values.json,
    sections: known.filter((s) => only.includes(s)),
    engines,
    scaleCurve: values['scale-curve'],
    skipMissing: values['skip-missing'],
  }
}

let OPTS
try {
  OPTS = options()
} catch (err) {
  process.stderr.write(`bench: ${err.message}\n`)
  process.exit(2)
}

const positive = (name, fallback, max) => {
  const raw = process.env[name]
  if (raw === undefined || raw === '') return fallback
  const n = Number(raw)
  if (!Number.isFinite(n) || n <= 0 || n > max) throw new Error(`${name} must be a number above 0, at most ${max}`)
  return n
}
const DURATION = positive('BENCH_DURATION', 15, 3600)
const WARMUP = positive('BENCH_WARMUP', 3, 3600)
const SIGN_INFLIGHT = Math.max(1, Math.round(positive('BENCH_SIGN_INFLIGHT', 2, 64)))
const SCALE_INSTALLS = Math.round(positive('BENCH_SCALE_INSTALLS', 1_000_000, 20_000_000))
const SCALE_CURVE = (process.env.BENCH_SCALE_CURVE || '1000,100000,1000000').split(',').map((s) => {
  const n = Number(s)
  if (!Number.isInteger(n) || n < 1 || n > 20_000_000) throw new Error('BENCH_SCALE_CURVE is a comma-separated list of install counts')
  return n
})
const WORKERS = 2 // two-core run: server processes and signing threads, the two cores of the reference machine
const CONNECTIONS = OPTS.pinned ? 50 : 100
const PIPELINING = 1
const MAX_FAILURE_RATE = 0.001 // non-2xx + errors + timeouts, of all responses and errors
const WEBHOOK_EVENTS = 3000
/** Where a server under test runs: CPU 0 when pinned, anywhere otherwise. */
const SERVER_CPUS = OPTS.pinned ? '0' : undefined
const GENERATOR_CPUS = '1'
/**
 * --engine postgres: the deployment's limits, counted in Redis, except the two the bench's one client
 * from one address would hit at once (300 and 600 token requests a minute): raised, not switched off,
 * so every token request still makes its two Redis counts. Overload shedding is off as in every run.
 */
const BIG_LIMIT = '1000000000'
const REDIS_RATE_LIMITS = Object.freeze({
  FIELDGATE_OVERLOAD_MAX_DELAY_MS: '0',
  FIELDGATE_RATE_LIMIT_WINDOW: undefined,
  FIELDGATE_RATE_LIMIT_PER_TOKEN: undefined,
  FIELDGATE_RATE_LIMIT_PER_CLIENT: undefined,
  FIELDGATE_RATE_LIMIT_TOKEN_PER_CLIENT: BIG_LIMIT,
  FIELDGATE_RATE_LIMIT_TOKEN_PER_ADDRESS: BIG_LIMIT,
  FIELDGATE_RATE_LIMIT_REGISTER_PER_ADDRESS: undefined,
})

const { cannon, load } = loader({ warmup: WARMUP, duration: DURATION, connections: CONNECTIONS, pipelining: PIPELINING, maxFailureRate: MAX_FAILURE_RATE, log })
const FORM = { 'content-type': 'application/x-www-form-urlencoded' }

// ---------------------------------------------------------------------------------------------------
// Child processes (lib/children.mjs), temporary stores and schemas, removed at the end.

const tempDirs = new Set()
const tempDir = async (name) => {
  const d = await mkdtemp(path.join(os.tmpdir(), `fieldgate-bench-${name}-`))
  tempDirs.add(d)
  return d
}

async function cleanup() {
  await stopChildren()
  await dropSchemas(log)
  await Promise.all([...tempDirs].map((d) => rm(d, { recursive: true, force: true }).catch(() => {})))
  tempDirs.clear()
}

onInterrupt(log, async () => {
  stopSigners()
  await cleanup()
})

// ---------------------------------------------------------------------------------------------------
// Fieldgate: a fresh store per server, `fieldgate serve` on it

/**
 * A fresh, empty store for `engine`: a temporary FIELDGATE_DATA_DIR (SQLite, rate limits off), or a new
 * PostgreSQL schema with REDIS_URL and the deployment's rate limits (REDIS_RATE_LIMITS). `drop()`
 * removes it; cleanup() would anyway.
 */
async function freshStore(engine) {
  const dataDir = await tempDir('data')
  const common = {
    FIELDGATE_DATA_DIR: dataDir,
    FIELDGATE_LOG_LEVEL: 'warn',
    FIELDGATE_ISSUER: undefined,
    FIELDGATE_AUDIENCE: undefined,
    FIELDGATE_HOST: undefined,
    FIELDGATE_PORT: undefined,
  }
  const dropDir = () => rm(dataDir, { recursive: true, force: true }).then(() => tempDirs.delete(dataDir))
  if (engine === 'sqlite') {
    const env = { ...common, ...NO_RATE_LIMITS, DATABASE_URL: undefined, REDIS_URL: undefined, FIELDGATE_MASTER_KEY: undefined }
    return { engine, dataDir, env, drop: dropDir }
  }
  const { schema, url } = await freshSchema()
  const rateLimitPrefix = `fieldgate-bench-${schema}:`
  const env = {
    ...common,
    ...REDIS_RATE_LIMITS,
    DATABASE_URL: url,
    REDIS_URL,
    FIELDGATE_MASTER_KEY: randomBytes(32).toString('hex'),
    FIELDGATE_RATE_LIMIT_PREFIX: rateLimitPrefix,
  }
  const drop = async () => {
    await dropSchema(schema)
    await dropRedisKeys(rateLimitPrefix).catch((err) => log(`could not delete the Redis keys ${rateLimitPrefix}*: ${err.message}`))
    await dropDir()
  }
  return { engine, dataDir, schema, url, rateLimitPrefix, env, drop }
}

/** `fieldgate serve --workers <n>` on `store` (on SERVER_CPUS when pinned), ready once `probe` answers. */
async function serve(store, workers, extraEnv, probe) {
  const port = await freePort()
  const env = { ...store.env, ...extraEnv }
  const where = SERVER_CPUS ? `, CPU ${SERVER_CPUS}` : ''
  const info = startChild(
    `fieldgate serve --workers ${workers} (${store.engine}${where})`,
    [...CPU_PROF, cli, 'serve', '--workers', String(workers), '--port', String(port), '--host', HOST],
    env,
    {
      cpus: SERVER_CPUS,
    },
  )
  const url = `http://${HOST}:${port}`
  const started = performance.now()
  const ready = await waitReady(info, () => probe(url))
  return { info, url, ready, startSeconds: (performance.now() - started) / 1000 }
}

/** node's own flags for `fieldgate serve`: NODE_OPTIONS may not carry --cpu-prof. */
const CPU_PROF = process.env.BENCH_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${path.resolve(process.env.BENCH_CPU_PROF)}`] : []

class AlgorithmRefused extends Error {}

/**
 * A fresh store with one sandbox tenant and one private app, and `fieldgate serve` on it. `alg` is
 * FIELDGATE_SIGNING_ALG for the CLI (which makes the first signing key) and the server; a build that
 * does not know it refuses at start, which throws AlgorithmRefused.
 */
async function startFieldgate({ workers = 1, engine = 'sqlite', alg = 'RS256', extraEnv = {}, appArgs = [], scope = 'api' } = {}) {
  const store = await freshStore(engine)
  store.env.FIELDGATE_SIGNING_ALG = alg
  let tenant
  try {
    tenant = await fieldgateCli(store.env, 'tenants', 'create', '--name', 'Bench Field Services', '--environment', 'sandbox')
  } catch (err) {
    if (/FIELDGATE_SIGNING_ALG/.test(err.message)) throw new AlgorithmRefused(`Fieldgate refuses FIELDGATE_SIGNING_ALG=${alg}: ${err.message.trim().split('\n').slice(-1)[0]}`)
    throw err
  }
  const app = await fieldgateCli(store.env, 'apps', 'create', '--name', 'bench client', '--kind', 'private', '--tenant', tenant.id, ...appArgs)
  if (!app.client_id || !app.client_secret) throw new Error(`fieldgate apps create gave no credentials: ${JSON.stringify(app)}`)
  const body = new URLSearchParams({ grant_type: 'client_credentials', client_id: app.client_id, client_secret: app.client_secret, scope }).toString()
  const server = await serve(store, workers, extraEnv, (url) => postToken(`${url}/oauth/token`, body))
  return { ...server, token: server.ready, body, env: store.env, store, tenant, app, alg }
}

async function stopFieldgate(fg) {
  await stopChild(fg.info)
  await fg.store.drop()
}

/** What a measurement of a server says about its setting, beside the figures. */
const about = (fg) => ({ engine: fg.store.engine, alg: fg.alg, ...(fg.store.engine === 'postgres' ? { redis: true } : {}) })

// ---------------------------------------------------------------------------------------------------
// Token endpoint

async function benchFieldgateTokens({ workers, engine = 'sqlite', alg = 'RS256' }) {
  const fg = await startFieldgate({ workers, engine, alg })
  try {
    const jwt = assertJwt(fg.token.access_token, 'Fieldgate', alg)
    const rateLimit = engine === 'postgres' ? rateLimitSeen(fg) : undefined
    const m = await load(
      `Fieldgate token endpoint, ${alg}, ${engine} (${workers} worker${workers > 1 ? 's' : ''})`,
      { url: `${fg.url}/oauth/token`, method: 'POST', headers: FORM, body: fg.body },
      fg.info,
    )
    if (rateLimit) rateLimit.redisKeys = await redisKeysOf(fg)
    return { ...m, jwt, ...about(fg), ...(rateLimit ? { rateLimit } : {}) }
  } finally {
    await stopFieldgate(fg)
  }
}

/** The per-client token limit's draft RateLimit headers on the first answer: the limit is on, at BIG_LIMIT. */
function rateLimitSeen(fg) {
  const limit = fg.token.headers.get('ratelimit-limit')
  if (limit !== BIG_LIMIT) throw new Error(`expected the token rate limits on (ratelimit-limit ${BIG_LIMIT}), got ratelimit-limit ${limit}`)
  return { tokenPerClient: Number(BIG_LIMIT), tokenPerAddress: Number(BIG_LIMIT), window: 'default', header: limit }
}

/** Counts the run's rate-limit keys in Redis (then deletes them): none would mean Redis was not in the path. */
async function redisKeysOf(fg) {
  const keys = await dropRedisKeys(fg.store.rateLimitPrefix)
  if (keys === 0) throw new Error(`no rate-limit keys under ${fg.store.rateLimitPrefix} in Redis: the limits did not count there`)
  return keys
}

/** A token endpoint that is not Fieldgate, from `peers/`: its READY line, one checked token, the load. */
async function benchPeer(label, file, workers, env, alg, readyBody) {
  const port = await freePort()
  const info = startChild(label, [path.join(benchDir, 'peers', file)], { PORT: String(port), BENCH_WORKERS: String(workers), ...env }, { cpus: SERVER_CPUS })
  try {
    const ready = await waitReady(info, async () =>
      info.output
        .split('\n')
        .find((l) => l.startsWith('READY '))
        ?.split(' '),
    )
    const { url, body } = readyBody(port, ready)
    const token = await postToken(url, body)
    const jwt = assertJwt(token.access_token, label, alg)
    const m = await load(label, { url, method: 'POST', headers: FORM, body }, info)
    return { ...m, jwt, info }
  } finally {
    await stopChild(info)
  }
}

async function benchOidcProvider(workers) {
  const m = await benchPeer(`oidc-provider token endpoint (${workers} worker${workers > 1 ? 's' : ''})`, 'oidc-provider.mjs', workers, {}, 'RS256', (port, ready) => {
    const [, , clientId, clientSecret] = ready
    return {
      url: `http://${HOST}:${port}/token`,
      body: new URLSearchParams({ grant_type: 'client_credentials', client_id: clientId, client_secret: clientSecret, scope: 'api' }).toString(),
    }
  })
  const lines = m.info.output.split('\n').map((l) => l.trim())
  const warnings = [...new Set(lines.filter((l) => /^oidc-provider (WARNING|NOTICE)|Warning|DeprecationWarning/.test(l)))]
  const serverErrors = lines.filter((l) => /server_error/.test(l)).length
  const { info: _info, ...rest } = m
  return { ...rest, warnings, serverErrors }
}

/** The practical ceiling: node:http plus one signature per request, nothing else (peers/bare-signer.mjs). */
async function benchBareSigner(workers, alg = 'RS256') {
  const { info: _info, ...m } = await benchPeer(
    `bare node:http signer, ${alg} (${workers} worker${workers > 1 ? 's' : ''})`,
    'bare-signer.mjs',
    workers,
    { BENCH_ALG: alg },
    alg,
    (port) => ({
      url: `http://${HOST}:${port}/oauth/token`,
      body: 'grant_type=client_credentials&client_id=x&client_secret=y&scope=api',
    }),
  )
  return { ...m, alg }
}

// ---------------------------------------------------------------------------------------------------
// Validation, the resource API, the Data API

async function benchFieldgateValidation() {
  const fg = await startFieldgate()
  try {
    const token = fg.token.access_token
    assertJwt(token, 'Fieldgate')
    const url = `${fg.url}/api/rest/v2/workorders`
    const res = await fetch(url, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(5000) })
    const text = await res.text()
    if (res.status !== 200) throw new Error(`GET /api/rest/v2/workorders answered ${res.status}: ${text.slice(0, 300)}`)
    const denied = await fetch(url, { headers: { authorization: `Bearer ${token.slice(0, -4)}AAAA` }, signal: AbortSignal.timeout(5000) })
    await denied.arrayBuffer()
    if (denied.status !== 401) throw new Error(`a token with a broken signature got ${denied.status}, not 401: the API does not validate`)
    const m = await load('Fieldgate token validation (1 worker)', { url, method: 'GET', headers: { authorization: `Bearer ${token}` } }, fg.info)
    // Reference for reading the figure above: the same process answering an unauthenticated route.
    const baseline = await load('Fieldgate HTTP baseline (1 worker)', { url: `${fg.url}/.well-known/oauth-authorization-server`, method: 'GET' }, fg.info)
    return { ...m, responseBytes: text.length, baseline }
  } finally {
    await stopFieldgate(fg)
  }
}

async function seedAlerts(url, token, n) {
  for (let i = 0; i < n; i++) {
    const res = await fetch(`${url}/v1/alerts`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ title: `Alert ${i}` }),
    })
    if (res.status !== 201) throw new Error(`POST /v1/alerts answered ${res.status}`)
  }
}

/** GET /v1/alerts (5 records) with a client-credentials JWT and with an opaque connection token. */
async function benchResourceApi() {
  const fg = await startFieldgate({ appArgs: ['--scopes', 'api alerts:write'], scope: 'alerts:write' })
  try {
    const jwt = fg.token.access_token
    const opaque = await connectThroughConsent(fg)
    await seedAlerts(fg.url, jwt, 5)
    await seedAlerts(fg.url, opaque, 5)
    const page = async (token) => (await (await fetch(`${fg.url}/v1/alerts`, { headers: { authorization: `Bearer ${token}` } })).json()).results.length
    if ((await page(jwt)) !== 5 || (await page(opaque)) !== 5) throw new Error('each token should list its own 5 alerts')
    const withJwt = await load('GET /v1/alerts with a JWT (1 worker)', { url: `${fg.url}/v1/alerts`, method: 'GET', headers: { authorization: `Bearer ${jwt}` } }, fg.info)
    const withOpaque = await load(
      'GET /v1/alerts with an opaque token (1 worker)',
      { url: `${fg.url}/v1/alerts`, method: 'GET', headers: { authorization: `Bearer ${opaque}` } },
      fg.info,
    )
    return { withJwt, withOpaque }
  } finally {
    await stopFieldgate(fg)
  }
}

/** POST /v1/alerts at full load: a record per request, one SQLite commit each (the app has no Data API URL, so no event). */
async function benchAlertsPost() {
  const fg = await startFieldgate({ appArgs: ['--scopes', 'alerts:write'], scope: 'alerts:write' })
  try {
    const opts = {
      url: `${fg.url}/v1/alerts`,
      method: 'POST',
      headers: { authorization: `Bearer ${fg.token.access_token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ title: 'Bench alert' }),
    }
    const first = await fetch(opts.url, { ...opts, signal: AbortSignal.timeout(5000) })
    if (first.status !== 201) throw new Error(`POST /v1/alerts answered ${first.status}: ${(await first.text()).slice(0, 200)}`)
    await first.arrayBuffer().catch(() => {})
    return await load('POST /v1/alerts (1 worker)', opts, fg.info)
  } finally {
    await stopFieldgate(fg)
  }
}

/**
 * Data API dispatch from a backlog: WEBHOOK_EVENTS records are created through the API while the
 * receiver is down (attempts fail and are retried after 100-200 ms), then the receiver starts and
 * the rate is first to last delivery. Measured this way, it is the dispatcher's rate, not the API's.
 */
async function benchWebhooks() {
  let received = 0
  let last = 0
  const receiver = http.createServer((req, res) => {
    req.resume()
    req.on('end', () => {
      received++
      last = performance.now()
      res.writeHead(204).end()
    })
  })
  receiver.keepAliveTimeout = 60_000
  const port = await freePort()
  const hook = `http://${HOST}:${port}/data-api`
  const retryFast = { FIELDGATE_WEBHOOK_POLL_MS: '50', FIELDGATE_WEBHOOK_BASE_DELAY_MS: '100', FIELDGATE_WEBHOOK_MAX_DELAY_MS: '200', FIELDGATE_WEBHOOK_ALLOW_PRIVATE_TARGETS: '1' }
  const fg = await startFieldgate({ extraEnv: retryFast, appArgs: ['--scopes', 'alerts:write', '--data-api-url', hook], scope: 'alerts:write' })
  try {
    const r = await cannon({
      url: `${fg.url}/v1/alerts`,
      method: 'POST',
      headers: { authorization: `Bearer ${fg.token.access_token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ title: 'Bench alert' }),
      amount: WEBHOOK_EVENTS,
      connections: 10,
    })
    if (r['2xx'] !== WEBHOOK_EVENTS) throw new Error(`only ${r['2xx']} of ${WEBHOOK_EVENTS} records were created`)
    const cpuBefore = await groupCpuSeconds(fg.info.child.pid)
    await new Promise((ok) => receiver.listen(port, HOST, ok))
    const opened = performance.now()
    const deadline = Date.now() + 120_000
    while (received < WEBHOOK_EVENTS && Date.now() < deadline) await sleep(20)
    if (received < WEBHOOK_EVENTS) throw new Error(`only ${received} of ${WEBHOOK_EVENTS} events arrived in 2 minutes`)
    const seconds = (last - opened) / 1000
    // The server's CPU from the receiver's start to the last delivery (and the <20 ms poll after it).
    const serverCpu = (await groupCpuSeconds(fg.info.child.pid)) - cpuBefore
    log(
      `Data API: ${WEBHOOK_EVENTS} events delivered in ${seconds.toFixed(2)} s after the receiver came up; server CPU ${((serverCpu / seconds) * 100).toFixed(0)} %, ${((serverCpu / WEBHOOK_EVENTS) * 1e6).toFixed(0)} µs per event`,
    )
    return {
      events: WEBHOOK_EVENTS,
      perSecond: WEBHOOK_EVENTS / seconds,
      seconds,
      writesPerSecond: r['2xx'] / r.duration,
      serverCpuShare: serverCpu / seconds,
      serverCpuUsPerEvent: (serverCpu / WEBHOOK_EVENTS) * 1e6,
    }
  } finally {
    await stopFieldgate(fg)
    receiver.closeAllConnections()
    receiver.close()
  }
}

// ---------------------------------------------------------------------------------------------------
// Scale: client-credentials tokens for one tenant and for random tenants among N installs

/**
 * One public sandbox app made by the CLI (with its own sandbox install), then `installs` tenants with
 * an active grant of it seeded in bulk (lib/seed-installs.mjs), then the pinned server: FieldEdge JSON
 * token requests (docs/dialects.md) naming one tenant, then a random seeded tenant per request, with
 * the server's RSS sampled during the random run and after it.
 */
async function benchScale(engine, installs) {
  const store = await freshStore(engine)
  let server
  try {
    const app = await fieldgateCli(store.env, 'apps', 'create', '--name', 'Bench marketplace app', '--kind', 'public', '--environment', 'sandbox', '--scopes', 'api')
    if (!app.client_secret || !app.sandbox_target_id) throw new Error(`fieldgate apps create made no public sandbox app: ${JSON.stringify(app)}`)
    log(`scale, ${engine}: seeding ${installs.toLocaleString('en-US')} installs`)
    const seed = engine === 'sqlite' ? await seedSqlite(store.dataDir, app.client_id, installs) : await seedPostgres(store.url, store.schema, app.client_id, installs)
    if (seed.changesAfter !== seed.changesBefore) throw new Error(`seeding wrote to the change feed (${seed.changesBefore} changes before, ${seed.changesAfter} after)`)
    log(`scale, ${engine}: ${installs.toLocaleString('en-US')} installs seeded in ${seed.seconds.toFixed(1)} s; store ${(seed.bytes / 2 ** 20).toFixed(0)} MiB`)
    const body = (target) => JSON.stringify({ client_id: app.client_id, client_secret: app.client_secret, target_id: target, grant_type: 'client_credentials' })
    const JSON_TYPE = 'application/json'
    server = await serve(store, 1, { FIELDGATE_SIGNING_ALG: 'RS256' }, (url) => postToken(`${url}/oauth/token`, body(tenantId(1)), JSON_TYPE))
    await checkInstalls(server.url, body, installs, app.sandbox_target_id)
    const atStart = await memoryMiB(server.info.child.pid)
    const one = tenantId(Math.ceil(installs / 2))
    const request = (pick) => ({
      url: `${server.url}/oauth/token`,
      requests: [{ method: 'POST', path: '/oauth/token', headers: { 'content-type': JSON_TYPE }, setupRequest: (req) => ({ ...req, body: body(pick()) }) }],
    })
    const n = installs.toLocaleString('en-US')
    const oneRun = await load(
      `scale, ${engine}, ${n} installs: one tenant`,
      request(() => one),
      server.info,
    )
    const afterOne = await memoryMiB(server.info.child.pid)
    const rss = sampleRss(server.info.child.pid)
    const randomRun = await load(
      `scale, ${engine}, ${n} installs: random tenants`,
      request(() => tenantId(1 + Math.floor(Math.random() * installs))),
      server.info,
    )
    await sleep(1000)
    const memory = await rss.stop()
    log(
      `scale, ${engine}: RSS ${atStart.rss.toFixed(0)} MiB once serving, ${afterOne.rss.toFixed(0)} MiB after the one-tenant run, peak ${memory.peakMiB.toFixed(0)} MiB during and after the random run (VmHWM ${memory.hwmMiB.toFixed(0)} MiB)`,
    )
    return { engine, installs, seed, startSeconds: server.startSeconds, one: oneRun, random: randomRun, rssAtStartMiB: atStart.rss, rssAfterOneMiB: afterOne.rss, ...memory }
  } finally {
    if (server) await stopChild(server.info)
    await store.drop()
  }
}

/** The first, last and a random seeded tenant, and the CLI's own sandbox install, get a token naming them; one past the last does not. */
async function checkInstalls(url, body, installs, sandboxTarget) {
  const token = `${url}/oauth/token`
  for (const target of [tenantId(1), tenantId(installs), tenantId(1 + Math.floor(Math.random() * installs)), sandboxTarget]) {
    const answer = await postToken(token, body(target), 'application/json')
    // docs/dialects.md: the FieldEdge answer is exactly these three fields.
    if (Object.keys(answer).sort().join() !== 'access_token,expires_in,token_type') throw new Error(`the FieldEdge answer has other fields: ${Object.keys(answer).join(', ')}`)
    const { payload } = assertJwt(answer.access_token, 'Fieldgate')
    if (payload.tenant_id !== target) throw new Error(`a token for target_id ${target} names tenant ${payload.tenant_id}`)
  }
  const res = await fetch(token, { method: 'POST', headers: { 'content-type': 'application/json' }, body: body(tenantId(installs + 1)) })
  const refused = await res.json()
  if (res.status !== 400 || refused.error !== 'invalid_grant') throw new Error(`a tenant that was not seeded got ${res.status} ${JSON.stringify(refused)}, not 400 invalid_grant`)
}

// ---------------------------------------------------------------------------------------------------
// Signing ceilings: in process on both cores (two-core run), or one thread on CPU 0 (pinned)

const signers = new Set()
function stopSigners() {
  for (const w of signers) w.terminate()
}

async function signingRate(mode, threads, inflight) {
  const label = `${mode === 'jose' ? 'jose SignJWT (WebCrypto)' : 'node:crypto sign'}, ${threads} thread${threads > 1 ? 's' : ''}`
  const workers = Array.from({ length: threads }, () => {
    const w = new Worker(new URL('./lib/sign-worker.mjs', import.meta.url), { workerData: { mode, inflight, warmupMs: WARMUP * 1000, durationMs: DURATION * 1000 } })
    signers.add(w)
    return w
  })
  const next = (w) =>
    new Promise((resolve, reject) => {
      const onExit = (code) => reject(new Error(`signing worker exited early (code ${code})`))
      w.once('error', reject)
      w.once('exit', onExit)
      w.once('message', (m) => {
        w.off('error', reject)
        w.off('exit', onExit)
        resolve(m)
      })
    })
  try {
    await Promise.all(workers.map(next))
    log(`signing ceiling, ${label}: warm-up ${WARMUP} s, measuring ${DURATION} s`)
    const done = workers.map(next)
    for (const w of workers) w.postMessage({ type: 'start' })
    const results = await Promise.all(done)
    const rate = results.reduce((sum, r) => sum + r.count / r.seconds, 0)
    log(`signing ceiling, ${label}: ${Math.round(rate)} signatures/s`)
    return { label, mode, threads, inflight, rate }
  } finally {
    await Promise.all(workers.map((w) => w.terminate()))
    for (const w of workers) signers.delete(w)
  }
}

/** node:crypto `alg` signatures a second in one worker thread of a process on CPU 0 (lib/ceiling.mjs). */
async function pinnedSigningRate(alg) {
  const label = `signing ceiling, node:crypto ${alg}, 1 thread on CPU ${SERVER_CPUS}`
  log(`${label}: warm-up ${WARMUP} s, measuring ${DURATION} s`)
  const before = await coreTimes()
  const info = startChild(label, [path.join(benchDir, 'lib/ceiling.mjs'), alg, String(WARMUP * 1000), String(DURATION * 1000)], {}, { cpus: SERVER_CPUS })
  try {
    const done = await Promise.race([info.exit.then(() => true), sleep((WARMUP + DURATION + 60) * 1000).then(() => false)])
    if (!done || info.code !== 0) throw new Error(`${label} ${done ? `exited with ${info.code}` : 'did not finish'}:\n${tail(info.output)}`)
    const cores = coreShares(before, await coreTimes())
    const result = JSON.parse(info.output.trim().split('\n').pop())
    log(`${label}: ${Math.round(result.per_s)} signatures/s; its CPU ${Math.round(result.cpu_share * 100)} %, CPU 0 busy ${Math.round((cores[0].busy + cores[0].steal) * 100)} %`)
    return { alg, rate: result.per_s, count: result.count, seconds: result.seconds, cpuShare: result.cpu_share, cores }
  } finally {
    await stopChild(info)
  }
}

// ---------------------------------------------------------------------------------------------------
// The runs

/** Today's run (issues 2 and 5): everything shares the two cores; 2 server processes, 100 connections. */
async function twoCoreRun(sections) {
  const r = {}
  // The ceiling first, while nothing else runs.
  if (sections.includes('ceiling')) {
    r.ceil = await signingRate('jose', WORKERS, SIGN_INFLIGHT)
    r.ceil1 = await signingRate('jose', 1, 1)
    r.raw = await signingRate('node', WORKERS, 1)
    r.raw1 = await signingRate('node', 1, 1)
  }
  // Then each server on its own.
  if (sections.includes('tokens')) {
    r.fg = await benchFieldgateTokens({ workers: WORKERS, engine: OPTS.engines[0] })
    if (OPTS.engines.includes('postgres') && OPTS.engines[0] !== 'postgres') r.fgPostgres = await benchFieldgateTokens({ workers: WORKERS, engine: 'postgres' })
    r.op = await benchOidcProvider(WORKERS)
    r.bare = await benchBareSigner(WORKERS)
  }
  if (sections.includes('validation')) r.val = await benchFieldgateValidation()
  if (sections.includes('resource')) r.res = await benchResourceApi()
  if (sections.includes('dispatch')) r.hooks = await benchWebhooks()
  return r
}

/** Issue 17: each server alone on CPU 0, this process (the load) on CPU 1, 50 connections. */
async function pinnedRun(sections) {
  const r = { skipped: [] }
  const has = (s) => sections.includes(s)
  if (has('ceiling')) {
    r.ceiling = {}
    for (const alg of ['RS256', 'ES256', 'EdDSA']) r.ceiling[alg] = await pinnedSigningRate(alg)
  }
  if (has('tokens')) {
    r.fieldgate = {}
    for (const engine of OPTS.engines) r.fieldgate[engine] = await benchFieldgateTokens({ workers: 1, engine })
    r.oidcProvider = await benchOidcProvider(1)
    r.bare = await benchBareSigner(1, 'RS256')
  }
  if (has('algs')) {
    r.algs = {}
    for (const alg of ['EdDSA', 'ES256']) {
      try {
        r.algs[alg] = await benchFieldgateTokens({ workers: 1, alg })
      } catch (err) {
        if (!(err instanceof AlgorithmRefused)) throw err
        if (!OPTS.skipMissing) throw new Error(`${err.message}\nThis build cannot sign with ${alg}; --skip-missing skips it with a note instead.`)
        log(`skipped: ${err.message}`)
        r.skipped.push({ section: 'algs', alg, reason: err.message })
      }
    }
    r.bareEdDSA = await benchBareSigner(1, 'EdDSA')
  }
  if (has('validation')) r.validation = await benchFieldgateValidation()
  if (has('resource')) r.resource = await benchResourceApi()
  if (has('alerts_post')) r.alertsPost = await benchAlertsPost()
  if (has('dispatch')) r.dispatch = await benchWebhooks()
  if (has('scale')) {
    r.scale = []
    for (const engine of OPTS.engines) for (const installs of OPTS.scaleCurve ? SCALE_CURVE : [SCALE_INSTALLS]) r.scale.push(await benchScale(engine, installs))
  }
  return r
}

// ---------------------------------------------------------------------------------------------------

async function environment() {
  const base =
    process.env.npm_lifecycle_event === 'bench' ? 'npm run bench' : ['node', path.relative(process.cwd(), process.argv[1]) || process.argv[1], ...process.argv.slice(2)].join(' ')
  return {
    ...(await runFacts(base, ['BENCH_DURATION', 'BENCH_WARMUP', 'BENCH_SIGN_INFLIGHT', 'BENCH_SCALE_INSTALLS', 'BENCH_SCALE_CURVE'])),
    versions: {
      fieldgate: await packageVersion('package.json'),
      oidcProvider: await packageVersion('node_modules/oidc-provider/package.json'),
      autocannon: await packageVersion('node_modules/autocannon/package.json'),
      jose: await packageVersion('node_modules/jose/package.json'),
    },
  }
}

async function preflight() {
  const main = path.join(root, 'packages/cli/dist/src/main.js')
  try {
    await stat(main)
  } catch {
    throw new Error(`${path.relative(root, main)} is missing: build first with \`npx tsc -b\``)
  }
  for (const dep of ['autocannon', 'oidc-provider', 'jose', 'better-sqlite3', 'pg', 'ioredis']) {
    try {
      await stat(path.join(root, 'node_modules', dep, 'package.json'))
    } catch {
      throw new Error(`${dep} is not installed: run \`npm ci\``)
    }
  }
  if (OPTS.pinned) {
    const cpus = await allowedCpus()
    if (os.cpus().length < 2) throw new Error('--pinned needs two CPUs: the server on CPU 0, the load on CPU 1')
    if (cpus !== GENERATOR_CPUS) {
      await pinSelf(GENERATOR_CPUS)
      log(`this process (the load generator) moved from CPUs ${cpus} to CPU ${GENERATOR_CPUS}`)
    }
  }
}

async function main() {
  await preflight()
  const env = await environment()
  const mode = OPTS.pinned ? 'pinned' : 'two-core'
  log(`${env.command}: node ${env.node}, ${env.cpu}, ${mode}, sections ${OPTS.sections.join(', ')}; ${WARMUP} s warm-up + ${DURATION} s per measurement`)
  if (Number(env.loadAtStart.split(' ')[0]) > env.cores * 0.25) log(`warning: load average ${env.loadAtStart}; figures will be noisy`)
  const settings = { mode, sections: OPTS.sections, engines: OPTS.engines, connections: CONNECTIONS, pipelining: PIPELINING, warmup_s: WARMUP, duration_s: DURATION }
  let json, md
  if (OPTS.pinned) {
    const r = await pinnedRun(OPTS.sections)
    json = pinnedJson(env, { ...settings, scale_installs: OPTS.scaleCurve ? SCALE_CURVE : [SCALE_INSTALLS], server_cpus: SERVER_CPUS, generator_cpus: GENERATOR_CPUS }, r)
    md = pinnedReport(json)
  } else {
    const r = await twoCoreRun(OPTS.sections)
    const s = { ...settings, workers: WORKERS, sign_inflight: SIGN_INFLIGHT, max_failure_rate: MAX_FAILURE_RATE }
    json = twoCoreJson(env, s, r)
    md = twoCoreReport(env, s, r)
  }
  const out = path.join(benchDir, 'results')
  await mkdir(out, { recursive: true })
  await writeFile(path.join(out, 'latest.md'), md)
  await writeFile(path.join(out, 'latest.json'), `${JSON.stringify(json, null, 2)}\n`)
  process.stdout.write(OPTS.json ? `${JSON.stringify(json, null, 2)}\n` : md)
  log(`written ${path.relative(process.cwd(), path.join(out, 'latest.md'))} and latest.json`)
}

main()
  .catch((err) => {
    process.stderr.write(`\nbench failed: ${err?.stack ?? err}\n`)
    process.exitCode = 1
  })
  .finally(async () => {
    stopSigners()
    await cleanup()
  })

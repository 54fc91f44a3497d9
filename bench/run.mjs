#!/usr/bin/env node
// Fieldgate load benchmark (issue #2). Prints a Markdown report on stdout and writes it to
// bench/results/latest.md (plus the raw figures in latest.json). Progress goes to stderr.
//
//   npx tsc -b && node bench/run.mjs          # or: npm run bench
//   BENCH_DURATION=3 node bench/run.mjs       # short smoke run
//
// Environment: BENCH_DURATION measured seconds per measurement (default 15), BENCH_WARMUP discarded
// warm-up seconds (default 3), BENCH_SIGN_INFLIGHT jose signatures outstanding per thread for the
// two-core ceiling (default 2).
//
// Everything listens on 127.0.0.1; one thing runs at a time (the signing ceiling, then each server on
// its own), every load loop is bounded by autocannon's `duration`, and every child process is started
// in its own process group and killed at the end, on error and on SIGINT/SIGTERM (lib/children.mjs).
import autocannon from 'autocannon'
import { mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises'
import http from 'node:http'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
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

const benchDir = path.dirname(fileURLToPath(import.meta.url))

const seconds = (name, fallback) => {
  const raw = process.env[name]
  if (raw === undefined || raw === '') return fallback
  const n = Number(raw)
  if (!Number.isFinite(n) || n <= 0 || n > 3600) throw new Error(`${name} must be a number of seconds between 0 and 3600`)
  return n
}
const DURATION = seconds('BENCH_DURATION', 15)
const WARMUP = seconds('BENCH_WARMUP', 3)
const SIGN_INFLIGHT = Math.max(1, Math.round(seconds('BENCH_SIGN_INFLIGHT', 2)))
const WORKERS = 2 // server processes and signing threads: the two cores of the reference machine
const CONNECTIONS = 100
const PIPELINING = 1
const MAX_FAILURE_RATE = 0.001 // non-2xx + errors + timeouts, of all responses and errors
const TARGETS = { ceilingRatio: 0.75, peerRatio: 1.5, p99Ms: 40, validationRps: 12_000 }
const WEBHOOK_EVENTS = 3000

const log = (msg) => process.stderr.write(`[bench] ${msg}\n`)

// ---------------------------------------------------------------------------------------------------
// Child processes (bench/lib/children.mjs) and the temporary stores, removed at the end.

const tempDirs = new Set()

async function cleanup() {
  await stopChildren()
  await Promise.all([...tempDirs].map((d) => rm(d, { recursive: true, force: true }).catch(() => {})))
  tempDirs.clear()
}

onInterrupt(log, async () => {
  stopSigners()
  await cleanup()
})

// ---------------------------------------------------------------------------------------------------
// HTTP helpers and token checks

async function postToken(url, body) {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body,
    signal: AbortSignal.timeout(5000),
  })
  const text = await res.text()
  if (res.status !== 200) throw new Error(`token endpoint answered ${res.status}: ${text.slice(0, 300)}`)
  return JSON.parse(text)
}

/** Decodes a JWT access token without verifying it and asserts it is an RS256 at+jwt. */
function assertRs256Jwt(token, who) {
  const parts = typeof token === 'string' ? token.split('.') : []
  if (parts.length !== 3) throw new Error(`${who} returned an access token that is not a compact JWS: ${String(token).slice(0, 60)}`)
  let header, payload
  try {
    header = JSON.parse(Buffer.from(parts[0], 'base64url').toString())
    payload = JSON.parse(Buffer.from(parts[1], 'base64url').toString())
  } catch {
    throw new Error(`${who} returned an access token whose header or payload is not JSON`)
  }
  if (header.alg !== 'RS256') throw new Error(`${who} signs access tokens with ${header.alg}, not RS256`)
  if (String(header.typ).toLowerCase() !== 'at+jwt') throw new Error(`${who} access token typ is ${header.typ}, not at+jwt`)
  if (Buffer.from(parts[2], 'base64url').length !== 256) throw new Error(`${who} signature is not 2048-bit RSA`)
  return { header, payload, claims: Object.keys(payload).length, bytes: token.length }
}

// ---------------------------------------------------------------------------------------------------
// Load: autocannon, 100 connections, warm-up discarded, then the measured run.

function cannon(opts) {
  return new Promise((resolve, reject) => {
    autocannon({ connections: CONNECTIONS, pipelining: PIPELINING, timeout: 10, ...opts }, (err, result) => (err ? reject(err) : resolve(result)))
  })
}

async function load(label, opts, info) {
  log(`${label}: warm-up ${WARMUP} s`)
  const warm = await cannon({ ...opts, duration: WARMUP })
  if (info?.exited) throw new Error(`${info.label} died during the warm-up:\n${tail(info.output)}`)
  if (warm['2xx'] === 0) throw new Error(`${label}: no 2xx response during the warm-up (non-2xx ${warm.non2xx}, errors ${warm.errors})`)
  log(`${label}: measuring ${DURATION} s`)
  const r = await cannon({ ...opts, duration: DURATION })
  if (info?.exited) throw new Error(`${info.label} died during the measurement:\n${tail(info.output)}`)
  const failed = r.non2xx + r.errors + r.timeouts
  const attempts = r['2xx'] + failed
  const failureRate = attempts ? failed / attempts : 1
  if (r['2xx'] === 0 || failureRate > MAX_FAILURE_RATE) {
    throw new Error(
      `${label}: ${failed} of ${attempts} requests failed (${(failureRate * 100).toFixed(3)} % > ${MAX_FAILURE_RATE * 100} %): ` +
        `non-2xx ${r.non2xx} (4xx ${r['4xx']}, 5xx ${r['5xx']}), errors ${r.errors}, timeouts ${r.timeouts}` +
        (info ? `\n${info.label} output:\n${tail(info.output)}` : ''),
    )
  }
  const m = {
    label,
    rps: r['2xx'] / r.duration, // only 2xx count
    p50: r.latency.p50,
    p99: r.latency.p99,
    max: r.latency.max,
    ok: r['2xx'],
    failed,
    seconds: r.duration,
  }
  log(`${label}: ${Math.round(m.rps)} req/s, p50 ${m.p50} ms, p99 ${m.p99} ms (${m.ok} 2xx, ${failed} failed)`)
  return m
}

// ---------------------------------------------------------------------------------------------------
// 1 and 4: Fieldgate

/** A fresh store with one sandbox tenant and one private app, and `fieldgate serve` on it. */
async function startFieldgate(workers, extraEnv = {}, appArgs = [], scope = 'api') {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'fieldgate-bench-'))
  tempDirs.add(dataDir)
  const env = { FIELDGATE_DATA_DIR: dataDir, FIELDGATE_LOG_LEVEL: 'warn', FIELDGATE_SIGNING_ALG: 'RS256', ...NO_RATE_LIMITS, ...extraEnv }
  for (const k of ['DATABASE_URL', 'REDIS_URL', 'FIELDGATE_ISSUER', 'FIELDGATE_AUDIENCE', 'FIELDGATE_HOST', 'FIELDGATE_PORT', 'FIELDGATE_MASTER_KEY']) env[k] = undefined
  const tenant = await fieldgateCli(env, 'tenants', 'create', '--name', 'Bench Field Services', '--environment', 'sandbox')
  const app = await fieldgateCli(env, 'apps', 'create', '--name', 'bench client', '--kind', 'private', '--tenant', tenant.id, ...appArgs)
  if (!app.client_id || !app.client_secret) throw new Error(`fieldgate apps create gave no credentials: ${JSON.stringify(app)}`)
  const port = await freePort()
  const info = startChild(`fieldgate serve --workers ${workers}`, [cli, 'serve', '--workers', String(workers), '--port', String(port), '--host', HOST], env)
  const url = `http://${HOST}:${port}`
  const body = new URLSearchParams({ grant_type: 'client_credentials', client_id: app.client_id, client_secret: app.client_secret, scope }).toString()
  const token = await waitReady(info, () => postToken(`${url}/oauth/token`, body))
  return { info, url, body, token, env, tenant, app }
}

async function benchFieldgateTokens() {
  const fg = await startFieldgate(WORKERS)
  try {
    const jwt = assertRs256Jwt(fg.token.access_token, 'Fieldgate')
    const m = await load(
      `Fieldgate token endpoint (${WORKERS} workers)`,
      {
        url: `${fg.url}/oauth/token`,
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: fg.body,
      },
      fg.info,
    )
    return { ...m, jwt }
  } finally {
    await stopChild(fg.info)
  }
}

async function benchFieldgateValidation() {
  const fg = await startFieldgate(1)
  try {
    const token = fg.token.access_token
    assertRs256Jwt(token, 'Fieldgate')
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
    await stopChild(fg.info)
  }
}

// ---------------------------------------------------------------------------------------------------
// Issue 5: the resource API with JWT and opaque tokens, and Data API dispatch

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

async function benchResourceApi() {
  const fg = await startFieldgate(1, {}, ['--scopes', 'api alerts:write'], 'alerts:write')
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
    await stopChild(fg.info)
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
  const fg = await startFieldgate(1, retryFast, ['--scopes', 'alerts:write', '--data-api-url', hook], 'alerts:write')
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
    await new Promise((ok) => receiver.listen(port, HOST, ok))
    const opened = performance.now()
    const deadline = Date.now() + 120_000
    while (received < WEBHOOK_EVENTS && Date.now() < deadline) await sleep(20)
    if (received < WEBHOOK_EVENTS) throw new Error(`only ${received} of ${WEBHOOK_EVENTS} events arrived in 2 minutes`)
    const seconds = (last - opened) / 1000
    log(`Data API: ${WEBHOOK_EVENTS} events delivered in ${seconds.toFixed(2)} s after the receiver came up`)
    return { events: WEBHOOK_EVENTS, perSecond: WEBHOOK_EVENTS / seconds, seconds, writesPerSecond: r['2xx'] / r.duration }
  } finally {
    await stopChild(fg.info)
    receiver.closeAllConnections()
    receiver.close()
  }
}

// ---------------------------------------------------------------------------------------------------
// 3: oidc-provider peer

async function benchOidcProvider() {
  const port = await freePort()
  const info = startChild(`oidc-provider peer (${WORKERS} workers)`, [path.join(benchDir, 'peers/oidc-provider.mjs')], { PORT: String(port), BENCH_WORKERS: String(WORKERS) })
  try {
    const ready = await waitReady(info, async () => {
      const line = info.output.split('\n').find((l) => l.startsWith('READY '))
      return line ? line.split(' ') : undefined
    })
    const [, , clientId, clientSecret] = ready
    const url = `http://${HOST}:${port}/token`
    const body = new URLSearchParams({ grant_type: 'client_credentials', client_id: clientId, client_secret: clientSecret, scope: 'api' }).toString()
    const token = await postToken(url, body)
    const jwt = assertRs256Jwt(token.access_token, 'oidc-provider')
    const m = await load(
      `oidc-provider token endpoint (${WORKERS} workers)`,
      {
        url,
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body,
      },
      info,
    )
    const warnings = [
      ...new Set(
        info.output
          .split('\n')
          .map((l) => l.trim())
          .filter((l) => /^oidc-provider (WARNING|NOTICE)|Warning|DeprecationWarning/.test(l)),
      ),
    ]
    const errors = info.output.split('\n').filter((l) => /server_error/.test(l)).length
    return { ...m, jwt, warnings, serverErrors: errors }
  } finally {
    await stopChild(info)
  }
}

/** The practical ceiling: node:http plus one RS256 signature per request, nothing else (peers/bare-signer.mjs). */
async function benchBareSigner() {
  const port = await freePort()
  const info = startChild(`bare node:http signer (${WORKERS} workers)`, [path.join(benchDir, 'peers/bare-signer.mjs')], { PORT: String(port), BENCH_WORKERS: String(WORKERS) })
  try {
    await waitReady(info, async () => (info.output.includes('READY ') ? true : undefined))
    const url = `http://${HOST}:${port}/oauth/token`
    const body = 'grant_type=client_credentials&client_id=x&client_secret=y&scope=api'
    assertRs256Jwt((await postToken(url, body)).access_token, 'bare signer')
    return await load(
      `bare node:http signer (${WORKERS} workers)`,
      {
        url,
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body,
      },
      info,
    )
  } finally {
    await stopChild(info)
  }
}

// ---------------------------------------------------------------------------------------------------
// 2: in-process signing ceiling, worker_threads, nothing else running

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

// ---------------------------------------------------------------------------------------------------
// Report

const fmtInt = (n) => Math.round(n).toLocaleString('en-US')
const fmtMs = (n) => (Number.isInteger(n) ? `${n}` : n.toFixed(1))
const fmtRatio = (n) => n.toFixed(2)
const verdict = (ok) => (ok ? 'met' : '**not met**')

async function environment() {
  const base =
    process.env.npm_lifecycle_event === 'bench' ? 'npm run bench' : ['node', path.relative(process.cwd(), process.argv[1]) || process.argv[1], ...process.argv.slice(2)].join(' ')
  return {
    ...(await runFacts(base, ['BENCH_DURATION', 'BENCH_WARMUP', 'BENCH_SIGN_INFLIGHT'])),
    versions: {
      fieldgate: await packageVersion('package.json'),
      oidcProvider: await packageVersion('node_modules/oidc-provider/package.json'),
      autocannon: await packageVersion('node_modules/autocannon/package.json'),
      jose: await packageVersion('node_modules/jose/package.json'),
    },
  }
}

function report(env, r) {
  const { fg, op, bare, val, ceil, ceil1, raw, raw1, res, hooks } = r
  // The ceiling is the fastest way this machine signs RS256 in process: node:crypto on both cores.
  const ceiling = Math.max(raw.rate, ceil.rate)
  const toCeiling = fg.rps / ceiling
  const toPeer = fg.rps / op.rps
  const L = []
  L.push('# Fieldgate benchmark', '')
  L.push(`- Date: ${env.date}`)
  L.push(`- Command: \`${env.command}\``)
  L.push(`- Node ${env.node}; CPU ${env.cpu}; ${env.os}; ${env.memory}; load average at start ${env.loadAtStart}`)
  L.push(`- Fieldgate ${env.versions.fieldgate} at ${env.commit}; oidc-provider ${env.versions.oidcProvider}; autocannon ${env.versions.autocannon}; jose ${env.versions.jose}`)
  L.push(
    `- Load: autocannon ${CONNECTIONS} connections, pipelining ${PIPELINING}, ${WARMUP} s warm-up discarded, then ${DURATION} s measured; 127.0.0.1; one server at a time; only 2xx responses counted`,
  )
  L.push('')
  L.push('## Client-credentials token endpoint (RS256 JWT access tokens)', '')
  L.push('| Server | tokens/s | p50 | p99 |')
  L.push('|---|---:|---:|---:|')
  L.push(`| Fieldgate, \`fieldgate serve --workers ${WORKERS}\` | ${fmtInt(fg.rps)} | ${fmtMs(fg.p50)} ms | ${fmtMs(fg.p99)} ms |`)
  L.push(`| oidc-provider ${env.versions.oidcProvider}, node:cluster ${WORKERS} workers | ${fmtInt(op.rps)} | ${fmtMs(op.p50)} ms | ${fmtMs(op.p99)} ms |`)
  L.push(
    `| Reference: bare node:http that only signs, node:cluster ${WORKERS} workers (\`bench/peers/bare-signer.mjs\`) | ${fmtInt(bare.rps)} | ${fmtMs(bare.p50)} ms | ${fmtMs(bare.p99)} ms |`,
  )
  L.push('')
  L.push('## RS256 signing ceiling (in process, nothing else running)', '')
  L.push('| Signer | signatures/s |')
  L.push('|---|---:|')
  L.push(`| jose \`SignJWT\`, CryptoKey RS256 2048, both cores (${ceil.threads} worker_threads × ${ceil.inflight} in flight), reference | ${fmtInt(ceil.rate)} |`)
  L.push(`| jose \`SignJWT\`, single core (1 worker_thread, 1 in flight) | ${fmtInt(ceil1.rate)} |`)
  L.push(`| node:crypto \`sign()\` on a KeyObject, both cores (${raw.threads} worker_threads): **the ceiling** | ${fmtInt(raw.rate)} |`)
  L.push(`| node:crypto \`sign()\` on a KeyObject, single core, reference | ${fmtInt(raw1.rate)} |`)
  L.push('')
  L.push('## Protected API: RS256 token validation per process', '')
  L.push('| Server | req/s | p50 | p99 |')
  L.push('|---|---:|---:|---:|')
  L.push(`| Fieldgate, \`fieldgate serve --workers 1\`, \`GET /api/rest/v2/workorders\` with a Bearer token | ${fmtInt(val.rps)} | ${fmtMs(val.p50)} ms | ${fmtMs(val.p99)} ms |`)
  L.push(
    `| Same process, \`GET /.well-known/oauth-authorization-server\` without a token (reference: HTTP stack alone) | ${fmtInt(val.baseline.rps)} | ${fmtMs(val.baseline.p50)} ms | ${fmtMs(val.baseline.p99)} ms |`,
  )
  L.push('')
  L.push('## Resource API and Data API (issue 5), one process', '')
  L.push('| Measurement | rate | p50 | p99 |')
  L.push('|---|---:|---:|---:|')
  L.push(`| \`GET /v1/alerts\` (5 records) with a client-credentials JWT | ${fmtInt(res.withJwt.rps)} req/s | ${fmtMs(res.withJwt.p50)} ms | ${fmtMs(res.withJwt.p99)} ms |`)
  L.push(
    `| \`GET /v1/alerts\` (5 records) with an opaque connection token | ${fmtInt(res.withOpaque.rps)} req/s | ${fmtMs(res.withOpaque.p50)} ms | ${fmtMs(res.withOpaque.p99)} ms |`,
  )
  L.push(`| Data API dispatch: a backlog of ${fmtInt(hooks.events)} signed events to a local receiver | ${fmtInt(hooks.perSecond)} events/s | | |`)
  L.push(`| \`POST /v1/alerts\` that wrote that backlog (record and event in one transaction, 10 connections) | ${fmtInt(hooks.writesPerSecond)} req/s | | |`)
  L.push('')
  L.push(`The backlog was written while the receiver was down; once it listened, the outbox drained in ${hooks.seconds.toFixed(2)} s. Rate limits are off in every run here.`)
  L.push('')
  L.push('## Targets', '')
  L.push('| Check | Value | Target | |')
  L.push('|---|---:|---:|---|')
  L.push(
    `| Fieldgate / signing ceiling (fastest in-process RS256 signer, both cores: ${fmtInt(ceiling)}/s) | ${fmtRatio(toCeiling)} | ≥ ${TARGETS.ceilingRatio} | ${verdict(toCeiling >= TARGETS.ceilingRatio)} |`,
  )
  L.push(`| Fieldgate / oidc-provider | ${fmtRatio(toPeer)} | ≥ ${TARGETS.peerRatio} | ${verdict(toPeer >= TARGETS.peerRatio)} |`)
  L.push(`| Fieldgate token endpoint p99 | ${fmtMs(fg.p99)} ms | < ${TARGETS.p99Ms} ms | ${verdict(fg.p99 < TARGETS.p99Ms)} |`)
  L.push(`| Validation, one process | ${fmtInt(val.rps)} req/s | ≥ ${fmtInt(TARGETS.validationRps)} req/s | ${verdict(val.rps >= TARGETS.validationRps)} |`)
  L.push(`| Fieldgate / jose-on-WebCrypto signing rate (reference, no target) | ${fmtRatio(fg.rps / ceil.rate)} | | |`)
  L.push(`| Bare node:http signer / signing ceiling (what any Node.js server can reach here, no target) | ${fmtRatio(bare.rps / ceiling)} | | |`)
  L.push(`| Fieldgate / bare node:http signer (no target) | ${fmtRatio(fg.rps / bare.rps)} | | |`)
  L.push('')
  L.push('## Notes', '')
  L.push(
    `- The load generator (autocannon) runs on the same ${env.cores} cores as the server under test, so the servers get less than the ${WORKERS} cores the signing ceiling uses; the ceiling ratio is therefore pessimistic for Fieldgate and the same handicap applies to oidc-provider.`,
  )
  L.push(
    "- The ceiling is the faster in-process signer, node:crypto `sign()` (Fieldgate's token path signs with it, `packages/core/src/tokens/jws.ts`); jose on WebCrypto spends more CPU per signature and is shown for reference only.",
  )
  L.push(
    `- Token requests: form-encoded \`grant_type=client_credentials&client_id=…&client_secret=…&scope=api\` to both servers (oidc-provider's client uses \`client_secret_post\`). Access tokens: Fieldgate ${fg.jwt.claims} claims, ${fg.jwt.bytes} bytes; oidc-provider ${op.jwt.claims} claims, ${op.jwt.bytes} bytes; both checked to be RS256 \`at+jwt\` before the runs.`,
  )
  L.push(
    '- Fieldgate stores: fresh SQLite store in a temporary FIELDGATE_DATA_DIR per server, one sandbox tenant, one private app. oidc-provider: in-memory development adapter (JWT access tokens are not stored), static client, RS256 key generated at start.',
  )
  L.push(
    `- Validation run: the tenant has no work orders, so each response is an empty page (${val.responseBytes} bytes); a token with a broken signature was checked to get 401 first.`,
  )
  L.push(
    `- Failures counted (non-2xx, errors, timeouts): Fieldgate tokens ${fg.failed}, oidc-provider ${op.failed}, validation ${val.failed} (the run aborts above ${MAX_FAILURE_RATE * 100} %).`,
  )
  if (op.warnings.length) L.push(`- oidc-provider printed: ${op.warnings.map((w) => `"${w}"`).join('; ')}`)
  if (env.cores !== WORKERS)
    L.push(`- This machine has ${env.cores} cores; the harness always uses ${WORKERS} server processes and ${WORKERS} signing threads (the reference machine's cores).`)
  if (op.serverErrors) L.push(`- oidc-provider logged ${op.serverErrors} server_error events.`)
  if (Number(env.loadAtStart.split(' ')[0]) > env.cores * 0.25)
    L.push(`- **The machine was not quiet** (load average ${env.loadAtStart} at start): treat these figures as provisional.`)
  return L.join('\n') + '\n'
}

// ---------------------------------------------------------------------------------------------------

async function preflight() {
  const main = path.join(root, 'packages/cli/dist/src/main.js')
  try {
    await stat(main)
  } catch {
    throw new Error(`${path.relative(root, main)} is missing: build first with \`npx tsc -b\``)
  }
  for (const dep of ['autocannon', 'oidc-provider', 'jose']) {
    try {
      await stat(path.join(root, 'node_modules', dep, 'package.json'))
    } catch {
      throw new Error(`${dep} is not installed: run \`npm install\``)
    }
  }
}

async function main() {
  await preflight()
  const env = await environment()
  log(`${env.command}: node ${env.node}, ${env.cpu}, ${WARMUP} s warm-up + ${DURATION} s per measurement`)
  if (Number(env.loadAtStart.split(' ')[0]) > env.cores * 0.25) log(`warning: load average ${env.loadAtStart}; figures will be noisy`)
  const r = {}
  // 2 first, while nothing else runs.
  r.ceil = await signingRate('jose', WORKERS, SIGN_INFLIGHT)
  r.ceil1 = await signingRate('jose', 1, 1)
  r.raw = await signingRate('node', WORKERS, 1)
  r.raw1 = await signingRate('node', 1, 1)
  // Then each server on its own.
  r.fg = await benchFieldgateTokens()
  r.op = await benchOidcProvider()
  r.bare = await benchBareSigner()
  r.val = await benchFieldgateValidation()
  r.res = await benchResourceApi()
  r.hooks = await benchWebhooks()
  const md = report(env, r)
  const out = path.join(benchDir, 'results')
  await mkdir(out, { recursive: true })
  await writeFile(path.join(out, 'latest.md'), md)
  await writeFile(path.join(out, 'latest.json'), JSON.stringify({ env, settings: { CONNECTIONS, PIPELINING, WARMUP, DURATION, SIGN_INFLIGHT }, results: r }, null, 2) + '\n')
  process.stdout.write(md)
  log(`written ${path.relative(process.cwd(), path.join(out, 'latest.md'))}`)
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

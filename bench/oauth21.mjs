// What OAuth 2.1 clients cost (issue 16): refresh-token grants and DPoP-bound tokens against the plain
// Bearer figures, in one run of one build. One Fieldgate server (one worker, the embedded SQLite store)
// pinned to CPU 0; the load generator is this process, run pinned to CPU 1. Each figure: a 3 s warm-up,
// then BENCH_DURATION s (default 10) at 50 connections, with autocannon.
//  1. Tokens at POST /oauth/token: (a) client_credentials (the Bearer JWT baseline); (b) refresh_token
//     grants of a public client, each connection refreshing its own family (from its own consent with
//     PKCE), each answer's refresh_token being its next request's; (c) the same with DPoP, a proof per
//     request signed here with the connection's own key. Every refresh must answer 200.
//  2. Validation at GET /v1/permissions: (a) a Bearer JWT; (b) a DPoP-bound JWT with a fresh proof per
//     request, signed as each request is made and, again, precomputed before the run; (c) an opaque
//     connection token, for reference.
//  3. DPoP replay memory alone: the insert every accepted proof makes, on a fresh store on the same disk
//     (and on tmpfs, where fsync returns at once), while the server is idle.
// Each figure says what limited it: the server's CPU share (from /proc) and the load generator's.
// With --store-on-tmpfs the server's store is on /dev/shm, where fsync returns at once: the same figures
// without the disk's wait, to tell what the commits cost (not a deployment: nothing survives a power cut).
//   npm ci && taskset -c 1 node bench/oauth21.mjs [--json] [--store-on-tmpfs]
import { execFile } from 'node:child_process'
import { createHash, generateKeyPairSync, randomBytes, sign } from 'node:crypto'
import { existsSync } from 'node:fs'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import autocannon from 'autocannon'
import { HOST, NO_RATE_LIMITS, cli, fieldgateCli, freePort, onInterrupt, root, runFacts, startChild, stopChildren, waitReady } from './lib/children.mjs'
import { browserSession, connectThroughConsent, hidden } from './lib/consent.mjs'

const execFileP = promisify(execFile)
const DURATION = Number(process.env.BENCH_DURATION) || 10
const WARMUP = 3
const CONNECTIONS = 50
// Precomputed proofs carry the iat of when they were made; the server takes them for 60 s.
if (DURATION > 40) throw new Error('BENCH_DURATION is at most 40 s: precomputed DPoP proofs must stay younger than 60 s')
const twoCores = os.cpus().length > 1
const log = (msg) => process.stderr.write(`[oauth21] ${msg}\n`)
const form = (fields) => new URLSearchParams(fields).toString()
const b64url = (data) => Buffer.from(data).toString('base64url')
const FORM = { 'content-type': 'application/x-www-form-urlencoded' }
const REDIRECT = 'https://agent.bench.example/cb'
const STORE_BASE = process.argv.includes('--store-on-tmpfs') ? '/dev/shm' : os.tmpdir()

const dirs = []
const tmp = async (name, base = os.tmpdir()) => {
  const d = await mkdtemp(path.join(base, `oauth21-${name}-`))
  dirs.push(d)
  return d
}
const cleanup = async () => {
  await stopChildren()
  for (const d of dirs) await rm(d, { recursive: true, force: true })
}
onInterrupt(log, cleanup)

// ---------------------------------------------------------------------------------------------------
// DPoP proofs (RFC 9449 §4.2), made here: ES256 on a P-256 key of each connection's own.

/** A client's DPoP key: its public JWK's header, and a proof for a request (with `ath` for a resource). */
function dpopKey() {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  const { kty, crv, x, y } = publicKey.export({ format: 'jwk' })
  const header = b64url(JSON.stringify({ typ: 'dpop+jwt', alg: 'ES256', jwk: { kty, crv, x, y } }))
  const jtiPrefix = randomBytes(9).toString('base64url')
  let made = 0
  const proof = (htm, htu, accessToken) => {
    const claims = { jti: `${jtiPrefix}.${made++}`, htm, htu, iat: Math.floor(Date.now() / 1000) }
    if (accessToken !== undefined) claims.ath = createHash('sha256').update(accessToken).digest('base64url')
    const input = `${header}.${b64url(JSON.stringify(claims))}`
    return `${input}.${sign('sha256', Buffer.from(input), { key: privateKey, dsaEncoding: 'ieee-p1363' }).toString('base64url')}`
  }
  return { proof }
}

/** How fast this process signs proofs by itself, before anything runs: what signing per request costs here. */
function proofSigningRate() {
  const key = dpopKey()
  const start = performance.now()
  let n = 0
  while (performance.now() - start < 1000) {
    key.proof('GET', 'http://127.0.0.1/v1/permissions', 'token')
    n++
  }
  return (n * 1000) / (performance.now() - start)
}

// ---------------------------------------------------------------------------------------------------
// The server, its apps and the tokens the figures use.

async function startFieldgate() {
  const dataDir = await tmp('data', STORE_BASE)
  const port = await freePort()
  const url = `http://${HOST}:${port}`
  const env = {
    FIELDGATE_DATA_DIR: dataDir,
    FIELDGATE_ISSUER: url,
    FIELDGATE_LOG_LEVEL: 'warn',
    ...NO_RATE_LIMITS,
    DATABASE_URL: undefined,
    REDIS_URL: undefined,
  }
  const tenant = await fieldgateCli(env, 'tenants', 'create', '--name', 'Bench', '--environment', 'sandbox')
  const service = await fieldgateCli(env, 'apps', 'create', '--name', 'bench service', '--kind', 'private', '--tenant', tenant.id, '--scopes', 'api')
  const agent = await fieldgateCli(
    env,
    'apps',
    'create',
    '--name',
    'bench agent',
    '--kind',
    'public',
    '--environment',
    'sandbox',
    '--tenant',
    tenant.id,
    '--scopes',
    'api',
    '--redirect-uri',
    REDIRECT,
    '--public-client',
  )
  const info = startChild('fieldgate serve', [cli, 'serve', '--workers', '1', '--port', String(port), '--host', HOST], env)
  const ccBody = form({ grant_type: 'client_credentials', client_id: service.client_id, client_secret: service.client_secret, scope: 'api' })
  const first = await waitReady(info, async () => {
    const res = await fetch(`${url}/oauth/token`, { method: 'POST', headers: FORM, body: ccBody })
    if (res.status !== 200) throw new Error(`token: ${res.status}`)
    return res.json()
  })
  // startChild runs `node <args>`: the serve process (one worker: one process) is pinned once it answers.
  if (twoCores) await execFileP('taskset', ['-a', '-p', '-c', '0', String(info.child.pid)])
  return { info, url, env, tenant, service, agent, ccBody, jwt: first.access_token }
}

/** A client_credentials token bound to `key` (RFC 9449 §5): the JWT's cnf.jkt is its thumbprint. */
async function boundToken(fg, key) {
  const res = await fetch(`${fg.url}/oauth/token`, { method: 'POST', headers: { ...FORM, dpop: key.proof('POST', `${fg.url}/oauth/token`) }, body: fg.ccBody })
  const body = await res.json()
  if (res.status !== 200 || body.token_type !== 'DPoP') throw new Error(`a DPoP-bound client_credentials token: ${res.status} ${JSON.stringify(body)}`)
  return body.access_token
}

/**
 * A farmer of the bench tenant, signed in; `chain()` is one consent of the public client with PKCE S256
 * (RFC 7636) and the code exchanged at /oauth/token: a new refresh-token family, with `key` bound to it.
 */
async function farmer(fg) {
  const email = 'farmer@bench.example'
  const password = 'bench password 4567'
  await fieldgateCli(fg.env, 'users', 'create', '--email', email, '--password', password, '--tenant', fg.tenant.id, '--role', 'owner')
  const b = browserSession(fg.url)
  const login = await b.send('/login')
  await b.form('/login', { ...hidden(login.text), email, password })
  const chain = async (key) => {
    const verifier = randomBytes(32).toString('base64url')
    const query = {
      response_type: 'code',
      client_id: fg.agent.client_id,
      redirect_uri: REDIRECT,
      scope: 'api',
      state: randomBytes(8).toString('hex'),
      code_challenge: createHash('sha256').update(verifier).digest('base64url'),
      code_challenge_method: 'S256',
    }
    const page = await b.send(`/oauth/authorize?${form(query)}`)
    const decided = await b.form('/consent', { ...hidden(page.text), decision: 'allow' })
    const code = decided.res.headers.get('location') && new URL(decided.res.headers.get('location')).searchParams.get('code')
    if (!code) throw new Error(`consent gave no code: ${page.res.status} ${decided.res.status} ${decided.text.slice(0, 300)}`)
    const headers = key ? { ...FORM, dpop: key.proof('POST', `${fg.url}/oauth/token`) } : FORM
    const body = form({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier, client_id: fg.agent.client_id })
    const res = await fetch(`${fg.url}/oauth/token`, { method: 'POST', headers, body })
    const token = await res.json()
    if (res.status !== 200 || !token.refresh_token || token.token_type !== (key ? 'DPoP' : 'Bearer')) throw new Error(`code exchange: ${res.status} ${JSON.stringify(token)}`)
    return { refreshToken: token.refresh_token, key }
  }
  return { chain }
}

// ---------------------------------------------------------------------------------------------------
// Measuring: autocannon, with the server's and this process's CPU over the measured seconds.

const clockTicks = Number((await execFileP('getconf', ['CLK_TCK'])).stdout) || 100

/** The CPU seconds a process has used (utime + stime, /proc/<pid>/stat fields 14 and 15). */
async function cpuSeconds(pid) {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return (Number(fields[11]) + Number(fields[12])) / clockTicks
}

/** Per CPU, the jiffies of /proc/stat: busy (user to softirq, and steal), iowait, idle. */
async function cpuTimes() {
  const lines = (await readFile('/proc/stat', 'utf8')).split('\n').filter((l) => /^cpu\d+ /.test(l))
  return lines.map((l) => {
    const [user, nice, system, idle, iowait, irq, softirq, steal] = l.split(/\s+/).slice(1).map(Number)
    return { busy: user + nice + system + irq + softirq, iowait, idle, steal }
  })
}

/** What each core did between two cpuTimes(): shares of busy (anyone's), iowait and steal. */
function coreShares(before, after) {
  return after.map((a, i) => {
    const b = before[i]
    const d = (k) => a[k] - b[k]
    const total = d('busy') + d('iowait') + d('idle') + d('steal')
    return { busy: d('busy') / total, iowait: d('iowait') / total, steal: d('steal') / total }
  })
}

const cannon = (opts, duration) => new Promise((ok, fail) => autocannon({ connections: CONNECTIONS, ...opts, duration }, (e, r) => (e ? fail(e) : ok(r))))

/**
 * A figure: `setup(phase)` gives autocannon's options for the warm-up and again for the measured run (a
 * refresh run needs fresh chains: the last request of each connection is cut off with its answer), as
 * `{ opts, failures?, sample?, extra? }`: what the run counted itself. Every answer must be 2xx.
 */
async function measure(fg, label, setup) {
  const warm = await setup('warm-up')
  const warmed = await cannon(warm.opts, WARMUP)
  if (failuresOf(warmed, warm) > 0) throw new Error(`${label}, warm-up: ${failuresOf(warmed, warm)} answers were not 2xx${warm.sample ? `: ${warm.sample()}` : ''}`)
  const run = await setup('measured')
  const start = { server: await cpuSeconds(fg.info.child.pid), generator: process.cpuUsage(), cores: await cpuTimes(), at: performance.now() }
  const r = await cannon(run.opts, DURATION)
  const wall = (performance.now() - start.at) / 1000
  const serverCpu = (await cpuSeconds(fg.info.child.pid)) - start.server
  const cores = coreShares(start.cores, await cpuTimes())
  const gen = process.cpuUsage(start.generator)
  const failures = failuresOf(r, run)
  const out = {
    per_s: r.requests.average,
    requests: r.requests.total,
    p50_ms: r.latency.p50,
    p99_ms: r.latency.p99,
    failures,
    server_cpu_share: serverCpu / wall,
    // One core divided by the rate (as forward-auth.mjs reports it), and the CPU the server really used.
    server_core_us_per_request: 1e6 / r.requests.average,
    server_cpu_us_per_request: (serverCpu * 1e6) / r.requests.total,
    generator_cpu_share: (gen.user + gen.system) / 1e6 / wall,
    // Everyone's use of each core: the server's core busier than the server means another process ran there.
    cores,
    ...(run.extra?.() ?? {}),
  }
  out.limited_by = limit(out)
  const extra = run.extra ? ` ${JSON.stringify(run.extra())}` : ''
  log(
    `${label}: ${Math.round(out.per_s)}/s, p50 ${out.p50_ms} ms, p99 ${out.p99_ms} ms, server CPU ${pct(out.server_cpu_share)} (${Math.round(out.server_cpu_us_per_request)} µs/req), generator CPU ${pct(out.generator_cpu_share)}, cores ${cores.map((c) => `${pct(c.busy)} busy ${pct(c.iowait)} iowait ${pct(c.steal)} steal`).join(' / ')}, failures ${failures}${extra}`,
  )
  if (failures > 0) throw new Error(`${label}: ${failures} of ${r.requests.total} answers were not 2xx${run.sample ? `: ${run.sample()}` : ''}`)
  return out
}

/** autocannon's non-2xx, errors and timeouts, and the refusals a run counted itself (a 200 without a token). */
const failuresOf = (r, run) => r.non2xx + r.errors + r.timeouts + (run.failures?.() ?? 0)

const pct = (share) => `${Math.round(share * 100)} %`

/** Whose core was full: the server's, the load generator's, CPU 0 with others' work too, or none (the server waits). */
function limit({ server_cpu_share: server, generator_cpu_share: generator, cores }) {
  if (server >= 0.9) return 'server CPU'
  if (generator >= 0.9) return 'load generator CPU'
  const cpu0 = cores[0]
  if (cpu0 && cpu0.busy + cpu0.steal >= 0.9) return `CPU 0 full, ${pct(cpu0.busy + cpu0.steal - server)} of it not the server's (other processes, steal)`
  return `neither core full: the server waits (fsync of its SQLite commits; CPU 0 iowait ${pct(cpu0?.iowait ?? 0)})`
}

/** Static requests: the same one on every connection. */
const fixed = (fg, path, request) => () => ({ opts: { url: `${fg.url}${path}`, ...request } })

/**
 * Per-connection state: `perConnection(i)` gives connection i its request (`setupRequest`, `onResponse`),
 * with the closures holding that connection's own chain, key and proofs.
 */
function perConnection(fg, path, perClient, { failures, sample, extra } = {}) {
  let next = 0
  const opts = {
    url: `${fg.url}${path}`,
    setupClient(client) {
      client.setRequests([{ path, ...perClient(next++) }])
    },
  }
  return {
    opts,
    failures,
    sample,
    extra,
  }
}

// ---------------------------------------------------------------------------------------------------
// 1. Tokens

/** Refresh grants, a chain per connection: each 200's refresh_token is that connection's next request. */
function refreshRun(fg, chains, dpop) {
  let refused = 0
  let lastRefusal = ''
  const url = `${fg.url}/oauth/token`
  return perConnection(
    fg,
    '/oauth/token',
    (i) => {
      const chain = chains[i]
      if (!chain) throw new Error(`no refresh chain for connection ${i}`)
      return {
        method: 'POST',
        headers: FORM,
        setupRequest(req) {
          req.body = form({ grant_type: 'refresh_token', refresh_token: chain.refreshToken, client_id: fg.agent.client_id })
          if (dpop) req.headers = { ...req.headers, dpop: chain.key.proof('POST', url) }
          return req
        },
        onResponse(status, body) {
          const token = status === 200 ? JSON.parse(body) : undefined
          if (token?.refresh_token && token.token_type === (dpop ? 'DPoP' : 'Bearer')) {
            chain.refreshToken = token.refresh_token
          } else {
            refused++
            lastRefusal = `${status} ${body.slice(0, 200)}`
          }
        },
      }
    },
    { failures: () => refused, sample: () => lastRefusal },
  )
}

/** `n` new families through consent, each bound to a key of its own when `dpop`. */
async function chainsFor(person, n, dpop) {
  const started = performance.now()
  const chains = []
  for (let i = 0; i < n; i++) chains.push(await person.chain(dpop ? dpopKey() : undefined))
  log(`${n} consents with PKCE${dpop ? ' and DPoP' : ''} in ${Math.round(performance.now() - started)} ms`)
  return chains
}

// ---------------------------------------------------------------------------------------------------
// 2. Validation with DPoP: a bound token and a key per connection; proofs signed as each request is
// made, or taken from a pool signed before the run (falling back to signing if the pool runs dry).

function dpopValidationRun(fg, bound, pools) {
  const url = `${fg.url}/v1/permissions`
  let signedDuring = 0
  let fromPool = 0
  return perConnection(
    fg,
    '/v1/permissions',
    (i) => {
      const { key, token } = bound[i]
      const pool = pools?.[i] ?? []
      return {
        method: 'GET',
        headers: { authorization: `DPoP ${token}` },
        setupRequest(req) {
          let proof = pool.pop()
          if (proof) fromPool++
          else {
            proof = key.proof('GET', url, token)
            signedDuring++
          }
          req.headers = { ...req.headers, dpop: proof }
          return req
        },
      }
    },
    { extra: () => ({ proofs_signed_during_run: signedDuring, proofs_from_pool: fromPool }) },
  )
}

/** Proofs for `total` requests, spread over the connections, signed now (iat now). */
function proofPools(fg, bound, total) {
  const started = performance.now()
  const url = `${fg.url}/v1/permissions`
  const each = Math.ceil(total / bound.length)
  const pools = bound.map(({ key, token }) => Array.from({ length: each }, () => key.proof('GET', url, token)))
  log(`${each * bound.length} proofs signed in ${Math.round(performance.now() - started)} ms`)
  return pools
}

// ---------------------------------------------------------------------------------------------------
// 3. Replay memory alone (lib/proof-store.mjs), pinned to the server's core while the server is idle.

async function proofStoreCost(base) {
  const dir = await tmp('proofs', base)
  const args = [path.join(root, 'bench/lib/proof-store.mjs'), dir, '3']
  const [cmd, argv] = twoCores ? ['taskset', ['-c', '0', process.execPath, ...args]] : [process.execPath, args]
  const { stdout } = await execFileP(cmd, argv, { cwd: root, timeout: 60_000 })
  return { dir: base, ...JSON.parse(stdout) }
}

// ---------------------------------------------------------------------------------------------------

async function main() {
  const flags = process.argv.slice(2).filter((a) => a === '--store-on-tmpfs')
  const facts = { ...(await runFacts(['taskset -c 1 node bench/oauth21.mjs', ...flags].join(' '), ['BENCH_DURATION'])), store: `SQLite in ${STORE_BASE}` }
  log(`load average at start: ${facts.loadAtStart}`)
  const signing = proofSigningRate()
  log(`ES256 DPoP proofs signed here: ${Math.round(signing)}/s (${Math.round(1e6 / signing)} µs each)`)
  const fg = await startFieldgate()
  try {
    const person = await farmer(fg)
    const opaque = await connectThroughConsent(fg)
    const tokens = {
      clientCredentials: await measure(fg, 'POST /oauth/token client_credentials', fixed(fg, '/oauth/token', { method: 'POST', headers: FORM, body: fg.ccBody })),
      refresh: await measure(fg, 'POST /oauth/token refresh_token', async () => refreshRun(fg, await chainsFor(person, CONNECTIONS, false), false)),
      refreshDpop: await measure(fg, 'POST /oauth/token refresh_token with DPoP', async () => refreshRun(fg, await chainsFor(person, CONNECTIONS, true), true)),
    }
    const bound = []
    for (let i = 0; i < CONNECTIONS; i++) {
      const key = dpopKey()
      bound.push({ key, token: await boundToken(fg, key) })
    }
    const validation = {
      bearer: await measure(fg, 'GET /v1/permissions, Bearer JWT', fixed(fg, '/v1/permissions', { headers: { authorization: `Bearer ${fg.jwt}` } })),
      dpopSignedDuring: await measure(fg, 'GET /v1/permissions, DPoP JWT, proofs signed per request', () => dpopValidationRun(fg, bound)),
    }
    // A pool of 2.5 times what the rate just measured needs, made just before each run.
    const wanted = (seconds) => Math.ceil(validation.dpopSignedDuring.per_s * 2.5 * seconds)
    validation.dpopPrecomputed = await measure(fg, 'GET /v1/permissions, DPoP JWT, precomputed proofs', (phase) =>
      dpopValidationRun(fg, bound, proofPools(fg, bound, wanted(phase === 'warm-up' ? WARMUP : DURATION))),
    )
    validation.opaque = await measure(fg, 'GET /v1/permissions, opaque token', fixed(fg, '/v1/permissions', { headers: { authorization: `Bearer ${opaque}` } }))
    const replay = { disk: await proofStoreCost(os.tmpdir()), ...(existsSync('/dev/shm') ? { tmpfs: await proofStoreCost('/dev/shm') } : {}) }
    log(`rememberProof alone: ${JSON.stringify(replay)}`)
    const a = tokens.clientCredentials.per_s
    const v = validation.bearer.per_s
    const out = {
      facts,
      duration_s: DURATION,
      warmup_s: WARMUP,
      connections: CONNECTIONS,
      tokens,
      validation,
      replay_memory_alone: replay,
      generator_proofs_signed_per_s: signing,
      ratios: {
        refresh_over_client_credentials: tokens.refresh.per_s / a,
        refresh_dpop_over_client_credentials: tokens.refreshDpop.per_s / a,
        dpop_over_bearer_validation: validation.dpopPrecomputed.per_s / v,
        dpop_signed_during_over_bearer_validation: validation.dpopSignedDuring.per_s / v,
        opaque_over_bearer_validation: validation.opaque.per_s / v,
      },
    }
    console.log(process.argv.includes('--json') ? JSON.stringify(out) : JSON.stringify(out, null, 2))
  } finally {
    await cleanup()
  }
}

await main()

// What a gateway's check costs. One build; Fieldgate (one worker), Debian's nginx (one worker) and a bare
// upstream API (node:http, no auth code) each pinned to CPU 0, the load generator on CPU 1 (run this
// pinned so). Each figure: 3 s warm-up, then BENCH_DURATION s (default 10) at 50 connections.
//  1. GET /forward-auth with a JWT, and with an opaque connection token (what nginx's subrequest sends);
//  2. the resource API's own validation in the same run: GET /v1/permissions with the same tokens;
//  3. the same API call through nginx with the auth_request check, and through nginx without it.
// Fieldgate's time per check is its one core divided by the checks it answers a second.
//   npm ci && taskset -c 1 node bench/forward-auth.mjs [--json]
import { spawn } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import autocannon from 'autocannon'
import { HOST, NO_RATE_LIMITS, cli, fieldgateCli, freePort, startChild, stopChild, stopChildren, waitReady } from './lib/children.mjs'
import { connectThroughConsent } from './lib/consent.mjs'
import { nginxSite, nginxSkip, startNginx } from '../packages/server/dist/test/support/nginx.js'

const DURATION = Number(process.env.BENCH_DURATION) || 10
const CONNECTIONS = 50
const pin = (args) => (os.cpus().length > 1 ? ['taskset', ['-c', '0', ...args]] : [args[0], args.slice(1)])
const log = (msg) => process.stderr.write(`[forward-auth] ${msg}\n`)
if (nginxSkip) throw new Error(nginxSkip)

const dirs = []
const tmp = async (name) => {
  const d = await mkdtemp(path.join(os.tmpdir(), `fa-${name}-`))
  dirs.push(d)
  return d
}

/** The API behind the gateway: answers every call with a small JSON body, and checks nothing. */
async function startUpstream() {
  const port = await freePort()
  const code = `require('node:http').createServer((q, s) => s.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}')).listen(${port}, '${HOST}')`
  const [cmd, args] = pin([process.execPath, '-e', code])
  const child = spawn(cmd, args, { stdio: 'ignore' })
  for (let i = 0; i < 100; i++) {
    try {
      if ((await fetch(`http://${HOST}:${port}/`)).ok) break
    } catch {}
    await new Promise((r) => setTimeout(r, 50))
  }
  return { at: `${HOST}:${port}`, stop: () => child.kill('SIGTERM') }
}

async function startFieldgate(apiHost, port) {
  const dataDir = await tmp('data')
  await writeFile(
    path.join(dataDir, 'gateway.json'),
    JSON.stringify({
      apis: [
        {
          id: 'bench',
          resource: `http://${apiHost}`,
          hosts: [apiHost],
          rules: [
            { methods: ['GET'], path: '/orders/**', scope: 'api' },
            { path: '/alerts/**', scope: 'alerts:write' },
          ],
        },
      ],
    }),
  )
  const env = {
    FIELDGATE_DATA_DIR: dataDir,
    FIELDGATE_GATEWAY_FILE: 'gateway.json',
    FIELDGATE_LOG_LEVEL: 'warn',
    ...NO_RATE_LIMITS,
    DATABASE_URL: undefined,
    REDIS_URL: undefined,
  }
  const tenant = await fieldgateCli(env, 'tenants', 'create', '--name', 'Bench', '--environment', 'sandbox')
  const app = await fieldgateCli(env, 'apps', 'create', '--name', 'bench', '--kind', 'private', '--tenant', tenant.id, '--scopes', 'api')
  const url = `http://${HOST}:${port}`
  // startChild runs `node <args>`: the serve process is pinned by its pid once it answers.
  const info = startChild('fieldgate serve', [cli, 'serve', '--workers', '1', '--port', String(port), '--host', HOST], env)
  const body = new URLSearchParams({ grant_type: 'client_credentials', client_id: app.client_id, client_secret: app.client_secret, scope: 'api' }).toString()
  const post = async () => {
    const res = await fetch(`${url}/oauth/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body })
    if (res.status !== 200) throw new Error(`token: ${res.status}`)
    return res.json()
  }
  const token = await waitReady(info, post)
  if (os.cpus().length > 1) spawn('taskset', ['-a', '-p', '-c', '0', String(info.child.pid)], { stdio: 'ignore' })
  return { info, url, env, tenant, jwt: token.access_token }
}

const cannon = (opts) => new Promise((ok, fail) => autocannon({ connections: CONNECTIONS, ...opts }, (e, r) => (e ? fail(e) : ok(r))))

async function measure(label, opts) {
  await cannon({ ...opts, duration: 3 })
  const r = await cannon({ ...opts, duration: DURATION })
  const rps = r.requests.average
  const failures = r.non2xx + r.errors + r.timeouts
  log(`${label}: ${Math.round(rps)} req/s, p50 ${r.latency.p50} ms, p99 ${r.latency.p99} ms, non-2xx/errors ${failures}`)
  if (failures > r.requests.total * 0.001) throw new Error(`${label}: ${failures} of ${r.requests.total} failed`)
  return { rps, p50: r.latency.p50, p99: r.latency.p99 }
}

async function main() {
  const upstream = await startUpstream()
  // nginx listens where the API is declared, so its port comes first; Fieldgate's is picked for it.
  const fgPort = await freePort()
  const onCpu0 = os.cpus().length > 1 ? ['taskset', '-c', '0'] : []
  const withCheck = await startNginx(await tmp('nginx'), (port) => nginxSite({ port, fieldgate: `${HOST}:${fgPort}`, upstream: upstream.at }), onCpu0)
  const without = await startNginx(await tmp('nginx-open'), (port) => `server { listen ${HOST}:${port}; location / { proxy_pass http://${upstream.at}; } }`, onCpu0)
  const apiHost = new URL(withCheck.origin).host
  const fg = await startFieldgate(apiHost, fgPort)
  try {
    const opaque = await connectThroughConsent(fg)
    const check = (token, uri) => ({
      url: `${fg.url}/forward-auth`,
      headers: { authorization: `Bearer ${token}`, 'x-forwarded-method': 'GET', 'x-forwarded-uri': uri, 'x-forwarded-host': apiHost },
    })
    const own = (token) => ({ url: `${fg.url}/v1/permissions`, headers: { authorization: `Bearer ${token}` } })
    const r = {
      ownJwt: await measure('GET /v1/permissions, JWT', own(fg.jwt)),
      forwardAuthJwt: await measure('GET /forward-auth, JWT', check(fg.jwt, '/orders/1')),
      forwardAuthOpaque: await measure('GET /forward-auth, opaque token', check(opaque, '/alerts/1')),
      ownOpaque: await measure('GET /v1/permissions, opaque token', own(opaque)),
      nginxWithCheck: await measure('nginx with auth_request, JWT', { url: `${withCheck.origin}/orders/1`, headers: { authorization: `Bearer ${fg.jwt}` } }),
      nginxWithout: await measure('nginx without a check', { url: `${without.origin}/orders/1` }),
    }
    const out = {
      duration_s: DURATION,
      connections: CONNECTIONS,
      forward_auth: {
        jwt_per_s: r.forwardAuthJwt.rps,
        opaque_per_s: r.forwardAuthOpaque.rps,
        jwt_us_per_check: 1e6 / r.forwardAuthJwt.rps,
        opaque_us_per_check: 1e6 / r.forwardAuthOpaque.rps,
      },
      own_api: { jwt_per_s: r.ownJwt.rps, opaque_per_s: r.ownOpaque.rps },
      ratios: {
        jwt_forward_over_own: r.forwardAuthJwt.rps / r.ownJwt.rps,
        opaque_forward_over_own: r.forwardAuthOpaque.rps / r.ownOpaque.rps,
        nginx_with_over_without: r.nginxWithCheck.rps / r.nginxWithout.rps,
      },
      nginx: { with_check_per_s: r.nginxWithCheck.rps, without_per_s: r.nginxWithout.rps, with_check_p99_ms: r.nginxWithCheck.p99, without_p99_ms: r.nginxWithout.p99 },
    }
    console.log(process.argv.includes('--json') ? JSON.stringify(out) : JSON.stringify(out, null, 2))
  } finally {
    await stopChild(fg.info)
    await withCheck.stop()
    await without.stop()
    upstream.stop()
    await stopChildren()
    for (const d of dirs) await rm(d, { recursive: true, force: true })
  }
}

await main()

// What the request log costs: one build, two servers on the embedded store, each one worker pinned to
// CPU 0 (run this pinned to CPU 1), one logging every request (FIELDGATE_LOG_LEVEL=info, the default,
// to a pipe that is drained) and one not (warn). They take turns, 3 s warm-up then 10 s measured, three
// rounds in alternating order, on the token endpoint (client credentials) and on token validation
// (GET /v1/permissions with a bearer JWT). Prints each mean and the ratio info/warn.
//   npm ci && taskset -c 1 node bench/request-log.mjs
import { execFileSync, spawn } from 'node:child_process'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import autocannon from 'autocannon'

const bin = join(import.meta.dirname, '..', 'packages/cli/bin/fieldgate.js')
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

async function start(level, port) {
  const env = { ...process.env, FIELDGATE_DATA_DIR: mkdtempSync(join(tmpdir(), `rl-${level}-`)), FIELDGATE_PORT: String(port), FIELDGATE_LOG_LEVEL: level }
  env.FIELDGATE_RATE_LIMIT_TOKEN_PER_CLIENT = '0'
  env.FIELDGATE_RATE_LIMIT_TOKEN_PER_ADDRESS = '0'
  env.FIELDGATE_RATE_LIMIT_PER_TOKEN = '0'
  env.FIELDGATE_RATE_LIMIT_PER_CLIENT = '0'
  delete env.DATABASE_URL
  delete env.REDIS_URL
  const cli = (...a) => JSON.parse(execFileSync('node', [bin, ...a, '--json'], { env }).toString())
  const t = cli('tenants', 'create', '--name', 'RL', '--environment', 'sandbox')
  const app = cli('apps', 'create', '--name', 'RL', '--kind', 'private', '--tenant', t.id)
  const child = spawn('taskset', ['-c', '0', 'node', bin, 'serve', '--workers', '1'], { env, stdio: ['ignore', 'pipe', 'inherit'] })
  let logged = 0
  child.stdout.on('data', (chunk) => (logged += chunk.length))
  for (let i = 0; i < 100; i++) {
    try {
      if ((await fetch(`http://127.0.0.1:${port}/healthz`)).ok) break
    } catch {}
    await sleep(100)
  }
  const body = JSON.stringify({ grant_type: 'client_credentials', client_id: app.client_id, client_secret: app.client_secret })
  const token = (await (await fetch(`http://127.0.0.1:${port}/oauth/token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body })).json()).access_token
  return { child, body, token, port, logged: () => logged }
}

const load = (opts, duration) => new Promise((ok, fail) => autocannon({ connections: 20, duration, ...opts }, (e, r) => (e ? fail(e) : ok(r))))
const cases = {
  token: (s) => ({ url: `http://127.0.0.1:${s.port}/oauth/token`, method: 'POST', headers: { 'content-type': 'application/json' }, body: s.body }),
  validation: (s) => ({ url: `http://127.0.0.1:${s.port}/v1/permissions`, headers: { authorization: `Bearer ${s.token}` } }),
}
const servers = { info: await start('info', 4611), warn: await start('warn', 4612) }
const results = {}
for (const [name, opts] of Object.entries(cases)) {
  results[name] = { info: [], warn: [] }
  for (let round = 0; round < 3; round++)
    for (const level of round % 2 ? ['warn', 'info'] : ['info', 'warn']) {
      await load(opts(servers[level]), 3)
      const r = await load(opts(servers[level]), 10)
      results[name][level].push(Math.round(r['2xx'] / 10))
      console.log(name, level, round, Math.round(r['2xx'] / 10), 'req/s', 'non2xx', r.non2xx)
    }
}
for (const s of Object.values(servers)) s.child.kill('SIGTERM')
const mean = (a) => Math.round(a.reduce((x, y) => x + y, 0) / a.length)
for (const [name, r] of Object.entries(results))
  console.log(`${name}: info ${mean(r.info)} req/s, warn ${mean(r.warn)} req/s, ratio info/warn ${(mean(r.info) / mean(r.warn)).toFixed(3)}`)
console.log(`log bytes written: info ${servers.info.logged()}, warn ${servers.warn.logged()}`)

// A/B of the token endpoint between two builds of Fieldgate on this machine: each serves one worker pinned to
// CPU 0 (run this pinned to CPU 1), and they take turns, 3 s warm-up then 15 s measured, three rounds in
// alternating order so drift in the machine falls on both. Client credentials, Field Nation's token path.
//   taskset -c 1 node bench/ab-token.mjs <before checkout> <after checkout>     # both built (npm ci)
//   AB_LIMIT=100000000 …   keeps the token rate limits on (counted, never reached); 0 (default) turns them off
import { spawn, execFileSync } from 'node:child_process'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import autocannon from 'autocannon'
const [beforeDir, afterDir] = process.argv.slice(2)
if (!beforeDir || !afterDir) throw new Error('usage: node bench/ab-token.mjs <before checkout> <after checkout>')
const builds = { before: beforeDir, after: afterDir }
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))
async function start(name, port) {
  const dir = mkdtempSync(join(tmpdir(), `ab-${name}-`))
  const env = {
    ...process.env,
    FIELDGATE_DATA_DIR: dir,
    FIELDGATE_PORT: String(port),
    FIELDGATE_LOG_LEVEL: 'error',
    FIELDGATE_RATE_LIMIT_TOKEN_PER_CLIENT: process.env.AB_LIMIT ?? '0',
    FIELDGATE_RATE_LIMIT_TOKEN_PER_ADDRESS: process.env.AB_LIMIT ?? '0',
  }
  // The embedded store: nothing of the shell's PostgreSQL or Redis.
  delete env.DATABASE_URL
  delete env.REDIS_URL
  const bin = join(builds[name], 'packages/cli/bin/fieldgate.js')
  const cli = (...a) => JSON.parse(execFileSync('node', [bin, ...a, '--json'], { env }).toString())
  const t = cli('tenants', 'create', '--name', 'AB', '--environment', 'sandbox')
  const app = cli('apps', 'create', '--name', 'AB', '--kind', 'private', '--tenant', t.id)
  const child = spawn('taskset', ['-c', '0', 'node', bin, 'serve', '--workers', '1'], { env, stdio: 'ignore' })
  for (let i = 0; i < 100; i++) {
    try {
      const r = await fetch(`http://127.0.0.1:${port}/.well-known/oauth-authorization-server`)
      if (r.ok) break
    } catch {}
    await sleep(100)
  }
  return { child, body: JSON.stringify({ grant_type: 'client_credentials', client_id: app.client_id, client_secret: app.client_secret, scope: 'api' }) }
}
const run = (url, body, duration) =>
  new Promise((ok, fail) => autocannon({ url, method: 'POST', headers: { 'content-type': 'application/json' }, body, connections: 20, duration }, (e, r) => (e ? fail(e) : ok(r))))
const servers = { before: await start('before', 4501), after: await start('after', 4502) }
const port = { before: 4501, after: 4502 }
const results = { before: [], after: [] }
for (let round = 0; round < 3; round++)
  for (const name of round % 2 ? ['after', 'before'] : ['before', 'after']) {
    const url = `http://127.0.0.1:${port[name]}/authentication/api/oauth/token`
    await run(url, servers[name].body, 3)
    const r = await run(url, servers[name].body, 15)
    results[name].push(Math.round(r['2xx'] / 15))
    console.log(name, round, Math.round(r['2xx'] / 15), 'tokens/s', 'non2xx', r.non2xx)
  }
for (const s of Object.values(servers)) s.child.kill('SIGTERM')
const mean = (a) => Math.round(a.reduce((x, y) => x + y, 0) / a.length)
console.log('mean before', mean(results.before), 'after', mean(results.after), 'ratio', (mean(results.after) / mean(results.before)).toFixed(3))

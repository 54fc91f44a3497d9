// What DPoP replay memory costs by itself: ProofStore.rememberProof, the one insert every accepted proof
// makes (packages/storage/src/sql/proofs.ts), called back to back on a fresh embedded store in `dir`
// (SQLite, WAL, synchronous=FULL, as the server opens it) for `seconds`. Prints the calls, the wall time
// and the CPU time per call; their difference is what the process waits for the disk (fsync).
//   node bench/lib/proof-store.mjs <dir> <seconds>
import { randomBytes } from 'node:crypto'
import { hashSecret } from '@fieldgate/core'
import { openSqlite } from '@fieldgate/storage'

const [dir, seconds = '3'] = process.argv.slice(2)
if (!dir) throw new Error('usage: node bench/lib/proof-store.mjs <dir> <seconds>')
const storage = openSqlite(dir)
await storage.migrate()
const prefix = randomBytes(8).toString('base64url')
const expiresAt = Date.now() + 65_000
let calls = 0
const cpu = process.cpuUsage()
const start = performance.now()
while (performance.now() - start < Number(seconds) * 1000) {
  if (!(await storage.rememberProof(hashSecret(`${prefix}.${calls}`), expiresAt))) throw new Error('a fresh jti was refused')
  calls++
}
const wallUs = (performance.now() - start) * 1000
const used = process.cpuUsage(cpu)
await storage.close()
process.stdout.write(`${JSON.stringify({ calls, per_s: (calls * 1e6) / wallUs, wall_us_per_call: wallUs / calls, cpu_us_per_call: (used.user + used.system) / calls })}\n`)

// The signing ceiling of one core, for `bench/run.mjs --pinned`: started as `taskset -c 0 node
// bench/lib/ceiling.mjs <alg> <warmupMs> <durationMs>`, it signs with node:crypto in one worker thread
// (lib/sign-worker.mjs, mode 'node'), which inherits the process's CPU, and prints one JSON line
// `{"alg", "count", "seconds", "per_s", "cpu_share"}`. A process of its own because the harness itself is pinned to
// the other core, where the load generator runs.
import { Worker } from 'node:worker_threads'

const [alg, warmupMs, durationMs] = process.argv.slice(2)
if (!alg || !(Number(warmupMs) >= 0) || !(Number(durationMs) > 0)) {
  console.error('usage: node bench/lib/ceiling.mjs <RS256|ES256|EdDSA> <warmupMs> <durationMs>')
  process.exit(2)
}

const worker = new Worker(new URL('./sign-worker.mjs', import.meta.url), {
  workerData: { mode: 'node', alg, inflight: 1, warmupMs: Number(warmupMs), durationMs: Number(durationMs) },
})
worker.once('error', (err) => {
  console.error(`signing worker failed: ${err.stack ?? err}`)
  process.exit(1)
})
worker.once('exit', (code) => {
  console.error(`signing worker exited before it reported (code ${code})`)
  process.exit(1)
})
// The process's CPU time (the worker's included) over its wall time from the start: below 1, something
// else had a share of the core.
let started
worker.on('message', (m) => {
  if (m.type === 'ready') {
    started = { cpu: process.cpuUsage(), at: performance.now() }
    worker.postMessage({ type: 'start' })
  }
  if (m.type === 'done') {
    const cpu = process.cpuUsage(started.cpu)
    const cpuShare = (cpu.user + cpu.system) / 1000 / (performance.now() - started.at)
    process.stdout.write(`${JSON.stringify({ alg, count: m.count, seconds: m.seconds, per_s: m.count / m.seconds, cpu_share: cpuShare })}\n`, () => process.exit(0))
  }
})

// Load and checks for bench/run.mjs: autocannon with a discarded warm-up, the server's CPU share over the
// measured seconds, and the access-token checks every server's first answer must pass.
import autocannon from 'autocannon'
import { tail } from './children.mjs'
import { coreShares, coreTimes, groupCpuSeconds } from './proc.mjs'
import { SIGNATURE_BYTES } from './signers.mjs'

/**
 * `load(label, opts, info)`: `warmup` s of autocannon (discarded) then `duration` s measured, at
 * `connections`; aborts if the server `info` died, if nothing succeeded, or if more than
 * `maxFailureRate` of the answers failed (non-2xx, errors, timeouts). Only 2xx count.
 */
export function loader({ warmup, duration, connections, pipelining = 1, maxFailureRate = 0.001, log }) {
  const cannon = (opts) =>
    new Promise((resolve, reject) => {
      autocannon({ connections, pipelining, timeout: 10, ...opts }, (err, result) => (err ? reject(err) : resolve(result)))
    })

  async function load(label, opts, info) {
    log(`${label}: warm-up ${warmup} s`)
    const warm = await cannon({ ...opts, duration: warmup })
    if (info?.exited) throw new Error(`${info.label} died during the warm-up:\n${tail(info.output)}`)
    if (warm['2xx'] === 0) throw new Error(`${label}: no 2xx response during the warm-up (non-2xx ${warm.non2xx}, errors ${warm.errors})`)
    log(`${label}: measuring ${duration} s`)
    const pgid = info?.child.pid
    const before = { cpu: pgid ? await groupCpuSeconds(pgid) : 0, cores: await coreTimes(), generator: process.cpuUsage(), at: performance.now() }
    const r = await cannon({ ...opts, duration })
    const wall = (performance.now() - before.at) / 1000
    const serverCpu = pgid ? (await groupCpuSeconds(pgid)) - before.cpu : Number.NaN
    const cores = coreShares(before.cores, await coreTimes())
    const generator = process.cpuUsage(before.generator)
    if (info?.exited) throw new Error(`${info.label} died during the measurement:\n${tail(info.output)}`)
    const failed = r.non2xx + r.errors + r.timeouts
    const attempts = r['2xx'] + failed
    const failureRate = attempts ? failed / attempts : 1
    if (r['2xx'] === 0 || failureRate > maxFailureRate) {
      throw new Error(
        `${label}: ${failed} of ${attempts} requests failed (${(failureRate * 100).toFixed(3)} % > ${maxFailureRate * 100} %): ` +
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
      connections: opts.connections ?? connections,
      // Of one core: 1 is a core fully busy. The server's whole process group (cluster workers included).
      serverCpu: serverCpu / wall,
      generatorCpu: (generator.user + generator.system) / 1e6 / wall,
      cores,
    }
    const pct = (x) => `${Math.round(x * 100)} %`
    log(
      `${label}: ${Math.round(m.rps)} req/s, p50 ${m.p50} ms, p99 ${m.p99} ms (${m.ok} 2xx, ${failed} failed); ` +
        `server CPU ${pct(m.serverCpu)}, generator CPU ${pct(m.generatorCpu)}, cores busy ${cores.map((c) => pct(c.busy + c.steal)).join(' / ')}`,
    )
    return m
  }

  return { cannon, load }
}

/** `m` (a load() result) in the report's JSON names; `unit` names the rate (tokens_per_s, req_per_s). */
export const figure = (m, unit = 'req_per_s') => ({
  [unit]: m.rps,
  p50_ms: m.p50,
  p99_ms: m.p99,
  max_ms: m.max,
  ok: m.ok,
  failed: m.failed,
  seconds: m.seconds,
  connections: m.connections,
  server_cpu_share: m.serverCpu,
  generator_cpu_share: m.generatorCpu,
  cores_busy: m.cores.map((c) => c.busy + c.steal),
})

/** POSTs `body` (form-encoded unless `contentType` says otherwise); the parsed 200 answer and its headers. */
export async function postToken(url, body, contentType = 'application/x-www-form-urlencoded') {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': contentType }, body, signal: AbortSignal.timeout(5000) })
  const text = await res.text()
  if (res.status !== 200) throw new Error(`token endpoint answered ${res.status}: ${text.slice(0, 300)}`)
  return Object.defineProperty(JSON.parse(text), 'headers', { value: res.headers, enumerable: false })
}

// RFC 9864 §2 names Ed25519 on its own; a server may write either for an Ed25519 key.
const sameAlg = (asked, got) => got === asked || (asked === 'EdDSA' && got === 'Ed25519')

/** Decodes a JWT access token without verifying it and asserts it is an `alg` at+jwt (RFC 9068). */
export function assertJwt(token, who, alg = 'RS256') {
  const parts = typeof token === 'string' ? token.split('.') : []
  if (parts.length !== 3) throw new Error(`${who} returned an access token that is not a compact JWS: ${String(token).slice(0, 60)}`)
  let header, payload
  try {
    header = JSON.parse(Buffer.from(parts[0], 'base64url').toString())
    payload = JSON.parse(Buffer.from(parts[1], 'base64url').toString())
  } catch {
    throw new Error(`${who} returned an access token whose header or payload is not JSON`)
  }
  if (!sameAlg(alg, header.alg)) throw new Error(`${who} signs access tokens with ${header.alg}, not ${alg}`)
  if (String(header.typ).toLowerCase() !== 'at+jwt') throw new Error(`${who} access token typ is ${header.typ}, not at+jwt`)
  const bytes = Buffer.from(parts[2], 'base64url').length
  if (bytes !== SIGNATURE_BYTES[alg]) throw new Error(`${who} signature is ${bytes} bytes, not the ${SIGNATURE_BYTES[alg]} of ${alg}`)
  return { alg: header.alg, header, payload, claims: Object.keys(payload).length, bytes: token.length }
}

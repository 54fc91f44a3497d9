// One signing loop per worker thread, for the in-process signing ceiling (bench/run.mjs, lib/ceiling.mjs).
// mode 'jose': jose SignJWT on a WebCrypto CryptoKey (RSASSA-PKCS1-v1_5, 2048-bit), `inflight` signatures
//              outstanding at a time (WebCrypto signs on libuv's threadpool, so 1 keeps a thread to one core).
// mode 'node': node:crypto sign() on a KeyObject, synchronous, the primitive Fieldgate's hot path uses;
//              `alg` RS256 (the default), ES256 or EdDSA (lib/signers.mjs).
// Protocol: posts {type:'ready'}, waits for {type:'start'}, signs warmupMs (discarded) then durationMs,
// posts {type:'done', count, seconds}.
import { parentPort, workerData } from 'node:worker_threads'
import { randomUUID } from 'node:crypto'
import { SignJWT, generateKeyPair } from 'jose'
import { nodeSigner } from './signers.mjs'

const { mode, alg = 'RS256', inflight = 1, warmupMs, durationMs } = workerData
const kid = 'bench-key-1'

// ~10 claims, shaped like an RFC 9068 client-credentials access token.
const claims = () => {
  const iat = Math.floor(Date.now() / 1000)
  return {
    iss: 'http://127.0.0.1:4400',
    sub: '8df3b26e5fba59a9e7898cc4ab6000b0',
    aud: 'http://127.0.0.1:4400/api',
    iat,
    exp: iat + 3600,
    jti: randomUUID(),
    client_id: '8df3b26e5fba59a9e7898cc4ab6000b0',
    scope: 'api',
    tenant_id: '060f448e-955d-4c93-bfb9-1d59282bd588',
    grant_id: 'bc33b6f2-58d3-446b-b4c8-146079af16f9',
  }
}

let signOne
if (mode === 'jose') {
  if (alg !== 'RS256') throw new Error('the jose signer is the RS256 reference only')
  const { privateKey } = await generateKeyPair(alg, { modulusLength: 2048 })
  if (!(privateKey instanceof CryptoKey)) throw new Error('expected a WebCrypto CryptoKey')
  signOne = () => new SignJWT(claims()).setProtectedHeader({ alg, kid, typ: 'at+jwt' }).sign(privateKey)
} else if (mode === 'node') {
  const signInput = nodeSigner(alg)
  const enc = (v) => Buffer.from(JSON.stringify(v)).toString('base64url')
  signOne = () => {
    const input = `${enc({ alg, kid, typ: 'at+jwt' })}.${enc(claims())}`
    return `${input}.${signInput(Buffer.from(input)).toString('base64url')}`
  }
} else {
  throw new Error(`unknown mode ${mode}`)
}

// Sanity: one token, three parts, header says the algorithm asked for.
const sample = await signOne()
const header = JSON.parse(Buffer.from(sample.split('.')[0], 'base64url').toString())
if (sample.split('.').length !== 3 || header.alg !== alg) throw new Error('signer produced an unexpected token')

parentPort.postMessage({ type: 'ready' })
await new Promise((resolve) => parentPort.once('message', (m) => m?.type === 'start' && resolve()))

async function loop(untilMs) {
  let count = 0
  if (mode === 'node') {
    while (performance.now() < untilMs) {
      signOne()
      count++
    }
    return count
  }
  const lane = async () => {
    while (performance.now() < untilMs) {
      await signOne()
      count++
    }
  }
  await Promise.all(Array.from({ length: inflight }, lane))
  return count
}

await loop(performance.now() + warmupMs)
const t0 = performance.now()
const count = await loop(t0 + durationMs)
const seconds = (performance.now() - t0) / 1000
parentPort.postMessage({ type: 'done', count, seconds })

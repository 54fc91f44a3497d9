// Signatures and verifications per second for each FIELDGATE_SIGNING_ALG, on the code that does them:
// signAccessToken and verifyAccessToken (its per-token cache emptied before each call, so every call
// verifies) over a real key ring, and jose's jwtVerify against the published JWKS, as @fieldgate/guard
// verifies. A few seconds in all; not a load benchmark (bench/ has those). One core:
//   npx tsc -b && taskset -c 1 node scripts/signing-rates.mjs        (MS=2000 for longer samples)
import { randomBytes } from 'node:crypto'
import { createLocalJWKSet, jwtVerify } from 'jose'
import { KeyRing, planBootstrap, signAccessToken, verifyAccessToken } from '@fieldgate/core'

const ms = Number(process.env.MS ?? 1000)
const issuer = 'https://fieldgate.example'
const audience = `${issuer}/api`

/** Calls per second of `fn`, after a warm-up, over `ms`. */
async function rate(fn) {
  for (let i = 0; i < 200; i++) await fn()
  let n = 0
  const start = performance.now()
  while (performance.now() - start < ms) {
    for (let i = 0; i < 50; i++) await fn()
    n += 50
  }
  return Math.round(n / ((performance.now() - start) / 1000))
}

const claims = () => {
  const now = Math.floor(Date.now() / 1000)
  return { iss: issuer, aud: audience, sub: 'c', client_id: 'c', scope: 'api', tenant_id: 't', grant_id: 'g', jti: randomBytes(8).toString('hex'), iat: now, exp: now + 3600 }
}

const masterKey = randomBytes(32)
console.log(`node ${process.version}, OpenSSL ${process.versions.openssl}, ${ms} ms per figure`)
console.log('alg     sign/s  verify/s (Fieldgate)  verify/s (jose, the guard)  token bytes')
for (const alg of ['RS256', 'PS256', 'ES256', 'EdDSA']) {
  const ring = KeyRing.load((await planBootstrap([], alg, masterKey, Date.now())).insert, masterKey)
  const expect = { issuer, audience, now: Date.now() }
  const token = await signAccessToken(ring, claims())
  const jwks = createLocalJWKSet(ring.jwks())
  const signs = await rate(() => signAccessToken(ring, claims()))
  const verifies = await rate(() => {
    ring.verified.clear()
    verifyAccessToken(ring, token, expect)
  })
  const guardVerifies = await rate(() => jwtVerify(token, jwks, { issuer, audience, typ: 'at+jwt', algorithms: [alg] }))
  console.log(`${alg.padEnd(6)} ${String(signs).padStart(7)}  ${String(verifies).padStart(20)}  ${String(guardVerifies).padStart(26)}  ${String(token.length).padStart(11)}`)
}

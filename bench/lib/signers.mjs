// node:crypto JWS signers for the benchmarks' references (lib/sign-worker.mjs, peers/bare-signer.mjs), one
// per access-token algorithm the bench compares: what Fieldgate's hot path does (packages/core/src/tokens/
// jws.ts), with a fresh key, and nothing else.
import { generateKeyPairSync, sign } from 'node:crypto'

export const SIGNING_ALGS = Object.freeze(['RS256', 'ES256', 'EdDSA'])

/** Raw signature length of each algorithm: RSA 2048 is 256 bytes, P-256 (IEEE P1363) and Ed25519 are 64. */
export const SIGNATURE_BYTES = Object.freeze({ RS256: 256, ES256: 64, EdDSA: 64 })

/**
 * `(input: Buffer) => Buffer`, signing with a key made here: RS256 (RSA 2048, PKCS#1 v1.5), ES256 (P-256,
 * RFC 7518 §3.4's r||s form) or EdDSA (Ed25519, RFC 8037 §3.1: no separate digest).
 */
export function nodeSigner(alg) {
  if (alg === 'RS256') {
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 })
    return (input) => sign('sha256', input, privateKey)
  }
  if (alg === 'ES256') {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
    return (input) => sign('sha256', input, { key: privateKey, dsaEncoding: 'ieee-p1363' })
  }
  if (alg === 'EdDSA') {
    const { privateKey } = generateKeyPairSync('ed25519')
    return (input) => sign(null, input, privateKey)
  }
  throw new Error(`no signer for ${alg}: one of ${SIGNING_ALGS.join(', ')}`)
}

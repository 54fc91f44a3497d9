/**
 * DPoP proofs for the guard's tests, made with node:crypto alone: a key with its RFC 7638 thumbprint
 * worked out by hand, and proofs with any header member or claim changed (undefined drops it).
 */
import { createHash, createHmac, generateKeyPairSync, randomUUID, sign, type KeyObject } from 'node:crypto'

export interface ProofKey {
  privateKey: KeyObject
  jwk: Record<string, string>
  jkt: string
}

export function proofKey(): ProofKey {
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  const jwk: Record<string, string> = {}
  for (const [k, v] of Object.entries(publicKey.export({ format: 'jwk' }))) if (typeof v === 'string') jwk[k] = v
  const jkt = createHash('sha256').update(`{"crv":"${jwk.crv}","kty":"${jwk.kty}","x":"${jwk.x}","y":"${jwk.y}"}`).digest('base64url')
  return { privateKey, jwk, jkt }
}

export const ath = (token: string): string => createHash('sha256').update(token).digest('base64url')

const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url')

/** A proof by `key` for `htm` `htu` with `token`'s ath, with `header` and `claims` laid over it. */
export function proof(key: ProofKey, htm: string, htu: string, token: string, over: { header?: Record<string, unknown>; claims?: Record<string, unknown> } = {}): string {
  const header = { typ: 'dpop+jwt', alg: 'ES256', jwk: key.jwk, ...over.header }
  const claims = { jti: randomUUID(), htm, htu, iat: Math.floor(Date.now() / 1000), ath: ath(token), ...over.claims }
  const input = `${b64(header)}.${b64(claims)}`
  const signature =
    header.alg === 'none'
      ? ''
      : header.alg === 'HS256'
        ? createHmac('sha256', 'shared').update(input).digest('base64url')
        : sign('sha256', Buffer.from(input), { key: key.privateKey, dsaEncoding: 'ieee-p1363' }).toString('base64url')
  return `${input}.${signature}`
}

/** The private members of the key, which a proof's jwk must never carry. */
export function privateJwk(key: ProofKey): Record<string, string> {
  const out: Record<string, string> = {}
  for (const [k, v] of Object.entries(key.privateKey.export({ format: 'jwk' }))) if (typeof v === 'string') out[k] = v
  return out
}

/**
 * RFC 9449 DPoP proofs made here with node:crypto alone, independent of the code under test: keys of
 * each algorithm, their RFC 7638 thumbprints, proofs with any header or claim changed, and bound
 * access tokens (a real client-credentials JWT signed again by the server's own key ring with
 * `cnf.jkt`, until the token endpoint issues them).
 */
import { createHash, createHmac, generateKeyPairSync, randomUUID, sign, constants, type KeyObject } from 'node:crypto'
import { signAccessToken, type AccessTokenClaims } from '@fieldgate/core'
import type { TestServer } from './servers.js'

export type DpopAlg = 'ES256' | 'RS256' | 'PS256' | 'EdDSA'

export interface DpopKey {
  alg: DpopAlg
  privateKey: KeyObject
  /** The public JWK as a client sends it in the proof's header. */
  jwk: Record<string, string>
  /** RFC 7638 SHA-256 thumbprint, as a token's cnf.jkt names the key. */
  jkt: string
}

const required: Record<string, readonly string[]> = { EC: ['crv', 'kty', 'x', 'y'], RSA: ['e', 'kty', 'n'], OKP: ['crv', 'kty', 'x'] }

/** RFC 7638 §3: the required members in lexicographic order, no spaces, SHA-256, base64url. */
export function thumbprint(jwk: Record<string, string>): string {
  const members = required[jwk.kty!]!
  const json = `{${members.map((m) => `${JSON.stringify(m)}:${JSON.stringify(jwk[m])}`).join(',')}}`
  return createHash('sha256').update(json).digest('base64url')
}

export function dpopKey(alg: DpopAlg = 'ES256'): DpopKey {
  const pair =
    alg === 'ES256' ? generateKeyPairSync('ec', { namedCurve: 'P-256' }) : alg === 'EdDSA' ? generateKeyPairSync('ed25519') : generateKeyPairSync('rsa', { modulusLength: 2048 })
  const exported = pair.publicKey.export({ format: 'jwk' })
  const jwk: Record<string, string> = {}
  for (const [k, v] of Object.entries(exported)) if (typeof v === 'string') jwk[k] = v
  return { alg, privateKey: pair.privateKey, jwk, jkt: thumbprint(jwk) }
}

/** The private JWK members of a key: what a proof's jwk must never hold. */
export function privateJwk(key: DpopKey): Record<string, string> {
  const out: Record<string, string> = {}
  for (const [k, v] of Object.entries(key.privateKey.export({ format: 'jwk' }))) if (typeof v === 'string') out[k] = v
  return out
}

export const ath = (accessToken: string): string => createHash('sha256').update(accessToken).digest('base64url')

const b64 = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url')

function signature(key: DpopKey, alg: string, input: string): string {
  if (alg === 'none') return ''
  if (alg === 'HS256') return createHmac('sha256', 'a shared secret').update(input).digest('base64url')
  const data = Buffer.from(input)
  if (key.alg === 'EdDSA') return sign(null, data, key.privateKey).toString('base64url')
  if (key.alg === 'ES256') return sign('sha256', data, { key: key.privateKey, dsaEncoding: 'ieee-p1363' }).toString('base64url')
  if (key.alg === 'PS256') return sign('sha256', data, { key: key.privateKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 }).toString('base64url')
  return sign('sha256', data, key.privateKey).toString('base64url')
}

export interface ProofClaims {
  htm: string
  htu: string
  /** The access token the proof goes with; its hash becomes `ath`. */
  accessToken?: string
  nonce?: string
  /** Seconds; now by default. */
  iat?: number
  jti?: string
}

/**
 * A DPoP proof by `key`. `header` and `claims` are laid over what a correct proof has (a value of
 * undefined drops that member), for the negative tests; `alg: 'none'` and `'HS256'` sign accordingly.
 */
export function dpopProof(key: DpopKey, c: ProofClaims, over: { header?: Record<string, unknown>; claims?: Record<string, unknown> } = {}): string {
  const header = { typ: 'dpop+jwt', alg: key.alg, jwk: key.jwk, ...over.header }
  const payload = {
    jti: c.jti ?? randomUUID(),
    htm: c.htm,
    htu: c.htu,
    iat: c.iat ?? Math.floor(Date.now() / 1000),
    ...(c.accessToken === undefined ? {} : { ath: ath(c.accessToken) }),
    ...(c.nonce === undefined ? {} : { nonce: c.nonce }),
    ...over.claims,
  }
  const input = `${b64(header)}.${b64(payload)}`
  return `${input}.${signature(key, String(header.alg), input)}`
}

/**
 * A DPoP-bound JWT access token: the claims of `token` (a client-credentials JWT the server issued),
 * with a new jti and `cnf.jkt`, signed by the server's active key as the token endpoint signs.
 */
export async function boundToken(server: TestServer, token: string, jkt: string): Promise<string> {
  const [, payload] = token.split('.')
  const claims = JSON.parse(Buffer.from(payload!, 'base64url').toString()) as AccessTokenClaims
  return signAccessToken(server.runtime.ctx.keys, { ...claims, jti: randomUUID(), cnf: { jkt } })
}

export const dpopAuthorization = (token: string) => ({ authorization: `DPoP ${token}` })

/**
 * RFC 9449 DPoP: the check of a proof (§4.3), its replay memory (§11.1) and server nonces (§8, §9).
 * The token endpoint calls verifyDpopProof to learn the key a token is bound to; a protected resource
 * calls it with the access token, and compares the key with the token's `cnf.jkt` (guard.ts).
 */
import { constants, createHash, createHmac, createPublicKey, verify, type JsonWebKey, type KeyObject } from 'node:crypto'
import { calculateJwkThumbprint } from 'jose'
import type { Config } from './config.js'
import { InvalidDpopProof, UseDpopNonce, type DpopSite, dpopAlgorithms } from './errors.js'
import { hashSecret, sameHash } from './secrets.js'
import type { ProofStore } from './storage/proofs.js'

/** What a proof is checked against: what the request was, as the client addressed it. */
export interface DpopProofCheck {
  /** The DPoP header's value: exactly one compact JWS (two headers arrive joined and fail to parse). */
  proof: string
  /** The request's method, as sent (`htm`, case-sensitive as RFC 9110 §9.1 methods are). */
  method: string
  /** The request's absolute URL as the client addressed it (`htu`); its query and fragment are ignored. */
  url: string
  /**
   * At a protected resource: the access token the proof came with. Its hash must be the proof's `ath`
   * (§4.3 point 12), and a refusal is then the resource's 401 challenge rather than the token endpoint's 400.
   */
  accessToken?: string
  /** Whether the proof must carry a nonce of ours (§8, §9); FIELDGATE_DPOP_NONCE by default. */
  requireNonce?: boolean
}

/** What the check needs of the context: the settings, the master key (nonces), the clock, the replay memory. */
export interface DpopContext {
  readonly config: Pick<Config, 'dpop'>
  readonly masterKey: Buffer
  readonly storage: ProofStore
  now(): number
}

/**
 * RFC 9449 §4.3, as named steps: the proof is one JWS whose header is typ dpop+jwt, an asymmetric alg
 * and a public jwk; it is signed by that jwk; its claims name this request (htm, htu), a fresh iat,
 * the access token (ath) at a resource and our nonce when one is required; and its jti was never seen
 * with that key, on any instance. Resolves with the key's RFC 7638 thumbprint (`jkt`).
 */
export async function verifyDpopProof(ctx: DpopContext, check: DpopProofCheck): Promise<string> {
  const site: DpopSite = check.accessToken === undefined ? 'token' : 'resource'
  const refuse = (description: string) => new InvalidDpopProof(description, site)
  const jws = parseProof(check.proof)
  if (!jws) throw refuse('The DPoP header must be one DPoP proof, a signed JWT')
  const key = await proofKey(jws)
  if (typeof key === 'string') throw refuse(key)
  if (!verifySignature(key, jws)) throw refuse('The DPoP proof signature does not verify with its jwk')
  const now = ctx.now()
  const claims = checkClaims(jws.payload, check, now, ctx.config.dpop)
  if (typeof claims === 'string') throw refuse(claims)
  if (check.requireNonce ?? ctx.config.dpop.nonce) requireNonce(ctx, jws.payload.nonce, site)
  await rememberOnce(ctx, key.jkt, claims, now, refuse)
  return key.jkt
}

/** The nonce a client is told to put in its next proofs (the DPoP-Nonce header, §8.1). */
export function currentDpopNonce(ctx: Pick<DpopContext, 'masterKey' | 'now'>): string {
  return nonceAt(ctx.masterKey, stepOf(ctx.now()))
}

/** RFC 9449 §4.3 point 12, §6.1: `ath`, the base64url SHA-256 of the access token. */
export const accessTokenHash = (accessToken: string): string => createHash('sha256').update(accessToken).digest('base64url')

/**
 * RFC 9449 §4.3 point 9: `htu` and the request's URL compared after RFC 3986 §6.2.2 and §6.2.3
 * normalisation (scheme and host in lower case, the default port dropped, dot segments resolved, an
 * empty path as `/`: all WHATWG URL parsing does; percent-encodings in upper case and unreserved
 * characters decoded), without query and fragment. Undefined for anything not an http(s) URL.
 */
export function normalizeHtu(value: string): string | undefined {
  if (!URL.canParse(value)) return undefined
  const url = new URL(value)
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return undefined
  const path = url.pathname.replace(/%([0-9a-fA-F]{2})/g, (_, hex: string) => {
    const c = String.fromCharCode(Number.parseInt(hex, 16))
    return /[A-Za-z0-9\-._~]/.test(c) ? c : `%${hex.toUpperCase()}`
  })
  return `${url.protocol}//${url.host}${path}`
}

// Parsing: one compact JWS (RFC 7515 §7.1), three base64url parts of JSON objects.

interface ProofJws {
  /** The protected header's base64url text: what the verified-key cache is keyed by. */
  h: string
  header: Record<string, unknown>
  payload: Record<string, unknown>
  signingInput: Buffer
  signature: Buffer
}

const base64url = /^[A-Za-z0-9_-]+$/

function parseProof(proof: string): ProofJws | undefined {
  if (proof.length > 8192) return undefined
  const parts = proof.split('.')
  if (parts.length !== 3 || !parts.every((p) => base64url.test(p))) return undefined
  const [h, p, s] = parts as [string, string, string]
  const header = jsonObject(h)
  const payload = jsonObject(p)
  if (!header || !payload) return undefined
  return { h, header, payload, signingInput: Buffer.from(`${h}.${p}`), signature: Buffer.from(s, 'base64url') }
}

function jsonObject(part: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'))
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined
  } catch {
    return undefined
  }
}

// The header: typ, alg and a public jwk (§4.3 points 4, 5, 7), imported once per distinct header.

type ProofAlgorithm = (typeof dpopAlgorithms)[number]

interface ProofKey {
  alg: ProofAlgorithm
  key: KeyObject
  jkt: string
}

/** How each algorithm verifies (node:crypto, as tokens/jws.ts, for speed) and the key types it takes. */
const verifiers: Record<ProofAlgorithm, { digest: string | null; keyTypes: readonly string[]; options: object }> = {
  ES256: { digest: 'sha256', keyTypes: ['ec'], options: { dsaEncoding: 'ieee-p1363' } },
  RS256: { digest: 'sha256', keyTypes: ['rsa'], options: {} },
  PS256: { digest: 'sha256', keyTypes: ['rsa'], options: { padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 } },
  // RFC 8037 §3.1: EdDSA over Ed25519 or Ed448; the curve says which.
  EdDSA: { digest: null, keyTypes: ['ed25519', 'ed448'], options: {} },
}

const isProofAlgorithm = (alg: unknown): alg is ProofAlgorithm => dpopAlgorithms.some((a) => a === alg)

/** Members that only a private or symmetric key has (RFC 7518 §6.2.2, §6.3.2, §6.4.1; RFC 9964 §3 `priv`). */
const privateMembers = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k', 'priv']

/** The members a public key of the kinds in `verifiers` is made of (RFC 7518 §6.2.1, §6.3.1; RFC 8037 §2). */
const publicMembers = ['kty', 'crv', 'x', 'y', 'n', 'e'] as const

/** A client sends the same header (its key) with every proof; what it yields is kept, bounded as the key ring's cache is. */
const verifiedHeaders = new Map<string, ProofKey>()

async function proofKey(jws: ProofJws): Promise<ProofKey | string> {
  const known = verifiedHeaders.get(jws.h)
  if (known) return known
  const found = await importProofKey(jws.header)
  if (typeof found !== 'string') {
    if (verifiedHeaders.size >= 10_000) verifiedHeaders.clear()
    verifiedHeaders.set(jws.h, found)
  }
  return found
}

async function importProofKey(header: Record<string, unknown>): Promise<ProofKey | string> {
  if (typeof header.typ !== 'string' || header.typ.toLowerCase() !== 'dpop+jwt') return 'The DPoP proof must have typ dpop+jwt'
  const alg = header.alg
  if (!isProofAlgorithm(alg)) return `The DPoP proof must be signed with one of ${dpopAlgorithms.join(', ')}`
  // RFC 7515 §4.1.11: an extension we do not understand must not be ignored.
  if (header.crit !== undefined) return 'The DPoP proof has a crit header this server does not understand'
  const jwk = header.jwk
  if (typeof jwk !== 'object' || jwk === null || Array.isArray(jwk)) return 'The DPoP proof must carry its public key as jwk'
  if (privateMembers.some((m) => m in jwk)) return 'The DPoP proof jwk must be a public key, without private members'
  const key = importJwk(new Map(Object.entries(jwk)))
  const verifier = verifiers[alg]
  if (!key || !verifier.keyTypes.includes(key.asymmetricKeyType ?? '')) return `The DPoP proof jwk is not a public key for ${alg}`
  if (alg === 'ES256' && key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') return 'ES256 needs a P-256 key'
  if (key.asymmetricKeyType === 'rsa' && (key.asymmetricKeyDetails?.modulusLength ?? 0) < 2048) return 'An RSA DPoP key must be 2048 bits or more'
  // RFC 7638, of the key as imported: the members its type requires, whatever else the jwk held.
  return { alg, key, jkt: await calculateJwkThumbprint(key, 'sha256') }
}

function importJwk(jwk: ReadonlyMap<string, unknown>): KeyObject | undefined {
  const members: JsonWebKey = {}
  for (const name of publicMembers) {
    const value = jwk.get(name)
    if (value === undefined) continue
    if (typeof value !== 'string') return undefined
    members[name] = value
  }
  try {
    const key = createPublicKey({ key: members, format: 'jwk' })
    return key.type === 'public' ? key : undefined
  } catch {
    return undefined
  }
}

function verifySignature(key: ProofKey, jws: ProofJws): boolean {
  const { digest, options } = verifiers[key.alg]
  try {
    return verify(digest, jws.signingInput, { key: key.key, ...options }, jws.signature)
  } catch {
    return false
  }
}

// The claims: §4.2's, each against the request (§4.3 points 8, 9, 11, 12).

interface ProofClaims {
  jti: string
  iat: number
}

function checkClaims(c: Record<string, unknown>, check: DpopProofCheck, now: number, limits: Config['dpop']): ProofClaims | string {
  const { jti, htm, htu, iat } = c
  if (typeof jti !== 'string' || jti.length === 0 || jti.length > 256) return 'The DPoP proof must have a jti of 1 to 256 characters'
  if (htm !== check.method) return 'The DPoP proof htm is not the method of this request'
  const target = normalizeHtu(check.url)
  if (typeof htu !== 'string' || target === undefined || normalizeHtu(htu) !== target) return 'The DPoP proof htu is not the URL of this request'
  if (typeof iat !== 'number' || !Number.isFinite(iat)) return 'The DPoP proof must have a numeric iat'
  if (iat * 1000 < now - limits.maxAgeSeconds * 1000) return 'The DPoP proof is too old'
  if (iat * 1000 > now + limits.futureSeconds * 1000) return 'The DPoP proof iat is ahead of the server clock'
  // §4.3 point 12 and §7: with an access token, ath is required and must be its hash. The token
  // endpoint has none to compare with, so there ath means nothing and is not looked at (§5).
  if (check.accessToken !== undefined && (typeof c.ath !== 'string' || !sameHash(c.ath, accessTokenHash(check.accessToken)))) {
    return 'The DPoP proof ath is not the hash of this access token'
  }
  return { jti, iat }
}

// Nonces (§8, §9): stateless, so any instance accepts another's. A nonce is an HMAC of a 5-minute
// step under a key derived from the master key; the current step's and the one before are accepted,
// so a nonce lives 5 to 10 minutes.

const nonceStepMs = 5 * 60_000
const stepOf = (now: number): number => Math.floor(now / nonceStepMs)
const nonceKeys = new WeakMap<Buffer, Buffer>()

function nonceAt(masterKey: Buffer, step: number): string {
  let key = nonceKeys.get(masterKey)
  if (!key) {
    key = createHmac('sha256', masterKey).update('fieldgate dpop nonce v1').digest()
    nonceKeys.set(masterKey, key)
  }
  return createHmac('sha256', key).update(String(step)).digest('base64url')
}

function requireNonce(ctx: Pick<DpopContext, 'masterKey' | 'now'>, nonce: unknown, site: DpopSite): void {
  const step = stepOf(ctx.now())
  const fresh = typeof nonce === 'string' && (sameHash(nonce, nonceAt(ctx.masterKey, step)) || sameHash(nonce, nonceAt(ctx.masterKey, step - 1)))
  if (!fresh) throw new UseDpopNonce(nonceAt(ctx.masterKey, step), site)
}

// Replay (§11.1): every proof accepted is remembered in the store until it is too old to be accepted
// anyway (with the future leeway on top, for an instance whose clock lags), so a second use is refused
// on whichever instance it reaches. The jti is a client's own; it is kept per key, hashed.

const pruneEveryMs = 60_000
const lastPruned = new WeakMap<ProofStore, number>()

async function rememberOnce(ctx: DpopContext, jkt: string, claims: ProofClaims, now: number, refuse: (d: string) => InvalidDpopProof): Promise<void> {
  const { maxAgeSeconds, futureSeconds } = ctx.config.dpop
  const expiresAt = Math.ceil(claims.iat * 1000) + (maxAgeSeconds + futureSeconds) * 1000
  if (!(await ctx.storage.rememberProof(hashSecret(`${jkt}.${claims.jti}`), expiresAt))) throw refuse('The DPoP proof was used before')
  forgetExpired(ctx.storage, now)
}

/**
 * At most once a minute per process, expired proofs are forgotten, in the background: nothing waits
 * for it, and a failure is only a minute's more rows (the next one tries again).
 */
function forgetExpired(storage: ProofStore, now: number): void {
  if (now - (lastPruned.get(storage) ?? 0) < pruneEveryMs) return
  lastPruned.set(storage, now)
  storage.forgetExpiredProofs(now).catch(() => {})
}

/**
 * RFC 9449 DPoP proofs at a protected resource (§4.3, §7): the same checks Fieldgate's own API makes,
 * without server nonces, with replay memory in this process (bounded) or in a shared store the service
 * hands in.
 */
import { constants, createHash, createPublicKey, timingSafeEqual, verify, type JsonWebKey, type KeyObject } from 'node:crypto'
import { calculateJwkThumbprint } from 'jose'
import { dpopAlgorithms, invalidDpopProof } from './errors.js'

/**
 * Remembers a proof until `expiresAt` (ms since the epoch); false when it was remembered before. A
 * store shared by the service's instances (Redis `SET key 1 NX PXAT expiresAt`, a table with a primary
 * key) makes a proof replayed to another instance fail too.
 */
export type ReplayCheck = (jtiHash: string, expiresAt: number) => boolean | Promise<boolean>

export interface DpopOptions {
  /** How old a proof may be by its `iat`, seconds. Default 60, as Fieldgate. */
  maxAgeSec?: number
  /** How far ahead of this clock its `iat` may be, seconds. Default 5, as Fieldgate. */
  futureSec?: number
  /** A shared replay memory; without it, proofs are remembered in this process only. */
  replay?: ReplayCheck
  /** How many proofs the in-process memory holds; when full, the oldest go. Default 100000. */
  replayCacheSize?: number
}

export interface ProofRequest {
  proof: string
  method: string
  /** The request's absolute URL. */
  url: string
  accessToken: string
}

type ProofAlgorithm = (typeof dpopAlgorithms)[number]

const verifiers: Record<ProofAlgorithm, { digest: string | null; keyTypes: readonly string[]; options: object }> = {
  ES256: { digest: 'sha256', keyTypes: ['ec'], options: { dsaEncoding: 'ieee-p1363' } },
  RS256: { digest: 'sha256', keyTypes: ['rsa'], options: {} },
  PS256: { digest: 'sha256', keyTypes: ['rsa'], options: { padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 } },
  EdDSA: { digest: null, keyTypes: ['ed25519', 'ed448'], options: {} },
}

const isProofAlgorithm = (alg: unknown): alg is ProofAlgorithm => dpopAlgorithms.some((a) => a === alg)
const privateMembers = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k', 'priv']
const publicMembers = ['kty', 'crv', 'x', 'y', 'n', 'e'] as const
const base64url = /^[A-Za-z0-9_-]+$/

const sha256 = (value: string): string => createHash('sha256').update(value).digest('base64url')

function same(a: string, b: string): boolean {
  const x = Buffer.from(a)
  const y = Buffer.from(b)
  return x.length === y.length && timingSafeEqual(x, y)
}

/** RFC 9449 §4.3 point 9: RFC 3986 §6.2.2 and §6.2.3 normalisation, without query and fragment. */
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

interface ProofKey {
  alg: ProofAlgorithm
  key: KeyObject
  jkt: string
}

/** The check of proofs for one guard, with its replay memory and a cache of the keys headers carried. */
export class DpopVerifier {
  private readonly maxAgeMs: number
  private readonly futureMs: number
  private readonly seen = new Map<string, number>()
  private readonly keys = new Map<string, ProofKey>()

  constructor(private readonly options: DpopOptions = {}) {
    this.maxAgeMs = (options.maxAgeSec ?? 60) * 1000
    this.futureMs = (options.futureSec ?? 5) * 1000
  }

  /** RFC 9449 §4.3: resolves with the proof key's RFC 7638 thumbprint, or rejects with invalid_dpop_proof. */
  async verify(request: ProofRequest): Promise<string> {
    const parts = request.proof.length <= 8192 ? request.proof.split('.') : []
    if (parts.length !== 3 || !parts.every((p) => base64url.test(p))) throw invalidDpopProof('The DPoP header must be one DPoP proof, a signed JWT')
    const [h, p, s] = parts as [string, string, string]
    const header = jsonObject(h)
    const payload = jsonObject(p)
    if (!header || !payload) throw invalidDpopProof('The DPoP header must be one DPoP proof, a signed JWT')
    const key = await this.keyOf(h, header)
    const { digest, options } = verifiers[key.alg]
    if (!safeVerify(digest, Buffer.from(`${h}.${p}`), key.key, options, Buffer.from(s, 'base64url'))) {
      throw invalidDpopProof('The DPoP proof signature does not verify with its jwk')
    }
    const { jti, iat } = this.checkClaims(payload, request)
    await this.rememberOnce(sha256(`${key.jkt}.${jti}`), Math.ceil(iat * 1000) + this.maxAgeMs + this.futureMs)
    return key.jkt
  }

  private async keyOf(h: string, header: Record<string, unknown>): Promise<ProofKey> {
    const known = this.keys.get(h)
    if (known) return known
    const key = await importProofKey(header)
    if (this.keys.size >= 10_000) this.keys.clear()
    this.keys.set(h, key)
    return key
  }

  private checkClaims(c: Record<string, unknown>, request: ProofRequest): { jti: string; iat: number } {
    const { jti, htm, htu, iat, ath } = c
    if (typeof jti !== 'string' || jti.length === 0 || jti.length > 256) throw invalidDpopProof('The DPoP proof must have a jti of 1 to 256 characters')
    if (htm !== request.method) throw invalidDpopProof('The DPoP proof htm is not the method of this request')
    const target = normalizeHtu(request.url)
    if (typeof htu !== 'string' || target === undefined || normalizeHtu(htu) !== target) throw invalidDpopProof('The DPoP proof htu is not the URL of this request')
    if (typeof iat !== 'number' || !Number.isFinite(iat)) throw invalidDpopProof('The DPoP proof must have a numeric iat')
    const now = Date.now()
    if (iat * 1000 < now - this.maxAgeMs) throw invalidDpopProof('The DPoP proof is too old')
    if (iat * 1000 > now + this.futureMs) throw invalidDpopProof('The DPoP proof iat is ahead of the server clock')
    if (typeof ath !== 'string' || !same(ath, sha256(request.accessToken))) throw invalidDpopProof('The DPoP proof ath is not the hash of this access token')
    return { jti, iat }
  }

  /** RFC 9449 §11.1: a proof is used once, here or (with `replay`) anywhere the shared memory reaches. */
  private async rememberOnce(jtiHash: string, expiresAt: number): Promise<void> {
    if (this.options.replay) {
      if (!(await this.options.replay(jtiHash, expiresAt))) throw invalidDpopProof('The DPoP proof was used before')
      return
    }
    const now = Date.now()
    const until = this.seen.get(jtiHash)
    if (until !== undefined && until > now) throw invalidDpopProof('The DPoP proof was used before')
    const max = this.options.replayCacheSize ?? 100_000
    if (this.seen.size >= max) {
      for (const [k, v] of this.seen) if (v <= now) this.seen.delete(k)
      // Still full: the oldest go first (a Map iterates in insertion order); they expire soonest.
      for (const k of this.seen.keys()) {
        if (this.seen.size < max) break
        this.seen.delete(k)
      }
    }
    this.seen.delete(jtiHash)
    this.seen.set(jtiHash, expiresAt)
  }
}

function jsonObject(part: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'))
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined
  } catch {
    return undefined
  }
}

function safeVerify(digest: string | null, data: Buffer, key: KeyObject, options: object, signature: Buffer): boolean {
  try {
    return verify(digest, data, { key, ...options }, signature)
  } catch {
    return false
  }
}

/** RFC 9449 §4.3 points 4, 5 and 7: typ dpop+jwt, an asymmetric alg we verify, a public jwk for it. */
async function importProofKey(header: Record<string, unknown>): Promise<ProofKey> {
  if (typeof header.typ !== 'string' || header.typ.toLowerCase() !== 'dpop+jwt') throw invalidDpopProof('The DPoP proof must have typ dpop+jwt')
  const alg = header.alg
  if (!isProofAlgorithm(alg)) throw invalidDpopProof(`The DPoP proof must be signed with one of ${dpopAlgorithms.join(', ')}`)
  if (header.crit !== undefined) throw invalidDpopProof('The DPoP proof has a crit header this server does not understand')
  const jwk = header.jwk
  if (typeof jwk !== 'object' || jwk === null || Array.isArray(jwk)) throw invalidDpopProof('The DPoP proof must carry its public key as jwk')
  if (privateMembers.some((m) => m in jwk)) throw invalidDpopProof('The DPoP proof jwk must be a public key, without private members')
  const key = importJwk(new Map(Object.entries(jwk)))
  if (!key || !verifiers[alg].keyTypes.includes(key.asymmetricKeyType ?? '')) throw invalidDpopProof(`The DPoP proof jwk is not a public key for ${alg}`)
  if (alg === 'ES256' && key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') throw invalidDpopProof('ES256 needs a P-256 key')
  if (key.asymmetricKeyType === 'rsa' && (key.asymmetricKeyDetails?.modulusLength ?? 0) < 2048) throw invalidDpopProof('An RSA DPoP key must be 2048 bits or more')
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

import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto'
import { calculateJwkThumbprint, exportJWK, generateKeyPair, type JWK } from 'jose'
import type { SigningAlg } from './config.js'
import type { KeyState, SigningKeyRecord } from './model.js'
import { seal, unseal } from './secrets.js'
import { algorithmFor } from './tokens/jws.js'
import type { AccessTokenClaims } from './tokens/jwt.js'

type Key = KeyObject

/** Private keys are stored sealed under the master key, bound to their kid (see `seal`). */
export const encryptPrivateJwk = (jwk: JWK, kid: string, masterKey: Buffer): string => seal(JSON.stringify(jwk), kid, masterKey)

export function decryptPrivateJwk(sealed: string, kid: string, masterKey: Buffer): JWK {
  try {
    return JSON.parse(unseal(sealed, kid, masterKey)) as JWK
  } catch {
    throw new Error(`signing key ${kid} cannot be decrypted: is FIELDGATE_MASTER_KEY the one it was created with?`)
  }
}

/** RSA keys of 2048 bits (RFC 7518 §3.3, §3.5), P-256 for ES256, Ed25519 for EdDSA (RFC 8037 §2). */
export async function generateSigningKey(alg: SigningAlg, state: KeyState, masterKey: Buffer, now: number): Promise<SigningKeyRecord> {
  const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true, ...(alg === 'EdDSA' ? { crv: 'Ed25519' } : { modulusLength: 2048 }) })
  const publicJwk = await exportJWK(publicKey)
  const kid = await calculateJwkThumbprint(publicJwk)
  return {
    kid,
    alg,
    state,
    publicJwk: JSON.stringify({ ...publicJwk, kid, alg, use: 'sig' }),
    privateJwkEnc: encryptPrivateJwk(await exportJWK(privateKey), kid, masterKey),
    createdAt: now,
    retireAt: null,
  }
}

/** The keys one process uses: the active key signs; next, active and retiring keys verify and are published. */
export class KeyRing {
  /** Claims of tokens whose signature these keys already verified (see verifyAccessToken). */
  readonly verified = new Map<string, AccessTokenClaims>()

  rememberVerified(token: string, claims: AccessTokenClaims): AccessTokenClaims {
    if (this.verified.size >= 20_000) this.verified.clear()
    this.verified.set(token, claims)
    return claims
  }

  private constructor(
    readonly signing: { kid: string; alg: string; key: Key },
    private readonly verifying: Map<string, { alg: string; key: Key; jwk: JWK }>,
  ) {}

  static load(records: SigningKeyRecord[], masterKey: Buffer): KeyRing {
    const published = records.filter((r) => r.state !== 'retired')
    // Newest active key signs; several can be active for a moment when instances race at first start.
    const active = published.filter((r) => r.state === 'active').sort((a, b) => b.createdAt - a.createdAt)[0]
    if (!active) throw new Error('no active signing key: run `fieldgate keys rotate` or start the server once')
    const verifying = new Map<string, { alg: string; key: Key; jwk: JWK }>()
    for (const r of published) {
      const jwk = JSON.parse(r.publicJwk) as JWK
      verifying.set(r.kid, { alg: r.alg, key: fitting(r, createPublicKey({ key: jwk as never, format: 'jwk' })), jwk })
    }
    const privateKey = fitting(active, createPrivateKey({ key: decryptPrivateJwk(active.privateJwkEnc, active.kid, masterKey) as never, format: 'jwk' }))
    return new KeyRing({ kid: active.kid, alg: active.alg, key: privateKey }, verifying)
  }

  verificationKey(kid: string | undefined): { alg: string; key: Key } | undefined {
    return kid === undefined ? undefined : this.verifying.get(kid)
  }

  get algorithms(): string[] {
    return [...new Set([...this.verifying.values()].map((k) => k.alg))]
  }

  jwks(): { keys: JWK[] } {
    return { keys: [...this.verifying.values()].map((k) => k.jwk) }
  }
}

/** A stored key whose type is not its algorithm's is refused at load, not token by token (see algorithmFor). */
function fitting(record: SigningKeyRecord, key: Key): Key {
  if (!algorithmFor(record.alg, key)) throw new Error(`signing key ${record.kid} is a ${key.asymmetricKeyType ?? key.type} key, which cannot sign ${record.alg}`)
  return key
}

export interface KeyPlan {
  insert: SigningKeyRecord[]
  update: Pick<SigningKeyRecord, 'kid' | 'state' | 'retireAt'>[]
}

/** First start: an active key to sign with and a next key already published for the first rotation. */
export async function planBootstrap(records: SigningKeyRecord[], alg: SigningAlg, masterKey: Buffer, now: number): Promise<KeyPlan> {
  const insert: SigningKeyRecord[] = []
  if (!records.some((r) => r.state === 'active')) insert.push(await generateSigningKey(alg, 'active', masterKey, now))
  if (!records.some((r) => r.state === 'next')) insert.push(await generateSigningKey(alg, 'next', masterKey, now))
  return { insert, update: [] }
}

/**
 * Rotation: the published next key starts signing, the active key keeps verifying until every token it
 * signed has expired (`maxTokenTtl`), retiring keys past that are retired, and a fresh next key is published.
 * With no next key yet, only a next key is published, so no key ever signs before resource servers could fetch it.
 */
export async function planRotation(records: SigningKeyRecord[], alg: SigningAlg, masterKey: Buffer, now: number, maxTokenTtl: number): Promise<KeyPlan> {
  const update: KeyPlan['update'] = []
  for (const r of records) {
    if (r.state === 'retiring' && r.retireAt !== null && r.retireAt <= now) update.push({ kid: r.kid, state: 'retired', retireAt: r.retireAt })
  }
  const next = records.find((r) => r.state === 'next')
  if (next) {
    update.push({ kid: next.kid, state: 'active', retireAt: null })
    for (const r of records) {
      if (r.state === 'active') update.push({ kid: r.kid, state: 'retiring', retireAt: now + maxTokenTtl * 1000 })
    }
  }
  return { insert: [await generateSigningKey(alg, 'next', masterKey, now)], update }
}

export function parseMasterKey(value: string): Buffer {
  const key = /^[0-9a-f]{64}$/i.test(value) ? Buffer.from(value, 'hex') : Buffer.from(value, 'base64')
  if (key.length !== 32) throw new Error('FIELDGATE_MASTER_KEY must be 32 bytes, as 64 hex characters or base64')
  return key
}

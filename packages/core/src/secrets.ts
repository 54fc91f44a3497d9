import { createCipheriv, createDecipheriv, createHash, randomBytes, timingSafeEqual } from 'node:crypto'
import type { Environment } from './model.js'

/**
 * Secrets and tokens are 256-bit random values, so a plain SHA-256 is a safe one-way hash for them
 * (no stretching needed, and none on the hot path). Comparison is always constant-time.
 */
export const randomValue = (bytes = 32): string => randomBytes(bytes).toString('base64url')

export const hashSecret = (secret: string): string => createHash('sha256').update(secret).digest('base64url')

export function sameHash(a: string, b: string): boolean {
  const x = Buffer.from(a)
  const y = Buffer.from(b)
  return x.length === y.length && timingSafeEqual(x, y)
}

/** A recognisable prefix per environment lets secret scanners and people tell live from sandbox. */
export const secretPrefix = (environment: Environment): string => `fgs_${environment}_`

export const newClientSecret = (environment: Environment): string => secretPrefix(environment) + randomValue(32)

export const newClientId = (): string => randomBytes(16).toString('hex')

/** What a person may be shown of a secret after creation: its prefix and last four characters. */
export const secretHint = (secret: string): string => `${/^fgs_[a-z]+_/.exec(secret)?.[0] ?? ''}…${secret.slice(-4)}`

/**
 * AES-256-GCM under the master key, bound to `aad` (the id of what it seals), as
 * `v1.<iv>.<ciphertext>.<tag>`: for what must be recovered, not just compared (signing keys, and
 * client secrets where they key an HMAC).
 */
export function seal(plaintext: string, aad: string, key: Buffer): string {
  const iv = randomBytes(12)
  const cipher = createCipheriv('aes-256-gcm', key, iv).setAAD(Buffer.from(aad))
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()])
  return ['v1', iv.toString('base64url'), body.toString('base64url'), cipher.getAuthTag().toString('base64url')].join('.')
}

/** Throws if the value was not sealed under `key` for `aad`. */
export function unseal(sealed: string, aad: string, key: Buffer): string {
  const [version, iv, body, tag] = sealed.split('.')
  if (version !== 'v1' || !iv || !body || !tag) throw new Error('unknown sealed format')
  const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64url')).setAAD(Buffer.from(aad)).setAuthTag(Buffer.from(tag, 'base64url'))
  return Buffer.concat([decipher.update(Buffer.from(body, 'base64url')), decipher.final()]).toString()
}

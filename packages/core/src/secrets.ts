import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'
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

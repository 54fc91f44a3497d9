import { randomBytes } from 'node:crypto'
import type { CoreContext } from '../context.js'
import { InvalidToken } from '../errors.js'
import type { OpaqueToken, OpaqueTokenRecord } from '../model.js'
import { hashSecret } from '../secrets.js'

/**
 * Opaque connection tokens: 256 random bits as 64 hex characters (fieldmargin's tokens are hex too).
 * Only the SHA-256 is stored; the value is handed out once.
 */
export function newOpaqueToken(fields: Omit<OpaqueToken, 'tokenHash' | 'revokedAt'>): { value: string; token: OpaqueToken } {
  const value = randomBytes(32).toString('hex')
  return { value, token: { ...fields, tokenHash: hashSecret(value), revokedAt: null } }
}

/** A JWT has three dot-separated parts; an opaque token has none. */
export const isOpaqueToken = (token: string): boolean => /^[0-9a-f]{64}$/.test(token)

/**
 * An opaque token as the store has it, through the process's cache: revoking it or its grant appends a
 * change that drops it from every process's cache within one poll of the feed (cache.ts).
 */
export async function verifyOpaqueToken(ctx: CoreContext, value: string): Promise<OpaqueTokenRecord> {
  const record = await ctx.cache.opaqueToken(hashSecret(value))
  // A revoked grant is the caller's to tell apart (guard.ts records it); a revoked or unknown token is not news.
  if (!record || record.token.revokedAt !== null) throw new InvalidToken('The access token was revoked')
  if (record.token.expiresAt !== null && record.token.expiresAt <= ctx.now()) throw new InvalidToken('The access token expired')
  return record
}

/** What an opaque token may do now: what it was issued for, within what its grant still holds. */
export const opaqueScopes = ({ token, grant }: OpaqueTokenRecord): string[] => (token.scopes === null ? grant.scopes : token.scopes.filter((s) => grant.scopes.includes(s)))

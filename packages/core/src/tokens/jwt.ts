import { audienceAccepted, type ExpectedAudience } from '../audiences.js'
import { InvalidToken } from '../errors.js'
import type { KeyRing } from '../keys.js'
import { signCompact, verifyCompact } from './jws.js'

/** RFC 9068 access-token claims, plus the tenant and the grant the token stands on. */
export interface AccessTokenClaims {
  nbf?: number
  iss: string
  sub: string
  aud: string | string[]
  exp: number
  iat: number
  jti: string
  client_id: string
  scope: string
  tenant_id: string
  grant_id: string
  /** RFC 9449 §6.1: the thumbprint of the DPoP key the token is bound to. */
  cnf?: { jkt: string }
}

export async function signAccessToken(keys: KeyRing, claims: AccessTokenClaims): Promise<string> {
  const { alg, kid, key } = keys.signing
  return signCompact({ alg, kid, typ: 'at+jwt' }, claims, key)
}

const expired = 'The access token expired'

/**
 * RFC 9068 §4 validation: signature by a published key with its pinned algorithm, `typ` at+jwt,
 * issuer, audience, expiry, and the claims Fieldgate relies on. Expiry is checked only after the
 * signature, so a forged token never learns anything. A client sends the same token for its whole
 * life, so the time- and audience-independent part is remembered per token string on the key ring (a
 * rotation starts afresh); audience and expiry are checked on every call. `audience` null accepts
 * any (introspection, which reports `aud` to the resource server that asks).
 */
export function verifyAccessToken(keys: KeyRing, token: string, expect: { issuer: string; audience: ExpectedAudience; now: number }): AccessTokenClaims {
  const c = keys.verified.get(token) ?? keys.rememberVerified(token, verifySigned(keys, token, expect.issuer))
  if (!audienceAccepted(expect.audience, audiencesOf(c))) throw new InvalidToken()
  if (typeof c.nbf === 'number' && c.nbf * 1000 > expect.now) throw new InvalidToken()
  if (c.exp * 1000 <= expect.now) throw new InvalidToken(expired)
  return c
}

/** RFC 7519 §4.1.3: one audience, or a list of them. */
export const audiencesOf = (claims: { readonly aud?: unknown }): unknown[] => (Array.isArray(claims.aud) ? claims.aud : [claims.aud])

const isConfirmation = (cnf: unknown): boolean => typeof cnf === 'object' && cnf !== null && 'jkt' in cnf && typeof cnf.jkt === 'string' && Object.keys(cnf).length === 1

function verifySigned(keys: KeyRing, token: string, issuer: string): AccessTokenClaims {
  const jws = verifyCompact(token, (kid) => (typeof kid === 'string' ? keys.verificationKey(kid) : undefined))
  if (!jws) throw new InvalidToken()
  const typ = jws.header.typ
  if (typeof typ !== 'string' || !['at+jwt', 'application/at+jwt'].includes(typ.toLowerCase())) throw new InvalidToken()
  const c = jws.payload
  if (c.iss !== issuer || !audiencesOf(c).every((a) => typeof a === 'string')) throw new InvalidToken()
  for (const name of ['sub', 'client_id', 'scope', 'tenant_id', 'grant_id', 'jti'] as const) {
    if (typeof c[name] !== 'string') throw new InvalidToken()
  }
  if (typeof c.exp !== 'number' || typeof c.iat !== 'number') throw new InvalidToken()
  if (c.cnf !== undefined && !isConfirmation(c.cnf)) throw new InvalidToken()
  return c as unknown as AccessTokenClaims
}

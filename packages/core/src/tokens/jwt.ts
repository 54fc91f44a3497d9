import { InvalidToken } from '../errors.js'
import type { KeyRing } from '../keys.js'
import { signCompact, verifyCompact } from './jws.js'

/** RFC 9068 access-token claims, plus the tenant and the grant the token stands on. */
export interface AccessTokenClaims {
  nbf?: number
  iss: string
  sub: string
  aud: string
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
 * life, so the time-independent part is remembered per token string on the key ring (a rotation
 * starts afresh); expiry is checked on every call.
 */
export function verifyAccessToken(keys: KeyRing, token: string, expect: { issuer: string; audience: string; now: number }): AccessTokenClaims {
  const c = keys.verified.get(token) ?? keys.rememberVerified(token, verifySigned(keys, token, expect))
  if (typeof c.nbf === 'number' && c.nbf * 1000 > expect.now) throw new InvalidToken()
  if (c.exp * 1000 <= expect.now) throw new InvalidToken(expired)
  return c
}

function verifySigned(keys: KeyRing, token: string, expect: { issuer: string; audience: string }): AccessTokenClaims {
  const jws = verifyCompact(token, (kid) => (typeof kid === 'string' ? keys.verificationKey(kid) : undefined))
  if (!jws) throw new InvalidToken()
  const typ = jws.header.typ
  if (typeof typ !== 'string' || !['at+jwt', 'application/at+jwt'].includes(typ.toLowerCase())) throw new InvalidToken()
  const c = jws.payload
  const audiences = Array.isArray(c.aud) ? c.aud : [c.aud]
  if (c.iss !== expect.issuer || !audiences.includes(expect.audience)) throw new InvalidToken()
  for (const name of ['sub', 'client_id', 'scope', 'tenant_id', 'grant_id', 'jti'] as const) {
    if (typeof c[name] !== 'string') throw new InvalidToken()
  }
  if (typeof c.exp !== 'number' || typeof c.iat !== 'number') throw new InvalidToken()
  // RFC 7800 §3.1: a confirmation the token needs honoured; the only one Fieldgate knows is DPoP's jkt.
  if (c.cnf !== undefined && !isDpopConfirmation(c.cnf)) throw new InvalidToken()
  return c as unknown as AccessTokenClaims
}

const isDpopConfirmation = (cnf: unknown): boolean =>
  typeof cnf === 'object' && cnf !== null && Object.keys(cnf).length === 1 && 'jkt' in cnf && typeof cnf.jkt === 'string' && cnf.jkt !== ''

import type { CoreContext } from './context.js'
import { InsufficientScope, InvalidToken } from './errors.js'
import { parseScope } from './scopes.js'
import { verifyAccessToken, type AccessTokenClaims } from './tokens/jwt.js'

/** Who is calling the protected API, as far as the token says. */
export interface Principal {
  clientId: string
  tenantId: string
  grantId: string
  scopes: string[]
  claims: AccessTokenClaims
}

/** Resource-server check of a bearer token: signature, typ, issuer, audience, expiry, and its grant still active. */
export async function authenticateAccessToken(ctx: CoreContext, token: string): Promise<Principal> {
  if (token.length > 8192) throw new InvalidToken()
  const claims = verifyAccessToken(ctx.keys, token, { issuer: ctx.config.issuer, audience: ctx.config.audience, now: ctx.now() })
  if (!(await ctx.cache.isGrantActive(claims.grant_id))) throw new InvalidToken('The access token was revoked')
  return { clientId: claims.client_id, tenantId: claims.tenant_id, grantId: claims.grant_id, scopes: parseScope(claims.scope), claims }
}

export function requireScope(principal: Principal, scope: string): void {
  if (!principal.scopes.includes(scope)) throw new InsufficientScope(scope)
}

import type { CoreContext } from './context.js'
import { InsufficientScope, InvalidToken } from './errors.js'
import { formatScope, parseScope } from './scopes.js'
import { verifyAccessToken } from './tokens/jwt.js'
import { isOpaqueToken, opaqueScopes, verifyOpaqueToken } from './tokens/opaque.js'
import { audienceOf } from './audiences.js'

/** Who is calling the protected API, as far as the token says. */
export interface Principal {
  clientId: string
  tenantId: string
  grantId: string
  scopes: string[]
  /** What RFC 7662 introspection tells the token's own client. */
  introspection: Record<string, unknown>
}

/**
 * Resource-server check of a bearer token. A JWT (client credentials): signature, typ, issuer, audience,
 * expiry, and its grant still active. An opaque connection token (code exchange): looked up in the store,
 * not revoked, its grant active, and the grant's scopes as they are now (incremental consent).
 */
export async function authenticateAccessToken(ctx: CoreContext, token: string, audience: string | undefined = ctx.config.audience): Promise<Principal> {
  if (token.length > 8192) throw new InvalidToken()
  return isOpaqueToken(token) ? opaquePrincipal(ctx, token, audience) : jwtPrincipal(ctx, token, audience)
}

/** `audience`: the API asking (RFC 8707: a token is good only there); undefined for introspection, which answers for any. */
async function jwtPrincipal(ctx: CoreContext, token: string, audience: string | undefined): Promise<Principal> {
  const claims = verifyAccessToken(ctx.keys, token, { issuer: ctx.config.issuer, audience, now: ctx.now() })
  if (!(await ctx.cache.isGrantActive(claims.grant_id))) throw revokedGrant(ctx, claims.client_id, claims.tenant_id, claims.grant_id)
  await requireActiveApp(ctx, claims.client_id)
  return {
    clientId: claims.client_id,
    tenantId: claims.tenant_id,
    grantId: claims.grant_id,
    scopes: parseScope(claims.scope),
    introspection: { token_type: claims.cnf ? 'DPoP' : 'Bearer', ...claims },
  }
}

async function opaquePrincipal(ctx: CoreContext, token: string, audience: string | undefined): Promise<Principal> {
  const record = await verifyOpaqueToken(ctx, token)
  const { token: t, grant, clientId } = record
  const aud = audienceOf(ctx.config, t.resource)
  if (audience !== undefined && aud !== audience) throw new InvalidToken()
  if (grant.status !== 'active') throw revokedGrant(ctx, clientId, t.tenantId, grant.id)
  await requireActiveApp(ctx, clientId)
  const scopes = opaqueScopes(record)
  return {
    clientId,
    tenantId: t.tenantId,
    grantId: grant.id,
    scopes,
    introspection: {
      token_type: t.jkt ? 'DPoP' : 'Bearer',
      iss: ctx.config.issuer,
      sub: t.userId ?? clientId,
      aud,
      client_id: clientId,
      scope: formatScope(scopes),
      iat: Math.floor(t.createdAt / 1000),
      ...(t.expiresAt !== null ? { exp: Math.floor(t.expiresAt / 1000) } : {}),
      tenant_id: t.tenantId,
      grant_id: grant.id,
      ...(t.jkt ? { cnf: { jkt: t.jkt } } : {}),
    },
  }
}

/**
 * A suspended app's tokens are refused at once: the suspension is an `app` change, so every process's
 * cache drops the app at its next read of the change feed and reads it again here.
 */
async function requireActiveApp(ctx: CoreContext, clientId: string): Promise<void> {
  const client = await ctx.cache.client(clientId, ctx.now())
  if (client?.app.suspendedAt != null) throw new InvalidToken('The app is suspended')
}

/** A token of a revoked grant: recorded once a minute per grant, however often the client retries it. */
function revokedGrant(ctx: CoreContext, clientId: string, tenantId: string, grantId: string): InvalidToken {
  ctx.security.record({ kind: 'token.revoked_grant', clientId, tenantId, details: { grant_id: grantId } }, { once: `revoked ${grantId}` })
  return new InvalidToken('The access token was revoked')
}

export function requireScope(principal: Principal, scope: string): void {
  if (!principal.scopes.includes(scope)) throw new InsufficientScope(scope)
}

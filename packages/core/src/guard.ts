import type { CoreContext } from './context.js'
import { verifyDpopProof } from './dpop.js'
import { InsufficientScope, InvalidDpopProof, InvalidToken } from './errors.js'
import { formatScope, parseScope } from './scopes.js'
import { sameHash } from './secrets.js'
import { verifyAccessToken } from './tokens/jwt.js'
import { isOpaqueToken, opaqueScopes, verifyOpaqueToken } from './tokens/opaque.js'
import { audienceAccepted, audienceOf, type ExpectedAudience } from './audiences.js'

/** Who is calling the protected API, as far as the token says. */
export interface Principal {
  clientId: string
  tenantId: string
  grantId: string
  scopes: string[]
  /** RFC 9449: the thumbprint of the key the token is bound to (`cnf.jkt`); null for a bearer token. */
  jkt: string | null
  /** What RFC 7662 introspection tells the token's own client. */
  introspection: Record<string, unknown>
}

/**
 * How a token came to a protected resource (RFC 9449 §7): in `Authorization: Bearer` (or RFC 6750's
 * query parameter), or in `Authorization: DPoP` with the request's DPoP header (undefined when there was
 * none), its method and its absolute URL as the client addressed it.
 */
export type Presentation = { readonly scheme: 'Bearer' } | { readonly scheme: 'DPoP'; readonly proof: string | undefined; readonly method: string; readonly url: string }

export const bearerPresentation: Presentation = Object.freeze({ scheme: 'Bearer' })

/**
 * Resource-server check of an access token as it was presented. A JWT (client credentials): signature,
 * typ, issuer, audience, expiry, and its grant still active. An opaque connection token (code exchange):
 * looked up in the store, not revoked, its grant active, and the grant's scopes as they are now
 * (incremental consent). Then RFC 9449 §7: a DPoP-bound token only with the DPoP scheme and a proof by
 * its key, an unbound one only as Bearer.
 */
export async function authenticateAccessToken(
  ctx: CoreContext,
  token: string,
  presentation: Presentation = bearerPresentation,
  audience: ExpectedAudience = ctx.config.audience,
): Promise<Principal> {
  let principal: Principal
  try {
    principal = await inspectAccessToken(ctx, token, audience)
  } catch (err) {
    // RFC 9449 §7.1: a token sent with the DPoP scheme is refused in the DPoP challenge.
    if (presentation.scheme === 'DPoP' && err instanceof InvalidToken) throw new InvalidToken(err.description, 'DPoP')
    throw err
  }
  await checkPresentation(ctx, token, principal, presentation)
  return principal
}

/**
 * What a token is and says, whoever presents it and however: the check RFC 7662 introspection makes
 * for a resource server, which checks the presentation (the DPoP proof) itself (RFC 9449 §6.2).
 * `audience`: the API asking (RFC 8707: a token is good only there); null for introspection, which
 * answers for any.
 */
export async function inspectAccessToken(ctx: CoreContext, token: string, audience: ExpectedAudience = ctx.config.audience): Promise<Principal> {
  if (token.length > 8192) throw new InvalidToken()
  return isOpaqueToken(token) ? opaquePrincipal(ctx, token, audience) : jwtPrincipal(ctx, token, audience)
}

/** RFC 9449 §7.1, §7.2: the scheme must fit the token, and a bound token's proof must be by its key and for it. */
async function checkPresentation(ctx: CoreContext, token: string, principal: Principal, presentation: Presentation): Promise<void> {
  if (presentation.scheme === 'Bearer') {
    // A bound token taken from its client is worth nothing as a bearer token: that is the point of binding.
    if (principal.jkt !== null) throw new InvalidToken('The access token is DPoP-bound: send it with the DPoP scheme and a DPoP proof')
    return
  }
  if (principal.jkt === null) throw new InvalidToken('The access token is not DPoP-bound: send it with the Bearer scheme', 'DPoP')
  if (presentation.proof === undefined) throw new InvalidDpopProof('A DPoP proof is required with a DPoP-bound access token', 'resource')
  const jkt = await verifyDpopProof(ctx, { proof: presentation.proof, method: presentation.method, url: presentation.url, accessToken: token })
  if (!sameHash(jkt, principal.jkt)) throw new InvalidToken('The DPoP proof is not signed with the key the access token is bound to', 'DPoP')
}

async function jwtPrincipal(ctx: CoreContext, token: string, audience: ExpectedAudience): Promise<Principal> {
  const claims = verifyAccessToken(ctx.keys, token, { issuer: ctx.config.issuer, audience, now: ctx.now() })
  if (!(await ctx.cache.isGrantActive(claims.grant_id))) throw revokedGrant(ctx, claims.client_id, claims.tenant_id, claims.grant_id)
  await requireActiveApp(ctx, claims.client_id)
  const jkt = claims.cnf?.jkt ?? null
  return {
    clientId: claims.client_id,
    tenantId: claims.tenant_id,
    grantId: claims.grant_id,
    scopes: parseScope(claims.scope),
    jkt,
    // RFC 9449 §6.2: introspection names a bound token's type and key (cnf is among its claims).
    introspection: { token_type: jkt === null ? 'Bearer' : 'DPoP', ...claims },
  }
}

async function opaquePrincipal(ctx: CoreContext, token: string, audience: ExpectedAudience): Promise<Principal> {
  const record = await verifyOpaqueToken(ctx, token)
  const { token: t, grant, clientId } = record
  const aud = audienceOf(ctx.config, t.resource)
  if (!audienceAccepted(audience, [aud])) throw new InvalidToken()
  if (grant.status !== 'active') throw revokedGrant(ctx, clientId, t.tenantId, grant.id)
  await requireActiveApp(ctx, clientId)
  const scopes = opaqueScopes(record)
  const jkt = t.jkt
  return {
    clientId,
    tenantId: t.tenantId,
    grantId: grant.id,
    scopes,
    jkt,
    introspection: {
      token_type: jkt === null ? 'Bearer' : 'DPoP',
      iss: ctx.config.issuer,
      sub: t.userId ?? clientId,
      aud,
      client_id: clientId,
      scope: formatScope(scopes),
      iat: Math.floor(t.createdAt / 1000),
      ...(t.expiresAt !== null ? { exp: Math.floor(t.expiresAt / 1000) } : {}),
      tenant_id: t.tenantId,
      grant_id: grant.id,
      // RFC 9449 §6.2.
      ...(jkt === null ? {} : { cnf: { jkt } }),
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

/** RFC 6750 §3.1 insufficient_scope, in the challenge of the scheme the token came with (RFC 9449 §7.1). */
export function requireScope(principal: Principal, scope: string): void {
  if (!principal.scopes.includes(scope)) throw insufficientScope(principal, scope)
}

export const insufficientScope = (principal: Principal, scope: string): InsufficientScope => new InsufficientScope(scope, principal.jkt === null ? 'Bearer' : 'DPoP')

import { isLookupKey } from '../client-auth.js'
import type { CoreContext, Params } from '../context.js'
import { checkedResource } from '../audiences.js'
import { InvalidGrant, InvalidRequest, InvalidScope, UnauthorizedClient } from '../errors.js'
import { isRegisteredClient, type App, type Grant } from '../model.js'
import { formatScope, missingFrom, parseScope } from '../scopes.js'
import { issueJwtAccessToken } from '../tokens/issue.js'
import type { GrantRequest, GrantType, TokenResult } from './registry.js'

/** RFC 6749 §4.4, with FieldEdge's `target_id` naming the tenant a marketplace app acts on. */
async function clientCredentials(ctx: CoreContext, app: App, params: Params, request: GrantRequest): Promise<TokenResult> {
  // OAuth 2.1 §4.2: only a confidential client can stand for itself.
  if (app.publicClient) throw new UnauthorizedClient('a public client cannot use client_credentials')
  // A client that registered itself reaches a farm only through its farmer's consent, never on its own.
  if (isRegisteredClient(app)) throw new UnauthorizedClient('a registered client cannot use client_credentials')
  const grant = await grantOnTenant(ctx, app, params.target_id)
  const scopes = grantedScopes(params.scope, allowedNow(grant, app))
  return issueJwtAccessToken(ctx, app, grant, scopes, { resource: checkedResource(ctx.config, ctx.gateway, params.resource), jkt: request.jkt })
}

/** The tenant the token is for and the app's active grant on it, or why there is none. */
async function grantOnTenant(ctx: CoreContext, app: App, targetId: string | undefined): Promise<Grant> {
  if (app.kind === 'private') {
    // A private app only ever acts on its own tenant; target_id, if sent, must name it.
    if (targetId !== undefined && targetId !== app.tenantId) throw new InvalidGrant('target_id is not the tenant this app belongs to')
    const own = app.tenantId ? await ctx.cache.tenantGrant(app.id, app.tenantId) : undefined
    if (!own) throw new InvalidGrant('the tenant of this app no longer exists')
    if (!own.grant) throw new InvalidGrant("the app's access to its tenant was revoked")
    return own.grant
  }
  if (!targetId) throw new InvalidRequest('target_id is required: it names the tenant that installed the app')
  const found = isLookupKey(targetId) ? await ctx.cache.tenantGrant(app.id, targetId) : undefined
  if (!found) throw new InvalidGrant('the app is not installed for this target_id')
  const { tenant, grant } = found
  if (tenant.environment !== app.environment) {
    throw new InvalidGrant(`a ${app.environment} app cannot act on a ${tenant.environment} tenant`)
  }
  if (!grant) throw new InvalidGrant('the app is not installed for this target_id')
  return grant
}

/**
 * What the grant gives the app today. A grant changes only by a consent or install: widening the app's
 * allowed scopes never widens it (nor its tokens). Narrowing the app narrows what new tokens carry at once,
 * since the app may no longer ask for the rest; the grant itself keeps its record of what was consented.
 */
function allowedNow(grant: Grant, app: App): Grant {
  return { ...grant, scopes: grant.scopes.filter((s) => app.scopes.includes(s)) }
}

/** RFC 6749 §3.3: no scope asks for everything granted; asking for more than granted is invalid_scope. */
function grantedScopes(requested: string | undefined, grant: Grant): string[] {
  const wanted = parseScope(requested)
  if (wanted.length === 0) return grant.scopes
  const missing = missingFrom(wanted, grant.scopes)
  if (missing.length) throw new InvalidScope(`not granted: ${formatScope(missing)}`)
  return wanted
}

/** RFC 6749 §4.4. */
export const clientCredentialsGrant: GrantType = { grantType: 'client_credentials', parameters: ['scope', 'target_id', 'resource'], handler: clientCredentials }

import { isLookupKey } from '../client-auth.js'
import type { CoreContext, Params } from '../context.js'
import { checkedResource } from '../audiences.js'
import { InvalidGrant, InvalidRequest, InvalidScope, UnauthorizedClient } from '../errors.js'
import type { App, Grant, Tenant } from '../model.js'
import { formatScope, missingFrom, parseScope } from '../scopes.js'
import { issueJwtAccessToken } from '../tokens/issue.js'
import type { GrantRequest, GrantType, TokenResult } from './registry.js'

/** RFC 6749 §4.4, with FieldEdge's `target_id` naming the tenant a marketplace app acts on. */
async function clientCredentials(ctx: CoreContext, app: App, params: Params, request: GrantRequest): Promise<TokenResult> {
  // OAuth 2.1 §4.2: only a confidential client can stand for itself.
  if (app.publicClient) throw new UnauthorizedClient('a public client cannot use client_credentials')
  const tenant = await resolveTenant(ctx, app, params.target_id)
  const grant = await activeGrant(ctx, app, tenant)
  const scopes = grantedScopes(params.scope, allowedNow(grant, app))
  return issueJwtAccessToken(ctx, app, grant, scopes, { resource: checkedResource(ctx.config, ctx.gateway, params.resource), jkt: request.jkt })
}

async function resolveTenant(ctx: CoreContext, app: App, targetId: string | undefined): Promise<Tenant> {
  if (app.kind === 'private') {
    // A private app only ever acts on its own tenant; target_id, if sent, must name it.
    if (targetId !== undefined && targetId !== app.tenantId) throw new InvalidGrant('target_id is not the tenant this app belongs to')
    const own = app.tenantId ? await ctx.cache.tenant(app.tenantId) : undefined
    if (!own) throw new InvalidGrant('the tenant of this app no longer exists')
    return own
  }
  if (!targetId) throw new InvalidRequest('target_id is required: it names the tenant that installed the app')
  const tenant = isLookupKey(targetId) ? await ctx.cache.tenant(targetId) : undefined
  if (!tenant) throw new InvalidGrant('the app is not installed for this target_id')
  if (tenant.environment !== app.environment) {
    throw new InvalidGrant(`a ${app.environment} app cannot act on a ${tenant.environment} tenant`)
  }
  return tenant
}

async function activeGrant(ctx: CoreContext, app: App, tenant: Tenant): Promise<Grant> {
  const grant = await ctx.cache.activeGrant(app.id, tenant.id)
  if (!grant) throw new InvalidGrant(app.kind === 'private' ? "the app's access to its tenant was revoked" : 'the app is not installed for this target_id')
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

import { checkedResource } from '../audiences.js'
import { isLookupKey } from '../client-auth.js'
import type { CoreContext, Params } from '../context.js'
import { InvalidGrant, InvalidRequest, InvalidScope, InvalidTarget, UnauthorizedClient } from '../errors.js'
import type { App, RefreshToken } from '../model.js'
import { missingFrom, parseScope } from '../scopes.js'
import { hashSecret } from '../secrets.js'
import { isRefreshToken, issueRefreshable } from '../tokens/issue.js'
import type { GrantRequest, GrantType, TokenResult } from './registry.js'

// One description for every way a refresh token can fail, so a client learns nothing about tokens not its own.
const badToken = 'the refresh token is invalid, expired, revoked, or was issued to another client'

/**
 * RFC 6749 §6 with OAuth 2.1 §4.3: the refresh token is used up and replaced (rotation), the new access
 * token carries at most the family's scopes and never more than the grant holds now, and a refresh
 * token used twice ends its family: one of the two users has stolen it (RFC 9700 §4.14.2).
 */
async function refreshTokenGrant(ctx: CoreContext, app: App, params: Params, request: GrantRequest): Promise<TokenResult> {
  if (!app.refreshTokens) throw new UnauthorizedClient('this app does not use refresh tokens')
  const token = await requireRefreshToken(ctx, app, params.refresh_token)
  // RFC 9449 §5: a bound refresh token is used only with a proof by its key.
  if (token.jkt !== null && token.jkt !== request.jkt) throw new InvalidGrant('the refresh token is bound to another DPoP key')
  if (params.resource !== undefined && checkedResource(ctx.config, ctx.gateway, params.resource) !== token.resource) {
    throw new InvalidTarget('resource is not the one the refresh token was issued for')
  }
  const grant = await ctx.storage.getGrant(token.grantId)
  if (grant?.status !== 'active') throw new InvalidGrant(badToken)
  const scopes = narrowed(params.scope, token.scopes).filter((s) => grant.scopes.includes(s))
  const family = { familyId: token.familyId, familyCreatedAt: token.familyCreatedAt, userId: token.userId, scopes: token.scopes, resource: token.resource, jkt: token.jkt }
  const { result, issued } = await issueRefreshable(ctx, app, grant, scopes, family, request.jkt ?? token.jkt ?? undefined)
  const rotation = await ctx.storage.rotateRefreshToken(token.tokenHash, ctx.now(), issued)
  if (rotation === 'reused') reused(ctx, app, token)
  if (rotation !== 'rotated') throw new InvalidGrant(badToken)
  return result
}

async function requireRefreshToken(ctx: CoreContext, app: App, value: string | undefined): Promise<RefreshToken> {
  if (!value) throw new InvalidRequest('refresh_token is required')
  const token = isLookupKey(value) && isRefreshToken(value) ? await ctx.storage.findRefreshToken(hashSecret(value)) : undefined
  if (!token || token.appId !== app.id || token.revokedAt !== null) throw new InvalidGrant(badToken)
  return token
}

/** §6: the scope asked for must be within the family's; none asks for all of it. */
function narrowed(scope: string | undefined, family: readonly string[]): string[] {
  const asked = parseScope(scope)
  if (asked.length === 0) return [...family]
  const beyond = missingFrom(asked, family)
  if (beyond.length) throw new InvalidScope(`a refresh cannot add scopes: ${beyond.join(' ')}`)
  return asked
}

function reused(ctx: CoreContext, app: App, token: RefreshToken): void {
  // The family's opaque access tokens were revoked with it: this process forgets them at once.
  ctx.cache.apply({ kind: 'grant', ref: token.grantId })
  ctx.security.record({ kind: 'refresh_token.reused', clientId: app.clientId, tenantId: token.tenantId, userId: token.userId, details: { grant_id: token.grantId } })
}

/** RFC 6749 §6. */
export const refreshTokenGrantType: GrantType = { grantType: 'refresh_token', parameters: ['refresh_token', 'scope', 'resource'], handler: refreshTokenGrant }

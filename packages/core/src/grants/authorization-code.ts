import { createHash } from 'node:crypto'
import { isLookupKey } from '../client-auth.js'
import type { CoreContext, Params } from '../context.js'
import { checkedResource } from '../audiences.js'
import { InvalidGrant, InvalidRequest, InvalidTarget, UnauthorizedClient } from '../errors.js'
import type { App, AuthorizationCode, Grant } from '../model.js'
import type { IssuedTokens } from '../storage/tokens.js'
import { issueConnectionToken, issueRefreshable } from '../tokens/issue.js'
import { hashSecret, sameHash } from '../secrets.js'
import type { GrantRequest, GrantType, TokenResult } from './registry.js'

// One description for every way a code can fail, so a client learns nothing about codes not its own.
const badCode = 'the code is invalid, expired, already used, or was issued to another client'

/**
 * RFC 6749 §4.1.3, RFC 7636 §4.6: the code exchange. An app with refresh tokens (every public client)
 * gets a short-lived access token and a refresh token (OAuth 2.1 §4.1.3); any other, and every exchange
 * at fieldmargin's token.exchange, the never-expiring connection token standing on the grant.
 */
async function authorizationCode(ctx: CoreContext, app: App, params: Params, request: GrantRequest): Promise<TokenResult> {
  // fieldmargin's exchange issues a token that never ends: never to a client that cannot keep a secret.
  if (request.dialect === 'connection' && app.publicClient) throw new UnauthorizedClient('a public client exchanges its code at /oauth/token')
  const code = await requireCode(ctx, app, params.code)
  checkRedirectUri(app, code, params.redirect_uri)
  checkPkce(code, params.code_verifier)
  checkResource(ctx, code, params.resource)
  // RFC 9449 §10: a code bound to a key (dpop_jkt) is redeemed only with a proof by that key.
  if (code.dpopJkt !== null && code.dpopJkt !== request.jkt) throw new InvalidGrant('the DPoP proof is not by the key the authorization request named')
  const grant = await ctx.storage.getGrant(code.grantId)
  if (grant?.status !== 'active') throw new InvalidGrant(badCode)
  const { result, issued } = await tokensFor(ctx, app, code, grant, request)
  if (!(await ctx.storage.redeemCode(code.codeHash, ctx.now(), issued))) return replayed(ctx, app, code)
  return result
}

async function tokensFor(ctx: CoreContext, app: App, code: AuthorizationCode, grant: Grant, request: GrantRequest): Promise<{ result: TokenResult; issued: IssuedTokens }> {
  const jkt = request.jkt
  if (app.refreshTokens && request.dialect === 'oauth') {
    // What this consent showed, within what the grant still holds: the grant is per app and farm, and may
    // hold scopes allowed for another request (another resource), which this token must not carry.
    const scopes = code.scopes.filter((s) => grant.scopes.includes(s))
    // The family is named by the code it began with: a replayed code ends it (revokeTokensFromCode).
    // RFC 9449 §5: a public client's refresh tokens are bound to its key; a confidential client's need not be.
    const family = { familyId: code.codeHash, familyCreatedAt: ctx.now(), userId: code.userId, scopes, resource: code.resource, jkt: app.publicClient ? (jkt ?? null) : null }
    return issueRefreshable(ctx, app, grant, scopes, family, jkt)
  }
  return issueConnectionToken(ctx, app, grant, { userId: code.userId, codeHash: code.codeHash, resource: code.resource }, jkt)
}

/** RFC 8707 §2.2: a token request may repeat the resource the code was issued for, and no other. */
function checkResource(ctx: CoreContext, code: AuthorizationCode, resource: string | undefined): void {
  if (resource !== undefined && checkedResource(ctx.config, ctx.gateway, resource) !== code.resource) {
    throw new InvalidTarget('resource is not the one the authorization request named')
  }
}

async function requireCode(ctx: CoreContext, app: App, value: string | undefined): Promise<AuthorizationCode> {
  if (!value) throw new InvalidRequest('code is required')
  const code = isLookupKey(value) ? await ctx.storage.getCode(hashSecret(value)) : undefined
  if (!code || code.appId !== app.id) throw new InvalidGrant(badCode)
  if (code.consumedAt !== null) return replayed(ctx, app, code)
  if (code.expiresAt <= ctx.now()) throw new InvalidGrant(badCode)
  return code
}

/** RFC 6749 §4.1.2: a code used twice may be stolen; what it issued is revoked. */
async function replayed(ctx: CoreContext, app: App, code: AuthorizationCode): Promise<never> {
  await ctx.storage.revokeTokensFromCode(code.codeHash, ctx.now())
  ctx.cache.apply({ kind: 'grant', ref: code.grantId })
  ctx.security.record({ kind: 'code.replayed', clientId: app.clientId, tenantId: code.tenantId, userId: code.userId, details: { grant_id: code.grantId } })
  throw new InvalidGrant(badCode)
}

/** §4.1.3: if the authorization request had a redirect_uri, the token request repeats it exactly. */
function checkRedirectUri(app: App, code: AuthorizationCode, redirectUri: string | undefined): void {
  if (code.redirectUri !== null) {
    if (redirectUri !== code.redirectUri) throw new InvalidGrant('redirect_uri does not match the authorization request')
  } else if (redirectUri !== undefined && !app.redirectUris.includes(redirectUri)) {
    throw new InvalidGrant('redirect_uri does not match the authorization request')
  }
}

const verifierSyntax = /^[A-Za-z0-9._~-]{43,128}$/

/** RFC 7636 §4.6, and RFC 9700 §4.8.2: a verifier for a code that had no challenge is refused too. */
function checkPkce(code: AuthorizationCode, verifier: string | undefined): void {
  if (code.codeChallenge === null) {
    if (verifier !== undefined) throw new InvalidGrant('code_verifier sent, but the authorization request had no code_challenge')
    return
  }
  if (verifier === undefined) throw new InvalidGrant('code_verifier is required')
  if (!verifierSyntax.test(verifier)) throw new InvalidGrant('code_verifier does not match the code_challenge')
  const computed = createHash('sha256').update(verifier).digest('base64url')
  if (!sameHash(computed, code.codeChallenge)) throw new InvalidGrant('code_verifier does not match the code_challenge')
}

/** RFC 6749 §4.1.3. */
export const authorizationCodeGrant: GrantType = {
  grantType: 'authorization_code',
  parameters: ['code', 'redirect_uri', 'code_verifier', 'resource'],
  handler: authorizationCode,
}

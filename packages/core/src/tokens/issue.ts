import { randomUUID } from 'node:crypto'
import { audienceOf } from '../audiences.js'
import type { CoreContext } from '../context.js'
import type { TokenResult } from '../grants/registry.js'
import type { App, Grant, OpaqueToken, RefreshToken } from '../model.js'
import { formatScope } from '../scopes.js'
import { hashSecret, randomValue } from '../secrets.js'
import type { IssuedTokens } from '../storage/tokens.js'
import { signAccessToken } from './jwt.js'
import { newOpaqueToken } from './opaque.js'

export const tokenTtlOf = (ctx: CoreContext, app: App): number => app.tokenTtl ?? ctx.config.tokenTtl[app.kind]

/** Who a token is for beyond its grant: the API (RFC 8707), the client's DPoP key (RFC 9449), the person. */
export interface TokenTarget {
  resource: string | null
  jkt: string | undefined
  /** The person whose consent the grant holds; absent for client credentials, whose subject is the client. */
  userId?: string | null
  /** Seconds; the app's own or its kind's lifetime when absent. */
  ttl?: number
}

const tokenType = (jkt: string | undefined): TokenResult['tokenType'] => (jkt ? 'DPoP' : 'Bearer')

/** An RFC 9068 JWT access token standing on `grant`: revoking the grant stops it before it expires. */
export async function issueJwtAccessToken(ctx: CoreContext, app: App, grant: Grant, scopes: string[], target: TokenTarget): Promise<TokenResult> {
  const ttl = target.ttl ?? tokenTtlOf(ctx, app)
  const iat = Math.floor(ctx.now() / 1000)
  const scope = formatScope(scopes)
  const accessToken = await signAccessToken(ctx.keys, {
    iss: ctx.config.issuer,
    // RFC 9068 §2.2: the resource owner when there is one, else the client itself.
    sub: target.userId ?? app.clientId,
    aud: audienceOf(ctx.config, target.resource),
    iat,
    exp: iat + ttl,
    jti: randomUUID(),
    client_id: app.clientId,
    scope,
    tenant_id: grant.tenantId,
    grant_id: grant.id,
    // RFC 9449 §6.1: the confirmation of the key the token is bound to.
    ...(target.jkt ? { cnf: { jkt: target.jkt } } : {}),
  })
  return { accessToken, tokenType: tokenType(target.jkt), expiresIn: ttl, scope, tenantId: grant.tenantId }
}

/**
 * fieldmargin's connection token (docs/dialects.md): opaque, never expiring, standing on the grant's
 * scopes as they are now; issued from a code, so a replayed code revokes it.
 */
export function issueConnectionToken(
  ctx: CoreContext,
  app: App,
  grant: Grant,
  from: { userId: string; codeHash: string; resource: string | null },
  jkt: string | undefined,
): { result: TokenResult; issued: IssuedTokens } {
  const { value, token } = newOpaqueToken({
    grantId: grant.id,
    appId: app.id,
    tenantId: grant.tenantId,
    userId: from.userId,
    codeHash: from.codeHash,
    createdAt: ctx.now(),
    expiresAt: null,
    resource: from.resource,
    jkt: jkt ?? null,
    familyId: null,
    scopes: null,
  })
  return { result: { accessToken: value, tokenType: tokenType(jkt), scope: formatScope(grant.scopes), tenantId: grant.tenantId }, issued: { accessToken: token } }
}

/** A refresh-token family: every token rotated from one code exchange, named by that code's hash. */
export interface RefreshFamily {
  familyId: string
  familyCreatedAt: number
  userId: string | null
  /** What the family may ask for. */
  scopes: string[]
  resource: string | null
  /** The key refresh tokens of this family are bound to (RFC 9449 §5), if any. */
  jkt: string | null
}

/** Refresh tokens are 256 random bits with a prefix that says what they are (secret scanners, logs). */
export const refreshTokenPrefix = 'fgrt_'
export const isRefreshToken = (value: string): boolean => /^fgrt_[A-Za-z0-9_-]{43}$/.test(value)

/**
 * OAuth 2.1 §4.3: a short-lived access token (a JWT or an opaque token, as the app is set) and a new
 * refresh token of the family, returned with what the store must keep; nothing is stored here, so the
 * caller stores it in the one transaction that uses up the code or the old refresh token.
 */
export async function issueRefreshable(
  ctx: CoreContext,
  app: App,
  grant: Grant,
  scopes: string[],
  family: RefreshFamily,
  jkt: string | undefined,
): Promise<{ result: TokenResult; issued: IssuedTokens }> {
  const now = ctx.now()
  const ttl = app.tokenTtl ?? ctx.config.refresh.accessTokenSeconds
  const target = { resource: family.resource, jkt, userId: family.userId, ttl }
  const access: { result: TokenResult; token?: OpaqueToken } =
    app.accessTokenFormat === 'opaque' ? opaqueAccess(app, grant, scopes, family, target, now) : { result: await issueJwtAccessToken(ctx, app, grant, scopes, target) }
  const value = refreshTokenPrefix + randomValue(32)
  const { idleSeconds, maxSeconds } = ctx.config.refresh
  const refreshToken: RefreshToken = {
    ...family,
    tokenHash: hashSecret(value),
    grantId: grant.id,
    appId: app.id,
    tenantId: grant.tenantId,
    createdAt: now,
    expiresAt: Math.min(now + idleSeconds * 1000, family.familyCreatedAt + maxSeconds * 1000),
    usedAt: null,
    revokedAt: null,
  }
  return { result: { ...access.result, refreshToken: value }, issued: { ...(access.token ? { accessToken: access.token } : {}), refreshToken } }
}

function opaqueAccess(app: App, grant: Grant, scopes: string[], family: RefreshFamily, target: Required<TokenTarget>, now: number) {
  const { value, token } = newOpaqueToken({
    grantId: grant.id,
    appId: app.id,
    tenantId: grant.tenantId,
    userId: family.userId,
    codeHash: null,
    createdAt: now,
    expiresAt: now + target.ttl * 1000,
    resource: family.resource,
    jkt: target.jkt ?? null,
    familyId: family.familyId,
    scopes,
  })
  const result: TokenResult = { accessToken: value, tokenType: tokenType(target.jkt), expiresIn: target.ttl, scope: formatScope(scopes), tenantId: grant.tenantId }
  return { result, token }
}

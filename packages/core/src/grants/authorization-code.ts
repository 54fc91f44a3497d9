import { createHash } from 'node:crypto'
import { isLookupKey } from '../client-auth.js'
import type { CoreContext, Params } from '../context.js'
import { InvalidGrant, InvalidRequest } from '../errors.js'
import type { App, AuthorizationCode } from '../model.js'
import { formatScope } from '../scopes.js'
import { hashSecret, sameHash } from '../secrets.js'
import { newOpaqueToken } from '../tokens/opaque.js'
import type { GrantType, TokenResult } from './registry.js'

// One description for every way a code can fail, so a client learns nothing about codes not its own.
const badCode = 'the code is invalid, expired, already used, or was issued to another client'

/** RFC 6749 §4.1.3, RFC 7636 §4.6: the code exchange, issuing an opaque connection token. */
async function authorizationCode(ctx: CoreContext, app: App, params: Params): Promise<TokenResult> {
  const code = await requireCode(ctx, app, params.code)
  checkRedirectUri(app, code, params.redirect_uri)
  checkPkce(code, params.code_verifier)
  const grant = await ctx.storage.getGrant(code.grantId)
  if (grant?.status !== 'active') throw new InvalidGrant(badCode)
  const now = ctx.now()
  const { value, token } = newOpaqueToken({ grantId: grant.id, appId: app.id, tenantId: code.tenantId, userId: code.userId, codeHash: code.codeHash, createdAt: now })
  if (!(await ctx.storage.redeemCode(code.codeHash, now, token))) return replayed(ctx, app, code)
  return { accessToken: value, tokenType: 'Bearer', scope: formatScope(grant.scopes), tenantId: code.tenantId }
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
export const authorizationCodeGrant: GrantType = { grantType: 'authorization_code', parameters: ['code', 'redirect_uri', 'code_verifier'], handler: authorizationCode }

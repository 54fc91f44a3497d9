import { requestClient, type TokenRequest } from './token.js'
import type { CoreContext } from '../context.js'
import { InvalidRequest, UnsupportedTokenType } from '../errors.js'
import { newEvent } from '../events.js'
import { hashSecret } from '../secrets.js'
import { isRefreshToken } from '../tokens/issue.js'
import { isOpaqueToken } from '../tokens/opaque.js'

/**
 * RFC 7009: a client revokes one of its own opaque or refresh tokens; a refresh token ends with its
 * whole family and the access tokens refreshed from it (§2.1). Unknown, foreign or already revoked
 * tokens get the same 200 (§2.2), so the endpoint tells nothing. A JWT cannot be revoked by itself: it
 * stands on its grant, which the tenant revokes, and lives minutes when it comes with a refresh token.
 */
export async function revocationEndpoint(ctx: CoreContext, req: TokenRequest): Promise<void> {
  const app = await requestClient(ctx, req)
  const token = req.params.token
  if (!token) throw new InvalidRequest('token is required')
  if (isRefreshToken(token)) {
    const refresh = await ctx.storage.findRefreshToken(hashSecret(token))
    if (refresh && refresh.appId === app.id) {
      await ctx.storage.revokeRefreshFamily(refresh.familyId, ctx.now())
      ctx.cache.apply({ kind: 'grant', ref: refresh.grantId })
    }
    return
  }
  if (!isOpaqueToken(token)) {
    if (token.split('.').length === 3) throw new UnsupportedTokenType('JWT access tokens end with their grant or their expiry')
    return
  }
  const record = await ctx.storage.findOpaqueToken(hashSecret(token))
  if (record && record.token.appId === app.id && (await ctx.storage.revokeOpaqueToken(record.token.tokenHash, ctx.now()))) {
    ctx.cache.apply({ kind: 'grant', ref: record.grant.id })
  }
}

/**
 * fieldmargin `token.revoke`: no client authentication, as documented; whoever holds the token may end
 * it, and with it the connection between the integration and the farm. `revoked` is true only for the
 * call that did it.
 */
export async function disconnectByToken(ctx: CoreContext, token: string | undefined): Promise<boolean> {
  if (!token) throw new InvalidRequest('access_token is required')
  if (!isOpaqueToken(token)) return false
  const record = await ctx.storage.findOpaqueToken(hashSecret(token))
  if (!record || record.token.revokedAt !== null) return false
  const now = ctx.now()
  const app = await ctx.storage.getApp(record.token.appId)
  const events = app ? newEvent(app, record.token.tenantId, 'grant.revoked', { grant_id: record.grant.id }, now) : []
  // One transaction ends the grant and every token on it, this one included: never half a disconnect.
  const revoked = await ctx.storage.revokeGrant(record.grant.id, now, { events })
  if (revoked) ctx.cache.apply({ kind: 'grant', ref: record.grant.id })
  return revoked
}

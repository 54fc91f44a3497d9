import { randomUUID } from 'node:crypto'
import type { CoreContext } from '../context.js'
import type { TokenResult } from '../grants/registry.js'
import type { App, Grant } from '../model.js'
import { formatScope } from '../scopes.js'
import { signAccessToken } from './jwt.js'

export const tokenTtlOf = (ctx: CoreContext, app: App): number => app.tokenTtl ?? ctx.config.tokenTtl[app.kind]

/** An RFC 9068 JWT access token standing on `grant`: revoking the grant stops it before it expires. */
export async function issueJwtAccessToken(ctx: CoreContext, app: App, grant: Grant, scopes: string[]): Promise<TokenResult> {
  const ttl = tokenTtlOf(ctx, app)
  const iat = Math.floor(ctx.now() / 1000)
  const scope = formatScope(scopes)
  const accessToken = await signAccessToken(ctx.keys, {
    iss: ctx.config.issuer,
    sub: app.clientId,
    aud: ctx.config.audience,
    iat,
    exp: iat + ttl,
    jti: randomUUID(),
    client_id: app.clientId,
    scope,
    tenant_id: grant.tenantId,
    grant_id: grant.id,
  })
  return { accessToken, tokenType: 'Bearer', expiresIn: ttl, scope, tenantId: grant.tenantId }
}

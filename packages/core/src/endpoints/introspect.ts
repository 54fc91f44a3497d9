import { requestClient, type TokenRequest } from './token.js'
import type { CoreContext } from '../context.js'
import { InvalidRequest, OAuthError } from '../errors.js'
import { authenticateAccessToken } from '../guard.js'

/**
 * The scope that makes an app a resource server: it may introspect every token, not just its own. The
 * operator grants it (CLI or admin API) to the services that put @fieldgate/guard in front of an API.
 */
export const introspectAllScope = 'fieldgate:introspect'

export type IntrospectionResponse = { active: false } | ({ active: true } & Record<string, unknown>)

/**
 * RFC 7662. A client may introspect only its own tokens, a resource server (`fieldgate:introspect`)
 * any; anything else (foreign, unknown, expired, revoked, malformed) is `{"active": false}` and
 * nothing more, so introspection reveals nothing.
 */
export async function introspectionEndpoint(ctx: CoreContext, req: TokenRequest): Promise<IntrospectionResponse> {
  const app = await requestClient(ctx, req)
  const token = req.params.token
  if (!token) throw new InvalidRequest('token is required')
  try {
    // Any audience: the answer names it (`aud`), and a resource server checks it is its own (RFC 7662 §2.2).
    const principal = await authenticateAccessToken(ctx, token, undefined)
    if (principal.clientId !== app.clientId && !app.scopes.includes(introspectAllScope)) return { active: false }
    return { active: true, ...principal.introspection }
  } catch (err) {
    // A token that does not check out is inactive; a store that cannot answer is not a verdict.
    if (err instanceof OAuthError) return { active: false }
    throw err
  }
}

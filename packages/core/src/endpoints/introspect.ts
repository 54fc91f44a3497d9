import { authenticateClient, readClientCredentials } from '../client-auth.js'
import type { CoreContext, Params } from '../context.js'
import { InvalidRequest } from '../errors.js'
import { authenticateAccessToken } from '../guard.js'

export type IntrospectionResponse = { active: false } | ({ active: true } & Record<string, unknown>)

/**
 * RFC 7662. A client may introspect only its own tokens; anything else (foreign, unknown, expired,
 * revoked, malformed) is `{"active": false}` and nothing more, so introspection reveals nothing.
 */
export async function introspectionEndpoint(
  ctx: CoreContext, req: { params: Params; authorization: string | undefined },
): Promise<IntrospectionResponse> {
  const app = await authenticateClient(ctx, readClientCredentials(req.authorization, req.params))
  const token = req.params.token
  if (!token) throw new InvalidRequest('token is required')
  try {
    const principal = await authenticateAccessToken(ctx, token)
    if (principal.clientId !== app.clientId) return { active: false }
    return { active: true, ...principal.introspection }
  } catch {
    return { active: false }
  }
}

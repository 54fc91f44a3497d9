import { authenticateClient, readClientCredentials } from '../client-auth.js'
import type { CoreContext, Params } from '../context.js'
import { InvalidRequest, UnsupportedGrantType } from '../errors.js'
import type { TokenResult } from '../grants/registry.js'

export interface TokenRequest {
  params: Params
  authorization: string | undefined
}

/** RFC 6749 §3.2: the token endpoint, as named steps. Dialects differ only in how they shape the result. */
export async function tokenEndpoint(ctx: CoreContext, req: TokenRequest): Promise<TokenResult> {
  const grantType = requireGrantType(ctx, req.params)
  const app = await authenticateClient(ctx, readClientCredentials(req.authorization, req.params))
  return grantType.handler(ctx, app, pick(req.params, grantType.parameters))
}

function requireGrantType(ctx: CoreContext, params: Params) {
  const name = params.grant_type
  if (!name) throw new InvalidRequest('grant_type is required')
  const grantType = ctx.grants.get(name)
  if (!grantType) throw new UnsupportedGrantType(name)
  return grantType
}

function pick(params: Params, names: readonly string[]): Params {
  const picked: Record<string, string> = {}
  for (const name of names) if (params[name] !== undefined) picked[name] = params[name]
  return picked
}

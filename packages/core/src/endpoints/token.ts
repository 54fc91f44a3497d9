import { authenticateClient, readClientCredentials } from '../client-auth.js'
import type { CoreContext, Params } from '../context.js'
import { InvalidRequest, UnsupportedGrantType } from '../errors.js'
import type { TokenResult } from '../grants/registry.js'
import type { App } from '../model.js'

/** A request to a client-authenticated endpoint (token, introspection, revocation). */
export interface TokenRequest {
  params: Params
  authorization: string | undefined
  /**
   * The client, authenticated once for the whole request: the edge passes this when something before
   * the endpoint (the per-client rate limit) needed it too, so the secret is checked once.
   */
  client?: () => Promise<App>
}

/** RFC 6749 §2.3: the client the request authenticates as (Basic or body credentials, never both). */
export function requestClient(ctx: CoreContext, req: TokenRequest): Promise<App> {
  return req.client ? req.client() : authenticateClient(ctx, readClientCredentials(req.authorization, req.params))
}

/** RFC 6749 §3.2: the token endpoint, as named steps. Dialects differ only in how they shape the result. */
export async function tokenEndpoint(ctx: CoreContext, req: TokenRequest): Promise<TokenResult> {
  const grantType = requireGrantType(ctx, req.params)
  const app = await requestClient(ctx, req)
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

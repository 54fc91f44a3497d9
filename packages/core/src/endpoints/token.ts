import { authenticateClient, readClientCredentials } from '../client-auth.js'
import type { CoreContext, Params } from '../context.js'
import { InvalidRequest, UnsupportedGrantType } from '../errors.js'
import type { GrantRequest, TokenResult } from '../grants/registry.js'
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
  /** Which token endpoint: fieldmargin's token.exchange is `connection` (registry.ts GrantRequest). */
  dialect?: GrantRequest['dialect']
  /** RFC 9449 §4: the request's DPoP header, with its method and URL as the proof must name them. */
  dpop?: DpopPresentation
}

export interface DpopPresentation {
  proof: string
  method: string
  url: string
}

/** RFC 6749 §2.3: the client the request authenticates as (Basic or body credentials, never both). */
export function requestClient(ctx: CoreContext, req: TokenRequest): Promise<App> {
  return req.client ? req.client() : authenticateClient(ctx, readClientCredentials(req.authorization, req.params))
}

/** RFC 6749 §3.2: the token endpoint, as named steps. Dialects differ only in how they shape the result. */
export async function tokenEndpoint(ctx: CoreContext, req: TokenRequest): Promise<TokenResult> {
  const grantType = requireGrantType(ctx, req.params)
  const app = await requestClient(ctx, req)
  const jkt = await proofKey(ctx, app, req)
  return grantType.handler(ctx, app, pick(req.params, grantType.parameters), { dialect: req.dialect ?? 'oauth', jkt })
}

/** RFC 9449 §5: the key of a valid DPoP proof binds what is issued; an app may require one. */
async function proofKey(_ctx: CoreContext, app: App, req: TokenRequest): Promise<string | undefined> {
  if (req.dpop) throw new InvalidRequest('DPoP proofs are not accepted yet')
  if (app.requireDpop) throw new InvalidRequest('this app must send a DPoP proof (RFC 9449)')
  return undefined
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

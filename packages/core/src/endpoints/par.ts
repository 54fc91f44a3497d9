import { authorizationParameters, requestUriPrefix, validateAuthorizationRequest } from './authorize.js'
import { requestClient, type TokenRequest } from './token.js'
import type { CoreContext, Params } from '../context.js'
import { verifyDpopProof } from '../dpop.js'
import { InvalidRequest } from '../errors.js'
import { hashSecret, randomValue } from '../secrets.js'
import { AuthorizationPageError, AuthorizationRedirectError } from './authorize.js'

/** RFC 9126 §2.2: how long a pushed request waits for the person; long enough to sign in on the way. */
export const pushedRequestTtl = 600

/**
 * RFC 9126 §2: the client pushes its authorization request, authenticated as at the token endpoint
 * (a public client by client_id), and gets a request_uri to send the person with. The request is
 * checked now, as authorize would, and its errors answered here as JSON (§2.3); authorize checks it again.
 */
export async function pushedAuthorizationEndpoint(ctx: CoreContext, req: TokenRequest): Promise<{ request_uri: string; expires_in: number }> {
  const app = await requestClient(ctx, req)
  // §2.1: request_uri cannot itself be pushed.
  if (req.params.request_uri !== undefined) throw new InvalidRequest('request_uri cannot be pushed')
  const params: Params = { ...pick(req.params), client_id: app.clientId, ...(await proofBinding(ctx, req)) }
  try {
    await validateAuthorizationRequest(ctx, params, true, { pushing: true })
  } catch (err) {
    if (err instanceof AuthorizationRedirectError) throw err.error
    if (err instanceof AuthorizationPageError) throw new InvalidRequest(err.message)
    throw err
  }
  const now = ctx.now()
  const requestUri = requestUriPrefix + randomValue(32)
  await ctx.storage.savePushedRequest({ uriHash: hashSecret(requestUri), appId: app.id, params, createdAt: now, expiresAt: now + pushedRequestTtl * 1000, usedAt: null })
  return { request_uri: requestUri, expires_in: pushedRequestTtl }
}

/**
 * RFC 9449 §10.1: a DPoP proof sent with the pushed request binds the code as `dpop_jkt` would; a
 * `dpop_jkt` beside it must name the same key.
 */
async function proofBinding(ctx: CoreContext, req: TokenRequest): Promise<{ dpop_jkt?: string }> {
  if (!req.dpop) return {}
  const jkt = await verifyDpopProof(ctx, req.dpop)
  if (req.params.dpop_jkt !== undefined && req.params.dpop_jkt !== jkt) throw new InvalidRequest('dpop_jkt does not match the DPoP proof')
  return { dpop_jkt: jkt }
}

/** Only the authorization request's own parameters are kept; client credentials never are. */
function pick(params: Params): Record<string, string> {
  const kept: Record<string, string> = {}
  for (const name of authorizationParameters) if (params[name] !== undefined) kept[name] = params[name]
  return kept
}

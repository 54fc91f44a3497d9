import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { introspectionEndpoint, revocationEndpoint, tokenEndpoint, type CoreContext, type Params, type TokenResult } from '@fieldgate/core'
import { readParams } from '../plugins/body.js'
import { tokenLimits } from '../plugins/rate-limit.js'

/** RFC 6749 §5.1: token responses are never cached. */
export const noStore = { 'cache-control': 'no-store', pragma: 'no-cache' }

export const tokenRequest = (request: FastifyRequest) => ({
  params: readParams(request.body),
  authorization: request.headers.authorization,
})

/**
 * The standard surface: RFC 6749 token endpoint (also FieldEdge's `POST /oauth/token`), RFC 7662
 * introspection and RFC 7009 revocation. A FieldEdge-shaped request (JSON with `target_id`, no `scope`) gets the exact
 * three-field body its document shows; every other request gets the RFC body with `scope`.
 */
export async function oauthRoutes(app: FastifyInstance, { ctx }: { ctx: CoreContext }): Promise<void> {
  app.post('/oauth/token', { ...tokenLimits(app, ctx, tokenRequest) }, async (request, reply) => {
    const req = tokenRequest(request)
    const result = await tokenEndpoint(ctx, req)
    const fieldEdge = isFieldEdgeShape(request, req.params)
    app.metrics.tokenIssued(req.params.grant_type!, fieldEdge ? 'fieldedge' : 'oauth')
    return sendToken(reply, fieldEdge ? fieldEdgeBody(result) : rfcBody(result))
  })

  // Client-authenticated like the token endpoint, so limited like it: per address, and per client once known.
  app.post('/oauth/introspect', { ...tokenLimits(app, ctx, tokenRequest) }, async (request, reply) => {
    return reply.headers(noStore).send(await introspectionEndpoint(ctx, tokenRequest(request)))
  })

  // RFC 7009 §2.2: 200 whether or not there was anything to revoke.
  app.post('/oauth/revoke', { ...tokenLimits(app, ctx, tokenRequest) }, async (request, reply) => {
    await revocationEndpoint(ctx, tokenRequest(request))
    return reply.headers(noStore).send()
  })
}

export const sendToken = (reply: FastifyReply, body: Record<string, unknown>) => reply.headers(noStore).send(body)

export const fieldEdgeBody = (r: TokenResult) => ({ access_token: r.accessToken, token_type: r.tokenType, expires_in: r.expiresIn })

export const rfcBody = (r: TokenResult) => ({ ...fieldEdgeBody(r), scope: r.scope })

function isFieldEdgeShape(request: FastifyRequest, params: Params): boolean {
  return request.headers['content-type']?.startsWith('application/json') === true && params.target_id !== undefined && params.scope === undefined
}

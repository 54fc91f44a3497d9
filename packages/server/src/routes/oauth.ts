import type { FastifyInstance } from 'fastify'
import { introspectionEndpoint, pushedAuthorizationEndpoint, revocationEndpoint, type CoreContext } from '@fieldgate/core'
import { clientRequest, tokenLimits } from '../plugins/rate-limit.js'
import { dpopOf } from '../plugins/dpop.js'
import { bodyParams } from './token.js'

/** RFC 6749 §5.1: token responses are never cached. */
export const noStore = { 'cache-control': 'no-store', pragma: 'no-cache' }

/**
 * RFC 7662 introspection, RFC 7009 revocation and RFC 9126 pushed authorization requests. Client-authenticated like the token endpoint
 * (routes/token.ts), so limited like it: per address, and per client once known.
 */
export async function oauthRoutes(app: FastifyInstance, { ctx }: { ctx: CoreContext }): Promise<void> {
  app.post('/oauth/introspect', { ...tokenLimits(app, ctx, bodyParams) }, async (request, reply) => {
    return reply.headers(noStore).send(await introspectionEndpoint(ctx, clientRequest(ctx, request, bodyParams)))
  })

  // RFC 9126 §2.2: 201 with the request_uri, never cached.
  app.post('/oauth/par', { ...tokenLimits(app, ctx, bodyParams) }, async (request, reply) => {
    const dpop = dpopOf(ctx, request)
    const req = { ...clientRequest(ctx, request, bodyParams), ...(dpop ? { dpop } : {}) }
    return reply
      .code(201)
      .headers(noStore)
      .send(await pushedAuthorizationEndpoint(ctx, req))
  })

  // RFC 7009 §2.2: 200 whether or not there was anything to revoke.
  app.post('/oauth/revoke', { ...tokenLimits(app, ctx, bodyParams) }, async (request, reply) => {
    await revocationEndpoint(ctx, clientRequest(ctx, request, bodyParams))
    return reply.headers(noStore).send()
  })
}

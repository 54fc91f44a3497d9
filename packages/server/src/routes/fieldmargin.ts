import type { FastifyInstance } from 'fastify'
import { disconnectByToken, type CoreContext } from '@fieldgate/core'
import { readParams } from '../plugins/body.js'
import { requireBearer } from '../plugins/bearer.js'
import { principalLimits, tokenLimits } from '../plugins/rate-limit.js'
import { noStore } from './oauth.js'
import { queryAndBody } from './token.js'

/**
 * The fieldmargin Web API beside its token endpoint (`token.exchange`, in routes/token.ts):
 * `token.revoke` to disconnect, `permissions` to read a token's scopes.
 */
export async function fieldmarginRoutes(app: FastifyInstance, { ctx }: { ctx: CoreContext }): Promise<void> {
  // "This request does not require authentication": holding the token is enough to end the connection.
  // No client to count by: limited per address, like every unauthenticated attempt at the token endpoints.
  app.post('/v1/token.revoke', { onRequest: tokenLimits(app, ctx, queryAndBody).onRequest }, async (request, reply) => {
    const revoked = await disconnectByToken(ctx, readParams(request.body).access_token)
    return reply.headers(noStore).send({ revoked })
  })

  app.get('/v1/permissions', { preHandler: [requireBearer(ctx), principalLimits(app)] }, async (request, reply) => {
    return reply.headers(noStore).send({ scopes: request.principal.scopes })
  })
}

import type { FastifyInstance } from 'fastify'
import { tokenEndpoint, type CoreContext } from '@fieldgate/core'
import { tokenLimits } from '../plugins/rate-limit.js'
import { fieldEdgeBody, sendToken, tokenRequest } from './oauth.js'

/** Field Nation REST API v2: its token path, answering exactly `{access_token, token_type, expires_in}`. */
export async function fieldNationRoutes(app: FastifyInstance, { ctx }: { ctx: CoreContext }): Promise<void> {
  app.post('/authentication/api/oauth/token', { ...tokenLimits(app, ctx, tokenRequest) }, async (request, reply) => {
    const req = tokenRequest(request)
    const result = await tokenEndpoint(ctx, req)
    app.metrics.tokenIssued(req.params.grant_type!, 'fieldnation')
    return sendToken(reply, fieldEdgeBody(result))
  })
}

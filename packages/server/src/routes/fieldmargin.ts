import type { FastifyInstance, FastifyRequest } from 'fastify'
import { InvalidRequest, UnsupportedGrantType, disconnectByToken, echo, tokenEndpoint, type CoreContext, type Params } from '@fieldgate/core'
import { parseForm, readParams } from '../plugins/body.js'
import { requireBearer } from '../plugins/bearer.js'
import { principalLimits, tokenLimits } from '../plugins/rate-limit.js'
import { noStore } from './oauth.js'

/**
 * The fieldmargin Web API: `token.exchange` for the code grant, `token.revoke` to
 * disconnect, `permissions` to read a token's scopes. Same core as `/oauth/token`.
 */
export async function fieldmarginRoutes(app: FastifyInstance, { ctx }: { ctx: CoreContext }): Promise<void> {
  // "a application/x-www-form-urlencoded query string or POST body": either, and a parameter in both is refused.
  const exchangeRequest = (request: FastifyRequest) => ({ params: queryAndBody(request), authorization: request.headers.authorization })
  app.post('/v1/token.exchange', { ...tokenLimits(app, ctx, exchangeRequest) }, async (request, reply) => {
    const params = queryAndBody(request)
    if (params.grant_type !== undefined && params.grant_type !== 'authorization_code') throw new UnsupportedGrantType(params.grant_type)
    const result = await tokenEndpoint(ctx, { params: { ...params, grant_type: 'authorization_code' }, authorization: request.headers.authorization })
    app.metrics.tokenIssued('authorization_code', 'fieldmargin')
    return reply.headers(noStore).send({ access_token: result.accessToken, farm_id: result.tenantId })
  })

  // "This request does not require authentication": holding the token is enough to end the connection.
  // No client to count by: limited per address, like every unauthenticated attempt at the token endpoints.
  app.post('/v1/token.revoke', { onRequest: tokenLimits(app, ctx, exchangeRequest).onRequest }, async (request, reply) => {
    const revoked = await disconnectByToken(ctx, readParams(request.body).access_token)
    return reply.headers(noStore).send({ revoked })
  })

  app.get('/v1/permissions', { preHandler: [requireBearer(ctx), principalLimits(app)] }, async (request, reply) => {
    return reply.headers(noStore).send({ scopes: request.principal.scopes })
  })
}

function queryAndBody(request: FastifyRequest): Params {
  const at = request.url.indexOf('?')
  const query = at === -1 ? {} : readParams(parseForm(request.url.slice(at + 1)))
  const body = readParams(request.body)
  for (const name of Object.keys(query)) if (name in body) throw new InvalidRequest(`parameter ${echo(name)} is repeated`)
  return { ...query, ...body }
}

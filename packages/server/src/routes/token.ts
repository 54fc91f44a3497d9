import type { FastifyInstance, FastifyRequest } from 'fastify'
import { InvalidRequest, UnsupportedGrantType, echo, tokenEndpoint, type CoreContext, type GrantRequest, type Params, type TokenResult } from '@fieldgate/core'
import { parseForm, readParams } from '../plugins/body.js'
import { clientRequest, tokenLimits } from '../plugins/rate-limit.js'
import { logAbout } from '../plugins/request-log.js'
import { dpopOf } from '../plugins/dpop.js'
import { noStore } from './oauth.js'

/**
 * Every token endpoint Fieldgate answers, one row per dialect (docs/dialects.md): where it lives, how
 * it reads a request into RFC 6749 parameters, and how it shapes the core's one result. Adding a
 * dialect's token endpoint is adding a row.
 */
export interface TokenDialect {
  path: string
  /** What its code grant issues (registry.ts GrantRequest): fieldmargin's never-expiring connection token, or OAuth 2.1's tokens. */
  grants: GrantRequest['dialect']
  /** The request's token parameters; throws the dialect's refusal of a request it does not take. */
  read(request: FastifyRequest): Params
  /** The dialect's answer, and its name for the tokens-issued metric. */
  respond(result: TokenResult, params: Params, request: FastifyRequest): { dialect: string; body: Record<string, unknown> }
}

export const tokenDialects: readonly TokenDialect[] = [
  // RFC 6749 §5.1, and FieldEdge's POST /oauth/token: a FieldEdge-shaped request (JSON with target_id,
  // no scope) gets the exact three-field body its document shows; every other the RFC body with scope.
  // OAuth 2.1 §3.2.3: with the refresh token when the grant issued one.
  {
    path: '/oauth/token',
    grants: 'oauth',
    read: bodyParams,
    respond: (r, params, request) =>
      isFieldEdgeShape(request, params) ? { dialect: 'fieldedge', body: threeFields(r) } : { dialect: 'oauth', body: { ...threeFields(r), scope: r.scope } },
  },
  // Field Nation REST API v2: exactly {access_token, token_type, expires_in}.
  { path: '/authentication/api/oauth/token', grants: 'oauth', read: bodyParams, respond: (r) => ({ dialect: 'fieldnation', body: threeFields(r) }) },
  // fieldmargin token.exchange: the code grant only, answered with the farm the token acts on.
  {
    path: '/v1/token.exchange',
    grants: 'connection',
    read: exchangeParams,
    respond: (r) => ({ dialect: 'fieldmargin', body: { access_token: r.accessToken, farm_id: r.tenantId } }),
  },
]

export async function tokenRoutes(app: FastifyInstance, { ctx }: { ctx: CoreContext }): Promise<void> {
  for (const dialect of tokenDialects) {
    app.post(dialect.path, { ...tokenLimits(app, ctx, dialect.read) }, async (request, reply) => {
      const dpop = dpopOf(ctx, request)
      const req = { ...clientRequest(ctx, request, dialect.read), dialect: dialect.grants, ...(dpop ? { dpop } : {}) }
      const result = await tokenEndpoint(ctx, req)
      const client = await req.client?.()
      if (client) logAbout(request, { clientId: client.clientId, tenantId: result.tenantId ?? null })
      const { dialect: name, body } = dialect.respond(result, req.params, request)
      app.metrics.tokenIssued(req.params.grant_type ?? '', name)
      return reply.headers(noStore).send(body)
    })
  }
}

/** RFC 6749 §3.2: the parameters are in the body (form, or JSON for FieldEdge and Field Nation). */
export function bodyParams(request: FastifyRequest): Params {
  return readParams(request.body)
}

/**
 * fieldmargin: "a application/x-www-form-urlencoded query string or POST body": either, and a parameter
 * in both is refused. grant_type may be left out; any other than authorization_code is refused.
 */
export function exchangeParams(request: FastifyRequest): Params {
  const params = queryAndBody(request)
  if (params.grant_type !== undefined && params.grant_type !== 'authorization_code') throw new UnsupportedGrantType(params.grant_type)
  return { ...params, grant_type: 'authorization_code' }
}

export function queryAndBody(request: FastifyRequest): Params {
  const at = request.url.indexOf('?')
  const query = at === -1 ? {} : readParams(parseForm(request.url.slice(at + 1)))
  const body = readParams(request.body)
  for (const name of Object.keys(query)) if (name in body) throw new InvalidRequest(`parameter ${echo(name)} is repeated`)
  return { ...query, ...body }
}

// A refresh token only ever comes from the code grant of an app that has them, never from the documented flows.
const threeFields = (r: TokenResult) => ({ access_token: r.accessToken, token_type: r.tokenType, expires_in: r.expiresIn, refresh_token: r.refreshToken })

function isFieldEdgeShape(request: FastifyRequest, params: Params): boolean {
  return request.headers['content-type']?.startsWith('application/json') === true && params.target_id !== undefined && params.scope === undefined
}

import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import {
  InvalidBearerRequest,
  OAuthError,
  authenticateAccessToken,
  bearerPresentation,
  decideRoute,
  dpopAlgorithms,
  requireScope,
  type CoreContext,
  type Gateway,
  type GatewayApi,
  type Presentation,
} from '@fieldgate/core'
import { presentedToken } from '../plugins/bearer.js'
import { dpopHeader } from '../plugins/dpop.js'
import { challengeWithMetadata, metadataUrlOf, sendOAuthError } from '../plugins/errors.js'

/**
 * `GET /forward-auth`: the check a gateway makes before it passes a request to an API that has no auth
 * code of its own (nginx `auth_request`, Caddy `forward_auth`, Traefik ForwardAuth; Envoy ext_authz calls
 * `/forward-auth/<original path>` with the original method). The original request comes as headers:
 * X-Forwarded-Method, X-Forwarded-Uri (path and query), X-Forwarded-Host, X-Forwarded-Proto, and its
 * Authorization and DPoP headers (a DPoP-bound token's proof names the original method and URL).
 *
 * 200 lets it through, with who is calling in X-Fieldgate-* headers for the API to read; 401 (no token,
 * a bad, expired or revoked one) and 403 (a scope missing, a route no rule opens) come with the RFC 6750
 * challenge and RFC 9728's `resource_metadata`. Gateways pass only 401 and 403 on (nginx turns anything
 * else into a 500), so a malformed request is a 401 invalid_request here, not RFC 6750's 400.
 */
export async function forwardAuthRoutes(app: FastifyInstance, { ctx, gateway }: { ctx: CoreContext; gateway: Gateway }): Promise<void> {
  const check = async (request: FastifyRequest, reply: FastifyReply) => {
    reply.header('cache-control', 'no-store')
    const original = originalRequest(request)
    if (!original) return refuse(reply, 403, 'the original request is not one Fieldgate can check: a path of its own, without encoded slashes or dot segments')
    const decision = decideRoute(gateway, original)
    if (decision.kind === 'no-api') return refuse(reply, 403, `no API is declared for the host ${original.host ?? '(none given)'}`)
    if (decision.kind === 'no-rule') return refuse(reply, 403, `no rule of ${decision.api.id} opens ${original.method} ${original.path}`)
    if (decision.kind === 'public') return reply.code(200).send()
    try {
      const { token, scheme } = presentedToken(request.headers.authorization, original.query.getAll('access_token'))
      const presentation: Presentation =
        scheme === 'Bearer' ? bearerPresentation : { scheme, proof: dpopHeader(request), method: original.method, url: originalUrl(request, original, decision.api) }
      // RFC 8707: a token for this API, or for the platform's own API audience, which every dialect's
      // tokens carry (a FieldEdge or fieldmargin client cannot name a resource); never one for another.
      const principal = await authenticateAccessToken(ctx, token, presentation, [decision.api.resource, ctx.config.audience])
      requireScope(principal, decision.scope)
      return reply
        .code(200)
        .headers({
          'x-fieldgate-tenant-id': principal.tenantId,
          'x-fieldgate-client-id': principal.clientId,
          'x-fieldgate-scope': principal.scopes.join(' '),
          'x-fieldgate-subject': String(principal.introspection.sub ?? principal.clientId),
          'x-fieldgate-grant-id': principal.grantId,
        })
        .send()
    } catch (err) {
      if (!(err instanceof OAuthError)) throw err
      // RFC 6750 §3.1's 400 for a malformed request is a 401 here: gateways pass only 401 and 403 on.
      return sendOAuthError(reply, err, challengeWithMetadata(err, metadataUrlOf(decision.api.resource)), err instanceof InvalidBearerRequest ? 401 : err.status)
    }
  }
  app.route({ method: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'], url: '/forward-auth', handler: check })
  app.route({ method: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'], url: '/forward-auth/*', handler: check })
}

function refuse(reply: FastifyReply, status: number, description: string): FastifyReply {
  return reply.code(status).send({ error: 'access_denied', error_description: description })
}

export interface OriginalRequest {
  method: string
  host: string | undefined
  path: string
  /** The path as the client sent it, still percent-encoded: what a DPoP proof's htu names. */
  rawPath: string
  query: URLSearchParams
}

/**
 * The request the gateway holds: from X-Forwarded-* (nginx, Caddy, Traefik), or this request's own
 * method and the path after /forward-auth (Envoy). The path is the one the API will serve: a path with
 * dot segments or encoded slashes or backslashes is refused, as the API might resolve it to another
 * route than the rule that matched.
 */
export function originalRequest(request: FastifyRequest): OriginalRequest | undefined {
  const header = (name: string) => {
    const v = request.headers[name]
    return typeof v === 'string' && v !== '' ? v : undefined
  }
  const own = request.url.startsWith('/forward-auth/') ? request.url.slice('/forward-auth'.length) : undefined
  const uri = header('x-forwarded-uri') ?? header('x-original-uri') ?? own ?? '/'
  const method = header('x-forwarded-method') ?? header('x-original-method') ?? (own !== undefined ? request.method : 'GET')
  const [rawPath = '/', rawQuery = ''] = uri.split(/\?(.*)/s)
  if (!rawPath.startsWith('/') || /%2f|%5c|\\/i.test(rawPath) || /(^|\/)(\.|%2e){1,2}(\/|$)/i.test(rawPath)) return undefined
  let path: string
  try {
    path = decodeURI(rawPath)
  } catch {
    return undefined
  }
  return { method: method.toUpperCase(), host: header('x-forwarded-host') ?? header('host'), path, rawPath, query: new URLSearchParams(rawQuery) }
}

/**
 * The original request's absolute URL, for a DPoP proof's htu: the scheme from X-Forwarded-Proto (the
 * first, nearest the client, when proxies listed several), else the API's own; then its host and path.
 */
export function originalUrl(request: FastifyRequest, original: OriginalRequest, api: Pick<GatewayApi, 'resource'>): string {
  const forwarded = request.headers['x-forwarded-proto']
  const proto = (typeof forwarded === 'string' ? forwarded.split(',')[0]?.trim() : undefined) || new URL(api.resource).protocol.replace(':', '')
  return `${proto}://${original.host ?? ''}${original.rawPath}`
}

/** RFC 9728 §2: what a client learns of an API from its metadata. */
export function resourceMetadata(issuer: string, api: Pick<GatewayApi, 'resource' | 'name' | 'scopes'>, bearerMethods: string[]) {
  return {
    resource: api.resource,
    resource_name: api.name,
    authorization_servers: [issuer],
    scopes_supported: api.scopes,
    bearer_methods_supported: bearerMethods,
    // RFC 9728 §2: DPoP-bound tokens are accepted (RFC 9449 §7), and so are bearer tokens.
    dpop_signing_alg_values_supported: [...dpopAlgorithms],
    dpop_bound_access_tokens_required: false,
  }
}

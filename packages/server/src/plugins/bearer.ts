import type { FastifyRequest } from 'fastify'
import { InvalidBearerRequest, MissingToken, authenticateAccessToken, type CoreContext, type Principal } from '@fieldgate/core'

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal
  }
}

/**
 * RFC 6750: the token comes in the Authorization header (§2.1) or, as Field Nation documents, in the
 * `access_token` query parameter (§2.3); a request carrying both is malformed (§2).
 */
export function bearerToken(request: FastifyRequest): string {
  const query = (request.query ?? {}) as Record<string, unknown>
  const fromQuery = query.access_token
  return tokenFrom(request.headers.authorization, Array.isArray(fromQuery) ? fromQuery : fromQuery === undefined ? [] : [fromQuery])
}

/**
 * The token of a request given its Authorization header and the `access_token` values of its query: the
 * rules of bearerToken, for a request that arrives as headers (a gateway's forward-auth check).
 */
export function tokenFrom(authorization: string | undefined, inQuery: readonly unknown[]): string {
  const fromHeader = authorization !== undefined && /^bearer /i.test(authorization) ? authorization.slice(7).trim() : undefined
  if (inQuery.length > 1) throw new InvalidBearerRequest('access_token is repeated')
  if (fromHeader !== undefined && inQuery.length) throw new InvalidBearerRequest('send the access token in the header or the query, not both')
  const fromQuery = inQuery[0]
  const token = fromHeader ?? (typeof fromQuery === 'string' ? fromQuery : undefined)
  if (!token) throw new MissingToken()
  return token
}

/** A preHandler that admits only requests with a valid token; the rest get the RFC 6750 challenge. */
export function requireBearer(ctx: CoreContext) {
  return async (request: FastifyRequest): Promise<void> => {
    request.principal = await authenticateAccessToken(ctx, bearerToken(request))
  }
}

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
  const header = request.headers.authorization
  const fromHeader = header !== undefined && /^bearer /i.test(header) ? header.slice(7).trim() : undefined
  const query = (request.query ?? {}) as Record<string, unknown>
  const fromQuery = query.access_token
  if (Array.isArray(fromQuery)) throw new InvalidBearerRequest('access_token is repeated')
  if (fromHeader !== undefined && fromQuery !== undefined) throw new InvalidBearerRequest('send the access token in the header or the query, not both')
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

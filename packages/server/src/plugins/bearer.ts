import type { FastifyRequest } from 'fastify'
import {
  InvalidBearerRequest,
  MissingToken,
  authenticateAccessToken,
  bearerPresentation,
  type CoreContext,
  type Presentation,
  type Principal,
  type TokenScheme,
} from '@fieldgate/core'
import { dpopHeader, requestUrl } from './dpop.js'

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal
  }
}

/** An access token and the scheme it came in: RFC 6750's Bearer (header or query), or RFC 9449's DPoP (header only, §7.1). */
export interface PresentedToken {
  token: string
  scheme: TokenScheme
}

/**
 * RFC 6750: the token comes in the Authorization header (§2.1) or, as Field Nation documents, in the
 * `access_token` query parameter (§2.3); a request carrying both is malformed (§2).
 */
export function bearerToken(request: FastifyRequest): string {
  return presentedToken(request.headers.authorization, queryTokens(request)).token
}

const queryTokens = (request: FastifyRequest): readonly unknown[] => {
  const fromQuery = ((request.query ?? {}) as Record<string, unknown>).access_token
  return Array.isArray(fromQuery) ? fromQuery : fromQuery === undefined ? [] : [fromQuery]
}

/**
 * The token of a request given its Authorization header and the `access_token` values of its query: the
 * rules of bearerToken, for a request that arrives as headers (a gateway's forward-auth check).
 */
export function tokenFrom(authorization: string | undefined, inQuery: readonly unknown[]): string {
  return presentedToken(authorization, inQuery).token
}

/** tokenFrom, with the scheme: `Authorization: DPoP <token>` is RFC 9449 §7.1's, never in the query. */
export function presentedToken(authorization: string | undefined, inQuery: readonly unknown[]): PresentedToken {
  const scheme: TokenScheme | undefined = authorization === undefined ? undefined : /^bearer /i.test(authorization) ? 'Bearer' : /^dpop /i.test(authorization) ? 'DPoP' : undefined
  const fromHeader = scheme === undefined || authorization === undefined ? undefined : authorization.slice(scheme.length + 1).trim()
  if (inQuery.length > 1) throw new InvalidBearerRequest('access_token is repeated')
  if (fromHeader !== undefined && inQuery.length) throw new InvalidBearerRequest('send the access token in the header or the query, not both')
  const fromQuery = inQuery[0]
  const token = fromHeader ?? (typeof fromQuery === 'string' ? fromQuery : undefined)
  if (!token) throw new MissingToken()
  return { token, scheme: scheme ?? 'Bearer' }
}

/** How a request of Fieldgate's own API presents its token: as Bearer, or as DPoP with the request's proof. */
export function presentationOf(ctx: CoreContext, request: FastifyRequest, scheme: TokenScheme): Presentation {
  if (scheme === 'Bearer') return bearerPresentation
  return { scheme, proof: dpopHeader(request), method: request.method, url: requestUrl(ctx, request) }
}

/** A preHandler that admits only requests with a valid token; the rest get the RFC 6750 and RFC 9449 challenges. */
export function requireBearer(ctx: CoreContext) {
  return async (request: FastifyRequest): Promise<void> => {
    const { token, scheme } = presentedToken(request.headers.authorization, queryTokens(request))
    request.principal = await authenticateAccessToken(ctx, token, presentationOf(ctx, request, scheme))
  }
}

import type { FastifyRequest } from 'fastify'
import type { CoreContext } from '@fieldgate/core'

/**
 * The request's absolute URL as its client addressed it, for a DPoP proof's `htu` (RFC 9449 §4.3 point 9):
 * the issuer, which is where clients reach Fieldgate (whatever proxy is in between), then the path.
 */
export const requestUrl = (ctx: CoreContext, request: FastifyRequest): string => `${ctx.config.issuer}${request.url}`

/**
 * The request's DPoP header. Node joins a repeated header with a comma, which no proof contains, so
 * two headers fail as one malformed proof, as RFC 9449 §4.3 point 1 asks.
 */
export function dpopHeader(request: FastifyRequest): string | undefined {
  const value = request.headers.dpop
  return Array.isArray(value) ? value.join(', ') : value
}

/** A request's DPoP proof with what it is checked against: the request's method and URL. */
export interface RequestProof {
  proof: string
  method: string
  url: string
}

/**
 * The DPoP proof of a request, for core's verifyDpopProof (the token endpoint's `TokenRequest.dpop`);
 * undefined when the request sent none.
 */
export function dpopOf(ctx: CoreContext, request: FastifyRequest): RequestProof | undefined {
  const proof = dpopHeader(request)
  return proof === undefined ? undefined : { proof, method: request.method, url: requestUrl(ctx, request) }
}

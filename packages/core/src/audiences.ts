import type { Config } from './config.js'
import { InvalidTarget, echo } from './errors.js'
import type { Gateway } from './gateway.js'

/**
 * RFC 8707 resource indicators: the API a token is for becomes its audience (`aud`), so a resource
 * server accepts only tokens meant for it. A request names at most one (a repeated parameter is refused
 * as any other is), so a token has one audience. A client may name Fieldgate's own API (the default), an API
 * the operator declared in the gateway file, or any URL on the issuer's own host, on any port (the
 * platform's MCP servers and APIs beside Fieldgate, which need no declaration to be reached).
 */
export function checkedResource(config: Pick<Config, 'issuer' | 'audience'>, gateway: Gateway | undefined, resource: string | undefined): string | null {
  if (resource === undefined || resource === config.audience) return null
  let url: URL
  try {
    url = new URL(resource)
  } catch {
    throw new InvalidTarget(`resource ${echo(resource)} is not an absolute URI`)
  }
  // §2: an absolute URI without a fragment; a query is allowed but discouraged.
  if (resource.includes('#') || resource.length > 2000) throw new InvalidTarget('resource must be an absolute URI without a fragment')
  const declared = gateway?.apis.some((api) => api.resource === resource) ?? false
  const issuer = new URL(config.issuer)
  const onIssuerHost = url.hostname === issuer.hostname && ['https:', issuer.protocol].includes(url.protocol)
  if (!declared && !onIssuerHost) throw new InvalidTarget(`resource ${echo(resource)} is not an API this server issues tokens for`)
  return resource
}

/** The token's audience: the resource it was asked for, or Fieldgate's own API. */
export const audienceOf = (config: Pick<Config, 'audience'>, resource: string | null): string => resource ?? config.audience

/** What a resource server takes: its own audience, several (a gateway API also takes the platform's), or null for any (introspection). */
export type ExpectedAudience = string | readonly string[] | null

/** Whether a token's audiences include one the resource server takes. */
export function audienceAccepted(expected: ExpectedAudience, audiences: readonly unknown[]): boolean {
  if (expected === null) return true
  const accepted: readonly string[] = typeof expected === 'string' ? [expected] : expected
  return audiences.some((a) => typeof a === 'string' && accepted.includes(a))
}

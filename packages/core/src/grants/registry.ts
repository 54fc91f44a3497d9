import type { CoreContext, Params } from '../context.js'
import type { App } from '../model.js'

/** What a grant hands back; each dialect shapes it into its own response body. */
export interface TokenResult {
  accessToken: string
  /** DPoP for a token bound to the client's key (RFC 9449 §5). */
  tokenType: 'Bearer' | 'DPoP'
  /** Seconds; absent for tokens that do not expire (fieldmargin connection tokens). */
  expiresIn?: number
  scope: string
  tenantId: string
  /** OAuth 2.1 §4.3: for apps with refresh tokens, from the code grant and each refresh. */
  refreshToken?: string
}

/** What a grant knows of the token request besides its parameters. */
export interface GrantRequest {
  /**
   * `connection`: fieldmargin's token.exchange, whose code grant issues the never-expiring connection
   * token and nothing else (docs/dialects.md); `oauth`: every other token endpoint.
   */
  dialect: 'oauth' | 'connection'
  /** The JWK thumbprint of the request's verified DPoP proof (RFC 9449 §5): what is issued is bound to it. */
  jkt: string | undefined
}

export interface GrantType {
  grantType: string
  /** Only these parameters reach the handler; anything else the client sent is dropped. */
  parameters: readonly string[]
  handler(ctx: CoreContext, app: App, params: Params, request: GrantRequest): Promise<TokenResult>
}

/** The grant types a server answers, by `grant_type`; held by the context (CoreContext.grants). */
export type GrantTypes = ReadonlyMap<string, GrantType>

export const grantTypes = (...list: GrantType[]): GrantTypes => new Map(list.map((g) => [g.grantType, g]))

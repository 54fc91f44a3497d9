import type { CoreContext, Params } from '../context.js'
import type { App } from '../model.js'

/** What a grant hands back; each dialect shapes it into its own response body. */
export interface TokenResult {
  accessToken: string
  tokenType: 'Bearer'
  /** Seconds; absent for tokens that do not expire (fieldmargin connection tokens). */
  expiresIn?: number
  scope: string
  tenantId: string
}

export interface GrantType {
  grantType: string
  /** Only these parameters reach the handler; anything else the client sent is dropped. */
  parameters: readonly string[]
  handler(ctx: CoreContext, app: App, params: Params): Promise<TokenResult>
}

/** The grant types a server answers, by `grant_type`; held by the context (CoreContext.grants). */
export type GrantTypes = ReadonlyMap<string, GrantType>

export const grantTypes = (...list: GrantType[]): GrantTypes => new Map(list.map((g) => [g.grantType, g]))

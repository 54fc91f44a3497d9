/**
 * `FieldgateClient`: a server-to-server client on client credentials. It gets tokens in its dialect,
 * keeps them, replaces them before they expire, and makes API calls with them. Create one per
 * (client, tenant) and share it: its whole point is that concurrent calls share one token.
 */
import { ApiCaller, type ApiRequest, type TokenSource } from './api-caller.js'
import { cacheKey, readTokenResponse, tokenRequest, type ClientCredentials } from './client-credentials.js'
import { FieldgateApi } from './resources.js'
import { TokenCache } from './token-cache.js'
import { Transport, type TransportOptions } from './transport.js'

interface CommonOptions extends TransportOptions {
  /** Where Fieldgate answers, e.g. `https://auth.example.com` (a path prefix is kept). */
  baseUrl: string
  /** Where the protected API answers, when not at `baseUrl`. */
  apiBaseUrl?: string
  /**
   * Replace a token this long before it expires. Default: 60 s, but at most half the token's life. An
   * explicit value is used as given, even if it means every call fetches a token.
   */
  refreshEarlyMs?: number
  /** Share one cache between clients; by default each client has its own. */
  cache?: TokenCache
}

export type FieldgateClientOptions = CommonOptions & ClientCredentials

export interface TokenOptions {
  signal?: AbortSignal
  /** Ask for a new token even if the cached one is fresh. */
  forceRefresh?: boolean
}

export class FieldgateClient {
  /** The typed protected API, authenticated with this client's tokens. */
  readonly api: FieldgateApi
  readonly cache: TokenCache
  private readonly transport: Transport
  private readonly key: string

  constructor(
    readonly options: FieldgateClientOptions,
    transport?: Transport,
  ) {
    this.transport = transport ?? new Transport(options)
    this.cache = options.cache ?? new TokenCache(options.now)
    this.key = cacheKey(options.baseUrl, options)
    const source: TokenSource = {
      placement: options.dialect === 'fieldnation' && options.tokenIn === 'query' ? 'query' : 'header',
      token: (signal) => this.getAccessToken({ signal }),
      refused: (token) => {
        this.cache.invalidate(this.key, token)
        return true
      },
    }
    this.api = new FieldgateApi(new ApiCaller(this.transport, options.apiBaseUrl ?? options.baseUrl, source))
  }

  /**
   * A token for this client, tenant and scope: cached while fresh, otherwise fetched, with at most one
   * request in flight however many callers wait for it.
   */
  async getAccessToken(opts: TokenOptions = {}): Promise<string> {
    const token = await this.cache.get(this.key, () => this.fetchToken(), {
      refreshEarlyMs: this.options.refreshEarlyMs,
      signal: opts.signal,
      forceRefresh: opts.forceRefresh,
    })
    return token.accessToken
  }

  /** Any call to the protected API not covered by `api`, with the same token handling and retries. */
  request<T = unknown>(req: ApiRequest): Promise<T> {
    return this.api.caller.call<T>(req)
  }

  /**
   * The same app acting on another tenant (a marketplace app installed by several): shares this
   * client's transport and token cache, which keys tokens by tenant.
   */
  withTarget(targetId: string): FieldgateClient {
    if (this.options.dialect === 'fieldnation') throw new TypeError('the Field Nation dialect has no target_id; use the fieldedge or standard dialect')
    return new FieldgateClient({ ...this.options, targetId, cache: this.cache } as FieldgateClientOptions, this.transport)
  }

  private async fetchToken() {
    // Timed by the cache's clock, so `expiresAt` and freshness checks use the same one. No caller's
    // signal: this request is shared (see TokenCache.get); the transport's timeout still bounds it.
    const sentAt = this.cache.now()
    const res = await this.transport.send(tokenRequest(this.options.baseUrl, this.options))
    return readTokenResponse(res.body, sentAt)
  }
}

/**
 * Calls to the protected API with a token: where the token goes (header or `?access_token=`), and the
 * one retry with a fresh token when the server refuses the one sent as `invalid_token` (it expired
 * early, a key rotated). Only one: if a fresh token is refused too, or none can be had (the grant was
 * revoked), the caller gets that error instead of a loop.
 */
import { FieldgateError } from './errors.js'
import { joinUrl, jsonHeaders, type HttpResponse, type Transport } from './transport.js'

/** Where API calls get their token from. */
export interface TokenSource {
  /** Where the token goes: `Authorization: Bearer` or `?access_token=` (RFC 6750 §2.1, §2.3). */
  readonly placement: 'header' | 'query'
  token(signal?: AbortSignal): Promise<string>
  /**
   * Told that the server refused `token` as invalid_token. True when asking `token()` again may give a
   * different one worth trying (client credentials); false for a fixed token (a connection token).
   */
  refused(token: string): boolean
}

export interface CallOptions {
  signal?: AbortSignal
}

export type Query = Record<string, string | number | undefined>

export interface ApiRequest {
  method: 'GET' | 'POST'
  path: string
  query?: Query
  /** JSON body. */
  body?: unknown
  signal?: AbortSignal
}

export class ApiCaller {
  constructor(
    private readonly transport: Transport,
    private readonly baseUrl: string,
    private readonly tokens: TokenSource,
  ) {}

  async call<T>(req: ApiRequest): Promise<T> {
    let token = await this.tokens.token(req.signal)
    try {
      return (await this.send(req, token)).body as T
    } catch (err) {
      if (!isInvalidToken(err) || !this.tokens.refused(token)) throw err
    }
    token = await this.tokens.token(req.signal)
    return (await this.send(req, token)).body as T
  }

  private send(req: ApiRequest, token: string): Promise<HttpResponse> {
    const inQuery = this.tokens.placement === 'query'
    const url = joinUrl(this.baseUrl, req.path, { ...req.query, ...(inQuery ? { access_token: token } : {}) })
    return this.transport.send({
      method: req.method,
      url,
      headers: {
        ...(req.body === undefined ? { accept: 'application/json' } : jsonHeaders),
        ...(inQuery ? {} : { authorization: `Bearer ${token}` }),
      },
      body: req.body === undefined ? undefined : JSON.stringify(req.body),
      // Reads are safe to repeat; a create is not (it may have been done when the answer was lost).
      idempotent: req.method === 'GET',
      signal: req.signal,
    })
  }
}

const isInvalidToken = (err: unknown): boolean => err instanceof FieldgateError && err.status === 401 && err.code === 'invalid_token'

/**
 * `FieldgateIntegration`: the authorization-code side, for integrations a person connects to their
 * farm in the browser (fieldmargin, or any RFC 6749 client). It builds the authorize URL,
 * checks the callback, exchanges the code for a connection token, reads its permissions, revokes it,
 * and gives an API client for it. It keeps no state between requests: what must survive the redirect
 * (`state`, the PKCE verifier) is returned to the caller to keep in its session.
 */
import { ApiCaller, type CallOptions } from './api-caller.js'
import { basicAuthorization, normalizeScope } from './client-credentials.js'
import { timingSafeEqual } from './encoding.js'
import { FieldgateError } from './errors.js'
import { createPkce, randomState } from './pkce.js'
import { FieldgateApi } from './resources.js'
import { Transport, formBody, formHeaders, joinUrl, jsonHeaders, type TransportOptions } from './transport.js'

export interface IntegrationOptions extends TransportOptions {
  /** Where Fieldgate answers (API and token endpoints). */
  baseUrl: string
  /**
   * The issuer, as the `iss` of callbacks must name it (RFC 9207). Defaults to `baseUrl`; set it when
   * you reach Fieldgate by another address than its public one.
   */
  issuer?: string
  /** Where the protected API answers, when not at `baseUrl`. */
  apiBaseUrl?: string
  clientId: string
  clientSecret: string
  /** The registered redirect URI; optional when the app has exactly one. */
  redirectUri?: string
  /** `/oauth/authorize` (RFC) by default; fieldmargin's documents use `/authorize`. Both work. */
  authorizePath?: string
}

export interface AuthorizationUrlOptions {
  /** Space-separated or a list, e.g. `['fields:read:all', 'maps:write']`. */
  scope?: string | readonly string[]
  /** Your own `state`; a random one by default. */
  state?: string
  /** Send a PKCE S256 challenge (default true). Turn off only for a server that cannot take one. */
  pkce?: boolean
  redirectUri?: string
}

/** What to keep in the person's session until the callback. */
export interface AuthorizationRequest {
  url: string
  state: string
  /** Present unless PKCE was turned off; pass it to `exchangeCode`. */
  codeVerifier: string | undefined
  redirectUri: string | undefined
}

export interface CallbackResult {
  code: string
  state: string
  /** The issuer that answered, when it said (Fieldgate always does). */
  iss: string | undefined
}

export interface ExchangeOptions extends CallOptions {
  code: string
  codeVerifier?: string
  redirectUri?: string
  /**
   * `token.exchange` (fieldmargin's `POST /v1/token.exchange`, the default: it also names the farm) or
   * `oauth` (RFC 6749 `POST /oauth/token` with client_secret_basic, which also returns the scope).
   */
  via?: 'token.exchange' | 'oauth'
}

/** A connection between the integration and one farm. The token does not expire; it can be revoked. */
export interface Connection {
  accessToken: string
  /** The farm (tenant) connected: from token.exchange. */
  farmId: string | undefined
  /** The scopes granted: from the RFC endpoint. */
  scope: string[] | undefined
}

const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined)

export class FieldgateIntegration {
  private readonly transport: Transport
  private readonly issuer: string

  constructor(readonly options: IntegrationOptions) {
    this.transport = new Transport(options)
    this.issuer = (options.issuer ?? options.baseUrl).replace(/\/+$/, '')
  }

  /** The URL to send the person to, with `state` and an S256 PKCE challenge. */
  async authorizationUrl(opts: AuthorizationUrlOptions = {}): Promise<AuthorizationRequest> {
    const state = opts.state ?? randomState()
    const pkce = opts.pkce === false ? undefined : await createPkce()
    const redirectUri = opts.redirectUri ?? this.options.redirectUri
    const url = joinUrl(this.options.baseUrl, this.options.authorizePath ?? '/oauth/authorize', {
      response_type: 'code',
      client_id: this.options.clientId,
      redirect_uri: redirectUri,
      scope: normalizeScope(opts.scope),
      state,
      code_challenge: pkce?.codeChallenge,
      code_challenge_method: pkce?.codeChallengeMethod,
    })
    return { url, state, codeVerifier: pkce?.codeVerifier, redirectUri }
  }

  /**
   * Checks the callback before anything is done with it. `expected.state` comes from the person's
   * session (a cookie, your session store), never from the callback URL itself. `state` must be the one this session sent
   * (else `state_mismatch`: the request may have been started by someone else), `iss` when present must
   * be this issuer (else `issuer_mismatch`: RFC 9207 mix-up defence), and an `error` (the person denied,
   * `access_denied`, or a bad request) becomes a FieldgateError with that code. `state` is compared
   * before `error` is believed, so a forged error cannot be pushed into your session either.
   */
  validateCallback(callback: string | URL | URLSearchParams, expected: { state: string }): CallbackResult {
    const params = callback instanceof URLSearchParams ? callback : new URL(String(callback)).searchParams
    for (const name of ['state', 'iss', 'code', 'error']) {
      if (params.getAll(name).length > 1) throw new FieldgateError('invalid_callback', `the callback repeats ${name}`)
    }
    const state = params.get('state')
    // An empty expected state (nothing kept in the session) would match a forged empty one: refused.
    if (state === null || !expected.state || !timingSafeEqual(state, expected.state)) {
      throw new FieldgateError('state_mismatch', 'the callback state is not the one this session sent')
    }
    const iss = params.get('iss') ?? undefined
    if (iss !== undefined && iss.replace(/\/+$/, '') !== this.issuer) {
      throw new FieldgateError('issuer_mismatch', `the callback comes from issuer ${iss}, not ${this.issuer}`)
    }
    const error = params.get('error')
    if (error !== null) {
      const description = params.get('error_description') ?? undefined
      throw new FieldgateError(error, `${error}${description ? `: ${description}` : ''}`, { description })
    }
    const code = params.get('code')
    if (!code) throw new FieldgateError('invalid_callback', 'the callback has neither code nor error')
    return { code, state, iss }
  }

  /**
   * Redeems the code for a connection token. Never retried after a lost answer: a code is single-use,
   * and presenting it twice revokes the token it gave (RFC 6749 §4.1.2).
   */
  async exchangeCode(opts: ExchangeOptions): Promise<Connection> {
    const redirectUri = opts.redirectUri ?? this.options.redirectUri
    if ((opts.via ?? 'token.exchange') === 'token.exchange') {
      const res = await this.transport.send({
        method: 'POST',
        url: joinUrl(this.options.baseUrl, '/v1/token.exchange'),
        headers: { ...formHeaders },
        idempotent: false,
        signal: opts.signal,
        body: formBody({
          code: opts.code,
          client_id: this.options.clientId,
          client_secret: this.options.clientSecret,
          code_verifier: opts.codeVerifier,
          redirect_uri: redirectUri,
        }),
      })
      const body = (res.body ?? {}) as Record<string, unknown>
      return { accessToken: this.requireToken(body), farmId: str(body.farm_id), scope: undefined }
    }
    const res = await this.transport.send({
      method: 'POST',
      url: joinUrl(this.options.baseUrl, '/oauth/token'),
      idempotent: false,
      signal: opts.signal,
      headers: { ...formHeaders, authorization: this.basic() },
      body: formBody({ grant_type: 'authorization_code', code: opts.code, code_verifier: opts.codeVerifier, redirect_uri: redirectUri }),
    })
    const body = (res.body ?? {}) as Record<string, unknown>
    return { accessToken: this.requireToken(body), farmId: undefined, scope: normalizeScope(str(body.scope))?.split(' ') ?? [] }
  }

  /** fieldmargin `GET /v1/permissions`: the scopes the connection has now (they widen with later consents). */
  async permissions(accessToken: string, opts: CallOptions = {}): Promise<string[]> {
    const body = await this.connection(accessToken).caller.call<{ scopes?: unknown }>({ method: 'GET', path: '/v1/permissions', signal: opts.signal })
    if (!Array.isArray(body?.scopes)) throw new FieldgateError('invalid_response', 'permissions answered without scopes', { body })
    return body.scopes.filter((s): s is string => typeof s === 'string')
  }

  /**
   * fieldmargin `POST /v1/token.revoke`: ends the token and disconnects the integration from the farm.
   * True only for the call that did it; repeating it is harmless (false), so it is retried like a read.
   */
  async disconnect(accessToken: string, opts: CallOptions = {}): Promise<boolean> {
    const res = await this.transport.send({
      method: 'POST',
      url: joinUrl(this.options.baseUrl, '/v1/token.revoke'),
      headers: { ...jsonHeaders },
      idempotent: true,
      signal: opts.signal,
      body: JSON.stringify({ access_token: accessToken }),
    })
    return (res.body as { revoked?: unknown } | undefined)?.revoked === true
  }

  /**
   * RFC 7009 `POST /oauth/revoke`, client-authenticated: ends this one token. The server answers 200
   * whether or not there was anything to revoke (§2.2), so there is nothing to return.
   */
  async revokeToken(token: string, opts: CallOptions = {}): Promise<void> {
    await this.transport.send({
      method: 'POST',
      url: joinUrl(this.options.baseUrl, '/oauth/revoke'),
      idempotent: true,
      signal: opts.signal,
      headers: { ...formHeaders, authorization: this.basic() },
      body: formBody({ token, token_type_hint: 'access_token' }),
    })
  }

  /**
   * The protected API with a connection token, sent in the Authorization header as fieldmargin says.
   * The token is fixed: a refused token (revoked, disconnected) is reported, never retried.
   */
  connection(accessToken: string): FieldgateApi {
    return new FieldgateApi(
      new ApiCaller(this.transport, this.options.apiBaseUrl ?? this.options.baseUrl, {
        placement: 'header',
        token: async () => accessToken,
        refused: () => false,
      }),
    )
  }

  private requireToken(body: Record<string, unknown>): string {
    const token = str(body.access_token)
    if (!token) throw new FieldgateError('invalid_response', 'the token endpoint answered without an access_token', { body })
    return token
  }

  private basic(): string {
    return basicAuthorization(this.options.clientId, this.options.clientSecret)
  }
}

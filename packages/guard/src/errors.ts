/**
 * The errors a protected service answers with. They carry the same codes, descriptions, statuses and
 * RFC 6750 challenges as Fieldgate's own API, so a client sees one behaviour whichever service it calls.
 */

export type GuardErrorCode = 'invalid_token' | 'invalid_request' | 'missing_scope'

/** The realm Fieldgate's own API names in its challenges; kept so the headers match byte for byte. */
const realm = 'fieldgate'

/** Something wrong with what the caller sent: answer `status`, `WWW-Authenticate` and `toJSON()` as they are. */
export class GuardError extends Error {
  constructor(
    readonly error: GuardErrorCode,
    readonly description: string,
    readonly status: number,
    /** The RFC 6750 challenge for the `WWW-Authenticate` response header. */
    readonly wwwAuthenticate: string,
    /** For missing_scope: the scope the call needs. */
    readonly scope?: string,
  ) {
    super(description)
    this.name = 'GuardError'
  }

  /**
   * The challenge with RFC 9728 §5.1's `resource_metadata`: the URL of this service's protected resource
   * metadata, so a client can find the authorization server to get a token from. Fieldgate's own API
   * names its metadata so in every challenge.
   */
  challenge(resourceMetadata?: string): string {
    return resourceMetadata ? `${this.wwwAuthenticate}, resource_metadata="${resourceMetadata}"` : this.wwwAuthenticate
  }

  /** The response body, exactly as Fieldgate's API sends it. */
  toJSON(): { error: GuardErrorCode; error_description: string; needed?: string } {
    const body: { error: GuardErrorCode; error_description: string; needed?: string } = { error: this.error, error_description: this.description }
    if (this.scope !== undefined) body.needed = this.scope
    return body
  }
}

/**
 * The guard could not check the token at all: discovery, the JWKS or introspection failed, or Fieldgate
 * refused the guard's own introspection credentials. Not the caller's fault, so never an invalid_token
 * (which would make a client throw its good token away): answer `status` with `toJSON()` and log `message`,
 * which says what went wrong. Nothing about it is cached; the next call tries again.
 */
export class GuardUpstreamError extends Error {
  readonly status = 503
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'GuardUpstreamError'
  }

  /** A body without internals; the detail is in `message`, for the service's log. */
  toJSON(): { error: 'server_error'; error_description: string } {
    return { error: 'server_error', error_description: 'The access token could not be checked' }
  }
}

/** RFC 6750 §3.1: 401 with a challenge naming the error (the description has no quotes or backslashes). */
export const invalidToken = (description = 'The access token is invalid'): GuardError =>
  new GuardError('invalid_token', description, 401, `Bearer realm="${realm}", error="invalid_token", error_description="${description}"`)

export const expiredToken = (): GuardError => invalidToken('The access token expired')

/** Fieldgate says this of every opaque token it does not accept, and introspection tells no more. */
export const revokedToken = (): GuardError => invalidToken('The access token was revoked')

/** RFC 6750 §3.1: a request without credentials gets a bare challenge. */
export const missingToken = (): GuardError => new GuardError('invalid_token', 'An access token is required', 401, `Bearer realm="${realm}"`)

/** RFC 6750 §3: a malformed request (token twice) gets a 400 with a Bearer challenge too. */
export const invalidRequest = (description: string): GuardError => new GuardError('invalid_request', description, 400, `Bearer realm="${realm}", error="invalid_request"`)

/** RFC 6750 §3.1 insufficient_scope, with the body Fieldgate documents (`missing_scope` and `needed`). */
export const missingScope = (scope: string): GuardError =>
  new GuardError('missing_scope', `This call needs the scope ${scope}`, 403, `Bearer realm="${realm}", error="insufficient_scope", scope="${scope}"`, scope)

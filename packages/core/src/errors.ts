/**
 * OAuth errors, one class per RFC 6749 §5.2 / RFC 6750 §3.1 error code.
 * Anything thrown that is not an OAuthError is turned into `server_error` by the HTTP layer,
 * so internal messages never reach a client.
 */
export class OAuthError extends Error {
  readonly headers: Record<string, string> = {}
  constructor(
    readonly error: string,
    readonly description: string,
    readonly status = 400,
  ) {
    super(description)
    this.name = new.target.name
  }

  toJSON(): { error: string; error_description: string } {
    return { error: this.error, error_description: this.description }
  }
}

/**
 * RFC 6749 §5.2 limits error_description to %x20-21 / %x23-5B / %x5D-7E: no quotes, no backslash,
 * nothing outside ASCII. Anything a client sent is shown through this before it is echoed.
 */
export const echo = (value: string): string => value.slice(0, 64).replace(/[^\x20\x21\x23-\x5B\x5D-\x7E]/g, '?')

export class InvalidRequest extends OAuthError {
  constructor(description: string) {
    super('invalid_request', description, 400)
  }
}

/** The exact body Field Nation documents; used by every dialect (RFC 6749 leaves the text open). */
export class InvalidClient extends OAuthError {
  constructor(basicUsed = false, description = 'Client authentication failed') {
    super('invalid_client', description, 401)
    // RFC 6749 §5.2: 401 with WWW-Authenticate when the client used the Authorization header.
    if (basicUsed) this.headers['www-authenticate'] = 'Basic realm="fieldgate", charset="UTF-8"'
  }
}

export class InvalidGrant extends OAuthError {
  constructor(description: string) {
    super('invalid_grant', description, 400)
  }
}

/** RFC 8707 §2: the resource is not one this client may have a token for, or not a valid URI. */
export class InvalidTarget extends OAuthError {
  constructor(description: string) {
    super('invalid_target', description, 400)
  }
}

export class InvalidScope extends OAuthError {
  constructor(description: string) {
    super('invalid_scope', description, 400)
  }
}

/** RFC 6749 §5.2: this client may not use this grant or endpoint. */
export class UnauthorizedClient extends OAuthError {
  constructor(description: string) {
    super('unauthorized_client', description, 400)
  }
}

export class UnsupportedGrantType extends OAuthError {
  constructor(grantType: string) {
    super('unsupported_grant_type', `grant_type ${echo(grantType)} is not supported`, 400)
  }
}

/** RFC 6749 §4.1.2.1: sent back to the redirect URI, never shown as a page. */
export class UnsupportedResponseType extends OAuthError {
  constructor() {
    super('unsupported_response_type', 'response_type must be code', 400)
  }
}

/** RFC 7009 §2.2.1: a token this server cannot revoke on its own (a self-contained JWT). */
export class UnsupportedTokenType extends OAuthError {
  constructor(description: string) {
    super('unsupported_token_type', description, 400)
  }
}

/** RFC 6750 §3.1: 401 with a Bearer challenge. */
export class InvalidToken extends OAuthError {
  constructor(description = 'The access token is invalid') {
    super('invalid_token', description, 401)
    this.headers['www-authenticate'] = `Bearer realm="fieldgate", error="invalid_token", error_description="${description}"`
  }
}

/** RFC 6750 §3: a malformed request to a protected resource also carries a Bearer challenge. */
export class InvalidBearerRequest extends OAuthError {
  constructor(description: string) {
    super('invalid_request', description, 400)
    this.headers['www-authenticate'] = 'Bearer realm="fieldgate", error="invalid_request"'
  }
}

export class MissingToken extends OAuthError {
  constructor() {
    // RFC 6750 §3.1: a request with no credentials gets a bare challenge.
    super('invalid_token', 'An access token is required', 401)
    this.headers['www-authenticate'] = 'Bearer realm="fieldgate"'
  }
}

export class InsufficientScope extends OAuthError {
  constructor(readonly scope: string) {
    super('missing_scope', `This call needs the scope ${scope}`, 403)
    this.headers['www-authenticate'] = `Bearer realm="fieldgate", error="insufficient_scope", scope="${scope}"`
  }

  override toJSON(): { error: string; error_description: string; needed: string } {
    return { ...super.toJSON(), needed: this.scope }
  }
}

/** The store could not be reached: the client did nothing wrong and should try again (RFC 6749 §4.1.2.1). */
export class TemporarilyUnavailable extends OAuthError {
  constructor(retryAfterSeconds = 1) {
    super('temporarily_unavailable', 'The service is temporarily unavailable; try again shortly', 503)
    this.headers['retry-after'] = String(retryAfterSeconds)
  }
}

export class ServerError extends OAuthError {
  constructor() {
    super('server_error', 'The server could not complete the request', 500)
  }
}

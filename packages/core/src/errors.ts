/**
 * OAuth errors, one class per RFC 6749 §5.2 / RFC 6750 §3.1 error code.
 * Anything thrown that is not an OAuthError is turned into `server_error` by the HTTP layer,
 * so internal messages never reach a client.
 */
export class OAuthError extends Error {
  readonly headers: Record<string, string> = {}
  /**
   * A protected resource's challenges, Bearer and DPoP, kept apart so an edge can put RFC 9728's
   * `resource_metadata` into the Bearer one (challengeWithMetadata); `headers` holds them joined.
   */
  challenges: Challenges | undefined = undefined
  constructor(
    readonly error: string,
    readonly description: string,
    readonly status = 400,
  ) {
    // A refusal is an answer, not a fault: no stack to capture (a flood of bad tokens spent a tenth of
    // its time there), and none is logged.
    const limit = Error.stackTraceLimit
    Error.stackTraceLimit = 0
    super(description)
    Error.stackTraceLimit = limit
    this.name = new.target.name
  }

  toJSON(): { error: string; error_description: string } {
    return { error: this.error, error_description: this.description }
  }

  /** Answers with both challenges, in one WWW-Authenticate field (RFC 9110 §11.6.1 allows a list). */
  protected challenge(challenges: Challenges): void {
    this.challenges = challenges
    this.headers['www-authenticate'] = `${challenges.bearer}, ${challenges.dpop}`
  }
}

/** RFC 9449 §7.1: what a DPoP proof may be signed with, as the DPoP challenge names them. */
export const dpopAlgorithms = ['ES256', 'RS256', 'PS256', 'EdDSA'] as const

/** The two schemes a protected resource of Fieldgate accepts (RFC 6750, RFC 9449 §7). */
export type TokenScheme = 'Bearer' | 'DPoP'

export interface Challenges {
  readonly bearer: string
  readonly dpop: string
}

/** Parameters of one challenge; values are Fieldgate's own words, without quotes or backslashes. */
type ChallengeParams = Readonly<Record<string, string>>

const params = (p: ChallengeParams): string[] => Object.entries(p).map(([name, value]) => `${name}="${value}"`)

/**
 * RFC 6750 §3 and RFC 9449 §7.1: Bearer first, as RFC 6750 clients (and the MCP SDK) read the first
 * challenge, then DPoP with its algorithms. The error goes into the challenge of the scheme the client
 * used; the other is bare.
 */
export function resourceChallenges(scheme: TokenScheme, error: ChallengeParams = {}): Challenges {
  return {
    bearer: ['Bearer realm="fieldgate"', ...params(scheme === 'Bearer' ? error : {})].join(', '),
    dpop: [`DPoP algs="${dpopAlgorithms.join(' ')}"`, ...params(scheme === 'DPoP' ? error : {})].join(', '),
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

/** RFC 6750 §3.1: 401 with a challenge naming the error, in the scheme the token came with (RFC 9449 §7.1). */
export class InvalidToken extends OAuthError {
  constructor(description = 'The access token is invalid', scheme: TokenScheme = 'Bearer') {
    super('invalid_token', description, 401)
    this.challenge(resourceChallenges(scheme, { error: 'invalid_token', error_description: description }))
  }
}

/** RFC 6750 §3: a malformed request to a protected resource also carries a challenge. */
export class InvalidBearerRequest extends OAuthError {
  constructor(description: string) {
    super('invalid_request', description, 400)
    this.challenge(resourceChallenges('Bearer', { error: 'invalid_request' }))
  }
}

export class MissingToken extends OAuthError {
  constructor() {
    // RFC 6750 §3.1, RFC 9449 §7.1: a request with no credentials gets bare challenges.
    super('invalid_token', 'An access token is required', 401)
    this.challenge(resourceChallenges('Bearer'))
  }
}

export class InsufficientScope extends OAuthError {
  constructor(
    readonly scope: string,
    scheme: TokenScheme = 'Bearer',
  ) {
    super('missing_scope', `This call needs the scope ${scope}`, 403)
    this.challenge(resourceChallenges(scheme, { error: 'insufficient_scope', scope }))
  }

  override toJSON(): { error: string; error_description: string; needed: string } {
    return { ...super.toJSON(), needed: this.scope }
  }
}

/**
 * Where a DPoP proof was refused: at the token endpoint an RFC 6749 §5.2 error (400, RFC 9449 §5), at a
 * protected resource a 401 with the DPoP challenge naming the error (§7.1).
 */
export type DpopSite = 'token' | 'resource'

/** RFC 9449 §5, §7.1: a DPoP proof that is missing, malformed, or fails one of the §4.3 checks. */
export class InvalidDpopProof extends OAuthError {
  constructor(description: string, site: DpopSite = 'token') {
    super('invalid_dpop_proof', description, site === 'token' ? 400 : 401)
    if (site === 'resource') this.challenge(resourceChallenges('DPoP', { error: 'invalid_dpop_proof', error_description: description }))
  }
}

/** RFC 9449 §8 (token endpoint, 400) and §9 (resource, 401): the proof must carry the server's nonce, sent in DPoP-Nonce. */
export class UseDpopNonce extends OAuthError {
  constructor(
    readonly nonce: string,
    site: DpopSite = 'token',
  ) {
    super('use_dpop_nonce', 'The DPoP proof must carry the nonce given in the DPoP-Nonce header', site === 'token' ? 400 : 401)
    if (site === 'resource') this.challenge(resourceChallenges('DPoP', { error: 'use_dpop_nonce', error_description: this.description }))
    this.headers['dpop-nonce'] = nonce
  }
}

/** RFC 7591 §3.2.2: a registration's redirect_uris are not acceptable. */
export class InvalidRedirectUri extends OAuthError {
  constructor(description: string) {
    super('invalid_redirect_uri', description, 400)
  }
}

/** RFC 7591 §3.2.2: a field of a registration's client metadata is not acceptable (a forbidden grant, an unknown scope…). */
export class InvalidClientMetadata extends OAuthError {
  constructor(description: string) {
    super('invalid_client_metadata', description, 400)
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

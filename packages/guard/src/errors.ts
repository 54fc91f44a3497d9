/**
 * The errors a protected service answers with. They carry the same codes, descriptions, statuses and
 * RFC 6750 challenges as Fieldgate's own API, so a client sees one behaviour whichever service it calls.
 */

export type GuardErrorCode = 'invalid_token' | 'invalid_request' | 'missing_scope' | 'invalid_dpop_proof'

/** RFC 9449 §7.1: the algorithms the guard verifies DPoP proofs with, as its DPoP challenge names them. */
export const dpopAlgorithms = ['ES256', 'RS256', 'PS256', 'EdDSA'] as const

/** The scheme a token came with: RFC 6750's Bearer, or RFC 9449's DPoP. */
export type TokenScheme = 'Bearer' | 'DPoP'

/** The realm Fieldgate's own API names in its challenges; kept so the headers match byte for byte. */
const realm = 'fieldgate'

/** Something wrong with what the caller sent: answer `status`, `WWW-Authenticate` and `toJSON()` as they are. */
export class GuardError extends Error {
  /** The challenges for the `WWW-Authenticate` response header: Bearer (RFC 6750), then DPoP (RFC 9449 §7.1). */
  readonly wwwAuthenticate: string

  constructor(
    readonly error: GuardErrorCode,
    readonly description: string,
    readonly status: number,
    /** The RFC 6750 Bearer challenge. */
    private readonly bearerChallenge: string,
    /** For missing_scope: the scope the call needs. */
    readonly scope?: string,
    /** The RFC 9449 §7.1 DPoP challenge that follows it. */
    private readonly dpopChallenge?: string,
  ) {
    super(description)
    this.name = 'GuardError'
    this.wwwAuthenticate = dpopChallenge ? `${bearerChallenge}, ${dpopChallenge}` : bearerChallenge
  }

  /**
   * The challenges with RFC 9728 §5.1's `resource_metadata` in the Bearer one: the URL of this service's
   * protected resource metadata, so a client can find the authorization server to get a token from.
   * Fieldgate's own API names its metadata so in every challenge.
   */
  challenge(resourceMetadata?: string): string {
    if (!resourceMetadata) return this.wwwAuthenticate
    const bearer = `${this.bearerChallenge}, resource_metadata="${resourceMetadata}"`
    return this.dpopChallenge ? `${bearer}, ${this.dpopChallenge}` : bearer
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

type Params = Readonly<Record<string, string>>

const params = (p: Params): string[] => Object.entries(p).map(([name, value]) => `${name}="${value}"`)

/**
 * A refusal with both challenges, byte for byte as Fieldgate's: Bearer first (RFC 6750 clients and the
 * MCP SDK read the first), then DPoP with its algorithms; the error goes into the scheme the client used.
 */
function refusal(error: GuardErrorCode, description: string, status: number, scheme: TokenScheme, challenge: Params, scope?: string): GuardError {
  const bearer = [`Bearer realm="${realm}"`, ...params(scheme === 'Bearer' ? challenge : {})].join(', ')
  const dpop = [`DPoP algs="${dpopAlgorithms.join(' ')}"`, ...params(scheme === 'DPoP' ? challenge : {})].join(', ')
  return new GuardError(error, description, status, bearer, scope, dpop)
}

/** RFC 6750 §3.1: 401 with a challenge naming the error (the description has no quotes or backslashes). */
export const invalidToken = (description = 'The access token is invalid', scheme: TokenScheme = 'Bearer'): GuardError =>
  refusal('invalid_token', description, 401, scheme, { error: 'invalid_token', error_description: description })

export const expiredToken = (scheme: TokenScheme = 'Bearer'): GuardError => invalidToken('The access token expired', scheme)

/** Fieldgate says this of every opaque token it does not accept, and introspection tells no more. */
export const revokedToken = (scheme: TokenScheme = 'Bearer'): GuardError => invalidToken('The access token was revoked', scheme)

/** RFC 6750 §3.1: a request without credentials gets bare challenges. */
export const missingToken = (): GuardError => refusal('invalid_token', 'An access token is required', 401, 'Bearer', {})

/** RFC 6750 §3: a malformed request (token twice) gets a 400 with a Bearer challenge too. */
export const invalidRequest = (description: string): GuardError => refusal('invalid_request', description, 400, 'Bearer', { error: 'invalid_request' })

/** RFC 6750 §3.1 insufficient_scope, with the body Fieldgate documents (`missing_scope` and `needed`). */
export const missingScope = (scope: string, scheme: TokenScheme = 'Bearer'): GuardError =>
  refusal('missing_scope', `This call needs the scope ${scope}`, 403, scheme, { error: 'insufficient_scope', scope }, scope)

/** RFC 9449 §7.1: a DPoP proof missing or failing a check, answered in the DPoP challenge. */
export const invalidDpopProof = (description: string): GuardError =>
  refusal('invalid_dpop_proof', description, 401, 'DPoP', { error: 'invalid_dpop_proof', error_description: description })

/**
 * One error class for everything the SDK can fail with, told apart by a stable `code`: callers branch on
 * `err.code`, never on messages, which may change. Server errors keep the server's own `error` code
 * (RFC 6749 §5.2, RFC 6750 §3.1, Fieldgate's `missing_scope` and `rate_limited`) and its
 * `error_description`; failures that never reached an answer get `timeout`, `network` or `aborted`.
 */

/** The codes this SDK produces or knows the server sends. Unknown server codes pass through as strings. */
export type FieldgateErrorCode =
  // from the server
  | 'invalid_request'
  | 'invalid_client'
  | 'invalid_grant'
  | 'invalid_scope'
  | 'unauthorized_client'
  | 'unsupported_grant_type'
  | 'unsupported_response_type'
  | 'unsupported_token_type'
  | 'invalid_token'
  | 'missing_scope'
  | 'not_found'
  | 'rate_limited'
  | 'server_error'
  | 'temporarily_unavailable'
  // from the authorization callback
  | 'access_denied'
  | 'state_mismatch'
  | 'issuer_mismatch'
  | 'invalid_callback'
  // from this SDK
  | 'invalid_signature'
  | 'invalid_response'
  | 'http_error'
  | 'timeout'
  | 'network'
  | 'aborted'
  | 'unsupported_runtime'
  // A server may send a code this version does not know; it is kept as sent.
  | (string & {})

export interface FieldgateErrorDetails {
  /** HTTP status of the answer, when there was one. */
  status?: number
  /** The server's `error_description`, or the SDK's explanation. */
  description?: string
  /** For `missing_scope`: the scope the call needs (the body's `needed`, or the challenge's `scope`). */
  scope?: string
  /** For 429 and 503: how long the server asked to wait, in ms (`Retry-After`). */
  retryAfterMs?: number
  /** How many HTTP attempts were made before giving up (retries included). */
  attempts?: number
  /** The parsed body of the answer, for anything the fields above do not carry. */
  body?: unknown
  cause?: unknown
}

export class FieldgateError extends Error {
  readonly code: FieldgateErrorCode
  readonly status: number | undefined
  readonly description: string | undefined
  readonly scope: string | undefined
  readonly retryAfterMs: number | undefined
  attempts: number | undefined
  readonly body: unknown

  constructor(code: FieldgateErrorCode, message: string, details: FieldgateErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause })
    this.name = 'FieldgateError'
    this.code = code
    this.status = details.status
    this.description = details.description
    this.scope = details.scope
    this.retryAfterMs = details.retryAfterMs
    this.attempts = details.attempts
    this.body = details.body
  }
}

export const isFieldgateError = (value: unknown, code?: FieldgateErrorCode): value is FieldgateError =>
  value instanceof FieldgateError && (code === undefined || value.code === code)

/** `scope="maps:write"` out of a `WWW-Authenticate: Bearer …, error="insufficient_scope", scope="…"` challenge. */
function challengeParam(header: string | null, name: string): string | undefined {
  if (!header) return undefined
  return new RegExp(`(?:^|[\\s,])${name}="([^"]*)"`).exec(header)?.[1]
}

/**
 * Turns a non-2xx answer into a FieldgateError. The body's `error` wins when there is one (it is the
 * protocol's own word); otherwise the status decides, so a proxy's HTML error page still gets a code.
 */
export function errorFromResponse(status: number, headers: Headers, body: unknown, retryAfterMs: number | undefined): FieldgateError {
  const fields = typeof body === 'object' && body !== null ? (body as Record<string, unknown>) : {}
  const sent = typeof fields.error === 'string' && fields.error !== '' ? fields.error : undefined
  const description = typeof fields.error_description === 'string' ? fields.error_description : undefined
  const challenge = headers.get('www-authenticate')
  const challengeError = challengeParam(challenge, 'error')

  let code: FieldgateErrorCode
  if (sent) code = sent
  else if (status === 403 && challengeError === 'insufficient_scope') code = 'missing_scope'
  else if (status === 401 && challenge !== null && /^bearer/i.test(challenge)) code = 'invalid_token'
  else if (status === 429) code = 'rate_limited'
  else if (status === 404) code = 'not_found'
  else if (status === 503) code = 'temporarily_unavailable'
  else if (status >= 500) code = 'server_error'
  else code = 'http_error'

  const scope = code === 'missing_scope' || code === 'insufficient_scope' ? (typeof fields.needed === 'string' ? fields.needed : challengeParam(challenge, 'scope')) : undefined
  // RFC 6750 names it insufficient_scope; Fieldgate (and fieldmargin) missing_scope. One code for both.
  if (code === 'insufficient_scope') code = 'missing_scope'

  const message = `${code} (HTTP ${status})${description ? `: ${description}` : ''}`
  return new FieldgateError(code, message, { status, description, scope, retryAfterMs, body })
}

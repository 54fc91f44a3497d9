/**
 * The partner's side of a marketplace install (README "Developer portal and marketplace"; core's
 * installRedirect and verifySignedQuery are the server's side). Fieldgate sends the person to your
 * install URL with `target`, `target_id`, `timestamp` and `hmac`; you send them back to
 * `/marketplace/complete` signed the same way. The signature is
 * hex(HMAC-SHA256(client secret, every query parameter but `hmac`, sorted by name and form-urlencoded)),
 * `timestamp` being Unix seconds, digits only, at most five minutes from now.
 *
 * Web Crypto only, so it runs in any runtime that can receive an HTTP request.
 */
import { hex, hmacSha256, timingSafeEqual, utf8 } from './encoding.js'
import { FieldgateError } from './errors.js'

/** As Fieldgate's own check: how long a captured link can be replayed. */
export const defaultSignedQueryMaxAgeSeconds = 300

export interface SignedQueryOptions {
  /** How far `timestamp` may be from now, either way, in seconds. Default 300. */
  maxAgeSeconds?: number
  /** The clock, in ms. Default `Date.now`. */
  now?: () => number
}

/** What arrives at your install URL, as a full URL, its query string, or its parameters. */
export type SignedRequest = string | URL | URLSearchParams

/** A verified install: the tenant's `target_id` (for the token request) and its marketplace id. */
export interface InstallRequest {
  target: string
  targetId: string
  timestamp: number
}

export type CompletionStatus = 'success' | 'error'

export interface CompletionOptions {
  /** The Fieldgate issuer, e.g. `https://auth.example.com`. */
  issuer: string
  clientId: string
  /** The `target_id` the install request carried. */
  targetId: string
  status: CompletionStatus
  /** Shown to the admin, for `status: 'error'`. */
  errorDescription?: string
  clientSecret: string
  /** The clock, in ms. Default `Date.now`. */
  now?: () => number
}

const paramsOf = (request: SignedRequest): URLSearchParams => {
  if (request instanceof URLSearchParams) return request
  if (request instanceof URL) return request.searchParams
  const at = request.indexOf('?')
  return new URLSearchParams(at === -1 ? request : request.slice(at + 1))
}

/** Every parameter but `hmac`, sorted by name (stable: a repeated name keeps its order), form-urlencoded. */
function signedMessage(params: URLSearchParams): string {
  const message = new URLSearchParams([...params].filter(([name]) => name !== 'hmac'))
  message.sort()
  return message.toString()
}

const signatureOf = async (params: URLSearchParams, clientSecret: string): Promise<string> => hex(await hmacSha256(clientSecret, utf8(signedMessage(params))))

/**
 * Whether a request Fieldgate signed is genuine and recent: `timestamp` is digits only and within
 * `maxAgeSeconds`, and `hmac` matches under one of `clientSecret` (pass every secret you hold during a
 * rotation). Compared in constant time, every secret tried. Signs whatever parameters arrive, so an
 * install URL with a query string of its own verifies too.
 */
export async function verifyInstallRequest(request: SignedRequest, clientSecret: string | readonly string[], opts: SignedQueryOptions = {}): Promise<boolean> {
  const params = paramsOf(request)
  const sent = params.get('hmac')
  const timestamp = params.get('timestamp')
  if (!sent || !timestamp || !/^\d{1,12}$/.test(timestamp)) return false
  const nowSeconds = Math.floor((opts.now ?? Date.now)() / 1000)
  if (Math.abs(nowSeconds - Number(timestamp)) > (opts.maxAgeSeconds ?? defaultSignedQueryMaxAgeSeconds)) return false
  let matched = false
  for (const secret of typeof clientSecret === 'string' ? [clientSecret] : clientSecret) {
    matched = timingSafeEqual(sent.toLowerCase(), await signatureOf(params, secret)) || matched
  }
  return matched
}

/**
 * Verifies, then reads: the install's `target_id` and `target`, or a FieldgateError with code
 * `invalid_signature`. Send the person nowhere and get no token before it returns.
 */
export async function readInstallRequest(request: SignedRequest, clientSecret: string | readonly string[], opts: SignedQueryOptions = {}): Promise<InstallRequest> {
  const params = paramsOf(request)
  const target = params.get('target')
  const targetId = params.get('target_id')
  if (!target || !targetId || !(await verifyInstallRequest(params, clientSecret, opts))) {
    throw new FieldgateError('invalid_signature', 'the install request is not signed by Fieldgate, or is too old')
  }
  return { target, targetId, timestamp: Number(params.get('timestamp')) }
}

/** Adds `timestamp` (now) and `hmac` to `params`, signed with your client secret as Fieldgate checks it. */
export async function signQuery(params: URLSearchParams, clientSecret: string, now: () => number = Date.now): Promise<URLSearchParams> {
  const signed = new URLSearchParams([...params].filter(([name]) => name !== 'hmac'))
  signed.set('timestamp', String(Math.floor(now() / 1000)))
  signed.set('hmac', await signatureOf(signed, clientSecret))
  return signed
}

/**
 * The signed link that sends the person back to Fieldgate when setup is done or failed:
 * `<issuer>/marketplace/complete?client_id=…&target_id=…&status=…[&error_description=…]&timestamp=…&hmac=…`.
 * Only a signed link changes the install or shows your message; it works for five minutes.
 */
export async function completionUrl(opts: CompletionOptions): Promise<string> {
  const params = new URLSearchParams({ client_id: opts.clientId, target_id: opts.targetId, status: opts.status })
  if (opts.errorDescription !== undefined) params.set('error_description', opts.errorDescription)
  // Appended, not resolved: an issuer with a path (https://example.com/auth) keeps it.
  const url = new URL(`${opts.issuer.replace(/\/+$/, '')}/marketplace/complete`)
  url.search = (await signQuery(params, opts.clientSecret, opts.now)).toString()
  return url.href
}

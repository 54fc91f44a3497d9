/**
 * Every HTTP call of the SDK goes through `Transport.send`: one place for the timeout, the caller's
 * AbortSignal, error mapping and the retry rules, so no endpoint can forget one of them.
 *
 * What is retried, and why:
 * - 429 always: the server refused before doing anything.
 * - 500, 502, 503, 504, dropped connections and timeouts only for requests marked `idempotent`: a POST
 *   that creates a record (or redeems a single-use code) may have been done even though no answer came,
 *   and doing it twice is worse than reporting the failure.
 */
import { backoffDelay, monotonicNow, parseRetryAfter, retryPolicy, type RetryOptions, type RetryPolicy } from './backoff.js'
import { FieldgateError, errorFromResponse } from './errors.js'
import { abortedError, deadline, sleep } from './signals.js'

/** The part of `fetch` the SDK uses; pass your own (instrumented, proxied) in the options. */
export type FetchLike = (input: string, init: RequestInit) => Promise<Response>

export interface TransportOptions {
  /** Per attempt, from sending until the whole body is read. Default 10 s. */
  timeoutMs?: number
  retry?: RetryOptions
  fetch?: FetchLike
  /**
   * Wall clock in ms: reads `Retry-After` dates and, in FieldgateClient, times tokens against their
   * `expires_in`. Default `Date.now`; tests inject one to cross a refresh point without waiting.
   */
  now?: () => number
}

export interface HttpRequest {
  method: 'GET' | 'POST'
  url: string
  headers?: Record<string, string>
  body?: string
  /** True when sending it twice does no harm; see the rules above. */
  idempotent: boolean
  signal?: AbortSignal | undefined
}

export interface HttpResponse {
  status: number
  headers: Headers
  /** Parsed JSON, the text when it is not JSON, undefined when empty. */
  body: unknown
}

const retriedStatuses = new Set([500, 502, 503, 504])

export class Transport {
  readonly policy: RetryPolicy
  readonly timeoutMs: number
  private readonly fetchImpl: FetchLike
  private readonly now: () => number

  constructor(options: TransportOptions = {}) {
    this.policy = retryPolicy(options.retry)
    this.timeoutMs = options.timeoutMs ?? 10_000
    const f = options.fetch ?? (globalThis as { fetch?: FetchLike }).fetch
    if (!f) throw new FieldgateError('unsupported_runtime', 'this runtime has no fetch; pass one as the `fetch` option')
    this.fetchImpl = f
    this.now = options.now ?? Date.now
  }

  /** Resolves with a 2xx answer; anything else, after the retries the rules allow, is a FieldgateError. */
  async send(req: HttpRequest): Promise<HttpResponse> {
    const started = monotonicNow()
    const { maxAttempts, maxElapsedMs } = this.policy
    for (let attempt = 1; ; attempt++) {
      const remaining = maxElapsedMs - (monotonicNow() - started)
      let failure: FieldgateError
      try {
        const res = await this.attempt(req, Math.max(1, Math.min(this.timeoutMs, remaining)))
        if (res.status >= 200 && res.status < 300) return res
        failure = errorFromResponse(res.status, res.headers, res.body, parseRetryAfter(res.headers.get('retry-after'), this.now()))
      } catch (err) {
        if (!(err instanceof FieldgateError) || err.code === 'aborted') throw err
        failure = err
      }
      failure.attempts = attempt
      if (!this.retryable(req, failure) || attempt >= maxAttempts) throw failure
      const wait = backoffDelay(this.policy, attempt, failure.retryAfterMs)
      if (monotonicNow() - started + wait >= maxElapsedMs) throw failure
      await sleep(wait, req.signal)
    }
  }

  private retryable(req: HttpRequest, failure: FieldgateError): boolean {
    if (failure.status === 429) return true
    if (!req.idempotent) return false
    return failure.status !== undefined ? retriedStatuses.has(failure.status) : failure.code === 'network' || failure.code === 'timeout'
  }

  private async attempt(req: HttpRequest, timeoutMs: number): Promise<HttpResponse> {
    if (req.signal?.aborted) throw abortedError(req.signal)
    const limit = deadline(req.signal, timeoutMs)
    try {
      const res = await this.fetchImpl(req.url, { method: req.method, headers: req.headers, body: req.body, signal: limit.signal })
      const text = await res.text()
      return { status: res.status, headers: res.headers, body: parseBody(text) }
    } catch (err) {
      if (req.signal?.aborted) throw abortedError(req.signal)
      if (limit.timedOut()) throw new FieldgateError('timeout', `no answer from ${originOf(req.url)} within ${timeoutMs} ms`, { cause: err })
      if (err instanceof FieldgateError) throw err
      throw new FieldgateError('network', `could not reach ${originOf(req.url)}: ${(err as Error)?.message ?? String(err)}`, { cause: err })
    } finally {
      limit.done()
    }
  }
}

function parseBody(text: string): unknown {
  if (text === '') return undefined
  try {
    return JSON.parse(text) as unknown
  } catch {
    return text
  }
}

/** Only the origin goes into messages: a URL may carry `?access_token=`. */
function originOf(url: string): string {
  try {
    return new URL(url).origin
  } catch {
    return 'the server'
  }
}

/** `base` + `path` + query, with `base` allowed to carry a path prefix (a gateway mount). */
export function joinUrl(base: string, path: string, query?: Record<string, string | number | undefined>): string {
  const url = new URL(base.replace(/\/+$/, '') + (path.startsWith('/') ? path : `/${path}`))
  for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined) url.searchParams.set(k, String(v))
  return url.toString()
}

/** application/x-www-form-urlencoded, as RFC 6749 §4.1.3 and fieldmargin's token.exchange want. */
export const formBody = (fields: Record<string, string | undefined>): string => {
  const params = new URLSearchParams()
  for (const [k, v] of Object.entries(fields)) if (v !== undefined) params.set(k, v)
  return params.toString()
}

export const jsonHeaders = { 'content-type': 'application/json', accept: 'application/json' } as const
export const formHeaders = { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' } as const

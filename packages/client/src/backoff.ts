/**
 * When to try again. Exponential backoff with full jitter (a random wait between 0 and the ceiling) so
 * many clients that failed together do not come back together; a server's `Retry-After` is a floor the
 * jitter is added on top of, for the same reason. Bounded twice: in attempts and in total time, so a
 * caller always hears back within a known budget.
 */

export interface RetryOptions {
  /** Attempts in all, the first included. 1 turns retries off. Default 4. */
  maxAttempts?: number
  /** Ceiling of the first wait; it doubles on each retry. Default 200 ms. */
  baseDelayMs?: number
  /** Largest jitter ceiling. Default 5 s. */
  maxDelayMs?: number
  /**
   * Total time for one call, attempts and waits included. A wait that would end past it is not taken:
   * the last error is thrown at once (with `retryAfterMs` when the server asked for more). Default 30 s.
   */
  maxElapsedMs?: number
  /** Source of jitter in [0, 1); replaceable for tests. */
  random?: () => number
}

export type RetryPolicy = Required<RetryOptions>

export const defaultRetry: RetryPolicy = { maxAttempts: 4, baseDelayMs: 200, maxDelayMs: 5_000, maxElapsedMs: 30_000, random: Math.random }

export function retryPolicy(options: RetryOptions | undefined): RetryPolicy {
  const p = { ...defaultRetry, ...options }
  return { ...p, maxAttempts: Math.max(1, Math.floor(p.maxAttempts)) }
}

/**
 * `Retry-After` (RFC 9110 §10.2.3) in ms: delay-seconds or an HTTP-date. Anything else is ignored
 * rather than trusted, and a date in the past means now.
 */
export function parseRetryAfter(value: string | null, nowMs: number): number | undefined {
  if (value === null) return undefined
  const trimmed = value.trim()
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000
  const at = Date.parse(trimmed)
  if (Number.isNaN(at) || !/[a-z]/i.test(trimmed)) return undefined
  return Math.max(0, at - nowMs)
}

/** The wait before attempt `attempt + 1` (attempt counts from 1). */
export function backoffDelay(policy: RetryPolicy, attempt: number, retryAfterMs: number | undefined): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.min(attempt - 1, 30))
  const jitter = Math.floor(policy.random() * ceiling)
  return (retryAfterMs ?? 0) + jitter
}

/** A clock that only goes forward, for budgets; wall-clock changes must not stretch or cut them. */
export const monotonicNow = (): number => (globalThis.performance?.now ? globalThis.performance.now() : Date.now())

/**
 * Access tokens kept per key (issuer, client, tenant, scope) and fetched at most once at a time per key:
 * a thousand calls that find no fresh token wait on the same single token request instead of making a
 * thousand (which would also spend the client's token-endpoint rate limit). Share one TokenCache
 * between clients to share their tokens; the key keeps different clients, tenants and scopes apart.
 */
import { untilAborted } from './signals.js'

export interface CachedToken {
  accessToken: string
  /** When the server says it stops working (ms since the epoch); undefined for tokens that do not expire. */
  expiresAt: number | undefined
  /** When it was asked for, by the clock that measured `expiresAt`. */
  obtainedAt: number
}

/** How long before expiry a token is replaced when the caller set nothing: a minute, or half its life if shorter. */
export const defaultRefreshEarlyMs = 60_000

export class TokenCache {
  private readonly entries = new Map<string, CachedToken>()
  private readonly inflight = new Map<string, Promise<CachedToken>>()

  /**
   * @param now The clock tokens are timed with. Tests pass a fake one to cross the refresh point without
   * waiting.
   */
  constructor(readonly now: () => number = Date.now) {}

  /**
   * The cached token if it is still fresh: not past `expiresAt - refreshEarlyMs`. Replacing it early
   * means a call never sets out with a token that expires on the way. Without an explicit
   * `refreshEarlyMs`, the margin is a minute but at most half the token's life, so a short-lived token
   * is still reused.
   */
  fresh(key: string, refreshEarlyMs?: number): CachedToken | undefined {
    const entry = this.entries.get(key)
    if (!entry) return undefined
    if (entry.expiresAt === undefined) return entry
    const early = refreshEarlyMs ?? Math.min(defaultRefreshEarlyMs, (entry.expiresAt - entry.obtainedAt) / 2)
    return this.now() < entry.expiresAt - early ? entry : undefined
  }

  /**
   * A fresh token for `key`, from the cache or from `fetchToken`, which runs at most once at a time per
   * key. The shared request does not use any caller's signal: one caller giving up must not fail the
   * others waiting on it; `signal` only lets this caller stop waiting.
   */
  async get(key: string, fetchToken: () => Promise<CachedToken>, opts: { refreshEarlyMs?: number; signal?: AbortSignal; forceRefresh?: boolean } = {}): Promise<CachedToken> {
    if (!opts.forceRefresh) {
      const hit = this.fresh(key, opts.refreshEarlyMs)
      if (hit) return hit
    }
    let pending = this.inflight.get(key)
    if (!pending) {
      pending = Promise.resolve()
        .then(fetchToken)
        .then((token) => {
          this.entries.set(key, token)
          return token
        })
        .finally(() => this.inflight.delete(key))
      // Everyone waiting may have aborted; a failure nobody awaits must not become an unhandled rejection.
      pending.catch(() => {})
      this.inflight.set(key, pending)
    }
    return untilAborted(pending, opts.signal)
  }

  /**
   * Forgets `accessToken` after the server refused it. Only that exact token is dropped: when many
   * calls were refused with the same old token, the first one's replacement is kept, so they all
   * share one new token instead of each throwing away the one before.
   */
  invalidate(key: string, accessToken: string): void {
    if (this.entries.get(key)?.accessToken === accessToken) this.entries.delete(key)
  }

  /** Drops every token (after a secret rotation, say). */
  clear(): void {
    this.entries.clear()
  }
}

/** TokenCache: freshness against a fake clock, one request in flight per key, exact invalidation, leaving without cancelling. */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { FieldgateError } from '../src/errors.js'
import { TokenCache, type CachedToken } from '../src/token-cache.js'

const token = (accessToken: string, obtainedAt: number, lifeMs: number | undefined): CachedToken => ({
  accessToken,
  obtainedAt,
  expiresAt: lifeMs === undefined ? undefined : obtainedAt + lifeMs,
})

/** A fetch the test resolves by hand, counting how often it ran. */
function deferredFetch() {
  let calls = 0
  let resolve!: (t: CachedToken) => void
  let reject!: (e: unknown) => void
  const fetch = () => {
    calls++
    return new Promise<CachedToken>((ok, fail) => {
      resolve = ok
      reject = fail
    })
  }
  return { fetch, calls: () => calls, resolve: (t: CachedToken) => resolve(t), reject: (e: unknown) => reject(e) }
}

describe('TokenCache', () => {
  it('serves a cached token until a minute before expiry, then fetches a new one', async () => {
    let now = 1_000_000
    const cache = new TokenCache(() => now)
    let n = 0
    const fetch = async () => token(`t${++n}`, now, 3_600_000)
    assert.equal((await cache.get('k', fetch)).accessToken, 't1')
    now += 3_600_000 - 60_001
    assert.equal((await cache.get('k', fetch)).accessToken, 't1', 'still fresh 60.001 s before expiry')
    now += 1
    assert.equal((await cache.get('k', fetch)).accessToken, 't2', 'replaced 60 s before expiry')
  })

  it('refreshes a short-lived token at half its life, and an explicit margin as given', async () => {
    let now = 0
    const cache = new TokenCache(() => now)
    await cache.get('short', async () => token('s', now, 30_000))
    now = 14_999
    assert.equal(cache.fresh('short')?.accessToken, 's')
    now = 15_000
    assert.equal(cache.fresh('short'), undefined, 'half of 30 s')
    assert.equal(cache.fresh('short', 1000)?.accessToken, 's', 'an explicit 1 s margin')
    now = 29_000
    assert.equal(cache.fresh('short', 1000), undefined)
  })

  it('keeps a token without expiry for good', async () => {
    let now = 0
    const cache = new TokenCache(() => now)
    await cache.get('k', async () => token('forever', 0, undefined))
    now = 10 ** 12
    assert.equal(cache.fresh('k')?.accessToken, 'forever')
  })

  it('makes one request for many concurrent callers of one key, and one per key', async () => {
    const cache = new TokenCache()
    const a = deferredFetch()
    const waiting = Array.from({ length: 50 }, () => cache.get('a', a.fetch))
    const b = deferredFetch()
    const other = cache.get('b', b.fetch)
    await new Promise((r) => setImmediate(r))
    assert.equal(a.calls(), 1)
    assert.equal(b.calls(), 1)
    a.resolve(token('A', Date.now(), 3_600_000))
    b.resolve(token('B', Date.now(), 3_600_000))
    assert.deepEqual(new Set((await Promise.all(waiting)).map((t) => t.accessToken)), new Set(['A']))
    assert.equal((await other).accessToken, 'B')
  })

  it('shares a failure with every waiter, keeps nothing, and tries again on the next call', async () => {
    const cache = new TokenCache()
    const f = deferredFetch()
    const waiting = [cache.get('k', f.fetch), cache.get('k', f.fetch)]
    await new Promise((r) => setImmediate(r))
    f.reject(new FieldgateError('invalid_client', 'bad secret'))
    for (const w of waiting) await assert.rejects(w, (e: unknown) => e instanceof FieldgateError && e.code === 'invalid_client')
    assert.equal(cache.fresh('k'), undefined)
    assert.equal((await cache.get('k', async () => token('later', Date.now(), 3_600_000))).accessToken, 'later')
  })

  it('forceRefresh fetches even when fresh', async () => {
    const cache = new TokenCache()
    await cache.get('k', async () => token('old', Date.now(), 3_600_000))
    assert.equal((await cache.get('k', async () => token('new', Date.now(), 3_600_000), { forceRefresh: true })).accessToken, 'new')
    assert.equal(cache.fresh('k')?.accessToken, 'new')
  })

  it('invalidates only the exact token refused, and clear drops everything', async () => {
    const cache = new TokenCache()
    await cache.get('k', async () => token('current', Date.now(), 3_600_000))
    cache.invalidate('k', 'an-older-one')
    assert.equal(cache.fresh('k')?.accessToken, 'current', 'a refusal of an older token keeps the replacement')
    cache.invalidate('k', 'current')
    assert.equal(cache.fresh('k'), undefined)
    await cache.get('x', async () => token('x', Date.now(), undefined))
    cache.clear()
    assert.equal(cache.fresh('x'), undefined)
  })

  it('lets one caller leave on its abort without cancelling the shared request', async () => {
    const cache = new TokenCache()
    const f = deferredFetch()
    const leaving = new AbortController()
    const left = cache.get('k', f.fetch, { signal: leaving.signal })
    const staying = cache.get('k', f.fetch)
    leaving.abort()
    await assert.rejects(left, (e: unknown) => e instanceof FieldgateError && e.code === 'aborted')
    f.resolve(token('shared', Date.now(), 3_600_000))
    assert.equal((await staying).accessToken, 'shared')
    assert.equal(f.calls(), 1)
    const gone = new AbortController()
    gone.abort()
    await assert.rejects(cache.get('other', f.fetch, { signal: gone.signal }), (e: unknown) => e instanceof FieldgateError && e.code === 'aborted')
  })
})

/** Retry timing: Retry-After parsing (RFC 9110 §10.2.3), exponential backoff with full jitter, the policy's bounds. */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { backoffDelay, type defaultRetry, parseRetryAfter, retryPolicy } from '../src/backoff.js'

const now = Date.parse('2026-03-01T12:00:00Z')

describe('Retry-After', () => {
  it('reads delay-seconds as ms, whitespace around them ignored', () => {
    assert.equal(parseRetryAfter('0', now), 0)
    assert.equal(parseRetryAfter('7', now), 7000)
    assert.equal(parseRetryAfter(' 120 ', now), 120_000)
  })

  it('reads an HTTP-date as the time from now, and a past date as now', () => {
    assert.equal(parseRetryAfter('Sun, 01 Mar 2026 12:00:30 GMT', now), 30_000)
    assert.equal(parseRetryAfter('Sun, 01 Mar 2026 11:00:00 GMT', now), 0)
  })

  it('ignores what is neither, rather than trusting it', () => {
    assert.equal(parseRetryAfter(null, now), undefined)
    for (const junk of ['', '-5', '1.5', '1e3', 'soon', '12 seconds', '2026-13-45']) {
      assert.equal(parseRetryAfter(junk, now), undefined, JSON.stringify(junk))
    }
  })
})

describe('backoff', () => {
  const policy = (random: number, over: Partial<typeof defaultRetry> = {}) => retryPolicy({ baseDelayMs: 100, maxDelayMs: 1000, random: () => random, ...over })

  it('doubles the jitter ceiling per attempt up to maxDelayMs', () => {
    const top = policy(0.999999)
    assert.deepEqual(
      [1, 2, 3, 4, 5, 6].map((a) => backoffDelay(top, a, undefined)),
      [99, 199, 399, 799, 999, 999],
    )
  })

  it('is full jitter: anywhere from 0 to the ceiling', () => {
    assert.equal(backoffDelay(policy(0), 4, undefined), 0)
    assert.equal(backoffDelay(policy(0.5), 3, undefined), 200)
  })

  it('adds the jitter on top of Retry-After, which is a floor', () => {
    assert.equal(backoffDelay(policy(0), 1, 3000), 3000)
    assert.equal(backoffDelay(policy(0.5), 2, 3000), 3100)
  })

  it('does not overflow on a huge attempt count', () => {
    assert.equal(backoffDelay(policy(0.5), 10_000, undefined), 500)
  })

  it('fills in defaults and keeps at least one attempt', () => {
    assert.equal(retryPolicy(undefined).maxAttempts, 4)
    assert.equal(retryPolicy({ maxAttempts: 0 }).maxAttempts, 1)
    assert.equal(retryPolicy({ maxAttempts: 2.7 }).maxAttempts, 2)
    assert.equal(retryPolicy({ baseDelayMs: 5 }).maxElapsedMs, 30_000)
  })
})

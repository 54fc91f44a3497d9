/**
 * Transport against a scripted server on loopback: what is retried (429 always; 5xx, drops and
 * timeouts only when idempotent), how long it waits, the budgets, the caller's abort, body parsing,
 * URL and form building.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { FieldgateError } from '../src/errors.js'
import { Transport, formBody, joinUrl, type HttpRequest } from '../src/transport.js'
import { Loopback } from './loopback.js'

let server: Loopback
before(async () => {
  server = await Loopback.start()
})
after(() => server.close())

/** No jitter, short waits: the timing a test can assert on. */
const fast = (over: ConstructorParameters<typeof Transport>[0] = {}) =>
  new Transport({ timeoutMs: 2000, retry: { baseDelayMs: 20, maxDelayMs: 100, random: () => 0, ...over.retry }, ...over })

const get = (path = '/x'): HttpRequest => ({ method: 'GET', url: server.url(path), idempotent: true })
const post = (path = '/x', idempotent = false): HttpRequest => ({
  method: 'POST',
  url: server.url(path),
  idempotent,
  body: '{"a":1}',
  headers: { 'content-type': 'application/json' },
})

async function rejects(p: Promise<unknown>): Promise<FieldgateError> {
  try {
    await p
  } catch (err) {
    assert.ok(err instanceof FieldgateError, `not a FieldgateError: ${String(err)}`)
    return err
  }
  assert.fail('resolved')
}

describe('Transport', () => {
  it('returns a 2xx with its body parsed: JSON, text, or nothing', async () => {
    server.answer({ status: 200, body: { ok: true } }, { status: 201, body: 'plain words' }, { status: 204 })
    const t = fast()
    assert.deepEqual((await t.send(get())).body, { ok: true })
    const created = await t.send(post())
    assert.equal(created.status, 201)
    assert.equal(created.body, 'plain words')
    assert.equal((await t.send(get())).body, undefined)
    assert.equal(server.received[1]!.body, '{"a":1}', 'the body is sent as given')
    assert.equal(server.received[1]!.headers['content-type'], 'application/json')
  })

  it('retries 429 even for a POST, waiting at least Retry-After', async () => {
    server.answer({ status: 429, headers: { 'retry-after': '1' }, body: { error: 'rate_limited' } }, { status: 200, body: { done: 1 } })
    const res = await fast().send(post())
    assert.deepEqual(res.body, { done: 1 })
    assert.equal(server.received.length, 2)
    const waited = server.received[1]!.at - server.received[0]!.at
    assert.ok(waited >= 950, `waited ${waited} ms after Retry-After: 1`)
  })

  it('retries 500, 502, 503 and 504 for an idempotent request, with growing waits', async () => {
    server.answer({ status: 500 }, { status: 502 }, { status: 503 }, { status: 200, body: { n: 4 } })
    const t = fast({ retry: { maxAttempts: 4, baseDelayMs: 40, maxDelayMs: 1000, random: () => 0.999 } })
    assert.deepEqual((await t.send(get())).body, { n: 4 })
    assert.equal(server.received.length, 4)
    const gaps = server.received.slice(1).map((r, i) => r.at - server.received[i]!.at)
    assert.ok(gaps[0]! >= 30 && gaps[1]! >= 70 && gaps[2]! >= 150, `waits ${gaps.map(Math.round).join(', ')} ms: ~40, ~80, ~160`)
  })

  it('never retries a 5xx on a request that is not idempotent', async () => {
    server.answer({ status: 503, body: { error: 'temporarily_unavailable' } }, { status: 200 })
    const err = await rejects(fast().send(post()))
    assert.equal(err.code, 'temporarily_unavailable')
    assert.equal(err.status, 503)
    assert.equal(err.attempts, 1)
    assert.equal(server.received.length, 1)
  })

  it('never retries a 4xx other than 429', async () => {
    server.answer({ status: 400, body: { error: 'invalid_request', error_description: 'no' } }, { status: 200 })
    const err = await rejects(fast().send(get()))
    assert.equal(err.code, 'invalid_request')
    assert.equal(server.received.length, 1)
  })

  it('gives up after maxAttempts with the last error and the attempt count', async () => {
    server.answer({ status: 500, body: { error: 'server_error' } })
    const err = await rejects(fast({ retry: { maxAttempts: 3 } }).send(get()))
    assert.equal(err.code, 'server_error')
    assert.equal(err.attempts, 3)
    assert.equal(server.received.length, 3)
  })

  it('retries a dropped connection when idempotent, as network; reports it at once otherwise', async () => {
    server.answer({ drop: true }, { status: 200, body: { again: true } })
    assert.deepEqual((await fast().send(get())).body, { again: true })
    assert.equal(server.received.length, 2)
    server.answer({ drop: true }, { status: 200 })
    const err = await rejects(fast().send(post()))
    assert.equal(err.code, 'network')
    assert.equal(err.attempts, 1)
    assert.equal(server.received.length, 1)
  })

  it('says network, naming only the origin, when nothing listens', async () => {
    const closed = await Loopback.start()
    const url = closed.url('/secret?access_token=abc')
    await closed.close()
    const err = await rejects(fast({ retry: { maxAttempts: 1 } }).send({ method: 'GET', url, idempotent: true }))
    assert.equal(err.code, 'network')
    assert.ok(!err.message.includes('access_token'), err.message)
    assert.ok(err.message.includes(new URL(url).origin), err.message)
  })

  it('times out an attempt at timeoutMs, and retries a timed-out read', async () => {
    server.answer({ delayMs: 1000, andThen: { status: 200 } }, { status: 200, body: { second: true } })
    const t = fast({ timeoutMs: 150 })
    const started = performance.now()
    assert.deepEqual((await t.send(get())).body, { second: true })
    assert.ok(performance.now() - started < 900, 'the first attempt was cut at the timeout')
    server.answer({ delayMs: 1000, andThen: { status: 200 } })
    const err = await rejects(t.send(post()))
    assert.equal(err.code, 'timeout')
    assert.equal(server.received.length, 1)
  })

  it('does not take a wait that ends past maxElapsedMs, and says how long the server asked for', async () => {
    server.answer({ status: 429, headers: { 'retry-after': '30' }, body: { error: 'rate_limited' } })
    const started = performance.now()
    const err = await rejects(fast({ retry: { maxElapsedMs: 2000 } }).send(get()))
    assert.ok(performance.now() - started < 1000, 'thrown at once, not after 30 s')
    assert.equal(err.code, 'rate_limited')
    assert.equal(err.retryAfterMs, 30_000)
    assert.equal(server.received.length, 1)
  })

  it("stops at the caller's abort: before sending, while waiting for an answer, and during a backoff", async () => {
    const t = fast({ retry: { baseDelayMs: 5000, maxDelayMs: 5000, random: () => 0.99 } })
    const gone = new AbortController()
    gone.abort()
    server.answer({ status: 200 })
    assert.equal((await rejects(t.send({ ...get(), signal: gone.signal }))).code, 'aborted')
    assert.equal(server.received.length, 0, 'nothing was sent')

    server.answer({ delayMs: 2000, andThen: { status: 200 } })
    const during = new AbortController()
    setTimeout(() => during.abort(), 100)
    assert.equal((await rejects(t.send({ ...get(), signal: during.signal }))).code, 'aborted')

    server.answer({ status: 503 })
    const backoff = new AbortController()
    setTimeout(() => backoff.abort(), 200)
    const started = performance.now()
    assert.equal((await rejects(t.send({ ...get(), signal: backoff.signal }))).code, 'aborted')
    assert.ok(performance.now() - started < 2000, 'left the ~5 s backoff at the abort')
    assert.equal(server.received.length, 1)
  })

  it('reads Retry-After dates with the injected clock', async () => {
    const fakeNow = Date.parse('2030-01-01T00:00:00Z')
    server.answer({ status: 429, headers: { 'retry-after': 'Tue, 01 Jan 2030 00:01:00 GMT' } })
    const err = await rejects(new Transport({ now: () => fakeNow, retry: { maxAttempts: 1 } }).send(get()))
    assert.equal(err.retryAfterMs, 60_000)
  })
})

describe('URLs and forms', () => {
  it('joins a base with a path prefix, a path and a query, leaving undefined out', () => {
    assert.equal(joinUrl('https://auth.example/', '/oauth/token'), 'https://auth.example/oauth/token')
    assert.equal(joinUrl('https://gw.example/fieldgate//', 'v1/fields', { limit: 10, cursor: undefined }), 'https://gw.example/fieldgate/v1/fields?limit=10')
    assert.equal(new URL(joinUrl('https://a.example', '/x', { q: 'a b&c=d' })).searchParams.get('q'), 'a b&c=d')
  })

  it('form-encodes fields, leaving undefined out', () => {
    const body = formBody({ grant_type: 'authorization_code', code: 'a+b/c=', code_verifier: undefined, redirect_uri: 'https://p.example/cb?x=1' })
    assert.equal(body, 'grant_type=authorization_code&code=a%2Bb%2Fc%3D&redirect_uri=https%3A%2F%2Fp.example%2Fcb%3Fx%3D1')
    assert.deepEqual(Object.fromEntries(new URLSearchParams(body)), { grant_type: 'authorization_code', code: 'a+b/c=', redirect_uri: 'https://p.example/cb?x=1' })
  })
})

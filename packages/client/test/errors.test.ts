/** How a non-2xx answer becomes a FieldgateError: the body's code first, then the challenge, then the status. */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { FieldgateError, errorFromResponse, isFieldgateError } from '../src/errors.js'

const headers = (h: Record<string, string> = {}) => new Headers(h)

describe('errorFromResponse', () => {
  it("keeps the server's error code and description", () => {
    const err = errorFromResponse(400, headers(), { error: 'invalid_grant', error_description: 'the code was used' }, undefined)
    assert.ok(err instanceof FieldgateError)
    assert.equal(err.code, 'invalid_grant')
    assert.equal(err.status, 400)
    assert.equal(err.description, 'the code was used')
    assert.equal(err.message, 'invalid_grant (HTTP 400): the code was used')
    assert.deepEqual(err.body, { error: 'invalid_grant', error_description: 'the code was used' })
  })

  it('passes an unknown server code through as sent', () => {
    assert.equal(errorFromResponse(400, headers(), { error: 'brand_new_code' }, undefined).code, 'brand_new_code')
  })

  it("names insufficient_scope missing_scope, with the scope from the body's needed or the challenge", () => {
    const fromBody = errorFromResponse(403, headers(), { error: 'missing_scope', needed: 'maps:write' }, undefined)
    assert.deepEqual([fromBody.code, fromBody.scope], ['missing_scope', 'maps:write'])
    const challenge = 'Bearer realm="fieldgate", error="insufficient_scope", scope="alerts:write"'
    const fromChallenge = errorFromResponse(403, headers({ 'www-authenticate': challenge }), undefined, undefined)
    assert.deepEqual([fromChallenge.code, fromChallenge.scope], ['missing_scope', 'alerts:write'])
    const rfcName = errorFromResponse(403, headers({ 'www-authenticate': challenge }), { error: 'insufficient_scope' }, undefined)
    assert.deepEqual([rfcName.code, rfcName.scope], ['missing_scope', 'alerts:write'])
  })

  it('reads a Bearer challenge on 401 as invalid_token, but not a Basic one', () => {
    assert.equal(errorFromResponse(401, headers({ 'www-authenticate': 'Bearer error="invalid_token"' }), undefined, undefined).code, 'invalid_token')
    assert.equal(errorFromResponse(401, headers({ 'www-authenticate': 'Basic realm="x"' }), undefined, undefined).code, 'http_error')
  })

  it('falls back on the status for bodies without an error (a proxy page, an empty body)', () => {
    const cases: [number, string][] = [
      [429, 'rate_limited'],
      [404, 'not_found'],
      [503, 'temporarily_unavailable'],
      [500, 'server_error'],
      [502, 'server_error'],
      [418, 'http_error'],
    ]
    for (const [status, code] of cases) {
      assert.equal(errorFromResponse(status, headers(), '<html>Bad Gateway</html>', undefined).code, code, `HTTP ${status}`)
    }
    assert.equal(errorFromResponse(500, headers(), { error: '' }, undefined).code, 'server_error', 'an empty error string is no code')
    assert.equal(errorFromResponse(500, headers(), { error: 42 }, undefined).code, 'server_error', 'a non-string error is no code')
  })

  it('carries the wait the server asked for', () => {
    assert.equal(errorFromResponse(429, headers(), { error: 'rate_limited' }, 2000).retryAfterMs, 2000)
  })

  it('is told apart by isFieldgateError, with or without a code', () => {
    const err = new FieldgateError('timeout', 'late')
    assert.equal(isFieldgateError(err), true)
    assert.equal(isFieldgateError(err, 'timeout'), true)
    assert.equal(isFieldgateError(err, 'network'), false)
    assert.equal(isFieldgateError(new Error('timeout')), false)
    assert.equal(new FieldgateError('network', 'x', { cause: 'why' }).cause, 'why')
  })
})

/** Reading the bearer token (RFC 6750 §2.1, §2.3), the errors' wire form (§3.1), and scope checks. */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { bearerToken, tokenOf } from '../src/bearer.js'
import { GuardError, GuardUpstreamError, expiredToken, invalidRequest, invalidToken, missingScope, missingToken, revokedToken } from '../src/errors.js'
import { requireScope, type Principal } from '../src/guard.js'

function guardError(fn: () => unknown): GuardError {
  try {
    fn()
  } catch (err) {
    assert.ok(err instanceof GuardError, String(err))
    return err
  }
  assert.fail('did not throw')
}

describe('bearerToken', () => {
  it('reads the Authorization header, the scheme in any case, from node headers or fetch Headers', () => {
    assert.equal(bearerToken({ authorization: 'Bearer abc' }), 'abc')
    assert.equal(bearerToken({ authorization: 'bEaReR   abc  ' }), 'abc')
    assert.equal(bearerToken({ Authorization: 'Bearer abc' }), 'abc')
    assert.equal(bearerToken(new Headers({ authorization: 'Bearer from-headers' })), 'from-headers')
  })

  it('reads access_token from a path or a URL', () => {
    assert.equal(bearerToken({}, '/v1/fields?limit=2&access_token=q1'), 'q1')
    assert.equal(bearerToken({}, new URL('https://svc.example/x?access_token=q2')), 'q2')
    assert.equal(bearerToken({ authorization: 'Basic dXNlcjpwYXNz' }, '/x?access_token=q3'), 'q3', 'another scheme carries no token')
  })

  it('refuses both at once, the parameter twice and the header twice with invalid_request (400)', () => {
    for (const [headers, url] of [
      [{ authorization: 'Bearer a' }, '/x?access_token=b'],
      [{}, '/x?access_token=a&access_token=a'],
      [{ authorization: ['Bearer a', 'Bearer b'] }, undefined],
    ] as const) {
      const err = guardError(() => bearerToken(headers as never, url))
      assert.equal(err.error, 'invalid_request')
      assert.equal(err.status, 400)
      assert.equal(err.wwwAuthenticate, 'Bearer realm="fieldgate", error="invalid_request", DPoP algs="ES256 RS256 PS256 EdDSA"')
    }
  })

  it('answers no token with the bare challenge (401)', () => {
    for (const [headers, url] of [
      [{}, undefined],
      [{ authorization: 'Bearer ' }, '/x'],
      [{}, '/x?access_token='],
      [{ authorization: 'Basic x' }, '/x'],
    ] as const) {
      const err = guardError(() => bearerToken(headers, url))
      assert.equal(err.status, 401)
      assert.equal(err.wwwAuthenticate, 'Bearer realm="fieldgate", DPoP algs="ES256 RS256 PS256 EdDSA"')
      assert.deepEqual(err.toJSON(), { error: 'invalid_token', error_description: 'An access token is required' })
    }
  })
})

describe('tokenOf', () => {
  it('takes a bare token or a Bearer header, and nothing with a space in it', () => {
    assert.equal(tokenOf('eyJ.a.b'), 'eyJ.a.b')
    assert.equal(tokenOf('Bearer eyJ.a.b'), 'eyJ.a.b')
    for (const v of [undefined, null, '', 'Bearer ', 'Bearer    ', 'Basic abc', 'two words']) {
      assert.equal(guardError(() => tokenOf(v)).wwwAuthenticate, 'Bearer realm="fieldgate", DPoP algs="ES256 RS256 PS256 EdDSA"', String(v))
    }
  })
})

describe('errors as Fieldgate answers them', () => {
  it('invalid_token: 401 with the error and description in the challenge', () => {
    for (const [err, description] of [
      [invalidToken(), 'The access token is invalid'],
      [expiredToken(), 'The access token expired'],
      [revokedToken(), 'The access token was revoked'],
    ] as const) {
      assert.equal(err.status, 401)
      assert.equal(err.wwwAuthenticate, `Bearer realm="fieldgate", error="invalid_token", error_description="${description}", DPoP algs="ES256 RS256 PS256 EdDSA"`)
      assert.deepEqual(JSON.parse(JSON.stringify(err)), { error: 'invalid_token', error_description: description })
    }
    assert.equal(missingToken().error, 'invalid_token')
    assert.equal(invalidRequest('x').status, 400)
  })

  it('missing_scope: 403, insufficient_scope in the challenge, needed in the body', () => {
    const err = missingScope('sensors:write')
    assert.equal(err.status, 403)
    assert.equal(err.wwwAuthenticate, 'Bearer realm="fieldgate", error="insufficient_scope", scope="sensors:write", DPoP algs="ES256 RS256 PS256 EdDSA"')
    assert.deepEqual(err.toJSON(), { error: 'missing_scope', error_description: 'This call needs the scope sensors:write', needed: 'sensors:write' })
  })

  it('an upstream failure is a 503 whose body says nothing of the internals', () => {
    const err = new GuardUpstreamError('the JWKS at http://10.0.0.5/jwks answered 500', { cause: new Error('boom') })
    assert.equal(err.status, 503)
    assert.deepEqual(err.toJSON(), { error: 'server_error', error_description: 'The access token could not be checked' })
    assert.ok(!JSON.stringify(err.toJSON()).includes('10.0.0.5'))
    assert.ok(!(err instanceof GuardError), 'never mistaken for the caller’s fault')
  })
})

describe('requireScope', () => {
  const principal = { scopes: ['api', 'sensors:write'] } as unknown as Principal
  it('passes a held scope and refuses others exactly, with no prefix matching', () => {
    requireScope(principal, 'sensors:write')
    requireScope(principal, 'api')
    for (const scope of ['sensors', 'sensors:write:all', 'API', 'maps:write', '']) {
      const err = guardError(() => requireScope(principal, scope))
      assert.equal(err.error, 'missing_scope')
      assert.equal(err.scope, scope)
    }
  })
})

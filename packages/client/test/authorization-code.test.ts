/**
 * FieldgateIntegration's own parts: the authorize URL (state, PKCE, scope), the callback check (state,
 * iss, error, repeats), and what goes over the wire for the exchange, permissions and revocation,
 * against a scripted server on loopback.
 */
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { after, before, describe, it } from 'node:test'
import { FieldgateIntegration } from '../src/authorization-code.js'
import { FieldgateError } from '../src/errors.js'
import { Loopback } from './loopback.js'

const options = { baseUrl: 'https://auth.example/', clientId: 'fm-app', clientSecret: 'shh:secret', redirectUri: 'https://partner.example/cb' }

function code(err: unknown): string {
  assert.ok(err instanceof FieldgateError, String(err))
  return err.code
}

describe('authorizationUrl', () => {
  it('carries response_type, client, redirect, scope, a fresh state and an S256 challenge of the verifier', async () => {
    const integration = new FieldgateIntegration(options)
    const req = await integration.authorizationUrl({ scope: ['fields:read:all', 'maps:write', 'fields:read:all'] })
    const url = new URL(req.url)
    assert.equal(url.origin + url.pathname, 'https://auth.example/oauth/authorize')
    const q = Object.fromEntries(url.searchParams)
    assert.deepEqual(Object.keys(q).sort(), ['client_id', 'code_challenge', 'code_challenge_method', 'redirect_uri', 'response_type', 'scope', 'state'])
    assert.equal(q.response_type, 'code')
    assert.equal(q.client_id, 'fm-app')
    assert.equal(q.redirect_uri, 'https://partner.example/cb')
    assert.equal(q.scope, 'fields:read:all maps:write')
    assert.equal(q.state, req.state)
    assert.equal(q.code_challenge_method, 'S256')
    assert.equal(q.code_challenge, createHash('sha256').update(req.codeVerifier!).digest('base64url'))
    assert.equal(req.redirectUri, 'https://partner.example/cb')
    const again = await integration.authorizationUrl()
    assert.notEqual(again.state, req.state)
    assert.notEqual(again.codeVerifier, req.codeVerifier)
  })

  it("takes the caller's state, path and redirect URI; without PKCE sends no challenge; without scope sends none", async () => {
    const integration = new FieldgateIntegration({ ...options, authorizePath: '/authorize' })
    const req = await integration.authorizationUrl({ state: 'my-state', pkce: false, redirectUri: 'https://partner.example/other' })
    const url = new URL(req.url)
    assert.equal(url.pathname, '/authorize')
    assert.equal(url.searchParams.get('state'), 'my-state')
    assert.equal(url.searchParams.get('redirect_uri'), 'https://partner.example/other')
    assert.equal(url.searchParams.has('code_challenge'), false)
    assert.equal(url.searchParams.has('scope'), false)
    assert.equal(req.codeVerifier, undefined)
  })
})

describe('validateCallback', () => {
  const integration = new FieldgateIntegration({ ...options, issuer: 'https://auth.example/' })
  const cb = (q: string) => `https://partner.example/cb?${q}`

  it('returns code, state and iss for a matching callback, from a URL, a URL object or parameters', () => {
    const expected = { code: 'abc', state: 's1', iss: 'https://auth.example' }
    assert.deepEqual(integration.validateCallback(cb('code=abc&state=s1&iss=https%3A%2F%2Fauth.example'), { state: 's1' }), expected)
    assert.deepEqual(integration.validateCallback(new URL(cb('code=abc&state=s1&iss=https%3A%2F%2Fauth.example%2F')), { state: 's1' }), {
      ...expected,
      iss: 'https://auth.example/',
    })
    assert.deepEqual(integration.validateCallback(new URLSearchParams({ code: 'abc', state: 's1' }), { state: 's1' }), { ...expected, iss: undefined })
  })

  it('refuses another state, a missing one, and an empty expected state', () => {
    assert.equal(code(catching(() => integration.validateCallback(cb('code=abc&state=s2'), { state: 's1' }))), 'state_mismatch')
    assert.equal(code(catching(() => integration.validateCallback(cb('code=abc'), { state: 's1' }))), 'state_mismatch')
    assert.equal(code(catching(() => integration.validateCallback(cb('code=abc&state='), { state: '' }))), 'state_mismatch')
  })

  it('refuses another issuer (RFC 9207)', () => {
    assert.equal(code(catching(() => integration.validateCallback(cb('code=abc&state=s1&iss=https%3A%2F%2Fevil.example'), { state: 's1' }))), 'issuer_mismatch')
  })

  it("turns the server's error into that code, but only once the state matched", () => {
    const denied = catching(() => integration.validateCallback(cb('error=access_denied&error_description=no+thanks&state=s1'), { state: 's1' }))
    assert.equal(code(denied), 'access_denied')
    assert.equal((denied as FieldgateError).description, 'no thanks')
    assert.equal(code(catching(() => integration.validateCallback(cb('error=access_denied&state=forged'), { state: 's1' }))), 'state_mismatch')
  })

  it('refuses repeated parameters and a callback with neither code nor error', () => {
    for (const q of ['code=a&code=b&state=s1', 'code=a&state=s1&state=s1', 'code=a&state=s1&iss=x&iss=y', 'error=a&error=b&state=s1']) {
      assert.equal(code(catching(() => integration.validateCallback(cb(q), { state: 's1' }))), 'invalid_callback', q)
    }
    assert.equal(code(catching(() => integration.validateCallback(cb('state=s1'), { state: 's1' }))), 'invalid_callback')
  })
})

describe('exchange, permissions and revocation on the wire', () => {
  let server: Loopback
  let integration: FieldgateIntegration
  before(async () => {
    server = await Loopback.start()
    integration = new FieldgateIntegration({ ...options, baseUrl: server.origin, retry: { baseDelayMs: 1, random: () => 0 } })
  })
  after(() => server.close())

  it('token.exchange: a form with the code, verifier, redirect URI and credentials; never retried', async () => {
    server.answer({ status: 200, body: { access_token: 'conn-token', farm_id: 'farm-1' } })
    const conn = await integration.exchangeCode({ code: 'the-code', codeVerifier: 'v'.repeat(43) })
    assert.deepEqual(conn, { accessToken: 'conn-token', farmId: 'farm-1', scope: undefined })
    const [req] = server.received
    assert.equal(req!.method, 'POST')
    assert.equal(req!.url, '/v1/token.exchange')
    assert.equal(req!.headers['content-type'], 'application/x-www-form-urlencoded')
    assert.deepEqual(Object.fromEntries(new URLSearchParams(req!.body)), {
      code: 'the-code',
      client_id: 'fm-app',
      client_secret: 'shh:secret',
      code_verifier: 'v'.repeat(43),
      redirect_uri: 'https://partner.example/cb',
    })
    server.answer({ status: 503 }, { status: 200, body: { access_token: 'x' } })
    assert.equal(code(await integration.exchangeCode({ code: 'c' }).catch((e: unknown) => e)), 'temporarily_unavailable')
    assert.equal(server.received.length, 1, 'a single-use code is not presented twice')
  })

  it('the RFC endpoint: Basic authentication, the grant in the form, the scope read back', async () => {
    server.answer({ status: 200, body: { access_token: 'rfc-token', token_type: 'Bearer', scope: 'maps:write fields:read:all' } })
    const conn = await integration.exchangeCode({ code: 'c2', via: 'oauth' })
    assert.deepEqual(conn, { accessToken: 'rfc-token', farmId: undefined, scope: ['maps:write', 'fields:read:all'] })
    const [req] = server.received
    assert.equal(req!.url, '/oauth/token')
    assert.equal(req!.headers.authorization, `Basic ${Buffer.from('fm-app:shh%3Asecret').toString('base64')}`)
    assert.deepEqual(Object.fromEntries(new URLSearchParams(req!.body)), { grant_type: 'authorization_code', code: 'c2', redirect_uri: 'https://partner.example/cb' })
  })

  it('refuses a token answer without an access_token', async () => {
    server.answer({ status: 200, body: { farm_id: 'f' } })
    assert.equal(code(await integration.exchangeCode({ code: 'c' }).catch((e: unknown) => e)), 'invalid_response')
  })

  it('permissions: the Bearer header, string scopes only; a body without scopes is invalid_response', async () => {
    server.answer({ status: 200, body: { scopes: ['fields:read:all', 7, 'maps:write'] } }, { status: 200, body: { nope: true } })
    assert.deepEqual(await integration.permissions('conn-token'), ['fields:read:all', 'maps:write'])
    assert.equal(server.received[0]!.url, '/v1/permissions')
    assert.equal(server.received[0]!.headers.authorization, 'Bearer conn-token')
    assert.equal(code(await integration.permissions('conn-token').catch((e: unknown) => e)), 'invalid_response')
  })

  it('a refused connection token is reported, not retried with another', async () => {
    server.answer({ status: 401, headers: { 'www-authenticate': 'Bearer error="invalid_token"' }, body: { error: 'invalid_token' } })
    assert.equal(
      code(
        await integration
          .connection('gone')
          .fields.list()
          .catch((e: unknown) => e),
      ),
      'invalid_token',
    )
    assert.equal(server.received.length, 1)
  })

  it('disconnect is true only when the server says revoked, and is retried like a read', async () => {
    server.answer({ status: 502 }, { status: 200, body: { revoked: true } })
    assert.equal(await integration.disconnect('conn-token'), true)
    assert.equal(server.received.length, 2)
    assert.deepEqual(JSON.parse(server.received[1]!.body), { access_token: 'conn-token' })
    server.answer({ status: 200, body: { revoked: false } })
    assert.equal(await integration.disconnect('conn-token'), false)
  })

  it('revokeToken: RFC 7009 with Basic and the hint', async () => {
    server.answer({ status: 200 })
    await integration.revokeToken('tok')
    assert.equal(server.received[0]!.url, '/oauth/revoke')
    assert.match(server.received[0]!.headers.authorization!, /^Basic /)
    assert.deepEqual(Object.fromEntries(new URLSearchParams(server.received[0]!.body)), { token: 'tok', token_type_hint: 'access_token' })
  })
})

function catching(fn: () => unknown): unknown {
  try {
    fn()
  } catch (err) {
    return err
  }
  assert.fail('did not throw')
}

/** The client-credentials request in each dialect, the Basic header, the cache key and reading the token response. */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { basicAuthorization, cacheKey, normalizeScope, readTokenResponse, tokenRequest, type ClientCredentials } from '../src/client-credentials.js'
import { FieldgateError } from '../src/errors.js'

const base = 'https://auth.example/prefix/'
const secret = { clientId: 'app:1', clientSecret: 's3cr=t +x' }

/** RFC 6749 §2.3.1 read back the way a server reads it: base64, split at the first colon, form-decode each part. */
function readBasic(header: string): [string, string] {
  assert.match(header, /^Basic [A-Za-z0-9+/]+=*$/)
  const decoded = Buffer.from(header.slice(6), 'base64').toString('utf8')
  const at = decoded.indexOf(':')
  const dec = (s: string) => decodeURIComponent(s.replace(/\+/g, ' '))
  return [dec(decoded.slice(0, at)), dec(decoded.slice(at + 1))]
}

describe('tokenRequest', () => {
  it('FieldEdge: JSON to /oauth/token with target_id', () => {
    const req = tokenRequest(base, { dialect: 'fieldedge', ...secret, targetId: 'tenant-1' })
    assert.equal(req.method, 'POST')
    assert.equal(req.url, 'https://auth.example/prefix/oauth/token')
    assert.equal(req.headers?.['content-type'], 'application/json')
    assert.deepEqual(JSON.parse(req.body!), { client_id: 'app:1', client_secret: 's3cr=t +x', target_id: 'tenant-1', grant_type: 'client_credentials' })
    assert.equal(req.idempotent, true)
    assert.equal(req.headers?.authorization, undefined)
  })

  it('Field Nation: JSON to its own path with scope api', () => {
    const req = tokenRequest(base, { dialect: 'fieldnation', ...secret })
    assert.equal(req.url, 'https://auth.example/prefix/authentication/api/oauth/token')
    assert.deepEqual(JSON.parse(req.body!), { grant_type: 'client_credentials', client_id: 'app:1', client_secret: 's3cr=t +x', scope: 'api' })
  })

  it('standard: a form with client_secret_basic by default, the secret never in the body', () => {
    const req = tokenRequest(base, { dialect: 'standard', ...secret, scope: ['maps:write', 'fields:read:all', 'maps:write'] })
    assert.equal(req.headers?.['content-type'], 'application/x-www-form-urlencoded')
    assert.deepEqual(readBasic(req.headers!.authorization!), ['app:1', 's3cr=t +x'])
    const form = new URLSearchParams(req.body)
    assert.deepEqual(Object.fromEntries(form), { grant_type: 'client_credentials', scope: 'maps:write fields:read:all' })
  })

  it('standard with client_secret_post: the credentials in the form, no Authorization', () => {
    const req = tokenRequest(base, { dialect: 'standard', ...secret, auth: 'client_secret_post', targetId: 't' })
    assert.equal(req.headers?.authorization, undefined)
    assert.deepEqual(Object.fromEntries(new URLSearchParams(req.body)), { grant_type: 'client_credentials', target_id: 't', client_id: 'app:1', client_secret: 's3cr=t +x' })
  })

  it('refuses an unknown dialect', () => {
    assert.throws(
      () => tokenRequest(base, { dialect: 'other', ...secret } as unknown as ClientCredentials),
      (e: unknown) => e instanceof FieldgateError && e.code === 'invalid_request',
    )
  })
})

describe('basicAuthorization (RFC 6749 §2.3.1)', () => {
  it('form-encodes each part before base64, so a colon in the id survives', () => {
    const header = basicAuthorization('id:with:colons', 'pässwörd/+&=')
    assert.deepEqual(readBasic(header), ['id:with:colons', 'pässwörd/+&='])
    assert.ok(!Buffer.from(header.slice(6), 'base64').toString().startsWith('id:with'), 'the colons of the id are encoded')
  })
})

describe('cacheKey and scopes', () => {
  it('is the same for the same scope in any order or spelling', () => {
    const a = cacheKey('https://auth.example/', { dialect: 'standard', ...secret, scope: 'b a' })
    const b = cacheKey('https://auth.example', { dialect: 'standard', ...secret, scope: ['a', 'b', 'a'] })
    assert.equal(a, b)
  })

  it('differs by issuer, client, tenant and scope', () => {
    const k = (c: Partial<ClientCredentials> & object, url = base) => cacheKey(url, { dialect: 'standard', ...secret, ...c } as ClientCredentials)
    const keys = [k({}), k({}, 'https://other.example'), k({ clientId: 'app:2' }), k({ targetId: 't1' }), k({ targetId: 't2' }), k({ scope: 'api' })]
    assert.equal(new Set(keys).size, keys.length)
  })

  it('cannot be forged by a separator in a value', () => {
    const one = cacheKey(base, { dialect: 'fieldedge', clientId: 'a,b', clientSecret: 'x', targetId: 'c' })
    const two = cacheKey(base, { dialect: 'fieldedge', clientId: 'a', clientSecret: 'x', targetId: 'b,c' })
    assert.notEqual(one, two)
  })

  it('normalizes a scope: no empties, no duplicates, undefined when empty', () => {
    assert.equal(normalizeScope('  a  b a '), 'a b')
    assert.equal(normalizeScope([]), undefined)
    assert.equal(normalizeScope(''), undefined)
    assert.equal(normalizeScope(undefined), undefined)
  })
})

describe('readTokenResponse (RFC 6749 §5.1)', () => {
  it('times expires_in from when the request was sent', () => {
    assert.deepEqual(readTokenResponse({ access_token: 'tok', expires_in: 600, token_type: 'Bearer' }, 1000), { accessToken: 'tok', expiresAt: 601_000, obtainedAt: 1000 })
  })

  it('takes a numeric string, and treats a missing or nonsense lifetime as no expiry', () => {
    assert.equal(readTokenResponse({ access_token: 't', expires_in: '60' }, 0).expiresAt, 60_000)
    for (const bad of [undefined, 0, -5, 'soon', '1.5', Number.POSITIVE_INFINITY, null]) {
      assert.equal(readTokenResponse({ access_token: 't', expires_in: bad }, 0).expiresAt, undefined, String(bad))
    }
  })

  it('refuses an answer without an access_token', () => {
    for (const body of [undefined, 'text', {}, { access_token: '' }, { access_token: 42 }]) {
      assert.throws(
        () => readTokenResponse(body, 0),
        (e: unknown) => e instanceof FieldgateError && e.code === 'invalid_response',
        JSON.stringify(body),
      )
    }
  })
})

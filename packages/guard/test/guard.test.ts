/**
 * createGuard against a stand-in issuer on loopback (issuer.ts): JWT verification with its algorithm,
 * typ, issuer, audience, time and claim checks; discovery and the key set (rotation, the cooldown
 * against forged kids, failures that are not the caller's fault); introspection with its short cache.
 */
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { after, before, beforeEach, describe, it } from 'node:test'
import { SignJWT } from 'jose'
import { GuardError, GuardUpstreamError } from '../src/errors.js'
import { createGuard, type GuardOptions } from '../src/guard.js'
import { Issuer, signingKey, type SigningKey } from './issuer.js'

let issuer: Issuer
let key: SigningKey
before(async () => {
  issuer = await Issuer.start()
  key = await signingKey('k1')
})
after(() => issuer.close())
beforeEach(() => {
  issuer.published = [key]
  issuer.hits.clear()
  issuer.introspections.length = 0
  issuer.metadata = (origin) => ({ status: 200, body: { issuer: origin, jwks_uri: `${origin}/jwks.json`, introspection_endpoint: `${origin}/introspect` } })
  issuer.jwks = () => ({ status: 200, body: { keys: issuer.published.map((k) => k.jwk) } })
  issuer.introspect = () => ({ status: 200, body: { active: false } })
})

const guardFor = (over: Partial<GuardOptions> = {}) => createGuard({ issuer: issuer.origin, audience: issuer.audience, ...over })

async function refused(p: Promise<unknown>): Promise<GuardError | GuardUpstreamError> {
  try {
    await p
  } catch (err) {
    assert.ok(err instanceof GuardError || err instanceof GuardUpstreamError, String(err))
    return err
  }
  assert.fail('accepted')
}
const isInvalid = (err: unknown, description = 'The access token is invalid') => {
  assert.ok(err instanceof GuardError, String(err))
  assert.equal(err.error, 'invalid_token')
  assert.equal(err.description, description)
}

describe('JWT access tokens', () => {
  it('accept a token signed by a published key and map its claims, the claims frozen', async () => {
    const guard = guardFor()
    const token = await issuer.token(key, { sub: 'person-7', scope: 'api  sensors:write' })
    const p = await guard.authenticate(`Bearer ${token}`)
    assert.equal(p.kind, 'jwt')
    assert.equal(p.clientId, 'client-1')
    assert.equal(p.tenantId, 'tenant-1')
    assert.equal(p.grantId, 'grant-1')
    assert.equal(p.subject, 'person-7')
    assert.deepEqual(p.scopes, ['api', 'sensors:write'])
    assert.equal(p.expiresAt, (p.claims.exp as number) * 1000)
    assert.ok(Object.isFrozen(p) && Object.isFrozen(p.claims) && Object.isFrozen(p.scopes))
    assert.equal((await guard.authenticate(token)).clientId, 'client-1', 'a bare token too')
    assert.equal(issuer.hitsOf('/.well-known/oauth-authorization-server'), 1, 'discovery once')
    assert.equal(issuer.hitsOf('/jwks.json'), 1, 'the key set once')
  })

  it('accept RS256 and PS256 keys as well', async () => {
    const rs = await signingKey('rs', 'RS256')
    const ps = await signingKey('ps', 'PS256')
    issuer.published = [key, rs, ps]
    const guard = guardFor()
    for (const k of [rs, ps]) assert.equal((await guard.authenticate(await issuer.token(k))).kind, 'jwt', k.alg)
  })

  it('accept EdDSA (Ed25519, RFC 8037) beside RSA keys, as during a rotation, and refuse a tampered one', async () => {
    const ed = await signingKey('ed', 'EdDSA')
    const rs = await signingKey('rs', 'RS256')
    assert.deepEqual([ed.jwk.kty, ed.jwk.crv], ['OKP', 'Ed25519'])
    issuer.published = [rs, ed]
    const guard = guardFor()
    const token = await issuer.token(ed)
    assert.equal((await guard.authenticate(token)).clientId, 'client-1')
    assert.equal((await guard.authenticate(await issuer.token(rs))).clientId, 'client-1')
    const [h, p, s] = token.split('.') as [string, string, string]
    const sig = Buffer.from(s, 'base64url')
    sig[0]! ^= 1
    isInvalid(await refused(guard.authenticate(`${h}.${p}.${sig.toString('base64url')}`)))
    const widened = Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(p, 'base64url').toString()), scope: 'api admin' })).toString('base64url')
    isInvalid(await refused(guard.authenticate(`${h}.${widened}.${s}`)))
    assert.equal(issuer.hitsOf('/jwks.json'), 1, 'refusals of a known kid fetch nothing more')
  })

  it('refuse a wrong issuer, audience or typ, a missing claim, a non-string claim', async () => {
    const guard = guardFor()
    const cases: [Record<string, unknown>, Record<string, unknown>][] = [
      [{ iss: 'https://other.example' }, {}],
      [{ aud: `${issuer.origin}/other` }, {}],
      [{}, { typ: 'JWT' }],
      [{}, { typ: undefined }],
      ...['sub', 'client_id', 'scope', 'tenant_id', 'grant_id', 'jti', 'iat', 'exp'].map((c): [Record<string, unknown>, Record<string, unknown>] => [{ [c]: undefined }, {}]),
      [{ tenant_id: 42 }, {}],
      [{ scope: ['api'] }, {}],
    ]
    for (const [claims, header] of cases) {
      isInvalid(await refused(guard.authenticate(await issuer.token(key, claims, header))))
    }
  })

  it('say expired only for an expired token whose signature holds; clockToleranceSec gives leeway', async () => {
    const past = Math.floor(Date.now() / 1000) - 30
    const expired = await issuer.token(key, { exp: past, iat: past - 600 })
    isInvalid(await refused(guardFor().authenticate(expired)), 'The access token expired')
    const [h, p] = expired.split('.')
    isInvalid(await refused(guardFor().authenticate(`${h}.${p}.${'A'.repeat(86)}`)), 'The access token is invalid')
    assert.equal((await guardFor({ clockToleranceSec: 60 }).authenticate(expired)).kind, 'jwt')
    const later = Math.floor(Date.now() / 1000) + 120
    isInvalid(await refused(guardFor().authenticate(await issuer.token(key, { nbf: later }))))
  })

  it('refuse a token signed by a key that is not published', async () => {
    const stranger = await signingKey('k1')
    isInvalid(await refused(guardFor().authenticate(await issuer.token(stranger))), 'The access token is invalid')
  })

  it('refuse what is not a JWS, names no kid or a foreign algorithm, without any network', async () => {
    const guard = guardFor()
    const hs = await new SignJWT({ client_id: 'x' }).setProtectedHeader({ alg: 'HS256', kid: 'k1', typ: 'at+jwt' }).sign(new TextEncoder().encode('a'.repeat(32)))
    const none = `${Buffer.from(JSON.stringify({ alg: 'none', kid: 'k1' })).toString('base64url')}.${Buffer.from('{}').toString('base64url')}.`
    for (const token of ['not-a-jwt', 'a.b.c', hs, none, await issuer.token(key, {}, { kid: undefined })]) {
      isInvalid(await refused(guard.authenticate(token)))
    }
    isInvalid(await refused(guard.authenticate('x'.repeat(8193))))
    assert.equal(issuer.hits.size, 0, 'nothing fetched')
  })

  it('pin the algorithm to the key: an ES256 key cannot verify a token that says RS256', async () => {
    const rs = await signingKey('k1', 'RS256')
    isInvalid(await refused(guardFor().authenticate(await issuer.token(rs))))
  })

  it('pin EdDSA to Ed25519 keys: EdDSA under an RSA kid and RS256 under an Ed25519 kid are refused', async () => {
    const ed = await signingKey('ed', 'EdDSA')
    const rs = await signingKey('rs', 'RS256')
    issuer.published = [rs, ed]
    const guard = guardFor()
    // Each signed by a real key of the algorithm its header names, under the other key's kid.
    const edUnderRsa = await issuer.token(await signingKey('rs', 'EdDSA'))
    const rsUnderEd = await issuer.token(await signingKey('ed', 'RS256'))
    for (const token of [edUnderRsa, rsUnderEd]) isInvalid(await refused(guard.authenticate(token)))
  })

  it('follow a rotation with one refetch, and let forged kids cause no more within the cooldown', async () => {
    const guard = guardFor({ jwksCooldownMs: 1500 })
    await guard.authenticate(await issuer.token(key))
    assert.equal(issuer.hitsOf('/jwks.json'), 1)
    const next = await signingKey('k2')
    issuer.published = [key, next]
    const early = await issuer.token(next)
    isInvalid(await refused(guard.authenticate(early)))
    assert.equal(issuer.hitsOf('/jwks.json'), 1, 'an unknown kid right after a fetch waits for the cooldown')
    await new Promise((r) => setTimeout(r, 1600))
    assert.equal((await guard.authenticate(early)).kind, 'jwt')
    assert.equal(issuer.hitsOf('/jwks.json'), 2, 'one refetch for the new kid')
    const forged = await Promise.all(Array.from({ length: 20 }, async (_, i) => issuer.token(await signingKey(`forged-${i}`))))
    for (const token of forged) isInvalid(await refused(guard.authenticate(token)))
    assert.equal(issuer.hitsOf('/jwks.json'), 2, 'the cooldown holds the forged kids back')
  })

  it('use configured endpoints without discovery', async () => {
    const guard = guardFor({ jwksUri: `${issuer.origin}/jwks.json` })
    await guard.authenticate(await issuer.token(key))
    assert.equal(issuer.hitsOf('/.well-known/oauth-authorization-server'), 0)
  })
})

describe('upstream failures', () => {
  it('metadata that fails or names another issuer is an upstream error, and discovery is tried again', async () => {
    const guard = guardFor()
    const token = await issuer.token(key)
    issuer.metadata = () => ({ status: 500, body: 'oops' })
    const down = await refused(guard.authenticate(token))
    assert.ok(down instanceof GuardUpstreamError && /answered 500/.test(down.message), String(down))
    issuer.metadata = () => ({ status: 200, body: { issuer: 'https://impostor.example', jwks_uri: `${issuer.origin}/jwks.json` } })
    const wrong = await refused(guard.authenticate(token))
    assert.ok(wrong instanceof GuardUpstreamError && /impostor/.test(wrong.message), String(wrong))
    issuer.metadata = (origin) => ({ status: 200, body: { issuer: origin, jwks_uri: `${origin}/jwks.json` } })
    assert.equal((await guard.authenticate(token)).kind, 'jwt', 'recovered without a restart')
    assert.equal(issuer.hitsOf('/.well-known/oauth-authorization-server'), 3)
  })

  it('metadata without a jwks_uri is an upstream error', async () => {
    issuer.metadata = (origin) => ({ status: 200, body: { issuer: origin } })
    const missing = await refused(guardFor().authenticate(await issuer.token(key)))
    assert.ok(missing instanceof GuardUpstreamError && /has no jwks_uri/.test(missing.message), String(missing))
  })

  it('a key set that cannot be had is an upstream error (503), never invalid_token', async () => {
    issuer.jwks = () => ({ status: 500, body: { error: 'server_error' } })
    const err = await refused(guardFor().authenticate(await issuer.token(key)))
    assert.ok(err instanceof GuardUpstreamError, String(err))
    assert.equal(err.status, 503)
  })

  it('an unreachable issuer is an upstream error naming the URL', async () => {
    const gone = await Issuer.start()
    const origin = gone.origin
    await gone.close()
    const guard = createGuard({ issuer: origin, audience: `${origin}/api`, timeoutMs: 2000 })
    const err = await refused(guard.authenticate(await issuer.token(key)))
    assert.ok(err instanceof GuardUpstreamError && err.message.includes(origin), String(err))
  })

  it('refuses to be made without issuer and audience', () => {
    assert.throws(() => createGuard({ issuer: '', audience: 'x' }), TypeError)
    assert.throws(() => createGuard({ issuer: 'x', audience: '' }), TypeError)
  })
})

describe('opaque tokens by introspection (RFC 7662)', () => {
  const opaque = (n: number) => createHash('sha256').update(String(n)).digest('hex')
  const active = (over: Record<string, unknown> = {}) => ({
    status: 200,
    body: {
      active: true,
      iss: issuer.origin,
      aud: issuer.audience,
      client_id: 'partner',
      tenant_id: 'farm-1',
      grant_id: 'g-1',
      scope: 'fields:read:all',
      sub: 'person-1',
      ...over,
    },
  })
  const withIntrospection = (over: Partial<GuardOptions> = {}) => guardFor({ introspection: { clientId: 'svc:id', clientSecret: 'p@ss word' }, ...over })

  it('without introspection configured, refuses them without asking', async () => {
    isInvalid(await refused(guardFor().authenticate(opaque(1))))
    assert.equal(issuer.hits.size, 0)
  })

  it('asks with client_secret_basic, form-encoded inside, and maps the answer', async () => {
    issuer.introspect = () => active()
    const p = await withIntrospection().authenticate(`Bearer ${opaque(2)}`)
    assert.deepEqual([p.kind, p.clientId, p.tenantId, p.grantId, p.subject, p.expiresAt], ['opaque', 'partner', 'farm-1', 'g-1', 'person-1', undefined])
    assert.deepEqual(p.scopes, ['fields:read:all'])
    const [seen] = issuer.introspections
    assert.deepEqual(seen!.form, { token: opaque(2), token_type_hint: 'access_token' })
    const decoded = Buffer.from(seen!.authorization!.replace(/^Basic /, ''), 'base64').toString()
    assert.equal(decoded, 'svc%3Aid:p%40ss%20word')
  })

  it('reuses an active answer for opaqueCacheMs, shares one request between concurrent checks', async () => {
    issuer.introspect = () => active()
    const guard = withIntrospection({ opaqueCacheMs: 300 })
    await Promise.all(Array.from({ length: 10 }, () => guard.authenticate(opaque(3))))
    await guard.authenticate(opaque(3))
    assert.equal(issuer.introspections.length, 1)
    await new Promise((r) => setTimeout(r, 350))
    await guard.authenticate(opaque(3))
    assert.equal(issuer.introspections.length, 2, 'asked again once the cache ran out')
    guard.forget(opaque(3))
    await guard.authenticate(opaque(3))
    assert.equal(issuer.introspections.length, 3, 'forget drops it at once')
  })

  it('never caches a refusal, nor past the exp the answer gives, nor with opaqueCacheMs 0', async () => {
    const guard = withIntrospection({ opaqueCacheMs: 60_000 })
    for (let i = 0; i < 3; i++) isInvalid(await refused(guard.authenticate(opaque(4))), 'The access token was revoked')
    assert.equal(issuer.introspections.length, 3)
    issuer.introspect = () => active({ exp: Math.floor(Date.now() / 1000) - 1 })
    await guard.authenticate(opaque(5))
    await guard.authenticate(opaque(5))
    assert.equal(issuer.introspections.length, 5, 'an answer already past its exp is not kept')
    issuer.introspect = () => active()
    const uncached = withIntrospection({ opaqueCacheMs: 0 })
    await uncached.authenticate(opaque(6))
    await uncached.authenticate(opaque(6))
    assert.equal(issuer.introspections.length, 7)
  })

  it("treats a refusal of the guard's credentials, another issuer, a partial or odd answer as upstream errors", async () => {
    const guard = withIntrospection()
    const answers: [ReturnType<typeof active>, RegExp][] = [
      [{ status: 401, body: { error: 'invalid_client' } } as never, /refused the guard's client credentials \(401 invalid_client\)/],
      [active({ iss: 'https://impostor.example' }), /impostor/],
      [active({ grant_id: undefined }), /without client_id, tenant_id, grant_id and scope/],
      [{ status: 500, body: { error: 'server_error' } } as never, /answered 500 server_error/],
      [{ status: 200, body: 'not json' } as never, /answered 200/],
    ]
    for (const [answer, message] of answers) {
      issuer.introspect = () => answer
      const err = await refused(guard.authenticate(opaque(7)))
      assert.ok(err instanceof GuardUpstreamError, `${JSON.stringify(answer)} → ${String(err)}`)
      assert.match(err.message, message)
    }
  })

  it('only 64 lower-case hex characters count as opaque; anything else is tried as a JWT', async () => {
    issuer.introspect = () => active()
    const guard = withIntrospection()
    isInvalid(await refused(guard.authenticate(opaque(8).toUpperCase())))
    isInvalid(await refused(guard.authenticate(opaque(8).slice(1))))
    assert.equal(issuer.introspections.length, 0)
  })
})

/**
 * The guard's RFC 9449 DPoP check and introspectAll, against the stand-in issuer on loopback: a bound
 * token (cnf.jkt, in a JWT or an introspection answer) only with the DPoP scheme and a proof by its key
 * for this request; the §4.3 negatives; replay in process (bounded) and through a shared hook; and
 * introspection of every token when asked, cached no longer than opaqueCacheMs.
 */
import assert from 'node:assert/strict'
import { after, before, beforeEach, describe, it } from 'node:test'
import { GuardError } from '../src/errors.js'
import { createGuard, requireScope, type GuardOptions } from '../src/guard.js'
import { Issuer, signingKey, type SigningKey } from './issuer.js'
import { privateJwk, proof, proofKey, type ProofKey } from './proofs.js'

let issuer: Issuer
let key: SigningKey
before(async () => {
  issuer = await Issuer.start()
  key = await signingKey('k1')
})
after(() => issuer.close())
beforeEach(() => {
  issuer.published = [key]
  issuer.introspections.length = 0
  issuer.introspect = () => ({ status: 200, body: { active: false } })
})

const URL_ = 'https://sensors.example/readings'
const introspection = { clientId: 'rs', clientSecret: 'rs-secret' }
const guardFor = (over: Partial<GuardOptions> = {}) => createGuard({ issuer: issuer.origin, audience: issuer.audience, ...over })

async function refused(p: Promise<unknown>, error: string, description?: RegExp): Promise<GuardError> {
  const err = await p.then(
    () => assert.fail('accepted'),
    (e: unknown) => e,
  )
  assert.ok(err instanceof GuardError, String(err))
  assert.equal(err.error, error, err.description)
  if (description) assert.match(err.description, description)
  return err
}

describe('DPoP-bound tokens (RFC 9449 §7)', () => {
  let pk: ProofKey
  let bound: string
  let plain: string
  before(async () => {
    pk = proofKey()
    bound = await issuer.token(key, { cnf: { jkt: pk.jkt } })
    plain = await issuer.token(key)
  })
  const headers = (token: string, dpop?: string | string[]) => ({ authorization: `DPoP ${token}`, ...(dpop === undefined ? {} : { dpop }) })

  it('accept a bound JWT with the DPoP scheme and a proof by its key, from node:http headers, fetch Headers or authenticate', async () => {
    const guard = guardFor()
    const p = await guard.authenticateRequest({ headers: headers(bound, proof(pk, 'GET', URL_, bound)), method: 'GET', url: URL_ })
    assert.equal(p.jkt, pk.jkt)
    assert.equal(p.clientId, 'client-1')
    const viaFetch = await guard.authenticateRequest({ headers: new Headers(headers(bound, proof(pk, 'GET', URL_, bound))), method: 'GET', url: new URL(`${URL_}?page=2`) })
    assert.equal(viaFetch.jkt, pk.jkt)
    const viaAuthenticate = await guard.authenticate(`DPoP ${bound}`, { method: 'POST', url: URL_, dpop: proof(pk, 'POST', URL_, bound) })
    assert.equal(viaAuthenticate.jkt, pk.jkt)
  })

  it('refuse a bound token as a Bearer token, and an unbound one with the DPoP scheme', async () => {
    const guard = guardFor()
    const asBearer = await refused(guard.authenticate(`Bearer ${bound}`), 'invalid_token', /DPoP-bound/)
    assert.match(asBearer.wwwAuthenticate, /^Bearer realm="fieldgate", error="invalid_token"/)
    await refused(guard.authenticateRequest({ headers: { authorization: `Bearer ${bound}`, dpop: proof(pk, 'GET', URL_, bound) }, method: 'GET', url: URL_ }), 'invalid_token')
    await refused(guard.authenticateRequest({ headers: {}, method: 'GET', url: `${URL_}?access_token=${bound}` }), 'invalid_token', /DPoP-bound/)
    const unbound = await refused(
      guard.authenticateRequest({ headers: headers(plain, proof(pk, 'GET', URL_, plain)), method: 'GET', url: URL_ }),
      'invalid_token',
      /not DPoP-bound/,
    )
    assert.match(unbound.wwwAuthenticate, /^Bearer realm="fieldgate", DPoP algs="ES256 RS256 PS256 EdDSA", error="invalid_token"/)
    assert.equal((await guard.authenticate(`Bearer ${plain}`)).jkt, undefined)
  })

  it('refuse a missing proof, or one by another key, in the DPoP challenge', async () => {
    const guard = guardFor()
    const missing = await refused(guard.authenticateRequest({ headers: headers(bound), method: 'GET', url: URL_ }), 'invalid_dpop_proof', /required/)
    assert.equal(missing.status, 401)
    assert.equal(missing.wwwAuthenticate, `Bearer realm="fieldgate", DPoP algs="ES256 RS256 PS256 EdDSA", error="invalid_dpop_proof", error_description="${missing.description}"`)
    assert.match(missing.challenge('https://sensors.example/.well-known/oauth-protected-resource'), /^Bearer realm="fieldgate", resource_metadata="[^"]+", DPoP algs=/)
    await refused(guard.authenticate(`DPoP ${bound}`), 'invalid_dpop_proof', /required/)
    await refused(guard.authenticateRequest({ headers: headers(bound, proof(proofKey(), 'GET', URL_, bound)), method: 'GET', url: URL_ }), 'invalid_token', /bound to/)
  })

  it('refuse a proof for another request, token or time, or of the wrong make (§4.3)', async () => {
    const guard = guardFor()
    const check = (p: string, method = 'GET', url = URL_) => guard.authenticateRequest({ headers: headers(bound, p), method, url })
    const now = Math.floor(Date.now() / 1000)
    await refused(check(proof(pk, 'GET', 'https://sensors.example/other', bound)), 'invalid_dpop_proof', /htu/)
    await refused(check(proof(pk, 'GET', 'https://other.example/readings', bound)), 'invalid_dpop_proof', /htu/)
    await refused(check(proof(pk, 'POST', URL_, bound)), 'invalid_dpop_proof', /htm/)
    await refused(check(proof(pk, 'GET', URL_, plain)), 'invalid_dpop_proof', /ath/)
    await refused(check(proof(pk, 'GET', URL_, bound, { claims: { ath: undefined } })), 'invalid_dpop_proof', /ath/)
    await refused(check(proof(pk, 'GET', URL_, bound, { claims: { iat: now - 61 } })), 'invalid_dpop_proof', /too old/)
    await refused(check(proof(pk, 'GET', URL_, bound, { claims: { iat: now + 30 } })), 'invalid_dpop_proof', /ahead/)
    await refused(check(proof(pk, 'GET', URL_, bound, { header: { typ: 'JWT' } })), 'invalid_dpop_proof', /typ/)
    await refused(check(proof(pk, 'GET', URL_, bound, { header: { alg: 'none' } })), 'invalid_dpop_proof')
    await refused(check(proof(pk, 'GET', URL_, bound, { header: { alg: 'HS256' } })), 'invalid_dpop_proof', /signed with one of/)
    await refused(check(proof(pk, 'GET', URL_, bound, { header: { jwk: privateJwk(pk) } })), 'invalid_dpop_proof', /public key/)
    await refused(check(proof(pk, 'GET', URL_, bound, { claims: { jti: undefined } })), 'invalid_dpop_proof', /jti/)
    await refused(check([proof(pk, 'GET', URL_, bound), proof(pk, 'GET', URL_, bound)].join(', ')), 'invalid_dpop_proof', /one DPoP proof/)
    assert.equal((await check(proof(pk, 'GET', 'HTTPS://Sensors.Example:443/readings?x=1', bound))).jkt, pk.jkt, 'normalised, query ignored')
  })

  it('refuse a replayed proof, remembering a bounded number in process', async () => {
    const guard = guardFor({ dpop: { replayCacheSize: 2 } })
    const check = (p: string) => guard.authenticateRequest({ headers: headers(bound, p), method: 'GET', url: URL_ })
    const [a, b, c] = [proof(pk, 'GET', URL_, bound), proof(pk, 'GET', URL_, bound), proof(pk, 'GET', URL_, bound)]
    await check(a)
    await refused(check(a), 'invalid_dpop_proof', /used before/)
    await check(b)
    await check(c)
    await refused(check(c), 'invalid_dpop_proof', /used before/)
    await refused(check(b), 'invalid_dpop_proof', /used before/)
    // Past the bound the oldest is forgotten: the replay hook is how to remember more, or across instances.
    assert.equal((await check(a)).jkt, pk.jkt)
  })

  it('ask the replay hook, shared by two guards, and refuse what it has seen', async () => {
    const seen = new Map<string, number>()
    const calls: number[] = []
    const replay = (jtiHash: string, expiresAt: number) => {
      calls.push(expiresAt)
      if (seen.has(jtiHash)) return false
      seen.set(jtiHash, expiresAt)
      return true
    }
    const [one, two] = [guardFor({ dpop: { replay } }), guardFor({ dpop: { replay: async (h, e) => replay(h, e) } })]
    const p = proof(pk, 'GET', URL_, bound)
    await one.authenticateRequest({ headers: headers(bound, p), method: 'GET', url: URL_ })
    await refused(two.authenticateRequest({ headers: headers(bound, p), method: 'GET', url: URL_ }), 'invalid_dpop_proof', /used before/)
    const iatMs = Math.floor(Date.now() / 1000) * 1000
    assert.ok(calls[0]! >= iatMs + 60_000 && calls[0]! <= iatMs + 70_000, `remembered until ${calls[0]}, some 65 s after iat`)
    assert.equal([...seen.keys()][0]!.length, 43, 'a SHA-256, not the jti itself')
  })

  it('need the absolute URL of the request to check htu', async () => {
    const guard = guardFor()
    await assert.rejects(guard.authenticateRequest({ headers: headers(bound, proof(pk, 'GET', URL_, bound)), method: 'GET', url: '/readings' }), TypeError)
  })

  it('answer missing_scope in the DPoP challenge for a bound principal', async () => {
    const p = await guardFor().authenticateRequest({ headers: headers(bound, proof(pk, 'GET', URL_, bound)), method: 'GET', url: URL_ })
    assert.throws(
      () => requireScope(p, 'maps:write'),
      (err: unknown) =>
        err instanceof GuardError && err.wwwAuthenticate === 'Bearer realm="fieldgate", DPoP algs="ES256 RS256 PS256 EdDSA", error="insufficient_scope", scope="maps:write"',
    )
  })

  it('refuse a JWT whose cnf is a confirmation other than DPoP’s', async () => {
    const mtls = await issuer.token(key, { cnf: { 'x5t#S256': 'abc' } })
    await refused(guardFor().authenticate(mtls), 'invalid_token')
  })

  it('hold an opaque token to the key its introspection answer names (RFC 9449 §6.2)', async () => {
    const opaque = 'ab'.repeat(32)
    issuer.introspect = () => ({
      status: 200,
      body: { active: true, aud: issuer.audience, token_type: 'DPoP', client_id: 'c', tenant_id: 't', grant_id: 'g', scope: 'api', cnf: { jkt: pk.jkt } },
    })
    const guard = guardFor({ introspection })
    await refused(guard.authenticate(opaque), 'invalid_token', /DPoP-bound/)
    const p = await guard.authenticateRequest({ headers: headers(opaque, proof(pk, 'GET', URL_, opaque)), method: 'GET', url: URL_ })
    assert.equal(p.kind, 'opaque')
    assert.equal(p.jkt, pk.jkt)
  })
})

describe('introspectAll', () => {
  it('needs introspection credentials', () => {
    assert.throws(() => guardFor({ introspectAll: true }), TypeError)
  })

  it('introspects a JWT whose signature holds, refuses it once Fieldgate says inactive, and caches the answer no longer than opaqueCacheMs', async () => {
    const token = await issuer.token(key)
    let active = true
    issuer.introspect = () => ({ status: 200, body: active ? { active: true, aud: issuer.audience, client_id: 'client-1' } : { active: false } })
    const guard = guardFor({ introspection, introspectAll: true, opaqueCacheMs: 200 })
    const p = await guard.authenticate(token)
    assert.equal(p.kind, 'jwt', 'the principal is the verified JWT')
    assert.equal(issuer.introspections.length, 1)
    assert.equal(issuer.introspections[0]!.form.token, token)
    await guard.authenticate(token)
    assert.equal(issuer.introspections.length, 1, 'the cached answer')
    active = false
    await new Promise((r) => setTimeout(r, 250))
    await refused(guard.authenticate(token), 'invalid_token', /revoked/)
    assert.equal(issuer.introspections.length, 2)
  })

  it('refuses a forged JWT without asking Fieldgate', async () => {
    const token = await issuer.token(key)
    const guard = guardFor({ introspection, introspectAll: true })
    await refused(guard.authenticate(`${token.slice(0, -4)}AAAA`), 'invalid_token')
    assert.equal(issuer.introspections.length, 0)
  })

  it('without it, a JWT is never introspected', async () => {
    const guard = guardFor({ introspection })
    await guard.authenticate(await issuer.token(key))
    assert.equal(issuer.introspections.length, 0)
  })
})

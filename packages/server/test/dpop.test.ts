/**
 * RFC 9449 DPoP at Fieldgate's protected API, through app.inject: a bound token goes only with the DPoP
 * scheme and a proof by its key, for this request (htm, htu, ath), fresh (iat) and never used before,
 * on any instance; every refusal is a 401 with the DPoP challenge naming the error (§7.1). Also the
 * nonce round trip (§9), introspection (§6.2) and the gateways' check. Bound tokens are client-credentials
 * JWTs signed again with cnf.jkt by the server's own key ring (support/dpop.ts).
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { after, before, describe, it } from 'node:test'
import { rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { LightMyRequestResponse } from 'fastify'
import * as oauth from 'oauth4webapi'
import { boundToken, dpopAuthorization, dpopKey, dpopProof, eachEngine, getToken, privateApp, privateJwk, startServer, tempDir, type DpopKey, type TestServer } from './helpers.js'

const WORKORDERS = '/api/rest/v2/workorders'
const ALGS = 'DPoP algs="ES256 RS256 PS256 EdDSA"'

type Headers = Record<string, string | string[]>

/** A client-credentials JWT, through app.inject. */
async function issue(server: TestServer, client: { clientId: string; clientSecret: string }): Promise<string> {
  const res = await server.app.inject({
    method: 'POST',
    url: '/oauth/token',
    payload: { grant_type: 'client_credentials', client_id: client.clientId, client_secret: client.clientSecret },
  })
  assert.equal(res.statusCode, 200, res.body)
  return res.json().access_token
}

const get = (server: TestServer, path: string, headers: Headers, method: 'GET' | 'POST' = 'GET'): Promise<LightMyRequestResponse> =>
  server.app.inject({ method, url: path, headers, ...(method === 'POST' ? { payload: { title: 'Fence' } } : {}) })

/** The 401 RFC 9449 §7.1 asks for: the error in the body and in the DPoP challenge, after a bare Bearer one. */
function refusedWith(res: LightMyRequestResponse, error: string, description?: RegExp): void {
  assert.equal(res.statusCode, 401, res.body)
  assert.equal(res.json().error, error)
  if (description) assert.match(res.json().error_description, description)
  const challenge = String(res.headers['www-authenticate'])
  assert.match(challenge, /^Bearer realm="fieldgate", resource_metadata="[^"]+", DPoP algs="ES256 RS256 PS256 EdDSA", /)
  assert.match(challenge, new RegExp(`DPoP algs="[^"]+", error="${error}"`))
}

describe('DPoP at the protected API', () => {
  let server: TestServer
  let key: DpopKey
  let plain: string
  let bound: string
  const url = (path = WORKORDERS) => `${server.issuer}${path}`
  /** A correct request with `bound`, with the proof's claims or header changed by `over`. */
  const proofFor = (token: string, over: Parameters<typeof dpopProof>[2] = {}, claims: Partial<Parameters<typeof dpopProof>[1]> = {}) =>
    dpopProof(key, { htm: 'GET', htu: url(), accessToken: token, ...claims }, over)
  const call = (proof: string | string[], token = bound, path = WORKORDERS) => get(server, path, { ...dpopAuthorization(token), dpop: proof })

  before(async () => {
    server = await startServer({ listen: false })
    const f = await privateApp(server.storage, { scopes: 'api' })
    plain = await issue(server, f)
    key = dpopKey('ES256')
    bound = await boundToken(server, plain, key.jkt)
  })
  after(() => server?.close())

  it('accepts a bound token with the DPoP scheme and a proof by its key, with every algorithm', async () => {
    for (const alg of ['ES256', 'RS256', 'PS256', 'EdDSA'] as const) {
      const k = dpopKey(alg)
      const token = await boundToken(server, plain, k.jkt)
      const res = await call(dpopProof(k, { htm: 'GET', htu: url(), accessToken: token }), token)
      assert.equal(res.statusCode, 200, `${alg}: ${res.body}`)
    }
    // htu has no query: the request's query is not part of what it names (§4.3 point 9).
    assert.equal((await call(proofFor(bound), bound, `${WORKORDERS}?limit=5`)).statusCode, 200)
    // Normalised alike (RFC 3986 §6.2.2, §6.2.3): scheme and host case, the default port, percent-encoded unreserved characters.
    const loud = url().replace('http://', 'HTTP://').replace('/api/', '/%61pi/')
    assert.equal((await call(proofFor(bound, {}, { htu: loud }))).statusCode, 200)
    // A POST needs a proof for a POST.
    const posted = await get(server, WORKORDERS, { ...dpopAuthorization(bound), dpop: dpopProof(key, { htm: 'POST', htu: url(), accessToken: bound }) }, 'POST')
    assert.equal(posted.statusCode, 201, posted.body)
  })

  it('refuses a bound token sent as a Bearer token, and an unbound one sent with the DPoP scheme', async () => {
    const asBearer = await get(server, WORKORDERS, { authorization: `Bearer ${bound}`, dpop: proofFor(bound) })
    assert.equal(asBearer.statusCode, 401)
    assert.equal(asBearer.json().error, 'invalid_token')
    assert.match(asBearer.json().error_description, /DPoP-bound/)
    assert.match(
      String(asBearer.headers['www-authenticate']),
      /^Bearer realm="fieldgate", error="invalid_token", error_description="[^"]+", resource_metadata="[^"]+", DPoP algs="[^"]+"$/,
    )
    const inQuery = await get(server, `${WORKORDERS}?access_token=${bound}`, {})
    assert.equal(inQuery.statusCode, 401, 'the query carries bearer tokens only')

    const unbound = await call(proofFor(plain), plain)
    refusedWith(unbound, 'invalid_token', /not DPoP-bound/)
    // The unbound token still works as what it is.
    assert.equal((await get(server, WORKORDERS, { authorization: `Bearer ${plain}` })).statusCode, 200)
  })

  it('refuses a replayed proof: the same jti twice', async () => {
    const proof = proofFor(bound)
    assert.equal((await call(proof)).statusCode, 200)
    refusedWith(await call(proof), 'invalid_dpop_proof', /used before/)
    // The same jti in a new proof (a new signature) is the same proof as far as replay goes.
    const jti = randomBytes(8).toString('hex')
    assert.equal((await call(proofFor(bound, {}, { jti }))).statusCode, 200)
    refusedWith(await call(proofFor(bound, {}, { jti })), 'invalid_dpop_proof', /used before/)
  })

  it('refuses a proof for another request: wrong htu, wrong htm', async () => {
    refusedWith(await call(proofFor(bound, {}, { htu: url('/api/rest/v2/other') })), 'invalid_dpop_proof', /htu/)
    refusedWith(await call(proofFor(bound, {}, { htu: url().replace('127.0.0.1', 'localhost') })), 'invalid_dpop_proof', /htu/)
    refusedWith(await call(proofFor(bound, {}, { htu: url().replace('http:', 'https:') })), 'invalid_dpop_proof', /htu/)
    refusedWith(await call(proofFor(bound, {}, { htm: 'POST' })), 'invalid_dpop_proof', /htm/)
    refusedWith(await call(proofFor(bound, {}, { htm: 'get' })), 'invalid_dpop_proof', /htm/)
  })

  it('refuses a proof whose ath is not the hash of this token, or has none', async () => {
    refusedWith(await call(proofFor(bound, {}, { accessToken: plain })), 'invalid_dpop_proof', /ath/)
    refusedWith(await call(proofFor(bound, { claims: { ath: undefined } })), 'invalid_dpop_proof', /ath/)
  })

  it('refuses a proof whose iat is too old or in the future', async () => {
    const now = Math.floor(Date.now() / 1000)
    refusedWith(await call(proofFor(bound, {}, { iat: now - 120 })), 'invalid_dpop_proof', /too old/)
    refusedWith(await call(proofFor(bound, {}, { iat: now + 60 })), 'invalid_dpop_proof', /ahead/)
    refusedWith(await call(proofFor(bound, { claims: { iat: String(now) } })), 'invalid_dpop_proof', /iat/)
    assert.equal((await call(proofFor(bound, {}, { iat: now - 50 }))).statusCode, 200, 'within the 60 s window')
  })

  it('refuses a proof with the wrong typ, alg none or HS256, a private key in its jwk, or no jwk', async () => {
    refusedWith(await call(proofFor(bound, { header: { typ: 'JWT' } })), 'invalid_dpop_proof', /typ/)
    refusedWith(await call(proofFor(bound, { header: { typ: undefined } })), 'invalid_dpop_proof', /typ/)
    refusedWith(await call(proofFor(bound, { header: { alg: 'none' } })), 'invalid_dpop_proof')
    refusedWith(await call(proofFor(bound, { header: { alg: 'HS256' } })), 'invalid_dpop_proof', /signed with one of/)
    refusedWith(await call(proofFor(bound, { header: { jwk: privateJwk(key) } })), 'invalid_dpop_proof', /public key/)
    refusedWith(await call(proofFor(bound, { header: { jwk: undefined } })), 'invalid_dpop_proof', /jwk/)
    refusedWith(await call(proofFor(bound, { header: { alg: 'RS256' } })), 'invalid_dpop_proof', /not a public key for RS256/)
    refusedWith(await call(proofFor(bound, { header: { crit: ['exp'] } })), 'invalid_dpop_proof', /crit/)
    const tampered = proofFor(bound).split('.')
    tampered[1] = Buffer.from(JSON.stringify({ htm: 'GET', htu: url(), iat: Math.floor(Date.now() / 1000), jti: 'x' })).toString('base64url')
    refusedWith(await call(tampered.join('.')), 'invalid_dpop_proof', /signature/)
  })

  it('refuses a missing proof, a malformed one, two DPoP headers, a jti that is not a string', async () => {
    refusedWith(await get(server, WORKORDERS, dpopAuthorization(bound)), 'invalid_dpop_proof', /required/)
    refusedWith(await call('not-a-jwt'), 'invalid_dpop_proof', /one DPoP proof/)
    refusedWith(await call([proofFor(bound), proofFor(bound)]), 'invalid_dpop_proof', /one DPoP proof/)
    refusedWith(await call(proofFor(bound, { claims: { jti: 42 } })), 'invalid_dpop_proof', /jti/)
    refusedWith(await call(proofFor(bound, { claims: { jti: 'x'.repeat(257) } })), 'invalid_dpop_proof', /jti/)
  })

  it('refuses a proof by another key than the one the token is bound to', async () => {
    const other = dpopKey('ES256')
    const res = await call(dpopProof(other, { htm: 'GET', htu: url(), accessToken: bound }))
    refusedWith(res, 'invalid_token', /key the access token is bound to/)
  })

  it('answers insufficient_scope in the DPoP challenge for a bound token', async () => {
    const res = await server.app.inject({
      method: 'POST',
      url: '/v1/alerts',
      headers: { ...dpopAuthorization(bound), dpop: dpopProof(key, { htm: 'POST', htu: url('/v1/alerts'), accessToken: bound }) },
      payload: { title: 'Gate open', severity: 'warning' },
    })
    assert.equal(res.statusCode, 403, res.body)
    assert.equal(res.json().error, 'missing_scope')
    assert.match(
      String(res.headers['www-authenticate']),
      /^Bearer realm="fieldgate", resource_metadata="[^"]+", DPoP algs="[^"]+", error="insufficient_scope", scope="alerts:write"$/,
    )
  })

  it('introspection names a bound token DPoP with its cnf.jkt (RFC 9449 §6.2), and a bearer token Bearer', async () => {
    const rs = await privateApp(server.storage, { scopes: 'api fieldgate:introspect' })
    const ask = async (token: string) =>
      (await server.app.inject({ method: 'POST', url: '/oauth/introspect', payload: { token, client_id: rs.clientId, client_secret: rs.clientSecret } })).json()
    const answer = await ask(bound)
    assert.equal(answer.active, true)
    assert.equal(answer.token_type, 'DPoP')
    assert.deepEqual(answer.cnf, { jkt: key.jkt })
    const unbound = await ask(plain)
    assert.equal(unbound.token_type, 'Bearer')
    assert.equal(unbound.cnf, undefined)
  })

  it('RFC 9728 metadata names the DPoP algorithms, and says DPoP is not required', async () => {
    const doc = (await server.app.inject({ url: '/.well-known/oauth-protected-resource/api' })).json()
    assert.deepEqual(doc.dpop_signing_alg_values_supported, ['ES256', 'RS256', 'PS256', 'EdDSA'])
    assert.equal(doc.dpop_bound_access_tokens_required, false)
  })
})

describe('DPoP nonces (FIELDGATE_DPOP_NONCE=on)', () => {
  let server: TestServer
  before(async () => {
    server = await startServer({ overrides: { dpop: { nonce: true } } })
  })
  after(() => server?.close())

  it('answers use_dpop_nonce with DPoP-Nonce, then accepts a proof carrying that nonce', async () => {
    const f = await privateApp(server.storage, { scopes: 'api' })
    const key = dpopKey()
    const token = await boundToken(server, await getToken(server, f), key.jkt)
    const htu = server.url(WORKORDERS)
    const first = await get(server, WORKORDERS, { ...dpopAuthorization(token), dpop: dpopProof(key, { htm: 'GET', htu, accessToken: token }) })
    refusedWith(first, 'use_dpop_nonce')
    const nonce = first.headers['dpop-nonce']
    assert.equal(typeof nonce, 'string')
    assert.match(String(nonce), /^[A-Za-z0-9_-]{43}$/)
    const made = await get(server, WORKORDERS, { ...dpopAuthorization(token), dpop: dpopProof(key, { htm: 'GET', htu, accessToken: token, nonce: `${nonce}x` }) })
    refusedWith(made, 'use_dpop_nonce')
    const second = await get(server, WORKORDERS, { ...dpopAuthorization(token), dpop: dpopProof(key, { htm: 'GET', htu, accessToken: token, nonce: String(nonce) }) })
    assert.equal(second.statusCode, 200, second.body)
  })

  it('oauth4webapi, an independent client, learns the nonce from the challenge and retries over real HTTP', async () => {
    const f = await privateApp(server.storage, { scopes: 'api' })
    const keyPair = await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign', 'verify'])
    const handle = oauth.DPoP({}, keyPair)
    const token = await boundToken(server, await getToken(server, f), await handle.calculateThumbprint())
    const target = new URL(server.url(WORKORDERS))
    const first = await oauth.protectedResourceRequest(token, 'GET', target, new Headers(), null, { DPoP: handle, [oauth.allowInsecureRequests]: true }).then(
      () => assert.fail('the first proof has no nonce'),
      (err: unknown) => err,
    )
    assert.ok(oauth.isDPoPNonceError(first), String(first))
    const res = await oauth.protectedResourceRequest(token, 'GET', target, new Headers(), null, { DPoP: handle, [oauth.allowInsecureRequests]: true })
    assert.equal(res.status, 200)
  })
})

describe('DPoP replay across instances', () => {
  eachEngine('a proof accepted by one instance is refused by another on the same store', async (engine) => {
    const masterKey = randomBytes(32).toString('hex')
    const a = await startServer({ engine, listen: false, overrides: { masterKey } })
    const b = await startServer({ engine, listen: false, ...(engine === 'sqlite' ? { dataDir: a.dataDir } : { schema: a.schema! }), overrides: { masterKey, issuer: a.issuer } })
    try {
      const f = await privateApp(a.storage, { scopes: 'api' })
      const key = dpopKey()
      const token = await boundToken(a, await issue(a, f), key.jkt)
      const proof = dpopProof(key, { htm: 'GET', htu: `${a.issuer}${WORKORDERS}`, accessToken: token })
      assert.equal((await get(a, WORKORDERS, { ...dpopAuthorization(token), dpop: proof })).statusCode, 200)
      refusedWith(await get(b, WORKORDERS, { ...dpopAuthorization(token), dpop: proof }), 'invalid_dpop_proof', /used before/)
      const fresh = dpopProof(key, { htm: 'GET', htu: `${a.issuer}${WORKORDERS}`, accessToken: token })
      assert.equal((await get(b, WORKORDERS, { ...dpopAuthorization(token), dpop: fresh })).statusCode, 200, 'the other instance accepts a new proof')
    } finally {
      await b.close()
      await a.close()
    }
  })
})

describe('DPoP at the gateways’ check (forward-auth)', () => {
  const API = 'api.dispatch.test:8443'
  let server: TestServer
  let dir: string
  before(async () => {
    dir = tempDir()
    writeFileSync(
      join(dir, 'gateway.json'),
      JSON.stringify({ apis: [{ id: 'dispatch', name: 'Dispatch API', resource: `https://${API}`, rules: [{ methods: ['GET'], path: '/orders/**', scope: 'api' }] }] }),
    )
    server = await startServer({ listen: false, dataDir: dir, overrides: { gatewayFile: 'gateway.json' } })
  })
  after(async () => {
    await server?.close()
    rmSync(dir, { recursive: true, force: true })
  })

  it('checks the proof against the original method and URL the gateway forwards', async () => {
    const f = await privateApp(server.storage, { scopes: 'api' })
    const key = dpopKey()
    const token = await boundToken(server, await issue(server, f), key.jkt)
    const forwarded = { 'x-forwarded-method': 'GET', 'x-forwarded-proto': 'https', 'x-forwarded-host': API, 'x-forwarded-uri': '/orders/7?full=1' }
    const check = (dpop: string, extra: Headers = {}) => server.app.inject({ url: '/forward-auth', headers: { ...forwarded, ...dpopAuthorization(token), dpop, ...extra } })
    const ok = await check(dpopProof(key, { htm: 'GET', htu: `https://${API}/orders/7`, accessToken: token }))
    assert.equal(ok.statusCode, 200, ok.body)
    assert.equal(ok.headers['x-fieldgate-client-id'], f.clientId)
    const wrongHost = await check(dpopProof(key, { htm: 'GET', htu: `https://other.example/orders/7`, accessToken: token }))
    assert.equal(wrongHost.statusCode, 401)
    assert.equal(wrongHost.json().error, 'invalid_dpop_proof')
    assert.match(
      String(wrongHost.headers['www-authenticate']),
      new RegExp(`resource_metadata="https://${API}/.well-known/oauth-protected-resource", ${ALGS}, error="invalid_dpop_proof"`),
    )
    // Without X-Forwarded-Proto the API's own scheme (https here) is the original's.
    const noProto = await check(dpopProof(key, { htm: 'GET', htu: `https://${API}/orders/7`, accessToken: token }), { 'x-forwarded-proto': '' })
    assert.equal(noProto.statusCode, 200, noProto.body)
    const asBearer = await server.app.inject({ url: '/forward-auth', headers: { ...forwarded, authorization: `Bearer ${token}` } })
    assert.equal(asBearer.statusCode, 401)
    assert.equal(asBearer.json().error, 'invalid_token')
  })
})

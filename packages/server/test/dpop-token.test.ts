/**
 * RFC 9449 at the token endpoint, over real HTTP: a client that sends a DPoP proof gets tokens bound
 * to its key (`token_type: DPoP`, `cnf.jkt`), for the code grant, its refresh tokens and client
 * credentials; a bound refresh token needs a proof by the same key; `dpop_jkt` binds the code (§10); an
 * app may require DPoP; nonces (§8). The flows run through oauth4webapi's DPoP; the refusals are raw.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import * as oauth from 'oauth4webapi'
import { hashSecret, type App, type AppFields, type Tenant } from '@fieldgate/core'
import { bearer, decodeJwt, dpopKey, dpopProof, getToken, postForm, privateApp, request, startServer, type TestServer } from './helpers.js'
import { agentFarm, hiddenFields, type Person } from './person.js'

const REDIRECT = 'http://127.0.0.1/callback'
const insecure = { [oauth.allowInsecureRequests]: true } as const

describe('DPoP at the token endpoint', () => {
  let server: TestServer
  let as: oauth.AuthorizationServer
  before(async () => {
    server = await startServer()
    const issuer = new URL(server.issuer)
    as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, { algorithm: 'oauth2', ...insecure }))
  })
  after(() => server.close())

  const farm = (fields: AppFields = {}) => agentFarm(server, { redirectUris: [REDIRECT], ...fields })

  /** A code through consent; `extra` joins the authorization request. */
  async function codeFor(f: { person: Person; app: App; tenant: Tenant }, verifier: string, extra: Record<string, string> = {}): Promise<URL> {
    const query = new URLSearchParams({
      client_id: f.app.clientId,
      redirect_uri: REDIRECT,
      code_challenge: await oauth.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      ...extra,
    })
    const page = await f.person.get(`/oauth/authorize?${query}`)
    assert.equal(page.status, 200, page.text)
    const decided = await f.person.post('/consent', { ...hiddenFields(page.text), decision: 'allow', tenant_id: f.tenant.id })
    return new URL(decided.headers.get('location')!)
  }

  it('advertises the proof algorithms', () => {
    assert.deepEqual(as.dpop_signing_alg_values_supported, ['ES256', 'RS256', 'PS256', 'EdDSA'])
  })

  it('binds the code grant’s access and refresh tokens to the client’s key, through oauth4webapi', async () => {
    const f = await farm()
    const client = { client_id: f.app.clientId, token_endpoint_auth_method: 'none' }
    const keyPair = await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign', 'verify'])
    const DPoP = oauth.DPoP({}, keyPair)
    const jkt = await DPoP.calculateThumbprint()
    const verifier = oauth.generateRandomCodeVerifier()
    const params = oauth.validateAuthResponse(as, client, await codeFor(f, verifier))
    const token = await oauth.processAuthorizationCodeResponse(
      as,
      client,
      await oauth.authorizationCodeGrantRequest(as, client, oauth.None(), params, REDIRECT, verifier, { DPoP, ...insecure }),
    )
    assert.equal(token.token_type, 'dpop')
    assert.deepEqual(decodeJwt(token.access_token).payload.cnf, { jkt })
    // At the API: with a proof by the key it works, as a bearer token it does not.
    const api = new URL(server.url('/v1/permissions'))
    const ok = await oauth.protectedResourceRequest(token.access_token, 'GET', api, new Headers(), null, { DPoP, ...insecure })
    assert.equal(ok.status, 200)
    assert.equal((await request(api.href, { headers: bearer(token.access_token) })).status, 401)
    // The refresh token is bound too (RFC 9449 §5): with the key it rotates, without a proof it is refused.
    const refreshed = await oauth.processRefreshTokenResponse(
      as,
      client,
      await oauth.refreshTokenGrantRequest(as, client, oauth.None(), token.refresh_token!, { DPoP, ...insecure }),
    )
    assert.deepEqual(decodeJwt(refreshed.access_token).payload.cnf, { jkt })
    const bare = await postForm(server.url('/oauth/token'), { grant_type: 'refresh_token', client_id: client.client_id, refresh_token: refreshed.refresh_token! })
    assert.equal(bare.json.error, 'invalid_grant')
    const otherKey = dpopKey()
    const stolen = await postForm(
      server.url('/oauth/token'),
      { grant_type: 'refresh_token', client_id: client.client_id, refresh_token: refreshed.refresh_token! },
      { dpop: dpopProof(otherKey, { htm: 'POST', htu: `${server.issuer}/oauth/token` }) },
    )
    assert.equal(stolen.json.error, 'invalid_grant', 'another key cannot use a bound refresh token')
  })

  it('refuses a proof for another URL or method, or replayed, at the token endpoint', async () => {
    const f = await privateApp(server.storage, { scopes: 'api' })
    const key = dpopKey()
    const body = { grant_type: 'client_credentials', client_id: f.clientId, client_secret: f.clientSecret }
    const send = (proof: string) => postForm(server.url('/oauth/token'), body, { dpop: proof })
    for (const proof of [
      dpopProof(key, { htm: 'POST', htu: `${server.issuer}/oauth/introspect` }),
      dpopProof(key, { htm: 'GET', htu: `${server.issuer}/oauth/token` }),
      'not.a.proof',
    ]) {
      const res = await send(proof)
      assert.equal(res.status, 400, res.text)
      assert.equal(res.json.error, 'invalid_dpop_proof')
    }
    const good = dpopProof(key, { htm: 'POST', htu: `${server.issuer}/oauth/token` })
    const first = await send(good)
    assert.equal(first.status, 200, first.text)
    assert.equal(first.json.token_type, 'DPoP')
    assert.deepEqual(decodeJwt(first.json.access_token as string).payload.cnf, { jkt: key.jkt })
    const replay = await send(good)
    assert.equal(replay.json.error, 'invalid_dpop_proof')
  })

  it('an app that requires DPoP gets no token without a proof', async () => {
    const f = await privateApp(server.storage, { scopes: 'api', requireDpop: true })
    const res = await postForm(server.url('/oauth/token'), { grant_type: 'client_credentials', client_id: f.clientId, client_secret: f.clientSecret })
    assert.equal(res.status, 400)
    assert.equal(res.json.error, 'invalid_dpop_proof')
    const key = dpopKey()
    const bound = await postForm(
      server.url('/oauth/token'),
      { grant_type: 'client_credentials', client_id: f.clientId, client_secret: f.clientSecret },
      { dpop: dpopProof(key, { htm: 'POST', htu: `${server.issuer}/oauth/token` }) },
    )
    assert.equal(bound.status, 200, bound.text)
    // An app that does not require it still gets plain bearer tokens.
    const plain = await privateApp(server.storage, { scopes: 'api' })
    assert.equal(decodeJwt(await getToken(server, plain)).payload.cnf, undefined)
  })

  it('a DPoP proof with a pushed request binds the code as dpop_jkt would (RFC 9449 §10.1)', async () => {
    const f = await farm()
    const [key, other] = [dpopKey(), dpopKey()]
    const push = (proofKey: typeof key, extra: Record<string, string> = {}) =>
      postForm(
        server.url('/oauth/par'),
        { client_id: f.app.clientId, redirect_uri: REDIRECT, code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', code_challenge_method: 'S256', ...extra },
        { dpop: dpopProof(proofKey, { htm: 'POST', htu: `${server.issuer}/oauth/par` }) },
      )
    const mismatched = await push(key, { dpop_jkt: other.jkt })
    assert.equal(mismatched.json.error, 'invalid_request')
    const pushed = await push(key)
    assert.equal(pushed.status, 201, pushed.text)
    const stored = await server.storage.getPushedRequest(hashSecret(pushed.json.request_uri as string), Date.now())
    assert.equal(stored?.params.dpop_jkt, key.jkt)
  })

  it('dpop_jkt binds the code to a key: another key, or none, cannot redeem it (RFC 9449 §10)', async () => {
    const f = await farm()
    const [key, other] = [dpopKey(), dpopKey()]
    const exchange = async (code: string, verifier: string, proofKey?: typeof key) =>
      postForm(
        server.url('/oauth/token'),
        { grant_type: 'authorization_code', client_id: f.app.clientId, code, redirect_uri: REDIRECT, code_verifier: verifier },
        proofKey ? { dpop: dpopProof(proofKey, { htm: 'POST', htu: `${server.issuer}/oauth/token` }) } : {},
      )
    for (const wrong of [other, undefined]) {
      const verifier = oauth.generateRandomCodeVerifier()
      const code = (await codeFor(f, verifier, { dpop_jkt: key.jkt })).searchParams.get('code')!
      const res = await exchange(code, verifier, wrong)
      assert.equal(res.json.error, 'invalid_grant', res.text)
    }
    const verifier = oauth.generateRandomCodeVerifier()
    const code = (await codeFor(f, verifier, { dpop_jkt: key.jkt })).searchParams.get('code')!
    const ok = await exchange(code, verifier, key)
    assert.equal(ok.status, 200, ok.text)
    assert.equal(ok.json.token_type, 'DPoP')
  })
})

describe('DPoP nonces at the token endpoint (RFC 9449 §8)', () => {
  let server: TestServer
  before(async () => {
    server = await startServer({ overrides: { dpop: { nonce: true, maxAgeSeconds: 60, futureSeconds: 5 } } })
  })
  after(() => server.close())

  it('answers use_dpop_nonce with a DPoP-Nonce, then issues with a proof that carries it', async () => {
    const f = await privateApp(server.storage, { scopes: 'api' })
    const key = dpopKey()
    const body = { grant_type: 'client_credentials', client_id: f.clientId, client_secret: f.clientSecret }
    const htu = `${server.issuer}/oauth/token`
    const first = await postForm(server.url('/oauth/token'), body, { dpop: dpopProof(key, { htm: 'POST', htu }) })
    assert.equal(first.status, 400)
    assert.equal(first.json.error, 'use_dpop_nonce')
    const nonce = first.headers.get('dpop-nonce')
    assert.ok(nonce)
    const second = await postForm(server.url('/oauth/token'), body, { dpop: dpopProof(key, { htm: 'POST', htu, nonce }) })
    assert.equal(second.status, 200, second.text)
    assert.equal(second.json.token_type, 'DPoP')
    const forged = await postForm(server.url('/oauth/token'), body, { dpop: dpopProof(key, { htm: 'POST', htu, nonce: `${nonce}x` }) })
    assert.equal(forged.json.error, 'use_dpop_nonce')
  })
})

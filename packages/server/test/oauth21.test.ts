import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import * as oauth from 'oauth4webapi'
import { cliActor, createApp, hashSecret, revokeGrant, type App, type AppFields, type Tenant } from '@fieldgate/core'
import { createGuard } from '@fieldgate/guard'
import { bearer, decodeJwt, postForm, postJson, request, startServer, type TestServer } from './helpers.js'
import { agentFarm, hiddenFields, type Person } from './person.js'

/**
 * OAuth 2.1 clients over real HTTP: public clients with PKCE, refresh-token rotation and reuse
 * detection, RFC 8707 resources, RFC 9126 pushed requests, loopback and private-use redirect URIs.
 * The standard flows run through oauth4webapi, an independent, standards-strict client; the negative
 * cases are raw requests, so each answer is the server's own.
 */

const LOOPBACK = 'http://127.0.0.1/callback'
const NATIVE = 'com.example.fieldapp:/oauth2redirect'
const insecure = { [oauth.allowInsecureRequests]: true } as const

interface Farm {
  tenant: Tenant
  person: Person
  app: App
}

describe('OAuth 2.1 clients', () => {
  let server: TestServer
  let as: oauth.AuthorizationServer
  before(async () => {
    server = await startServer()
    const issuer = new URL(server.issuer)
    as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, { algorithm: 'oauth2', ...insecure }))
  })
  after(() => server.close())

  /** A farm with its signed-in owner, and an agent (a public client unless `fields` says otherwise). */
  const farm = (fields: AppFields & { publicClient?: boolean } = {}): Promise<Farm> =>
    agentFarm(server, { scopes: 'api fields:read:all alerts:write', redirectUris: [LOOPBACK], ...fields })

  /** The person allows the request; returns the redirect it ends in. */
  async function consent(f: Farm, query: Record<string, string>): Promise<URL> {
    const page = await f.person.get(`/oauth/authorize?${new URLSearchParams(query)}`)
    assert.equal(page.status, 200, page.text)
    const decided = await f.person.post('/consent', { ...hiddenFields(page.text), decision: 'allow', tenant_id: f.tenant.id })
    assert.equal(decided.status, 303, decided.text)
    return new URL(decided.headers.get('location')!)
  }

  /** PKCE through consent as the farmer, then the code exchange as a public client. */
  async function connect(f: Farm, extra: Record<string, string> = {}, redirectUri = 'http://127.0.0.1:53124/callback') {
    const client = { client_id: f.app.clientId, token_endpoint_auth_method: 'none' }
    const verifier = oauth.generateRandomCodeVerifier()
    const state = oauth.generateRandomState()
    const callback = await consent(f, {
      response_type: 'code',
      client_id: f.app.clientId,
      redirect_uri: redirectUri,
      scope: 'api fields:read:all',
      state,
      code_challenge: await oauth.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      ...extra,
    })
    const params = oauth.validateAuthResponse(as, client, callback, state)
    const additionalParameters = extra.resource ? { resource: extra.resource } : undefined
    const res = await oauth.authorizationCodeGrantRequest(as, client, oauth.None(), params, redirectUri, verifier, { ...insecure, additionalParameters })
    return { client, token: await oauth.processAuthorizationCodeResponse(as, client, res) }
  }

  const refresh = (client: oauth.Client, refreshToken: string, extra: Record<string, string> = {}) =>
    postForm(server.url('/oauth/token'), { grant_type: 'refresh_token', client_id: client.client_id, refresh_token: refreshToken, ...extra })

  it('advertises public clients, refresh tokens and pushed requests, and nothing it does not do', () => {
    assert.ok(as.token_endpoint_auth_methods_supported?.includes('none'))
    assert.ok(as.grant_types_supported?.includes('refresh_token'))
    assert.equal(as.pushed_authorization_request_endpoint, `${server.issuer}/oauth/par`)
    assert.equal(as.require_pushed_authorization_requests, false)
    assert.deepEqual(as.code_challenge_methods_supported, ['S256'])
  })

  it('a public client connects with PKCE through a loopback port of its choosing, and gets a short JWT and a refresh token', async () => {
    const f = await farm()
    const { token } = await connect(f)
    assert.equal(token.token_type, 'bearer')
    assert.equal(token.expires_in, 900)
    assert.equal(token.scope, 'api fields:read:all')
    assert.match(token.refresh_token ?? '', /^fgrt_[A-Za-z0-9_-]{43}$/)
    const claims = decodeJwt(token.access_token).payload
    assert.equal(claims.aud, `${server.issuer}/api`)
    assert.equal(claims.client_id, f.app.clientId)
    assert.notEqual(claims.sub, f.app.clientId, 'the subject is the farmer, not the client (RFC 9068 §2.2)')
    assert.equal(claims.tenant_id, f.tenant.id)
    const perms = await request(server.url('/v1/permissions'), { headers: bearer(token.access_token) })
    assert.deepEqual(perms.json, { scopes: ['api', 'fields:read:all'] })
    // Only the hash is stored.
    assert.ok(await server.storage.findRefreshToken(hashSecret(token.refresh_token!)))
    assert.equal(await server.storage.findRefreshToken(token.refresh_token!), undefined)
  })

  it('refresh rotates the token; reusing a rotated one ends the whole family', async () => {
    const f = await farm()
    const { client, token } = await connect(f)
    const first = token.refresh_token!
    const rotated = await oauth.processRefreshTokenResponse(as, client, await oauth.refreshTokenGrantRequest(as, client, oauth.None(), first, insecure))
    assert.notEqual(rotated.refresh_token, first)
    assert.notEqual(rotated.access_token, token.access_token)
    assert.equal(rotated.scope, 'api fields:read:all')
    // The thief (or the client, replaying) presents the used token: refused, and the live one dies with it.
    const reuse = await refresh(client, first)
    assert.equal(reuse.status, 400)
    assert.equal(reuse.json.error, 'invalid_grant')
    const afterReuse = await refresh(client, rotated.refresh_token!)
    assert.equal(afterReuse.status, 400, 'the rotated token was revoked with its family')
    const events = await server.storage.listSecurityEvents({ kinds: ['refresh_token.reused'] })
    assert.ok(events.some((e) => e.clientId === f.app.clientId && e.tenantId === f.tenant.id))
  })

  it('a refresh may narrow the scope, never widen it', async () => {
    const f = await farm()
    const { client, token } = await connect(f)
    const narrow = await refresh(client, token.refresh_token!, { scope: 'fields:read:all' })
    assert.equal(narrow.status, 200, narrow.text)
    assert.equal(narrow.json.scope, 'fields:read:all')
    const wider = await refresh(client, narrow.json.refresh_token as string, { scope: 'fields:read:all alerts:write' })
    assert.equal(wider.status, 400)
    assert.equal(wider.json.error, 'invalid_scope')
  })

  it('disconnecting the farm ends every refresh token of the connection', async () => {
    const f = await farm()
    const { client, token } = await connect(f)
    const grant = (await server.storage.findActiveGrant(f.app.id, f.tenant.id))!
    await revokeGrant(server.runtime.ctx, cliActor, { grantId: grant.id })
    const res = await refresh(client, token.refresh_token!)
    assert.equal(res.status, 400)
    assert.equal(res.json.error, 'invalid_grant')
    assert.equal((await request(server.url('/v1/permissions'), { headers: bearer(token.access_token) })).status, 401)
  })

  it('revoking a refresh token (RFC 7009) ends its family and the opaque access tokens refreshed from it', async () => {
    const f = await farm({ accessTokenFormat: 'opaque' })
    const { client, token } = await connect(f)
    assert.match(token.access_token, /^[0-9a-f]{64}$/)
    assert.equal(token.expires_in, 900)
    assert.equal((await request(server.url('/v1/permissions'), { headers: bearer(token.access_token) })).status, 200)
    const revoked = await postForm(server.url('/oauth/revoke'), { client_id: client.client_id, token: token.refresh_token! })
    assert.equal(revoked.status, 200)
    assert.equal((await refresh(client, token.refresh_token!)).status, 400)
    assert.equal((await request(server.url('/v1/permissions'), { headers: bearer(token.access_token) })).status, 401)
  })

  it('a public client must use PKCE, and a wrong verifier is invalid_grant', async () => {
    const f = await farm()
    const noPkce = await consentRedirect(f, { response_type: 'code', client_id: f.app.clientId, redirect_uri: LOOPBACK, state: 's' })
    assert.equal(noPkce.searchParams.get('error'), 'invalid_request')
    assert.match(noPkce.searchParams.get('error_description') ?? '', /code_challenge/)
    const verifier = oauth.generateRandomCodeVerifier()
    const callback = await consent(f, {
      response_type: 'code',
      client_id: f.app.clientId,
      redirect_uri: LOOPBACK,
      code_challenge: await oauth.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
    })
    const code = callback.searchParams.get('code')!
    const wrong = await postForm(server.url('/oauth/token'), {
      grant_type: 'authorization_code',
      client_id: f.app.clientId,
      code,
      redirect_uri: LOOPBACK,
      code_verifier: oauth.generateRandomCodeVerifier(),
    })
    assert.equal(wrong.status, 400)
    assert.equal(wrong.json.error, 'invalid_grant')
  })

  /** An authorize request the server answers with a redirect before any consent (an error, once signed in). */
  async function consentRedirect(f: Farm, query: Record<string, string>): Promise<URL> {
    const res = await f.person.get(`/oauth/authorize?${new URLSearchParams(query)}`)
    assert.equal(res.status, 303, res.text)
    return new URL(res.headers.get('location')!)
  }

  it('matches a loopback redirect URI on any port but nothing else, and a native app its private-use scheme', async () => {
    const f = await farm({ redirectUris: [LOOPBACK, NATIVE] })
    const challenge = { code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', code_challenge_method: 'S256' }
    for (const uri of ['http://127.0.0.1:9/callback', 'http://127.0.0.1:65000/callback', NATIVE]) {
      const page = await f.person.get(`/oauth/authorize?${new URLSearchParams({ client_id: f.app.clientId, redirect_uri: uri, ...challenge })}`)
      assert.equal(page.status, 200, `${uri}: ${page.text.slice(0, 200)}`)
    }
    for (const uri of ['http://127.0.0.1:9/callback/', 'http://127.0.0.2:9/callback', 'http://localhost:9/callback', 'https://127.0.0.1/callback', 'com.example.fieldapp:/other']) {
      const page = await f.person.get(`/oauth/authorize?${new URLSearchParams({ client_id: f.app.clientId, redirect_uri: uri, ...challenge })}`)
      assert.equal(page.status, 400, uri)
      assert.equal(page.headers.get('location'), null, 'never redirected to an unregistered URI')
    }
    // A confidential client cannot register a private-use scheme: it is a native app's.
    await assert.rejects(createApp(server.runtime.ctx, cliActor, { name: 'Server app', kind: 'public', environment: 'live', redirectUris: [NATIVE] }), /redirect URI/)
  })

  it('RFC 8707: the token is for the resource asked for, and only there; another is invalid_target', async () => {
    const f = await farm()
    const mcp = new URL(server.issuer)
    mcp.port = '9911'
    mcp.pathname = '/mcp'
    const page = await f.person.get(
      `/oauth/authorize?${new URLSearchParams({ client_id: f.app.clientId, redirect_uri: LOOPBACK, code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', code_challenge_method: 'S256', resource: mcp.href })}`,
    )
    assert.match(page.text, new RegExp(`works only at <code>${mcp.href.replace(/[.:/]/g, '\\$&')}</code>`), 'the consent page says where the access works')
    const { client, token } = await connect(f, { resource: mcp.href })
    assert.equal(decodeJwt(token.access_token).payload.aud, mcp.href)
    const own = await request(server.url('/v1/permissions'), { headers: bearer(token.access_token) })
    assert.equal(own.status, 401, 'Fieldgate’s own API refuses a token meant for another')
    // Introspection answers for any audience and names it, so the resource server can check it is its own.
    const introspected = await postForm(server.url('/oauth/introspect'), { client_id: client.client_id, token: token.access_token })
    assert.equal(introspected.json.active, true, introspected.text)
    assert.equal(introspected.json.aud, mcp.href)
    const refreshed = await refresh(client, token.refresh_token!)
    assert.equal(decodeJwt(refreshed.json.access_token as string).payload.aud, mcp.href, 'a refresh keeps the audience')
    const elsewhere = await refresh(client, refreshed.json.refresh_token as string, { resource: `${server.issuer}/api` })
    assert.equal(elsewhere.json.error, 'invalid_target')
    const foreign = await consentRedirect(f, {
      client_id: f.app.clientId,
      redirect_uri: LOOPBACK,
      code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
      code_challenge_method: 'S256',
      resource: 'https://api.elsewhere.example/',
    })
    assert.equal(foreign.searchParams.get('error'), 'invalid_target')
  })

  it('a token carries what its own consent showed, not every scope the grant holds for other resources', async () => {
    const f = await farm()
    const [a, b] = [new URL(server.issuer), new URL(server.issuer)]
    a.port = '7001'
    b.port = '7002'
    await connect(f, { resource: a.href, scope: 'api fields:read:all' })
    const { token } = await connect(f, { resource: b.href, scope: 'api' })
    assert.equal(token.scope, 'api')
    assert.equal(decodeJwt(token.access_token).payload.scope, 'api')
  })

  it('the guard takes an introspected token only for its own audience (RFC 8707 §2)', async () => {
    const f = await farm({ accessTokenFormat: 'opaque' })
    const mcp = new URL(server.issuer)
    mcp.port = '7003'
    mcp.pathname = '/mcp'
    const { token } = await connect(f, { resource: mcp.href })
    const rs = await createApp(server.runtime.ctx, cliActor, {
      name: 'Resource server',
      kind: 'private',
      environment: 'live',
      tenantId: f.tenant.id,
      scopes: 'fieldgate:introspect',
    })
    const introspection = { clientId: rs.app.clientId, clientSecret: rs.clientSecret }
    const mine = createGuard({ issuer: server.issuer, audience: mcp.href, introspection, introspectAll: true })
    assert.equal((await mine.authenticate(`Bearer ${token.access_token}`)).tenantId, f.tenant.id)
    for (const audience of [`${server.issuer}/api`, 'http://127.0.0.1:7004/mcp']) {
      const other = createGuard({ issuer: server.issuer, audience, introspection, introspectAll: true })
      await assert.rejects(other.authenticate(`Bearer ${token.access_token}`), /invalid/)
    }
  })

  it('never redirects an error to a client that registered itself, even for a signed-in person (RFC 9700 §4.11.2)', async () => {
    const registered = await postJson(server.url('/oauth/register'), { redirect_uris: ['https://phish.example/cb'], token_endpoint_auth_method: 'none', client_name: 'Free stuff' })
    assert.equal(registered.status, 201, registered.text)
    const f = await farm()
    const page = await f.person.get(`/oauth/authorize?${new URLSearchParams({ client_id: registered.json.client_id as string, response_type: 'token' })}`)
    assert.equal(page.status, 400)
    assert.equal(page.headers.get('location'), null)
  })

  it('a public client cannot use client_credentials nor fieldmargin’s never-expiring exchange', async () => {
    const f = await farm()
    const cc = await postForm(server.url('/oauth/token'), { grant_type: 'client_credentials', client_id: f.app.clientId, target_id: f.tenant.id })
    assert.equal(cc.json.error, 'unauthorized_client')
    const exchange = await postForm(server.url('/v1/token.exchange'), { client_id: f.app.clientId, code: 'x' })
    assert.equal(exchange.json.error, 'unauthorized_client')
    // A client_id alone is never enough for a confidential client.
    const confidential = await farm({ publicClient: false, redirectUris: ['https://partner.example/cb'] })
    const res = await postForm(server.url('/oauth/token'), { grant_type: 'refresh_token', client_id: confidential.app.clientId, refresh_token: 'fgrt_x' })
    assert.equal(res.status, 401)
    assert.equal(res.json.error, 'invalid_client')
  })

  it('a confidential app with refresh tokens gets them at /oauth/token, and fieldmargin’s exchange stays as it was', async () => {
    const secretApp = await createApp(server.runtime.ctx, cliActor, {
      name: 'Refreshing server',
      kind: 'public',
      environment: 'live',
      scopes: 'api',
      redirectUris: ['https://partner.example/cb'],
      refreshTokens: true,
    })
    const f = await farm()
    const person = { ...f, app: secretApp.app }
    const code = async () => (await consent(person, { client_id: secretApp.app.clientId, scope: 'api' })).searchParams.get('code')!
    const basic = { client_id: secretApp.app.clientId, client_secret: secretApp.clientSecret }
    const oauthToken = await postForm(server.url('/oauth/token'), { grant_type: 'authorization_code', code: await code(), ...basic })
    assert.equal(oauthToken.status, 200, oauthToken.text)
    assert.deepEqual(Object.keys(oauthToken.json).sort(), ['access_token', 'expires_in', 'refresh_token', 'scope', 'token_type'])
    const exchanged = await postForm(server.url('/v1/token.exchange'), { code: await code(), ...basic })
    assert.deepEqual(Object.keys(exchanged.json).sort(), ['access_token', 'farm_id'], 'the connection token, never expiring, no refresh token')
  })

  it('RFC 9126: a pushed request is answered once, and an app that requires pushing is refused any other way', async () => {
    const f = await farm({ requirePar: true })
    const challenge = { code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', code_challenge_method: 'S256' }
    const direct = await f.person.get(`/oauth/authorize?${new URLSearchParams({ client_id: f.app.clientId, redirect_uri: LOOPBACK, ...challenge })}`)
    assert.equal(direct.status, 400)
    assert.match(direct.text, /push/)
    const pushed = await postForm(server.url('/oauth/par'), { client_id: f.app.clientId, response_type: 'code', redirect_uri: LOOPBACK, scope: 'api', state: 'st', ...challenge })
    assert.equal(pushed.status, 201, pushed.text)
    assert.match(pushed.json.request_uri as string, /^urn:ietf:params:oauth:request_uri:/)
    assert.equal(pushed.json.expires_in, 600)
    assert.equal(pushed.headers.get('cache-control'), 'no-store')
    const query = { client_id: f.app.clientId, request_uri: pushed.json.request_uri as string }
    const callback = await consent(f, query)
    assert.ok(callback.searchParams.get('code'))
    assert.equal(callback.searchParams.get('state'), 'st')
    const again = await f.person.get(`/oauth/authorize?${new URLSearchParams(query)}`)
    assert.equal(again.status, 400, 'a request_uri is used once')
    // Errors of a pushed request are the endpoint's JSON, never a redirect (§2.3).
    const bad = await postForm(server.url('/oauth/par'), { client_id: f.app.clientId, redirect_uri: 'https://evil.example/cb', ...challenge })
    assert.equal(bad.status, 400)
    assert.equal(bad.json.error, 'invalid_request')
    const noPkce = await postForm(server.url('/oauth/par'), { client_id: f.app.clientId, redirect_uri: LOOPBACK })
    assert.equal(noPkce.json.error, 'invalid_request')
    const nested = await postForm(server.url('/oauth/par'), { client_id: f.app.clientId, request_uri: 'urn:x' })
    assert.equal(nested.json.error, 'invalid_request')
  })

  it('pushes and connects through oauth4webapi', async () => {
    const f = await farm()
    const client = { client_id: f.app.clientId, token_endpoint_auth_method: 'none' }
    const verifier = oauth.generateRandomCodeVerifier()
    const res = await oauth.pushedAuthorizationRequest(
      as,
      client,
      oauth.None(),
      { response_type: 'code', redirect_uri: LOOPBACK, scope: 'api', code_challenge: await oauth.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256' },
      insecure,
    )
    const { request_uri } = await oauth.processPushedAuthorizationResponse(as, client, res)
    const callback = await consent(f, { client_id: f.app.clientId, request_uri })
    const params = oauth.validateAuthResponse(as, client, callback)
    const token = await oauth.processAuthorizationCodeResponse(
      as,
      client,
      await oauth.authorizationCodeGrantRequest(as, client, oauth.None(), params, LOOPBACK, verifier, insecure),
    )
    assert.equal(token.scope, 'api')
    assert.ok(token.refresh_token)
  })
})

import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { after, before, describe, it } from 'node:test'
import * as oauth from 'oauth4webapi'
import { cliActor, createApp, createTenant, createUser, hashSecret, updateApp, type Tenant } from '@fieldgate/core'
import { basicAuth, bearer, eachEngine, postForm, postJson, request, sleep, startServer, type Engine, type TestServer } from './helpers.js'
import { Person, csrfOf, hiddenFields } from './person.js'

const CALLBACK = 'https://partner.example/callback'

const pkce = () => {
  const verifier = randomBytes(32).toString('base64url')
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') }
}

interface Farm {
  server: TestServer
  tenant: Tenant
  person: Person
  clientId: string
  clientSecret: string
}

/** A farm, its owner (signed in), and a partner integration registered for fieldmargin's scopes. */
async function farm(server: TestServer, appInput: { redirectUris?: string[]; scopes?: string } = {}): Promise<Farm> {
  const tenant = await createTenant(server.runtime.ctx, cliActor, { name: `Farm ${randomBytes(3).toString('hex')}`, environment: 'sandbox' })
  const email = `owner-${randomBytes(4).toString('hex')}@farm.example`
  await createUser(server.runtime.ctx, cliActor, { email, password: Person.password, tenantId: tenant.id, role: 'owner' })
  const created = await createApp(server.runtime.ctx, cliActor, {
    name: 'Field Mapper',
    kind: 'public',
    environment: 'sandbox',
    scopes: appInput.scopes ?? 'fields:read:all maps:write vehicles:write',
    redirectUris: appInput.redirectUris ?? [CALLBACK],
    contactEmail: 'dev@partner.example',
  })
  const person = new Person(server, email)
  const signedIn = await person.signIn()
  assert.equal(signedIn.status, 303, signedIn.text)
  return { server, tenant, person, clientId: created.app.clientId, clientSecret: created.clientSecret }
}

/** The partner changes the app's scopes in the portal; this process sees it at once (the feed would, within a poll). */
async function partnerSetsScopes(f: Farm, scopes: string): Promise<void> {
  const app = await updateApp(f.server.runtime.ctx, cliActor, { clientId: f.clientId, fields: { scopes } })
  f.server.runtime.ctx.cache.apply({ kind: 'app', ref: app.id })
}

async function codeFor(f: Farm, extra: Record<string, string> = {}): Promise<string> {
  const location = await f.person.decide({ client_id: f.clientId, scope: 'fields:read:all', state: 's', ...extra }, 'allow')
  return location.searchParams.get('code') ?? assert.fail(`no code in ${location}`)
}

const exchange = (f: Farm, code: string, extra: Record<string, string> = {}, secret = f.clientSecret, clientId = f.clientId) =>
  postForm(f.server.url('/v1/token.exchange'), { code, client_id: clientId, client_secret: secret, ...extra })

describe('authorization code grant over HTTP', () => {
  let server: TestServer
  before(async () => {
    server = await startServer()
  })
  after(() => server.close())

  it('runs the standard flow with PKCE through oauth4webapi', async () => {
    const f = await farm(server)
    const issuer = new URL(server.issuer)
    const insecure = { [oauth.allowInsecureRequests]: true } as const
    const as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, { algorithm: 'oauth2', ...insecure }))
    assert.equal(as.authorization_endpoint, `${server.issuer}/oauth/authorize`)
    assert.deepEqual(as.code_challenge_methods_supported, ['S256'])
    const client = { client_id: f.clientId }
    const verifier = oauth.generateRandomCodeVerifier()
    const state = oauth.generateRandomState()
    const url = new URL(as.authorization_endpoint!)
    url.search = new URLSearchParams({
      client_id: f.clientId,
      redirect_uri: CALLBACK,
      response_type: 'code',
      scope: 'fields:read:all maps:write',
      state,
      code_challenge: await oauth.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
    }).toString()
    const consent = await f.person.get(url.pathname + url.search)
    const decided = await f.person.post('/consent', { ...hiddenFields(consent.text), decision: 'allow' })
    const callback = new URL(decided.headers.get('location')!)
    assert.equal(callback.origin + callback.pathname, CALLBACK)
    const params = oauth.validateAuthResponse(as, client, callback, state)
    const res = await oauth.authorizationCodeGrantRequest(as, client, oauth.ClientSecretBasic(f.clientSecret), params, CALLBACK, verifier, insecure)
    const token = await oauth.processAuthorizationCodeResponse(as, client, res)
    assert.equal(token.token_type, 'bearer')
    assert.equal(token.scope, 'fields:read:all maps:write')
    assert.equal(token.expires_in, undefined, 'connection tokens do not expire')
    assert.match(token.access_token, /^[0-9a-f]{64}$/)
    const perms = await request(server.url('/v1/permissions'), { headers: bearer(token.access_token) })
    assert.deepEqual(perms.json, { scopes: ['fields:read:all', 'maps:write'] })
    // Stored hashed: the token itself is nowhere in the store.
    assert.ok(await server.storage.findOpaqueToken(hashSecret(token.access_token)))
    assert.equal(await server.storage.findOpaqueToken(token.access_token), undefined)
  })

  it('answers with iss and the state byte for byte, and the code expires in 60 s', async () => {
    const f = await farm(server)
    const state = 'a b+c/é=&x%20"<>'
    const before = Date.now()
    const location = await f.person.decide({ client_id: f.clientId, scope: 'maps:write', state }, 'allow')
    assert.equal(location.searchParams.get('state'), state)
    assert.equal(location.searchParams.get('iss'), server.issuer)
    const code = await server.storage.getCode(hashSecret(location.searchParams.get('code')!))
    assert.ok(code)
    assert.ok(code.expiresAt - before <= 61_000 && code.expiresAt - before >= 59_000, `expires ${code.expiresAt - before} ms after`)
    assert.equal(code.redirectUri, null, 'no redirect_uri in the request, none to repeat')
  })

  it('a code used twice is invalid_grant and revokes the token it gave', async () => {
    const f = await farm(server)
    const code = await codeFor(f)
    const first = await exchange(f, code)
    assert.equal(first.status, 200, first.text)
    assert.deepEqual(Object.keys(first.json).sort(), ['access_token', 'farm_id'])
    assert.equal(first.json.farm_id, f.tenant.id)
    const token = first.json.access_token as string
    assert.equal((await request(server.url('/v1/permissions'), { headers: bearer(token) })).status, 200)
    const second = await exchange(f, code)
    assert.equal(second.status, 400)
    assert.equal(second.json.error, 'invalid_grant')
    const after = await request(server.url('/v1/permissions'), { headers: bearer(token) })
    assert.equal(after.status, 401)
    assert.equal(after.json.error, 'invalid_token')
  })

  it('refuses an expired code', async () => {
    const short = await startServer({ overrides: { codeTtl: 1 } })
    try {
      const f = await farm(short)
      const code = await codeFor(f)
      await sleep(1100)
      const res = await exchange(f, code)
      assert.equal(res.status, 400)
      assert.equal(res.json.error, 'invalid_grant')
    } finally {
      await short.close()
    }
  })

  it("refuses a code with another client's credentials, and the right client can still use it", async () => {
    const f = await farm(server)
    const other = await createApp(server.runtime.ctx, cliActor, { name: 'Other', kind: 'public', environment: 'sandbox', redirectUris: [CALLBACK], scopes: 'fields:read:all' })
    const code = await codeFor(f)
    const stolen = await exchange(f, code, {}, other.clientSecret, other.app.clientId)
    assert.equal(stolen.status, 400)
    assert.equal(stolen.json.error, 'invalid_grant')
    const wrongSecret = await exchange(f, code, {}, `${f.clientSecret}x`)
    assert.equal(wrongSecret.status, 401)
    assert.deepEqual(wrongSecret.json, { error: 'invalid_client', error_description: 'Client authentication failed' })
    assert.equal((await exchange(f, code)).status, 200)
  })

  it('enforces PKCE: wrong or missing verifier, and a verifier for a code without challenge', async () => {
    const f = await farm(server)
    const { verifier, challenge } = pkce()
    const code = await codeFor(f, { code_challenge: challenge, code_challenge_method: 'S256' })
    for (const bad of [{}, { code_verifier: pkce().verifier }, { code_verifier: 'short' }] as Record<string, string>[]) {
      const res = await exchange(f, code, bad)
      assert.equal(res.status, 400, JSON.stringify(bad))
      assert.equal(res.json.error, 'invalid_grant')
    }
    const ok = await exchange(f, code, { code_verifier: verifier })
    assert.equal(ok.status, 200, ok.text)

    const plain = await codeFor(f)
    const res = await exchange(f, plain, { code_verifier: verifier })
    assert.equal(res.status, 400)
    assert.equal(res.json.error, 'invalid_grant')
  })

  it('refuses code_challenge_method plain or missing: invalid_request to the redirect URI, once signed in', async () => {
    const f = await farm(server)
    for (const method of ['plain', undefined]) {
      const q = new URLSearchParams({ client_id: f.clientId, state: 'st', code_challenge: pkce().challenge, ...(method ? { code_challenge_method: method } : {}) })
      const res = await f.person.get(`/authorize?${q}`)
      assert.equal(res.status, 303)
      const location = new URL(res.headers.get('location')!)
      assert.equal(location.searchParams.get('error'), 'invalid_request')
      assert.equal(location.searchParams.get('state'), 'st')
    }
  })

  it('requires the same redirect_uri at the token endpoint when the request had one', async () => {
    const f = await farm(server, { redirectUris: [CALLBACK, 'https://partner.example/other'] })
    const code = await codeFor(f, { redirect_uri: CALLBACK })
    const missing = await postForm(server.url('/oauth/token'), { grant_type: 'authorization_code', code }, { authorization: basicAuth(f.clientId, f.clientSecret) })
    assert.equal(missing.json.error, 'invalid_grant')
    const other = await postForm(
      server.url('/oauth/token'),
      { grant_type: 'authorization_code', code, redirect_uri: 'https://partner.example/other' },
      { authorization: basicAuth(f.clientId, f.clientSecret) },
    )
    assert.equal(other.json.error, 'invalid_grant')
    const ok = await postForm(
      server.url('/oauth/token'),
      { grant_type: 'authorization_code', code, redirect_uri: CALLBACK },
      { authorization: basicAuth(f.clientId, f.clientSecret) },
    )
    assert.equal(ok.status, 200, ok.text)
    assert.equal(ok.headers.get('cache-control'), 'no-store')
    assert.deepEqual(Object.keys(ok.json).sort(), ['access_token', 'scope', 'token_type'])
  })

  it('shows a page, never a redirect, for a redirect URI that is not registered exactly', async () => {
    const f = await farm(server, { redirectUris: [CALLBACK, 'https://partner.example/second'] })
    const variants = [
      `${CALLBACK}/`,
      'https://Partner.example/callback',
      'https://partner.example/Callback',
      `${CALLBACK}?x=1`,
      'https://partner.example@evil.example/callback',
      'https://evil.example@partner.example/callback',
      'https://partner.example/callback/..%2F..%2Fevil',
      'https://partner.example/%2e%2e/callback',
      `${CALLBACK}#frag`,
      'http://partner.example/callback',
      'https://partner.example:443/callback',
      'https://partner.example/callback%00',
    ]
    for (const redirect of variants) {
      const res = await f.person.get(`/oauth/authorize?${new URLSearchParams({ client_id: f.clientId, redirect_uri: redirect, state: 'x' })}`)
      assert.equal(res.status, 400, redirect)
      assert.equal(res.headers.get('location'), null, redirect)
      assert.match(res.headers.get('content-type')!, /^text\/html/)
      assert.match(res.text, /not registered/)
    }
    // Two registered and none named: the person is told, nothing is redirected.
    const unnamed = await f.person.get(`/authorize?${new URLSearchParams({ client_id: f.clientId })}`)
    assert.equal(unnamed.status, 400)
    assert.equal(unnamed.headers.get('location'), null)
  })

  it('shows a page for an unknown or missing client, and for repeated parameters', async () => {
    const f = await farm(server)
    for (const q of [
      'client_id=nope&redirect_uri=https%3A%2F%2Fevil.example%2F',
      'redirect_uri=https%3A%2F%2Fevil.example%2F',
      `client_id=${f.clientId}&client_id=${f.clientId}`,
    ]) {
      const res = await f.person.get(`/authorize?${q}`)
      assert.equal(res.status, 400, q)
      assert.equal(res.headers.get('location'), null)
      assert.doesNotMatch(res.text, /evil\.example/, 'nothing of the request is linked')
    }
  })

  it('sends invalid_scope and unsupported_response_type to the redirect URI, with state, once signed in', async () => {
    const f = await farm(server)
    const cases: [Record<string, string>, string][] = [
      [{ scope: 'fields:read:all sensors:write' }, 'invalid_scope'],
      [{ scope: 'bad"scope' }, 'invalid_scope'],
      [{ response_type: 'token' }, 'unsupported_response_type'],
    ]
    for (const [extra, error] of cases) {
      const res = await f.person.get(`/authorize?${new URLSearchParams({ client_id: f.clientId, state: 'keep me', ...extra })}`)
      assert.equal(res.status, 303, JSON.stringify(extra))
      const location = new URL(res.headers.get('location')!)
      assert.equal(location.origin + location.pathname, CALLBACK)
      assert.equal(location.searchParams.get('error'), error)
      assert.equal(location.searchParams.get('state'), 'keep me')
      assert.equal(location.searchParams.get('iss'), server.issuer)
    }
  })

  it('before sign-in, shows a page naming the app instead of redirecting an error (RFC 9700 §4.11.2)', async () => {
    const f = await farm(server)
    const stranger = new Person(server, 'nobody@example.com')
    const csrf = csrfOf(await stranger.get('/login'))
    const cases: Record<string, string>[] = [
      { scope: 'fields:read:all sensors:write' },
      { response_type: 'token' },
      { code_challenge: pkce().challenge, code_challenge_method: 'plain' },
    ]
    for (const extra of cases) {
      const query = new URLSearchParams({ client_id: f.clientId, state: 'st', ...extra })
      const res = await stranger.get(`/authorize?${query}`)
      assert.equal(res.status, 400, JSON.stringify(extra))
      assert.equal(res.headers.get('location'), null, 'no redirect to the app before anyone signed in')
      assert.match(res.headers.get('content-type')!, /^text\/html/)
      assert.match(res.text, /Field Mapper sent you here/)
      // A consent form posted without a session is no way round it.
      const posted = await stranger.post('/consent', { csrf, ...Object.fromEntries(query), decision: 'allow' })
      assert.equal(posted.status, 400, JSON.stringify(extra))
      assert.equal(posted.headers.get('location'), null)
    }
    // A valid request still goes to sign-in.
    const valid = await stranger.get(`/authorize?${new URLSearchParams({ client_id: f.clientId, state: 'st' })}`)
    assert.equal(valid.status, 303)
    assert.match(valid.headers.get('location')!, /^\/login\?/)
  })

  it("refuses a consent POST without this browser's CSRF token, and stores nothing", async () => {
    const f = await farm(server)
    const consent = await f.person.get(`/authorize?${new URLSearchParams({ client_id: f.clientId, state: 's' })}`)
    const fields = hiddenFields(consent.text)
    for (const csrf of [undefined, 'forged', `${fields.csrf}x`]) {
      const { csrf: _, ...rest } = fields
      const res = await f.person.post('/consent', { ...rest, ...(csrf ? { csrf } : {}), decision: 'allow' })
      assert.equal(res.status, 403)
      assert.equal(res.headers.get('location'), null)
    }
    // Another browser's valid token does not work here either.
    const stranger = new Person(server, 'nobody@example.com')
    const strangerCsrf = csrfOf(await stranger.get('/login'))
    assert.equal((await f.person.post('/consent', { ...fields, csrf: strangerCsrf, decision: 'allow' })).status, 403)
    assert.deepEqual(await server.storage.listGrants({ tenantId: f.tenant.id }), [])
  })

  it('Deny sends access_denied with state and stores no grant', async () => {
    const f = await farm(server)
    const location = await f.person.decide({ client_id: f.clientId, state: 'no thanks' }, 'deny')
    assert.equal(location.searchParams.get('error'), 'access_denied')
    assert.equal(location.searchParams.get('state'), 'no thanks')
    assert.equal(location.searchParams.get('code'), null)
    assert.deepEqual(await server.storage.listGrants({ tenantId: f.tenant.id }), [])
  })

  it('incremental consent widens the connection; the first token sees the new scopes at once', async () => {
    const f = await farm(server)
    const first = (await exchange(f, await codeFor(f, { scope: 'fields:read:all' }))).json.access_token as string
    await codeFor(f, { scope: 'maps:write' })
    const perms = await request(server.url('/v1/permissions'), { headers: bearer(first) })
    assert.deepEqual(perms.json.scopes.sort(), ['fields:read:all', 'maps:write'])
    const grants = await server.storage.listGrants({ tenantId: f.tenant.id })
    assert.equal(grants.length, 1, 'one connection per app and farm')
  })

  it('Allow grants the scopes shown: widened or narrowed after the page, nothing is granted and the page is shown again', async () => {
    const f = await farm(server)
    const shown = await f.person.get(`/authorize?${new URLSearchParams({ client_id: f.clientId, state: 's' })}`)
    assert.equal(shown.status, 200)
    await partnerSetsScopes(f, 'fields:read:all maps:write vehicles:write sensors:write')
    const again = await f.person.post('/consent', { ...hiddenFields(shown.text), decision: 'allow' })
    assert.equal(again.status, 409, again.text)
    assert.equal(again.headers.get('location'), null)
    assert.match(again.text, /Field Mapper changed the permissions it asks for/)
    assert.match(again.text, /sensors:write/)
    assert.deepEqual(await server.storage.listGrants({ tenantId: f.tenant.id }), [], 'nothing granted')

    // Narrowed before the second Allow: again nothing, and the page shows the narrower list.
    await partnerSetsScopes(f, 'fields:read:all')
    const narrowed = await f.person.post('/consent', { ...hiddenFields(again.text), decision: 'allow' })
    assert.equal(narrowed.status, 409, narrowed.text)
    assert.doesNotMatch(narrowed.text, /maps:write/)
    assert.deepEqual(await server.storage.listGrants({ tenantId: f.tenant.id }), [])

    // Allow on the page as last shown grants exactly what it listed.
    const allowed = await f.person.post('/consent', { ...hiddenFields(narrowed.text), decision: 'allow' })
    assert.equal(allowed.status, 303, allowed.text)
    const token = await exchange(f, new URL(allowed.headers.get('location')!).searchParams.get('code')!)
    const perms = await request(server.url('/v1/permissions'), { headers: bearer(token.json.access_token as string) })
    assert.deepEqual(perms.json, { scopes: ['fields:read:all'] })
  })

  it('refuses a consent whose scope list was changed in the form, and grants nothing', async () => {
    const f = await farm(server)
    const explicit = await f.person.get(`/authorize?${new URLSearchParams({ client_id: f.clientId, scope: 'fields:read:all', state: 's' })}`)
    const defaulted = await f.person.get(`/authorize?${new URLSearchParams({ client_id: f.clientId, state: 's' })}`)
    const tampered: Record<string, string>[] = [
      { ...hiddenFields(explicit.text), shown_scope: 'fields:read:all maps:write' },
      { ...hiddenFields(defaulted.text), shown_scope: 'fields:read:all' },
      { ...hiddenFields(defaulted.text), shown_scope_mac: hiddenFields(explicit.text).shown_scope_mac! },
      Object.fromEntries(Object.entries(hiddenFields(defaulted.text)).filter(([name]) => name !== 'shown_scope_mac')),
    ]
    for (const fields of tampered) {
      const res = await f.person.post('/consent', { ...fields, decision: 'allow' })
      assert.equal(res.status, 403, JSON.stringify(fields))
      assert.equal(res.headers.get('location'), null)
      assert.match(res.text, /not the ones this page showed you/)
    }
    // Another person's page, signed for them, is not this person's either.
    const other = await farm(server)
    const theirs = await other.person.get(`/authorize?${new URLSearchParams({ client_id: f.clientId, state: 's' })}`)
    const { csrf: _, ...theirFields } = hiddenFields(theirs.text)
    const mixed = await f.person.post('/consent', { ...hiddenFields(defaulted.text), ...theirFields, tenant_id: f.tenant.id, decision: 'allow' })
    assert.equal(mixed.status, 403, mixed.text)
    assert.deepEqual(await server.storage.listGrants({ tenantId: f.tenant.id }), [])
  })

  it('writes an audit entry for every consent: who, from where, the app, the farm, the grant and its scopes', async () => {
    const f = await farm(server)
    await codeFor(f, { scope: 'fields:read:all' })
    await codeFor(f, { scope: 'maps:write' })
    const [grant] = await server.storage.listGrants({ tenantId: f.tenant.id })
    const user = await server.storage.getUserByEmail(f.person.email)
    const entries = (await server.storage.listAudit({ tenantIds: [f.tenant.id], limit: 10 })).filter((e) => e.action === 'consent.granted')
    assert.equal(entries.length, 2, JSON.stringify(entries))
    for (const e of entries) {
      assert.equal(e.objectId, grant!.id)
      assert.equal(e.appId, grant!.appId)
      assert.equal(e.tenantId, f.tenant.id)
      assert.equal(e.actor, f.person.email)
      assert.equal(e.actorUserId, user!.id)
      assert.equal(e.address, '127.0.0.1')
      assert.equal(e.details.client_id, f.clientId)
    }
    const byScope = Object.fromEntries(entries.map((e) => [(e.details.scopes as string[]).join(' '), e.details.grant_scopes]))
    assert.deepEqual(byScope, { 'fields:read:all': ['fields:read:all'], 'maps:write': ['fields:read:all', 'maps:write'] })
    // Deny stores nothing, not even an entry.
    const before = (await server.storage.listAudit({ tenantIds: [f.tenant.id], limit: 10 })).length
    await f.person.decide({ client_id: f.clientId, state: 'no' }, 'deny')
    assert.equal((await server.storage.listAudit({ tenantIds: [f.tenant.id], limit: 10 })).length, before)
  })

  it('introspects opaque tokens for their own client only, and revokes them by RFC 7009', async () => {
    const f = await farm(server)
    const token = (await exchange(f, await codeFor(f))).json.access_token as string
    const auth = { authorization: basicAuth(f.clientId, f.clientSecret) }
    const active = await postForm(server.url('/oauth/introspect'), { token }, auth)
    assert.equal(active.json.active, true)
    assert.equal(active.json.client_id, f.clientId)
    assert.equal(active.json.tenant_id, f.tenant.id)
    assert.equal(active.json.scope, 'fields:read:all')
    const other = await createApp(server.runtime.ctx, cliActor, { name: 'Other', kind: 'public', environment: 'sandbox', redirectUris: [CALLBACK] })
    const foreign = await postForm(server.url('/oauth/introspect'), { token }, { authorization: basicAuth(other.app.clientId, other.clientSecret) })
    assert.deepEqual(foreign.json, { active: false })
    // Another client cannot revoke it; the answer is the same 200 either way.
    const byOther = await postForm(server.url('/oauth/revoke'), { token }, { authorization: basicAuth(other.app.clientId, other.clientSecret) })
    assert.equal(byOther.status, 200)
    assert.equal((await postForm(server.url('/oauth/introspect'), { token }, auth)).json.active, true)
    const revoked = await postForm(server.url('/oauth/revoke'), { token, token_type_hint: 'access_token' }, auth)
    assert.equal(revoked.status, 200)
    assert.deepEqual((await postForm(server.url('/oauth/introspect'), { token }, auth)).json, { active: false })
    assert.equal((await postForm(server.url('/oauth/revoke'), { token }, auth)).status, 200)
    assert.equal((await postForm(server.url('/oauth/revoke'), {}, auth)).json.error, 'invalid_request')
  })

  it('/v1/token.revoke disconnects the integration from the farm', async () => {
    const f = await farm(server)
    const token = (await exchange(f, await codeFor(f))).json.access_token as string
    assert.deepEqual((await postJson(server.url('/v1/token.revoke'), { access_token: token })).json, { revoked: true })
    assert.deepEqual((await postJson(server.url('/v1/token.revoke'), { access_token: token })).json, { revoked: false })
    assert.deepEqual((await postJson(server.url('/v1/token.revoke'), { access_token: 'unknown' })).json, { revoked: false })
    assert.equal((await postJson(server.url('/v1/token.revoke'), {})).json.error, 'invalid_request')
    const [grant] = await server.storage.listGrants({ tenantId: f.tenant.id })
    assert.equal(grant?.status, 'revoked')
  })

  it('takes token.exchange parameters from the query string, and refuses one given twice', async () => {
    const f = await farm(server)
    const code = await codeFor(f)
    const both = await request(server.url(`/v1/token.exchange?${new URLSearchParams({ code })}`), {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ code, client_id: f.clientId, client_secret: f.clientSecret }).toString(),
    })
    assert.equal(both.status, 400)
    assert.equal(both.json.error, 'invalid_request')
    const query = new URLSearchParams({ code, client_id: f.clientId, client_secret: f.clientSecret })
    const res = await request(server.url(`/v1/token.exchange?${query}`), { method: 'POST' })
    assert.equal(res.status, 200, res.text)
    assert.equal(res.json.farm_id, f.tenant.id)
  })
})

describe('sign-in and pages', () => {
  let server: TestServer
  before(async () => {
    // The open policy: signing up signs in at once (under `verified` it mails a link: accounts.test.ts).
    server = await startServer({ overrides: { signup: 'open', signInLimits: { windowSeconds: 60, perAccountAddress: 3, delaySeconds: 60, perAddress: 1000 } } })
  })
  after(() => server.close())

  it('sets an HttpOnly SameSite=Lax session cookie, and pages forbid framing', async () => {
    const f = await farm(server)
    const page = await f.person.get('/connected-apps')
    assert.equal(page.status, 200)
    assert.match(page.headers.get('content-security-policy')!, /frame-ancestors 'none'/)
    assert.match(page.headers.get('content-security-policy')!, /default-src 'none'/)
    assert.equal(page.headers.get('x-frame-options'), 'DENY')
    const fresh = new Person(server, f.person.email)
    const before = (await request(server.url('/login'))).headers.getSetCookie().find((c) => c.startsWith('fg_browser='))
    assert.ok(before)
    const signIn = await fresh.signIn()
    const renewed = signIn.headers.getSetCookie().find((c) => c.startsWith('fg_browser='))
    assert.ok(renewed, 'signing in issues a new browser id, so one planted before forges nothing')
    const cookie = signIn.headers.getSetCookie().find((c) => c.startsWith('fg_session='))!
    assert.match(cookie, /HttpOnly/i)
    assert.match(cookie, /SameSite=Lax/i)
    assert.doesNotMatch(cookie, /Secure/i, 'plain http on loopback')
    assert.equal(signIn.headers.get('location'), '/connected-apps')
  })

  it('signing up renews the browser id as signing in does (no session fixation)', async () => {
    const p = new Person(server, `new-${randomBytes(4).toString('hex')}@partner.example`)
    const page = await p.get('/signup')
    const planted = p.cookie('fg_browser')
    assert.ok(planted, 'the sign-up form sets a browser id')
    const res = await p.post('/signup', { csrf: csrfOf(page), email: p.email, password: Person.password, return_to: '/developer' })
    assert.equal(res.status, 303, res.text)
    assert.ok(p.cookie('fg_session'), 'signed in')
    const renewed = p.cookie('fg_browser')
    assert.ok(renewed && renewed !== planted, 'a new browser id, so a CSRF token derived from the planted one forges nothing')
  })

  it('marks cookies Secure when the issuer is https', async () => {
    const https = await startServer({ overrides: { issuer: 'https://auth.example' } })
    try {
      const res = await request(https.url('/login'))
      assert.match(res.headers.getSetCookie().join('\n'), /fg_browser=[^;]+;.*Secure/i)
    } finally {
      await https.close()
    }
  })

  it('keeps return_to on this server', async () => {
    const f = await farm(server)
    for (const evil of ['https://evil.example/', '//evil.example/', '/\\evil.example', '/\u20ac', '/a b', '/\x7f']) {
      const p = new Person(server, f.person.email)
      const login = await p.get(`/login?${new URLSearchParams({ return_to: evil })}`)
      const res = await p.post('/login', { csrf: csrfOf(login), email: f.person.email, password: Person.password, return_to: evil })
      assert.equal(res.headers.get('location'), '/connected-apps', evil)
    }
  })

  it('sends a person who is not signed in to sign in, and back to the authorization request after', async () => {
    const f = await farm(server)
    const p = new Person(server, f.person.email)
    const path = `/authorize?${new URLSearchParams({ client_id: f.clientId, state: 'st' })}`
    const res = await p.get(path)
    assert.equal(res.status, 303)
    const login = new URL(res.headers.get('location')!, server.origin)
    assert.equal(login.pathname, '/login')
    assert.equal(login.searchParams.get('return_to'), path)
    const page = await p.get(login.pathname + login.search)
    const signed = await p.post('/login', { ...hiddenFields(page.text), email: f.person.email, password: Person.password })
    assert.equal(signed.headers.get('location'), path)
  })

  it('refuses a sign-in form without its CSRF token', async () => {
    const f = await farm(server)
    const p = new Person(server, f.person.email)
    await p.get('/login')
    const res = await p.post('/login', { email: f.person.email, password: Person.password })
    assert.equal(res.status, 403)
    assert.equal(
      res.headers.getSetCookie().some((c) => c.startsWith('fg_session=')),
      false,
    )
  })

  it('throttles failed sign-ins to an account from one address, even with the right password after', async () => {
    const f = await farm(server)
    const p = new Person(server, f.person.email)
    for (let i = 0; i < 3; i++) assert.equal((await p.signIn('wrong password!')).status, 401)
    const blocked = await p.signIn()
    assert.equal(blocked.status, 429)
    assert.ok(Number(blocked.headers.get('retry-after')) > 0)
    assert.match(blocked.text, /Too many failed sign-ins to this account from your address/)
  })

  it('signs out: the session cookie no longer signs anyone in', async () => {
    const f = await farm(server)
    const page = await f.person.get('/connected-apps')
    const out = await f.person.post('/logout', { csrf: csrfOf(page) })
    assert.equal(out.status, 303)
    const after = await f.person.get('/connected-apps')
    assert.equal(after.status, 303)
    assert.match(after.headers.get('location')!, /^\/login/)
  })

  it("a person who signs up from the app's link with no farm is told what to do and can go back to the app", async () => {
    const f = await farm(server)
    const p = new Person(server, `new-${randomBytes(3).toString('hex')}@farm.example`)
    const path = `/authorize?${new URLSearchParams({ client_id: f.clientId, state: 'come back' })}`
    const toLogin = await p.get(path)
    const returnTo = new URL(toLogin.headers.get('location')!, server.origin).searchParams.get('return_to')!
    const signUp = await p.get(`/signup?${new URLSearchParams({ return_to: returnTo })}`)
    const made = await p.post('/signup', { ...hiddenFields(signUp.text), email: p.email, password: Person.password })
    assert.equal(made.headers.get('location'), path)
    const page = await p.get(path)
    assert.equal(page.status, 403)
    assert.match(page.text, /No farm to connect/)
    assert.match(page.text, /ask an owner or admin of your farm to add you as an admin/)
    assert.match(page.text, /Back to Field Mapper/)
    assert.match(page.headers.get('content-security-policy')!, /form-action 'self' https:\/\/partner\.example/)
    const back = await p.post('/consent', { ...hiddenFields(page.text), decision: 'deny' })
    assert.equal(back.status, 303, back.text)
    const location = new URL(back.headers.get('location')!)
    assert.equal(location.origin + location.pathname, CALLBACK)
    assert.equal(location.searchParams.get('error'), 'access_denied')
    assert.equal(location.searchParams.get('state'), 'come back')
    // Allow from that page's fields connects nothing: there is no farm to connect.
    const allow = await p.post('/consent', { ...hiddenFields(page.text), decision: 'allow' })
    assert.equal(allow.status, 403)
  })

  it('tells a member who may not consent, and lets an admin choose among farms', async () => {
    const f = await farm(server)
    const member = `member-${randomBytes(3).toString('hex')}@farm.example`
    await createUser(server.runtime.ctx, cliActor, { email: member, password: Person.password, tenantId: f.tenant.id, role: 'member' })
    const m = new Person(server, member)
    await m.signIn()
    const refused = await m.get(`/authorize?${new URLSearchParams({ client_id: f.clientId })}`)
    assert.equal(refused.status, 403)
    assert.match(refused.text, /not an owner or admin/)

    const second = await createTenant(server.runtime.ctx, cliActor, { name: 'Second farm', environment: 'sandbox' })
    const live = await createTenant(server.runtime.ctx, cliActor, { name: 'Live farm', environment: 'live' })
    const owner = (await server.storage.getUserByEmail(f.person.email))!
    await server.storage.addMembership({ userId: owner.id, tenantId: second.id, role: 'admin' })
    await server.storage.addMembership({ userId: owner.id, tenantId: live.id, role: 'owner' })
    const consent = await f.person.get(`/authorize?${new URLSearchParams({ client_id: f.clientId })}`)
    const options = [...consent.text.matchAll(/<option value="([^"]+)">/g)].map((o) => o[1]).sort()
    assert.deepEqual(options, [f.tenant.id, second.id].sort(), 'sandbox app: sandbox farms only')
    // A tenant that is not on offer cannot be forced into the form.
    const forced = await f.person.post('/consent', { ...hiddenFields(consent.text), tenant_id: live.id, decision: 'allow' })
    assert.equal(forced.status, 403)
    const chosen = await f.person.decide({ client_id: f.clientId }, 'allow', second.id)
    const res = await exchange(f, chosen.searchParams.get('code')!)
    assert.equal(res.json.farm_id, second.id)
  })
})

describe('fifty parallel redemptions of one code', () => {
  eachEngine(
    'produce exactly one token',
    async (engine: Engine) => {
      const server = await startServer({ engine })
      try {
        const f = await farm(server)
        const code = await codeFor(f)
        const results = await Promise.all(Array.from({ length: 50 }, () => exchange(f, code)))
        const ok = results.filter((r) => r.status === 200)
        assert.equal(ok.length, 1, results.map((r) => r.status).join(' '))
        for (const r of results) if (r.status !== 200) assert.equal(r.json.error, 'invalid_grant')
        // The replays revoked what the code issued (RFC 6749 §4.1.2).
        const token = ok[0]!.json.access_token as string
        assert.equal((await request(server.url('/v1/permissions'), { headers: bearer(token) })).status, 401)
      } finally {
        await server.close()
      }
    },
    { timeout: 60_000 },
  )
})

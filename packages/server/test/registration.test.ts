/**
 * Clients that register themselves (RFC 7591, RFC 7592) under each policy, over app.inject for shapes
 * and errors, on a real store (both engines where it is involved), and a registered public client's
 * whole life over HTTP: consent, code with PKCE, refresh, and deleting itself.
 */
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { after, before, describe, it } from 'node:test'
import {
  cliActor,
  consentableTenants,
  createApp,
  createInitialAccessToken,
  createTenant,
  createUser,
  hashSecret,
  revokeInitialAccessToken,
  tokenEndpoint,
  type App,
  type ConfigOverrides,
} from '@fieldgate/core'
import { basicAuth, bearer, eachEngine, injectHttp, postForm, request, startServer, type Engine, type Res, type TestServer } from './helpers.js'
import { Person } from './person.js'

const LOOPBACK_CALLBACK = 'http://127.0.0.1:53682/callback'
/** Every registration test registers many clients from one address: the limit has its own test. */
const roomy: ConfigOverrides = { rateLimits: { registerPerAddress: 10_000 } }

const jsonHeaders = { 'content-type': 'application/json' }
const publicClient = { redirect_uris: [LOOPBACK_CALLBACK], token_endpoint_auth_method: 'none', client_name: 'Field Agent', grant_types: ['authorization_code', 'refresh_token'] }

/** A server on `engine` that only injects, and its HTTP helpers. */
async function injected(engine: Engine, overrides: ConfigOverrides = {}) {
  const server = await startServer({ engine, listen: false, overrides: { ...roomy, ...overrides } })
  const http = injectHttp(() => server)
  const register = (body: unknown, headers: Record<string, string> = {}) =>
    http.request(server.url('/oauth/register'), { method: 'POST', headers: { ...jsonHeaders, ...headers }, body: typeof body === 'string' ? body : JSON.stringify(body) })
  const manage = (method: 'GET' | 'PUT' | 'DELETE', clientId: string, token: string | undefined, body?: unknown) =>
    http.request(server.url(`/oauth/register/${encodeURIComponent(clientId)}`), {
      method,
      headers: { ...(token === undefined ? {} : bearer(token)), ...(body === undefined ? {} : jsonHeaders) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    })
  return { server, http, register, manage }
}

const appOf = async (server: TestServer, clientId: string): Promise<App> => (await server.storage.getAppByClientId(clientId)) ?? assert.fail(`no app ${clientId}`)

function assertError(res: Res, status: number, error: string): void {
  assert.equal(res.status, status, res.text)
  assert.equal(res.json.error, error, res.text)
  assert.equal(typeof res.json.error_description, 'string')
}

describe('RFC 7591 registration, open (the default)', () => {
  eachEngine('registers a public client: the RFC 7591 §3.2.1 answer, unknown metadata ignored, an unreviewed live app stored with hashed tokens', async (engine) => {
    const { server, register } = await injected(engine)
    try {
      const before = Math.floor(Date.now() / 1000)
      const res = await register({
        ...publicClient,
        scope: 'fields:read:all alerts:write',
        tos_uri: 'https://agent.example/tos',
        software_id: 'x',
        unknown_field: { nested: true },
      })
      assert.equal(res.status, 201, res.text)
      assert.equal(res.headers.get('cache-control'), 'no-store')
      const body = res.json
      assert.match(body.client_id, /^[0-9a-f]{32}$/)
      assert.ok(body.client_id_issued_at >= before && body.client_id_issued_at <= before + 5)
      assert.match(body.registration_access_token, /^fgr_[A-Za-z0-9_-]{43}$/)
      assert.equal(body.registration_client_uri, `${server.issuer}/oauth/register/${body.client_id}`)
      assert.deepEqual(
        { ...body, client_id: 0, client_id_issued_at: 0, registration_access_token: 0, registration_client_uri: 0 },
        {
          client_id: 0,
          client_id_issued_at: 0,
          registration_access_token: 0,
          registration_client_uri: 0,
          client_name: 'Field Agent',
          redirect_uris: [LOOPBACK_CALLBACK],
          grant_types: ['authorization_code', 'refresh_token'],
          response_types: ['code'],
          token_endpoint_auth_method: 'none',
          scope: 'fields:read:all alerts:write',
        },
        'no secret for a public client; tos_uri, software_id and unknown fields are not registered',
      )
      const app = await appOf(server, body.client_id)
      assert.equal(app.kind, 'public')
      assert.equal(app.environment, 'live')
      assert.equal(app.registration, 'dynamic')
      assert.equal(app.publicClient, true)
      assert.equal(app.refreshTokens, true)
      assert.equal(app.approvedAt, null, 'nobody reviewed it')
      assert.equal(app.listed, false)
      assert.equal(app.ownerUserId, null)
      assert.equal(app.tenantId, null)
      assert.equal(app.registrationTokenHash, hashSecret(body.registration_access_token), 'stored hashed')
      assert.deepEqual(await server.storage.listLiveSecrets(app.id, Date.now()), [])
      const [entry] = await server.storage.listAudit({ appIds: [app.id], limit: 5 })
      assert.equal(entry?.action, 'client.registered')
      assert.equal(entry?.actor, 'visitor')
      assert.equal(entry?.address, '127.0.0.1')
      assert.deepEqual(entry?.details.redirect_uris, [LOOPBACK_CALLBACK])
      // The marketplace never lists it, and the review queue never holds it.
      assert.equal((await server.storage.listApps({ review: 'pending' })).length, 0)
    } finally {
      await server.close()
    }
  })

  eachEngine('registers a confidential client: a secret shown once (client_secret_expires_at 0), stored hashed, that authenticates', async (engine) => {
    const { server, http, register } = await injected(engine)
    try {
      const res = await register({
        redirect_uris: ['https://agent.example/cb'],
        token_endpoint_auth_method: 'client_secret_post',
        contacts: ['not an address', 'dev@agent.example'],
      })
      assert.equal(res.status, 201, res.text)
      assert.match(res.json.client_secret, /^fgs_live_/)
      assert.equal(res.json.client_secret_expires_at, 0)
      assert.equal(res.json.token_endpoint_auth_method, 'client_secret_post')
      assert.deepEqual(res.json.contacts, ['dev@agent.example'])
      assert.equal(res.json.client_name, 'Unnamed app')
      const app = await appOf(server, res.json.client_id)
      assert.equal(app.publicClient, false)
      assert.equal(app.refreshTokens, true)
      const [secret] = await server.storage.listLiveSecrets(app.id, Date.now())
      assert.equal(secret?.secretHash, hashSecret(res.json.client_secret))
      assert.equal(secret?.secretEnc, null, 'never sealed: it signs nothing')
      // The secret authenticates the client (introspection answers it), a wrong one does not.
      const ok = await http.postForm(server.url('/oauth/introspect'), { token: 'x' }, { authorization: basicAuth(app.clientId, res.json.client_secret) })
      assert.equal(ok.status, 200, ok.text)
      assert.deepEqual(ok.json, { active: false })
      const wrong = await http.postForm(server.url('/oauth/introspect'), { token: 'x' }, { authorization: basicAuth(app.clientId, `${res.json.client_secret}x`) })
      assert.equal(wrong.status, 401)
    } finally {
      await server.close()
    }
  })

  it('with no scope, registers every scope a person can consent to, never fieldgate:introspect', async () => {
    const { server, register } = await injected('sqlite')
    try {
      const res = await register(publicClient)
      assert.equal(res.json.scope, 'api fields:read:all maps:write vehicles:write sensors:write alerts:write')
      assertError(await register({ ...publicClient, scope: 'api fieldgate:introspect' }), 400, 'invalid_client_metadata')
    } finally {
      await server.close()
    }
  })

  it('refuses what RFC 7591 §3.2.2 refuses, with its error codes, and stores nothing', async () => {
    const { server, http, register } = await injected('sqlite')
    try {
      const refused: Array<[string, unknown, string]> = [
        ['client_credentials grant', { ...publicClient, grant_types: ['client_credentials'] }, 'invalid_client_metadata'],
        ['client_credentials beside the code', { ...publicClient, grant_types: ['authorization_code', 'client_credentials'] }, 'invalid_client_metadata'],
        ['implicit grant', { ...publicClient, grant_types: ['implicit'] }, 'invalid_client_metadata'],
        ['refresh_token alone', { ...publicClient, grant_types: ['refresh_token'] }, 'invalid_client_metadata'],
        ['response type token', { ...publicClient, response_types: ['token'] }, 'invalid_client_metadata'],
        ['private_key_jwt', { ...publicClient, token_endpoint_auth_method: 'private_key_jwt' }, 'invalid_client_metadata'],
        ['unknown auth method', { ...publicClient, token_endpoint_auth_method: 'tls_client_auth' }, 'invalid_client_metadata'],
        ['unknown scope', { ...publicClient, scope: 'api farms:delete' }, 'invalid_client_metadata'],
        ['scope of bad characters', { ...publicClient, scope: 'api "quoted"' }, 'invalid_client_metadata'],
        ['http logo', { ...publicClient, logo_uri: 'http://agent.example/logo.png' }, 'invalid_client_metadata'],
        ['javascript: client_uri', { ...publicClient, client_uri: 'javascript:alert(1)' }, 'invalid_client_metadata'],
        ['client_name of two lines', { ...publicClient, client_name: 'Field\nAgent' }, 'invalid_client_metadata'],
        ['redirect_uris of the wrong type', { ...publicClient, redirect_uris: { a: 1 } }, 'invalid_client_metadata'],
        ['a JSON array', [publicClient], 'invalid_client_metadata'],
        ['no redirect_uris', { token_endpoint_auth_method: 'none' }, 'invalid_redirect_uri'],
        ['empty redirect_uris', { ...publicClient, redirect_uris: [] }, 'invalid_redirect_uri'],
        ['http off loopback', { ...publicClient, redirect_uris: ['http://agent.example/callback'] }, 'invalid_redirect_uri'],
        ['javascript: scheme', { ...publicClient, redirect_uris: ['javascript:alert(document.domain)'] }, 'invalid_redirect_uri'],
        ['data: scheme', { ...publicClient, redirect_uris: ['data:text/html,hi'] }, 'invalid_redirect_uri'],
        ['a fragment', { ...publicClient, redirect_uris: ['https://agent.example/cb#frag'] }, 'invalid_redirect_uri'],
        ['relative', { ...publicClient, redirect_uris: ['/callback'] }, 'invalid_redirect_uri'],
        ['private-use scheme for a confidential client', { redirect_uris: ['com.example.agent:/cb'], token_endpoint_auth_method: 'client_secret_basic' }, 'invalid_redirect_uri'],
        ['eleven redirect_uris', { ...publicClient, redirect_uris: Array.from({ length: 11 }, (_, i) => `https://agent.example/${i}`) }, 'invalid_client_metadata'],
      ]
      for (const [what, body, error] of refused) {
        const res = await register(body)
        assert.equal(res.status, 400, `${what}: ${res.text}`)
        assert.equal(res.json.error, error, `${what}: ${res.text}`)
      }
      assertError(await register('{"redirect_uris": ['), 400, 'invalid_request')
      assertError(
        await http.request(server.url('/oauth/register'), {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: 'redirect_uris=https://a.example/cb',
        }),
        400,
        'invalid_request',
      )
      assert.equal((await server.storage.listApps()).length, 0, 'nothing was registered')
      // What a native app or agent registers is accepted: a private-use scheme, loopback http, https.
      const native = await register({ ...publicClient, redirect_uris: ['com.example.agent:/oauth', 'http://[::1]/cb', 'http://localhost:8080/cb', 'https://agent.example/cb'] })
      assert.equal(native.status, 201, native.text)
    } finally {
      await server.close()
    }
  })

  it('limits registrations per client address (429 rate_limited with Retry-After)', async () => {
    const { server, register } = await injected('sqlite', { rateLimits: { registerPerAddress: 2 } })
    try {
      assert.equal((await register(publicClient)).status, 201)
      assert.equal((await register({ ...publicClient, redirect_uris: ['ftp://x'] })).status, 400, 'refusals count too')
      const third = await register(publicClient)
      assertError(third, 429, 'rate_limited')
      assert.ok(Number(third.headers.get('retry-after')) > 0)
      assert.equal((await server.storage.listApps()).length, 1)
    } finally {
      await server.close()
    }
  })
})

describe('RFC 7591 registration with an initial access token (FIELDGATE_REGISTRATION=token)', () => {
  eachEngine('registers only with a live initial access token: none, wrong, expired or revoked is 401 invalid_token', async (engine) => {
    const { server, register } = await injected(engine, { registration: { policy: 'token' } })
    try {
      const ctx = server.runtime.ctx
      const good = await createInitialAccessToken(ctx, cliActor, { note: 'agents', expiresInDays: 30 })
      assert.match(good.secret, /^fgi_/)
      assert.equal(good.token.tokenHash, hashSecret(good.secret))
      // Made two days ago for one day: expired.
      const expired = await createInitialAccessToken({ ...ctx, now: () => Date.now() - 2 * 86_400_000 }, cliActor, { expiresInDays: 1 })
      const revoked = await createInitialAccessToken(ctx, cliActor, {})
      await revokeInitialAccessToken(ctx, cliActor, { id: revoked.token.id })

      const none = await register(publicClient)
      assertError(none, 401, 'invalid_token')
      assert.equal(none.headers.get('www-authenticate')?.startsWith('Bearer realm="fieldgate"'), true)
      for (const [what, token] of [
        ['wrong', `${good.secret}x`],
        ['expired', expired.secret],
        ['revoked', revoked.secret],
        ['a registration access token', 'fgr_' + 'a'.repeat(43)],
      ] as const) {
        const res = await register(publicClient, bearer(token))
        assertError(res, 401, 'invalid_token')
        assert.match(res.headers.get('www-authenticate') ?? '', /error="invalid_token"/, what)
      }
      assert.equal((await server.storage.listApps()).length, 0)

      const ok = await register(publicClient, bearer(good.secret))
      assert.equal(ok.status, 201, ok.text)
      const [entry] = await server.storage.listAudit({ appIds: [(await appOf(server, ok.json.client_id)).id], limit: 5 })
      assert.equal(entry?.details.initial_access_token, good.token.id)
      // It registers any number of clients until it expires or is revoked.
      assert.equal((await register(publicClient, bearer(good.secret))).status, 201)
      await revokeInitialAccessToken(ctx, cliActor, { id: good.token.id })
      assertError(await register(publicClient, bearer(good.secret)), 401, 'invalid_token')
    } finally {
      await server.close()
    }
  })

  it('the admin API makes, lists and revokes initial access tokens, the token shown only when made', async () => {
    const adminToken = randomBytes(32).toString('base64url')
    const { server, http, register } = await injected('sqlite', { registration: { policy: 'token' }, adminToken })
    try {
      const admin = { authorization: `Bearer ${adminToken}` }
      const made = await http.postJson(server.url('/admin/v1/registration-tokens'), { note: 'MCP clients', expires_days: 7 }, admin)
      assert.equal(made.status, 201, made.text)
      assert.match(made.json.token, /^fgi_/)
      assert.equal(made.json.note, 'MCP clients')
      assert.equal(made.json.created_by, 'admin-api')
      assert.ok(Math.abs(Date.parse(made.json.expires_at) - Date.now() - 7 * 86_400_000) < 60_000)
      const listed = await http.request(server.url('/admin/v1/registration-tokens'), { headers: admin })
      assert.deepEqual(
        listed.json.map((t: Record<string, unknown>) => t.id),
        [made.json.id],
      )
      assert.equal(listed.json[0].token, undefined, 'never listed')
      assert.equal((await register(publicClient, bearer(made.json.token))).status, 201)
      const revoked = await http.postJson(server.url(`/admin/v1/registration-tokens/${made.json.id}/revoke`), {}, admin)
      assert.deepEqual(revoked.json, { revoked: true })
      assert.equal((await http.postJson(server.url(`/admin/v1/registration-tokens/${made.json.id}/revoke`), {}, admin)).status, 404)
      assertError(await register(publicClient, bearer(made.json.token)), 401, 'invalid_token')
      assertError(await http.postJson(server.url('/admin/v1/registration-tokens'), { expires_days: 0 }, admin), 400, 'invalid_request')
    } finally {
      await server.close()
    }
  })
})

describe('registration off, and in the sandbox', () => {
  eachEngine('off: no /oauth/register (404), none advertised; a client registered before keeps its RFC 7592 management', async (engine) => {
    const open = await injected(engine)
    const off = await startServer({
      engine,
      listen: false,
      dataDir: open.server.dataDir,
      ...(open.server.schema ? { schema: open.server.schema } : {}),
      overrides: { ...roomy, registration: { policy: 'off', metadataDocuments: false } },
    })
    try {
      const earlier = await open.register(publicClient)
      assert.equal(earlier.status, 201)
      const http = injectHttp(() => off)
      const res = await http.postJson(off.url('/oauth/register'), publicClient)
      assertError(res, 404, 'not_found')
      const metadata = (await http.request(off.url('/.well-known/oauth-authorization-server'))).json
      assert.equal(metadata.registration_endpoint, undefined)
      assert.equal(metadata.client_id_metadata_document_supported, undefined)
      const openMetadata = (await open.http.request(open.server.url('/.well-known/oauth-authorization-server'))).json
      assert.equal(openMetadata.registration_endpoint, `${open.server.issuer}/oauth/register`)
      assert.equal(openMetadata.client_id_metadata_document_supported, true)
      const read = await http.request(off.url(`/oauth/register/${earlier.json.client_id}`), { headers: bearer(earlier.json.registration_access_token) })
      assert.equal(read.status, 200, read.text)
      const gone = await http.request(off.url(`/oauth/register/${earlier.json.client_id}`), { method: 'DELETE', headers: bearer(earlier.json.registration_access_token) })
      assert.equal(gone.status, 204)
      assert.equal(await off.storage.getAppByClientId(earlier.json.client_id), undefined)
    } finally {
      await off.close()
      await open.server.close()
    }
  })

  it('FIELDGATE_REGISTRATION_ENVIRONMENT=sandbox: registered clients are sandbox apps, connectable only to sandbox tenants', async () => {
    const { server, register } = await injected('sqlite', { registration: { environment: 'sandbox' } })
    try {
      const ctx = server.runtime.ctx
      const res = await register(publicClient)
      const app = await appOf(server, res.json.client_id)
      assert.equal(app.environment, 'sandbox')
      const [live, sandbox] = [
        await createTenant(ctx, cliActor, { name: 'Live farm', environment: 'live' }),
        await createTenant(ctx, cliActor, { name: 'Sandbox farm', environment: 'sandbox' }),
      ]
      const owner = await createUser(ctx, cliActor, { email: `owner-${randomBytes(3).toString('hex')}@farm.example`, password: Person.password, tenantId: live.id, role: 'owner' })
      assert.deepEqual(await consentableTenants(ctx, owner.id, app), [], 'a live farm cannot connect it')
      await createUser(ctx, cliActor, { email: `sb-${randomBytes(3).toString('hex')}@farm.example`, password: Person.password, tenantId: sandbox.id, role: 'owner' }).then(
        async (u) =>
          assert.deepEqual(
            (await consentableTenants(ctx, u.id, app)).map((t) => t.id),
            [sandbox.id],
          ),
      )
    } finally {
      await server.close()
    }
  })
})

describe('RFC 7592 client configuration', () => {
  eachEngine('reads, replaces and deletes with the registration access token; any other token is 401 invalid_token', async (engine) => {
    const { server, manage, register } = await injected(engine)
    try {
      const made = (await register({ ...publicClient, logo_uri: 'https://agent.example/logo.png', scope: 'api' })).json
      const other = (await register(publicClient)).json
      const token = made.registration_access_token as string

      const read = await manage('GET', made.client_id, token)
      assert.equal(read.status, 200, read.text)
      assert.equal(read.headers.get('cache-control'), 'no-store')
      assert.deepEqual(read.json, made, 'the same client information, with the token the request carried')

      for (const [what, res] of [
        ['no token', await manage('GET', made.client_id, undefined)],
        ['a wrong token', await manage('GET', made.client_id, `${token}x`)],
        ["another client's token", await manage('GET', made.client_id, other.registration_access_token)],
        ['an unknown client', await manage('GET', 'f'.repeat(32), token)],
        ['a NUL client_id', await manage('GET', 'a\u0000b', token)],
      ] as const) {
        assert.equal(res.status, 401, `${what}: ${res.text}`)
        assert.equal(res.json.error, 'invalid_token', what)
        assert.match(res.headers.get('www-authenticate') ?? '', /^Bearer /, what)
      }
      // A portal app is never managed this way, whatever token is sent.
      const portal = await createApp(server.runtime.ctx, cliActor, { name: 'Portal app', kind: 'public', environment: 'sandbox', redirectUris: ['https://p.example/cb'] })
      assertError(await manage('GET', portal.app.clientId, token), 401, 'invalid_token')

      // PUT replaces the metadata: what is left out is cleared (the logo) or back to its default.
      const put = await manage('PUT', made.client_id, token, {
        client_id: made.client_id,
        redirect_uris: ['https://agent.example/new'],
        client_name: 'Renamed',
        scope: 'fields:read:all',
      })
      assert.equal(put.status, 200, put.text)
      assert.equal(put.json.client_name, 'Renamed')
      assert.deepEqual(put.json.redirect_uris, ['https://agent.example/new'])
      assert.equal(put.json.scope, 'fields:read:all')
      assert.equal(put.json.logo_uri, undefined)
      assert.equal(put.json.registration_access_token, token, 'nothing rotates')
      const stored = await appOf(server, made.client_id)
      assert.deepEqual([stored.name, stored.redirectUris, stored.scopes, stored.logoUrl], ['Renamed', ['https://agent.example/new'], ['fields:read:all'], null])
      assert.equal((await server.storage.listAudit({ appIds: [stored.id], limit: 5 }))[0]?.action, 'client.updated')

      const refusals: Array<[string, unknown, number, string]> = [
        ['no client_id', { redirect_uris: [LOOPBACK_CALLBACK] }, 400, 'invalid_client_metadata'],
        ["another client's id", { client_id: other.client_id, redirect_uris: [LOOPBACK_CALLBACK] }, 400, 'invalid_client_metadata'],
        ['a secret for a public client', { client_id: made.client_id, redirect_uris: [LOOPBACK_CALLBACK], client_secret: 'x' }, 400, 'invalid_client_metadata'],
        [
          'becoming confidential',
          { client_id: made.client_id, redirect_uris: [LOOPBACK_CALLBACK], token_endpoint_auth_method: 'client_secret_basic' },
          400,
          'invalid_client_metadata',
        ],
        ['a bad redirect', { client_id: made.client_id, redirect_uris: ['http://agent.example/cb'] }, 400, 'invalid_redirect_uri'],
        ['client_credentials', { client_id: made.client_id, redirect_uris: [LOOPBACK_CALLBACK], grant_types: ['client_credentials'] }, 400, 'invalid_client_metadata'],
      ]
      for (const [what, body, status, error] of refusals) {
        const res = await manage('PUT', made.client_id, token, body)
        assert.equal(res.status, status, `${what}: ${res.text}`)
        assert.equal(res.json.error, error, what)
      }
      const stranger = await manage('PUT', made.client_id, other.registration_access_token, { client_id: made.client_id, redirect_uris: ['https://evil.example/cb'] })
      assertError(stranger, 401, 'invalid_token')
      assert.deepEqual((await appOf(server, made.client_id)).redirectUris, ['https://agent.example/new'], 'no refusal changed anything')

      // DELETE: the client is gone, and its token with it.
      assertError(await manage('DELETE', made.client_id, other.registration_access_token), 401, 'invalid_token')
      const deleted = await manage('DELETE', made.client_id, token)
      assert.equal(deleted.status, 204, deleted.text)
      assert.equal(await server.storage.getAppByClientId(made.client_id), undefined)
      assertError(await manage('GET', made.client_id, token), 401, 'invalid_token')
      assert.equal((await server.storage.listAudit({ limit: 20 })).filter((e) => e.action === 'client.deleted' && e.clientId === made.client_id).length, 1)
    } finally {
      await server.close()
    }
  })

  it('a confidential client may repeat its current secret in an update, never another', async () => {
    const { server, manage, register } = await injected('sqlite')
    try {
      const made = (await register({ redirect_uris: ['https://agent.example/cb'] })).json
      assert.equal(made.token_endpoint_auth_method, 'client_secret_basic', "RFC 7591's default")
      const base = { client_id: made.client_id, redirect_uris: ['https://agent.example/cb'], token_endpoint_auth_method: 'client_secret_basic' }
      assertError(await manage('PUT', made.client_id, made.registration_access_token, { ...base, client_secret: 'fgs_live_guess' }), 400, 'invalid_client_metadata')
      const ok = await manage('PUT', made.client_id, made.registration_access_token, { ...base, client_secret: made.client_secret, client_name: 'Still me' })
      assert.equal(ok.status, 200, ok.text)
      assert.equal(ok.json.client_secret, undefined, 'stored hashed: never given back')
      assert.equal(ok.json.client_secret_expires_at, 0)
      assert.equal(ok.json.client_name, 'Still me')
      const read = await manage('GET', made.client_id, made.registration_access_token)
      assert.equal(read.json.client_secret, undefined)
    } finally {
      await server.close()
    }
  })
})

describe('a registered public client, from registration to deleting itself, over HTTP', () => {
  let server: TestServer
  before(async () => {
    server = await startServer({ overrides: roomy })
  })
  after(() => server.close())

  const pkce = () => {
    const verifier = randomBytes(32).toString('base64url')
    return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') }
  }

  it('consent says it is unreviewed; code with PKCE, refresh with rotation; deleting itself ends its tokens at once', async () => {
    const ctx = server.runtime.ctx
    const tenant = await createTenant(ctx, cliActor, { name: 'North Farm', environment: 'live' })
    const email = `owner-${randomBytes(4).toString('hex')}@farm.example`
    await createUser(ctx, cliActor, { email, password: Person.password, tenantId: tenant.id, role: 'owner' })
    const person = new Person(server, email)
    assert.equal((await person.signIn()).status, 303)

    const registered = await request(server.url('/oauth/register'), {
      method: 'POST',
      headers: jsonHeaders,
      body: JSON.stringify({ ...publicClient, scope: 'fields:read:all maps:write' }),
    })
    assert.equal(registered.status, 201, registered.text)
    const clientId = registered.json.client_id as string

    const { verifier, challenge } = pkce()
    const query = {
      response_type: 'code',
      client_id: clientId,
      redirect_uri: LOOPBACK_CALLBACK,
      scope: 'fields:read:all',
      state: 'st',
      code_challenge: challenge,
      code_challenge_method: 'S256',
    }
    const consent = await person.get(`/oauth/authorize?${new URLSearchParams(query)}`)
    assert.equal(consent.status, 200, consent.text)
    assert.match(consent.text, /Fieldgate has not reviewed Field Agent\./)
    assert.match(consent.text, /registered itself/)
    assert.match(consent.text, /Sends you back to <strong>127\.0\.0\.1:53682<\/strong>/)
    assert.doesNotMatch(consent.text, /by Unnamed publisher/)
    // Without PKCE a public client is refused, on a page: a self-registered client's redirect URI never
    // gets an error from a link, or anyone could use Fieldgate as an open redirector (RFC 9700 §4.11.2).
    const { code_challenge: _c, code_challenge_method: _m, ...plain } = query
    const noPkce = await person.get(`/oauth/authorize?${new URLSearchParams(plain)}`)
    assert.equal(noPkce.status, 400)
    assert.equal(noPkce.headers.get('location'), null)
    assert.match(noPkce.text, /code_challenge/)

    const codeFrom = async (challenge: string): Promise<string> => {
      const location = await person.decide({ ...query, code_challenge: challenge }, 'allow')
      assert.equal(location.origin + location.pathname, LOOPBACK_CALLBACK)
      return location.searchParams.get('code') ?? assert.fail(`no code in ${location}`)
    }
    const codeGrant = (code: string, verifier: string) => ({
      grant_type: 'authorization_code',
      code,
      client_id: clientId,
      redirect_uri: LOOPBACK_CALLBACK,
      code_verifier: verifier,
    })
    const refresh = (token: string) => postForm(server.url('/oauth/token'), { grant_type: 'refresh_token', refresh_token: token, client_id: clientId })
    // /oauth/token's body does not name the refresh token yet (routes/token.ts, another branch of issue 16):
    // where the test needs one, it calls the token endpoint's core, which the route calls.
    const coreToken = async (params: Record<string, string>): Promise<{ accessToken: string; refreshToken: string }> => {
      const result = await tokenEndpoint(ctx, { params, authorization: undefined })
      return { accessToken: result.accessToken, refreshToken: result.refreshToken ?? assert.fail('no refresh token for a public client') }
    }

    // The code over HTTP: the public client authenticates with its client_id alone, and must prove PKCE.
    const wrongVerifier = await postForm(server.url('/oauth/token'), codeGrant(await codeFrom(challenge), pkce().verifier))
    assertError(wrongVerifier, 400, 'invalid_grant')
    const exchanged = await postForm(server.url('/oauth/token'), codeGrant(await codeFrom(challenge), verifier))
    assert.equal(exchanged.status, 200, exchanged.text)
    assert.equal(exchanged.json.token_type, 'Bearer')
    assert.equal(exchanged.json.scope, 'fields:read:all')
    assert.ok(exchanged.json.expires_in > 0 && exchanged.json.expires_in <= 900, 'short-lived')
    const permissions = await request(server.url('/v1/permissions'), { headers: bearer(exchanged.json.access_token) })
    assert.equal(permissions.status, 200, permissions.text)

    // Refresh over HTTP rotates; the used token again is theft and ends the family.
    const second = pkce()
    const first = await coreToken(codeGrant(await codeFrom(second.challenge), second.verifier))
    const refreshed = await refresh(first.refreshToken)
    assert.equal(refreshed.status, 200, refreshed.text)
    assert.equal(refreshed.json.scope, 'fields:read:all')
    assert.equal((await request(server.url('/v1/permissions'), { headers: bearer(refreshed.json.access_token) })).status, 200)
    assertError(await refresh(first.refreshToken), 400, 'invalid_grant')

    // A live family, then RFC 7592 §2.3: the client deletes itself, and everything it holds stops at once.
    const third = pkce()
    const live = await coreToken(codeGrant(await codeFrom(third.challenge), third.verifier))
    const appId = (await appOf(server, clientId)).id
    assert.equal((await server.storage.listGrants({ appId })).length, 1)
    const deleted = await request(server.url(`/oauth/register/${clientId}`), { method: 'DELETE', headers: bearer(registered.json.registration_access_token) })
    assert.equal(deleted.status, 204)
    for (const token of [exchanged.json.access_token, live.accessToken]) assert.equal((await request(server.url('/v1/permissions'), { headers: bearer(token) })).status, 401)
    assertError(await refresh(live.refreshToken), 401, 'invalid_client')
    assert.equal((await server.storage.listGrants({ appId })).length, 0)
  })
})

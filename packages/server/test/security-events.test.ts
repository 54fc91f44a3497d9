/**
 * Security events over real HTTP, each recorded by doing what it records: a person allows and denies
 * an app, a client replays a code, a client keeps using a token of a revoked grant, a script guesses the admin token. They are stored with who, where
 * and which app, and read with `fieldgate events security` and GET /admin/v1/security-events.
 * Sign-in events are in accounts.test.ts; review and suspension in review.test.ts.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { after, before, describe, it } from 'node:test'
import { cliActor, createApp, createGrant, createTenant, createUser, revokeGrant, type SecurityEventKind } from '@fieldgate/core'
import { bearer, getToken, postForm, request, runCli, startServer, waitUntil, type TestServer } from './helpers.js'
import { Person } from './person.js'

const CALLBACK = 'https://partner.example/callback'
const adminToken = randomBytes(32).toString('base64url')

describe('security events', () => {
  let server: TestServer
  let person: Person
  let clientId: string
  let clientSecret: string
  let tenantId: string

  before(async () => {
    server = await startServer({ overrides: { adminToken } })
    const ctx = server.runtime.ctx
    const tenant = await createTenant(ctx, cliActor, { name: 'Ridge Farm', environment: 'sandbox' })
    tenantId = tenant.id
    const email = `owner-${randomBytes(4).toString('hex')}@farm.example`
    await createUser(ctx, cliActor, { email, password: Person.password, tenantId: tenant.id, role: 'owner' })
    const created = await createApp(ctx, cliActor, { name: 'Field Mapper', kind: 'public', environment: 'sandbox', scopes: 'fields:read:all', redirectUris: [CALLBACK] })
    clientId = created.app.clientId
    clientSecret = created.clientSecret
    person = new Person(server, email)
    assert.equal((await person.signIn()).status, 303)
  })
  after(() => server?.close())

  /** Events are stored without holding up the request: wait until `kind` has `count` of them. */
  const stored = async (kind: SecurityEventKind, count = 1) => {
    await waitUntil(async () => (await server.storage.listSecurityEvents({ kinds: [kind] })).length >= count, 3_000)
    return server.storage.listSecurityEvents({ kinds: [kind] })
  }

  it('consent given and denied: who, which app, which tenant, from where', async () => {
    await person.decide({ client_id: clientId, scope: 'fields:read:all', state: 'd' }, 'deny')
    const [denied] = await stored('consent.denied')
    assert.equal(denied?.email, person.email)
    assert.equal(denied?.clientId, clientId)
    assert.equal(denied?.address, '127.0.0.1')
    assert.deepEqual(denied?.details, { scopes: ['fields:read:all'] })

    await person.decide({ client_id: clientId, scope: 'fields:read:all', state: 'a' }, 'allow', tenantId)
    const [given] = await stored('consent.given')
    assert.equal(given?.clientId, clientId)
    assert.equal(given?.tenantId, tenantId)
    assert.equal(given?.email, person.email)
  })

  it('a replayed code: the event names the app, the tenant and the grant whose tokens were revoked', async () => {
    const location = await person.decide({ client_id: clientId, scope: 'fields:read:all', state: 'r' }, 'allow', tenantId)
    const code = location.searchParams.get('code')!
    const exchange = () => postForm(server.url('/v1/token.exchange'), { code, client_id: clientId, client_secret: clientSecret })
    assert.equal((await exchange()).status, 200)
    assert.equal((await exchange()).status, 400)
    const [replayed] = await stored('code.replayed')
    assert.equal(replayed?.clientId, clientId)
    assert.equal(replayed?.tenantId, tenantId)
    assert.equal(typeof replayed?.details.grant_id, 'string')
  })

  it('a token of a revoked grant: refused, and the event names the app, the tenant and the grant', async () => {
    const ctx = server.runtime.ctx
    const tenant = await createTenant(ctx, cliActor, { name: `Revoked Farm ${randomBytes(3).toString('hex')}`, environment: 'sandbox' })
    const grant = await createGrant(ctx, cliActor, { clientId, tenantId: tenant.id })
    const token = await getToken(server, { clientId, clientSecret }, { target_id: tenant.id })
    assert.notEqual((await request(server.url('/api/rest/v2/workorders'), { headers: bearer(token) })).status, 401, 'the token works while the grant is active')
    await revokeGrant(ctx, cliActor, { grantId: grant.id })
    for (let i = 0; i < 3; i++) {
      const refused = await request(server.url('/api/rest/v2/workorders'), { headers: bearer(token) })
      assert.equal(refused.status, 401)
    }
    const events = await stored('token.revoked_grant')
    assert.equal(events.length, 1, 'one a minute per grant, however often the client retries')
    assert.equal(events[0]?.clientId, clientId)
    assert.equal(events[0]?.tenantId, tenant.id)
    assert.deepEqual(events[0]?.details, { grant_id: grant.id })
  })

  it('admin-token guesses: refused, and one event a minute per address, not one per guess', async () => {
    for (let i = 0; i < 20; i++) {
      const res = await request(server.url('/admin/v1/tenants'), { headers: bearer(randomBytes(32).toString('base64url')) })
      assert.equal(res.status, 401)
    }
    const events = await stored('admin_token.failed')
    assert.equal(events.length, 1)
    assert.equal(events[0]?.address, '127.0.0.1')
    assert.equal(events[0]?.details.route, '/admin/v1/tenants')
  })

  it('are read with fieldgate events security and GET /admin/v1/security-events, by kind and search', async () => {
    await stored('consent.denied')
    const cli = await runCli(['events', 'security', '--json', '--kind', 'consent.denied'], { FIELDGATE_DATA_DIR: server.config.dataDir })
    assert.equal(cli.code, 0, cli.stderr)
    const listed = cli.json as { kind: string; client_id: string; email: string }[]
    assert.ok(listed.length >= 1)
    assert.ok(listed.every((e) => e.kind === 'consent.denied'))
    assert.equal(listed[0]?.client_id, clientId)
    const text = await runCli(['events', 'security', '--query', person.email], { FIELDGATE_DATA_DIR: server.config.dataDir })
    assert.match(text.stdout, /consent\.given/)
    assert.match(text.stdout, /consent\.denied/)
    const bad = await runCli(['events', 'security', '--kind', 'nonsense'], { FIELDGATE_DATA_DIR: server.config.dataDir })
    assert.equal(bad.code, 1)

    const api = await request(server.url('/admin/v1/security-events?kind=consent.denied'), { headers: bearer(adminToken) })
    assert.equal(api.status, 200, api.text)
    assert.deepEqual(api.json, cli.json)
    const searched = await request(server.url(`/admin/v1/security-events?q=${encodeURIComponent(clientId)}&limit=500`), { headers: bearer(adminToken) })
    const kinds = new Set((searched.json as { kind: string }[]).map((e) => e.kind))
    for (const k of ['consent.given', 'consent.denied', 'code.replayed']) assert.ok(kinds.has(k), k)
    assert.equal((await request(server.url('/admin/v1/security-events?kind=nonsense'), { headers: bearer(adminToken) })).status, 400)
  })
})

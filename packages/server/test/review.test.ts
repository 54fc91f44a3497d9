/**
 * Review and suspension (core operations/review.ts) over real HTTP: a partner's live app waits for an
 * operator before any customer sees it, a partner's change waits while the approved version keeps
 * working, and a suspended app or account stops at once: no new token, every token refused, on every
 * instance. Decisions reach the partner by mail and are audited and recorded as security events.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { after, before, describe, it } from 'node:test'
import { cliActor, createApp, createTenant, createUser, installApp, personActor, type App, type Tenant, type User } from '@fieldgate/core'
import { bearer, databaseUrl, getToken, postJson, request, runCli, startServer, waitUntil, type TestServer } from './helpers.js'
import { Person } from './person.js'

const ADMIN_TOKEN = randomBytes(24).toString('hex')
const admin = { authorization: `Bearer ${ADMIN_TOKEN}` }
const WORKORDERS = '/api/rest/v2/workorders'
const unique = () => randomBytes(4).toString('hex')

interface World {
  server: TestServer
  farm: Tenant
  owner: User
  partner: User
}

async function world(server: TestServer): Promise<World> {
  const ctx = server.runtime.ctx
  const farm = await createTenant(ctx, cliActor, { name: 'Hill Farm', environment: 'live' })
  const owner = await createUser(ctx, cliActor, { email: `owner-${unique()}@farm.example`, password: Person.password, tenantId: farm.id, role: 'owner' })
  const partner = await createUser(ctx, cliActor, { email: `dev-${unique()}@partner.example`, password: Person.password })
  return { server, farm, owner, partner }
}

/** A live marketplace app as its partner makes it in the portal. */
const partnerLiveApp = (w: World, name = 'Hay Sync') =>
  createApp(w.server.runtime.ctx, personActor(w.partner, '127.0.0.1'), {
    name,
    kind: 'public',
    environment: 'live',
    installUrl: 'https://hay.example/install',
    redirectUris: ['https://hay.example/cb'],
    scopes: 'api',
    listed: true,
  })

const decide = (w: World, app: App, verb: string, body: Record<string, string> = {}) => postJson(w.server.url(`/admin/v1/apps/${app.clientId}/${verb}`), body, admin)

async function marketplaceNames(w: World): Promise<string> {
  const person = new Person(w.server, w.owner.email)
  await person.signIn()
  return (await person.get(`/marketplace?tenant=${w.farm.id}`)).text
}

describe('review of what partners publish', () => {
  let w: World
  before(async () => {
    w = await world(await startServer({ overrides: { adminToken: ADMIN_TOKEN } }))
  })
  after(() => w?.server.close())

  it('a partner live app is not listed, installable or connectable until an operator approves it; then it is', async () => {
    const { app } = await partnerLiveApp(w)
    assert.equal(app.review, 'pending')
    assert.equal(app.approvedAt, null)
    assert.doesNotMatch(await marketplaceNames(w), /Hay Sync/)
    const ownerActor = personActor(w.owner, '127.0.0.1')
    await assert.rejects(installApp(w.server.runtime.ctx, ownerActor, { clientId: app.clientId, tenantId: w.farm.id, shownScopes: ['api'] }), { code: 'not_found' })
    const authorize = `/oauth/authorize?client_id=${app.clientId}&redirect_uri=${encodeURIComponent('https://hay.example/cb')}&state=s`
    const waiting = await request(w.server.url(authorize), { redirect: 'manual' })
    assert.equal(waiting.status, 403)
    assert.match(waiting.text, /waiting for review/)

    const queue = await request(w.server.url('/admin/v1/apps?review=pending'), { headers: admin })
    assert.deepEqual(
      queue.json.map((a: { client_id: string }) => a.client_id),
      [app.clientId],
    )
    const approved = await decide(w, app, 'approve', { reason: 'Looks right' })
    assert.equal(approved.status, 200, approved.text)
    assert.equal(approved.json.review, 'approved')
    assert.equal(approved.json.review_reason, 'Looks right')
    assert.match(await marketplaceNames(w), /Hay Sync/)
    assert.match((await request(w.server.url(authorize), { redirect: 'manual' })).headers.get('location') ?? '', /\/login/, 'the sign-in page now')
    const { grant } = await installApp(w.server.runtime.ctx, ownerActor, { clientId: app.clientId, tenantId: w.farm.id, shownScopes: ['api'] })
    assert.equal(grant.status, 'active')

    const mail = await w.server.storage.listMail({ query: w.partner.email })
    assert.deepEqual(
      mail.map((m) => m.subject),
      ['Approved: Hay Sync'],
    )
    assert.match(mail[0]!.text ?? '', /The reviewer wrote: Looks right/)
    const audit = await w.server.storage.listAudit({ appIds: [app.id], limit: 10 })
    assert.deepEqual(
      audit.filter((e) => e.action === 'app.approved').map((e) => e.actor),
      ['admin-api'],
    )
    const events = await w.server.storage.listSecurityEvents({ kinds: ['review.approved'], query: app.clientId })
    assert.equal(events.length, 1)
  })

  it("a partner's change waits for review: the approved version stays in force, existing grants keep what they had", async () => {
    const { app, clientSecret } = await partnerLiveApp(w, 'Barn Planner')
    await decide(w, app, 'approve')
    const ownerActor = personActor(w.owner, '127.0.0.1')
    await installApp(w.server.runtime.ctx, ownerActor, { clientId: app.clientId, tenantId: w.farm.id, shownScopes: ['api'] })
    const partner = new Person(w.server, w.partner.email)
    await partner.signIn()
    const page = await partner.get(`/developer/apps/${app.clientId}`)
    const csrf = /name="csrf" value="([^"]+)"/.exec(page.text)![1]!
    const saved = await partner.post(`/developer/apps/${app.clientId}`, {
      csrf,
      name: 'Barn Planner Pro',
      description: 'Plans barns',
      install_url: 'https://hay.example/install',
      redirect_uris: 'https://hay.example/cb',
      'scope:api': 'on',
      listed: 'on',
      contact_email: '',
      data_api_url: '',
      token_ttl: '',
    })
    assert.equal(saved.status, 303, saved.text)
    assert.match(saved.headers.get('location')!, /notice=submitted/)
    const stored = (await w.server.storage.getApp(app.id))!
    assert.equal(stored.name, 'Barn Planner', 'the approved name stays in force')
    assert.equal(stored.description, 'Plans barns', 'what review does not cover applies at once')
    assert.equal(stored.proposed?.name, 'Barn Planner Pro')
    assert.equal(stored.review, 'pending')
    assert.match(await marketplaceNames(w), /Barn Planner/, 'still listed as approved')
    const token = await getToken(w.server, { clientId: app.clientId, clientSecret }, { target_id: w.farm.id })
    assert.equal((await request(w.server.url(WORKORDERS), { headers: bearer(token) })).status, 200, 'its grant keeps working')
    const shown = await partner.get(`/developer/apps/${app.clientId}`)
    assert.match(shown.text, /Your changes wait for review<\/strong> \(name\)/)
    assert.match(shown.text, /value="Barn Planner Pro"/, 'the form shows what waits')

    const rejected = await decide(w, app, 'reject', { reason: 'The name claims features it lacks' })
    assert.equal(rejected.status, 200, rejected.text)
    const [event] = await w.server.storage.listSecurityEvents({ kinds: ['review.rejected'], query: app.clientId })
    assert.equal(event?.clientId, app.clientId)
    assert.equal(event?.details.reason, 'The name claims features it lacks')
    assert.equal((await w.server.storage.getApp(app.id))!.name, 'Barn Planner')
    const told = await partner.get(`/developer/apps/${app.clientId}`)
    assert.match(told.text, /Not approved\.<\/strong> The reviewer wrote: <q>The name claims features it lacks<\/q>/)
    assert.deepEqual(
      (await w.server.storage.listMail({ query: 'Changes needed: Barn Planner' })).map((m) => m.to),
      [w.partner.email],
    )
  })

  it('refuses a decision without a reason where one is needed, and on an app that waits for nothing', async () => {
    const { app } = await partnerLiveApp(w, 'Silo Watch')
    const noReason = await decide(w, app, 'reject', {})
    assert.equal(noReason.status, 400)
    assert.match(noReason.json.error_description ?? noReason.json.message ?? noReason.text, /reason/)
    assert.equal((await decide(w, app, 'approve')).status, 200)
    const again = await decide(w, app, 'approve')
    assert.equal(again.status, 409)
    assert.equal((await decide(w, app, 'suspend', {})).status, 400)
    assert.equal((await postJson(w.server.url(`/admin/v1/apps/fg_nope/approve`), {}, admin)).status, 404)
  })

  it('sandbox apps, private apps and apps an operator makes are approved as they are made', async () => {
    const ctx = w.server.runtime.ctx
    const sandbox = await createApp(ctx, personActor(w.partner, '127.0.0.1'), { name: 'Try', kind: 'public', environment: 'sandbox', installUrl: 'https://try.example/i' })
    const operators = await createApp(ctx, cliActor, { name: 'Official', kind: 'public', environment: 'live', installUrl: 'https://official.example/i' })
    for (const { app } of [sandbox, operators]) {
      assert.equal(app.review, 'approved')
      assert.notEqual(app.approvedAt, null)
    }
  })
})

describe('suspension', () => {
  let w: World
  before(async () => {
    w = await world(await startServer({ overrides: { adminToken: ADMIN_TOKEN } }))
  })
  after(() => w?.server.close())

  it('stops a suspended app at once: no new token (invalid_client), its tokens refused; unsuspended, it works again', async () => {
    const { app, clientSecret } = await partnerLiveApp(w, 'Tractor Link')
    await decide(w, app, 'approve')
    await installApp(w.server.runtime.ctx, personActor(w.owner, '127.0.0.1'), { clientId: app.clientId, tenantId: w.farm.id, shownScopes: ['api'] })
    const client = { clientId: app.clientId, clientSecret }
    const token = await getToken(w.server, client, { target_id: w.farm.id })

    const suspended = await decide(w, app, 'suspend', { reason: 'Sends customers to a phishing page' })
    assert.equal(suspended.status, 200, suspended.text)
    assert.equal(typeof suspended.json.suspended_at, 'string')
    const api = await request(w.server.url(WORKORDERS), { headers: bearer(token) })
    assert.equal(api.status, 401)
    assert.match(api.headers.get('www-authenticate') ?? '', /invalid_token/)
    const refused = await postJson(w.server.url('/oauth/token'), { grant_type: 'client_credentials', client_id: app.clientId, client_secret: clientSecret, target_id: w.farm.id })
    assert.equal(refused.status, 401)
    assert.equal(refused.json.error, 'invalid_client')
    assert.equal(refused.json.error_description, 'The client is suspended')
    const wrongSecret = await postJson(w.server.url('/oauth/token'), { grant_type: 'client_credentials', client_id: app.clientId, client_secret: 'nope', target_id: w.farm.id })
    assert.equal(wrongSecret.json.error_description, 'Client authentication failed', 'only the holder of the secret learns of the suspension')
    const introspect = await postJson(w.server.url('/oauth/introspect'), { token, client_id: app.clientId, client_secret: clientSecret })
    assert.notEqual(introspect.json?.active, true)
    assert.doesNotMatch(await marketplaceNames(w), /Tractor Link/)
    const partner = new Person(w.server, w.partner.email)
    await partner.signIn()
    assert.match((await partner.get(`/developer/apps/${app.clientId}`)).text, /Suspended<\/strong>: Sends customers to a phishing page/)
    assert.deepEqual(
      (await w.server.storage.listMail({ query: 'Suspended: Tractor Link' })).map((m) => m.to),
      [w.partner.email],
    )

    assert.equal((await decide(w, app, 'unsuspend')).status, 200)
    assert.equal((await request(w.server.url(WORKORDERS), { headers: bearer(token) })).status, 200, 'the same token works again')
    assert.equal((await getToken(w.server, client, { target_id: w.farm.id })).length > 0, true)
    const kinds = (await w.server.storage.listSecurityEvents({ query: app.clientId })).map((e) => e.kind)
    assert.deepEqual(kinds.slice(0, 2), ['app.unsuspended', 'app.suspended'])
  })

  it('suspends a partner account with all its apps, and lifts exactly what was suspended with it', async () => {
    const ctx = w.server.runtime.ctx
    const partner = await createUser(ctx, cliActor, { email: `many-${unique()}@partner.example`, password: Person.password })
    const actor = personActor(partner, '127.0.0.1')
    const one = await createApp(ctx, actor, { name: 'One', kind: 'public', environment: 'sandbox', installUrl: 'https://one.example/i' })
    const two = await createApp(ctx, actor, { name: 'Two', kind: 'public', environment: 'sandbox', installUrl: 'https://two.example/i' })
    await decide(w, two.app, 'suspend', { reason: 'on its own' })
    const token = await getToken(w.server, { clientId: one.app.clientId, clientSecret: one.clientSecret }, { target_id: one.sandboxTenant!.id })

    const res = await postJson(w.server.url('/admin/v1/users/suspend'), { email: partner.email, reason: 'Abuse of the API' }, admin)
    assert.equal(res.status, 200, res.text)
    assert.deepEqual(
      res.json.apps.map((a: { client_id: string }) => a.client_id),
      [one.app.clientId],
    )
    assert.equal((await request(w.server.url(WORKORDERS), { headers: bearer(token) })).status, 401)
    assert.equal((await decide(w, one.app, 'unsuspend')).status, 409, 'lifted with the account, not alone')
    assert.ok((await ctx.storage.getUser(partner.id))!.suspendedAt)

    const lifted = await postJson(w.server.url('/admin/v1/users/unsuspend'), { email: partner.email }, admin)
    assert.equal(lifted.status, 200, lifted.text)
    assert.equal((await request(w.server.url(WORKORDERS), { headers: bearer(token) })).status, 200)
    assert.notEqual((await ctx.storage.getApp(two.app.id))!.suspendedAt, null, 'suspended on its own, it stays suspended')
    assert.deepEqual(
      (await ctx.storage.listMail({ query: partner.email })).map((m) => m.subject).filter((s) => /account/.test(s)),
      ['Your account is active again', 'Your account was suspended'],
    )
  })
})

describe('review and suspension from the CLI', () => {
  let server: TestServer
  before(async () => {
    server = await startServer()
  })
  after(() => server?.close())

  it('lists the review queue, approves, rejects with a reason, suspends and unsuspends', { timeout: 60_000 }, async () => {
    const w = await world(server)
    const env = { FIELDGATE_DATA_DIR: server.dataDir }
    const { app: first } = await partnerLiveApp(w, 'Queue One')
    const { app: second } = await partnerLiveApp(w, 'Queue Two')
    const queue = await runCli(['--json', 'apps', 'review', 'list'], env)
    assert.equal(queue.code, 0, queue.stderr)
    assert.deepEqual(
      queue.json.map((a: { client_id: string }) => a.client_id),
      [first.clientId, second.clientId],
    )
    assert.equal((await runCli(['apps', 'approve', first.clientId], env)).code, 0)
    const noReason = await runCli(['apps', 'reject', second.clientId], env)
    assert.equal(noReason.code, 1)
    assert.match(noReason.stderr, /--reason/)
    const rejected = await runCli(['--json', 'apps', 'reject', second.clientId, '--reason', 'Misleading name'], env)
    assert.equal(rejected.code, 0, rejected.stderr)
    assert.equal(rejected.json.review_reason, 'Misleading name')
    const empty = await runCli(['apps', 'review', 'list'], env)
    assert.match(empty.stdout, /nothing waits for review/)
    const suspended = await runCli(['apps', 'suspend', first.clientId, '--reason', 'Investigating'], env)
    assert.match(suspended.stdout, /suspended/)
    assert.notEqual((await server.storage.getApp(first.id))!.suspendedAt, null)
    assert.equal((await runCli(['apps', 'unsuspend', first.clientId], env)).code, 0)
    assert.equal((await server.storage.getApp(first.id))!.suspendedAt, null)
    const audit = await server.storage.listAudit({ appIds: [first.id, second.id], limit: 20 })
    assert.deepEqual(
      audit
        .filter((e) => e.actor === 'cli')
        .map((e) => e.action)
        .sort(),
      ['app.approved', 'app.rejected', 'app.suspended', 'app.unsuspended'],
    )
    const op = await runCli(['--json', 'users', 'set-operator', '--email', w.partner.email], env)
    assert.equal(op.code, 0, op.stderr)
    assert.equal(op.json.operator, true)
    assert.equal((await server.storage.getUser(w.partner.id))!.operator, true)
    assert.equal((await runCli(['users', 'set-operator', '--email', w.partner.email, '--off'], env)).code, 0)
    assert.equal((await server.storage.getUser(w.partner.id))!.operator, false)
    const made = await runCli(['users', 'create', '--email', `ops-${unique()}@platform.example`, '--password', Person.password, '--operator'], env)
    assert.match(made.stdout, /\(operator\)/)
  })
})

describe('suspension on several instances', { skip: databaseUrl ? false : 'DATABASE_URL is not set: several instances need PostgreSQL' }, () => {
  let a: TestServer
  let b: TestServer
  before(async () => {
    const masterKey = randomBytes(32).toString('hex')
    // The change feed is polled once a minute: a refusal within a second came through LISTEN/NOTIFY.
    a = await startServer({ engine: 'postgres', overrides: { masterKey, changePollMs: 60_000, adminToken: ADMIN_TOKEN } })
    b = await startServer({ engine: 'postgres', schema: a.schema!, overrides: { masterKey, issuer: a.issuer, changePollMs: 60_000 } })
  })
  after(async () => {
    await b?.close()
    await a?.close()
  })

  it("a suspended app's JWT is refused on the other instance within 1 s, and new tokens there too", { timeout: 30_000 }, async (t) => {
    const w = await world(a)
    const seen: number[] = []
    for (let round = 0; round < 3; round++) {
      const { app, clientSecret } = await partnerLiveApp(w, `Spread ${round}`)
      await decide(w, app, 'approve')
      await installApp(a.runtime.ctx, personActor(w.owner, '127.0.0.1'), { clientId: app.clientId, tenantId: w.farm.id, shownScopes: ['api'] })
      const token = await getToken(b, { clientId: app.clientId, clientSecret }, { target_id: w.farm.id })
      assert.equal((await request(b.url(WORKORDERS), { headers: bearer(token) })).status, 200, 'b accepts it and caches the app')
      assert.equal((await decide(w, app, 'suspend', { reason: 'stop' })).status, 200)
      const ms = await waitUntil(async () => (await request(b.url(WORKORDERS), { headers: bearer(token) })).status === 401, 1000, 5)
      assert.ok(ms < 1000, `refused after ${ms} ms`)
      seen.push(Math.round(ms))
      const refused = await postJson(b.url('/oauth/token'), { grant_type: 'client_credentials', client_id: app.clientId, client_secret: clientSecret, target_id: w.farm.id })
      assert.equal(refused.json.error, 'invalid_client')
    }
    t.diagnostic(`suspension seen by the other instance after ${seen.join(', ')} ms`)
  })
})

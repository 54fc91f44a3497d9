import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { after, before, describe, it } from 'node:test'
import { cliActor, createGrant, updateApp } from '@fieldgate/core'
import { decodeJwt, eachEngine, postJson, publicSandboxApp, request, startServer, type Res, type TestServer } from './helpers.js'
import { Person, csrfOf } from './person.js'

/** Partners here sign up and create apps at once; verifying the address first is accounts.test.ts's. */
const open = { signup: 'open' } as const

/**
 * Issue 11, the app part: live public apps with only redirect URIs, https for live URLs, the sandbox
 * target_id answering at once, the token lifetime in the portal, POST/redirect/GET with secrets shown
 * once, grants that app edits never widen, and audit rows naming client_id, tenant and address.
 */

async function partner(server: TestServer): Promise<Person> {
  const p = new Person(server, `partner-${randomBytes(4).toString('hex')}@partner.example`)
  const page = await p.get('/signup')
  const res = await p.post('/signup', { csrf: csrfOf(page), email: p.email, password: Person.password })
  assert.equal(res.status, 303, res.text)
  return p
}

const secretOf = (page: Res) => /id="client_secret" type="text" readonly value="([^"]+)"/.exec(page.text)?.[1]
const clientIdOf = (page: Res) => /id="client_id" type="text" readonly value="([^"]+)"/.exec(page.text)?.[1]

/** Posts the Create form; returns the POST's answer. */
async function postCreate(p: Person, fields: Record<string, string>): Promise<Res> {
  const form = await p.get('/developer/apps/new')
  return p.post('/developer/apps', { csrf: csrfOf(form), kind: 'public', environment: 'sandbox', name: 'Route planner', 'scope:api': 'on', ...fields })
}

/** FieldEdge's token request, exactly as its partner guide documents the JSON body. */
const fieldEdgeToken = (server: TestServer, clientId: string, clientSecret: string, targetId: string) =>
  postJson(server.url('/oauth/token'), { client_id: clientId, client_secret: clientSecret, target_id: targetId, grant_type: 'client_credentials' })

describe('developer portal: apps', () => {
  let server: TestServer
  before(async () => {
    server = await startServer({ overrides: open })
  })
  after(() => server.close())

  it('a public sandbox app made in the portal answers tokens for the shown target_id at once', async () => {
    const p = await partner(server)
    const res = await postCreate(p, { install_url: 'https://partner.example/install' })
    assert.equal(res.status, 303, res.text)
    const page = await p.get(res.headers.get('location')!)
    const targetId = /target_id ([0-9a-f-]{36})/.exec(page.text)?.[1] ?? assert.fail('no target_id on the page')
    assert.equal(targetId, (await server.storage.getUserByEmail(p.email))?.sandboxTenantId)
    const token = await fieldEdgeToken(server, clientIdOf(page)!, secretOf(page)!, targetId)
    assert.equal(token.status, 200, token.text)
    assert.equal(decodeJwt(token.json.access_token).payload.tenant_id, targetId)

    // The audit rows name the app's client_id, the tenant and the address, on the app's page too.
    const clientId = clientIdOf(page)!
    const [created] = await server.storage.listAudit({ appIds: [(await server.storage.getAppByClientId(clientId))!.id], limit: 1 })
    assert.deepEqual([created?.action, created?.clientId, created?.tenantId, created?.address], ['app.created', clientId, targetId, '127.0.0.1'])
    const appPage = await p.get(`/developer/apps/${clientId}`)
    assert.match(
      appPage.text,
      new RegExp(`<td>${p.email.replace(/[.]/g, '\\.')}</td><td>127\\.0\\.0\\.1</td>\\s*<td>app\\.created</td><td><code>${clientId}</code></td><td><code>${targetId}</code></td>`),
    )
  })

  it('answers every form with a redirect; reloading shows no secret again and repeats nothing', async () => {
    const p = await partner(server)
    const res = await postCreate(p, { name: 'Once' })
    assert.equal(res.status, 303)
    const location = res.headers.get('location')!
    assert.match(location, /^\/developer\/apps\/[^/]+\/secret\?h=[\w-]{32}$/)
    const first = await p.get(location)
    assert.equal(first.status, 200)
    const secret = secretOf(first)!
    assert.ok(secret)
    const reload = await p.get(location)
    assert.equal(reload.status, 410)
    assert.match(reload.text, /This secret was already shown/)
    assert.equal(reload.text.includes(secret), false)
    const user = await server.storage.getUserByEmail(p.email)
    assert.equal((await server.storage.listApps({ ownerUserId: user!.id })).length, 1, 'one app, however often the page is loaded')

    // A rotation: one new secret, shown once, and only to the browser that asked.
    const clientId = clientIdOf(first)!
    const appPage = await p.get(`/developer/apps/${clientId}`)
    const rotation = await p.post(`/developer/apps/${clientId}/rotate-secret`, { csrf: csrfOf(appPage), grace: '3600' })
    assert.equal(rotation.status, 303)
    const elsewhere = new Person(server, p.email)
    assert.equal((await elsewhere.signIn()).status, 303)
    const stolen = await elsewhere.get(rotation.headers.get('location')!)
    assert.equal(stolen.status, 410, 'another browser of the same person cannot open, or burn, the handle')
    const rotated = await p.get(rotation.headers.get('location')!)
    assert.equal(rotated.status, 200)
    assert.ok(secretOf(rotated) && secretOf(rotated) !== secret)
    assert.equal((await p.get(rotation.headers.get('location')!)).status, 410)
    const app = await server.storage.getAppByClientId(clientId)
    assert.equal((await server.storage.listLiveSecrets(app!.id, Date.now())).length, 2, 'rotated once')
    assert.equal((await p.get(`/developer/apps/${clientId}/secret?h=${'a'.repeat(32)}`)).status, 410)

    // Saving redirects to the app page, which says so.
    const saved = await p.post(`/developer/apps/${clientId}`, { csrf: csrfOf(appPage), name: 'Once renamed', 'scope:api': 'on' })
    assert.equal(saved.status, 303)
    const after = await p.get(saved.headers.get('location')!)
    assert.match(after.text, /<p role="status">Saved\.<\/p>/)
    const notice = await p.get(`/developer/apps/${clientId}?notice=<script>`)
    assert.doesNotMatch(notice.text, /role="status"/, 'no text from the URL')
  })

  it('sets the token lifetime in the create and edit forms, with the error beside the field', async () => {
    const p = await partner(server)
    const res = await postCreate(p, { token_ttl: '600' })
    assert.equal(res.status, 303, res.text)
    const page = await p.get(res.headers.get('location')!)
    const clientId = clientIdOf(page)!
    assert.equal((await server.storage.getAppByClientId(clientId))?.tokenTtl, 600)
    const targetId = /target_id ([0-9a-f-]{36})/.exec(page.text)![1]!
    assert.equal((await fieldEdgeToken(server, clientId, secretOf(page)!, targetId)).json.expires_in, 600)
    const appPage = await p.get(`/developer/apps/${clientId}`)
    assert.match(appPage.text, /id="token_ttl" name="token_ttl" type="number" value="600"/)
    for (const bad of ['30', 'soon', '90.5']) {
      const refused = await p.post(`/developer/apps/${clientId}`, { csrf: csrfOf(appPage), name: 'Route planner', 'scope:api': 'on', token_ttl: bad })
      assert.equal(refused.status, 400, bad)
      assert.match(refused.text, /<p class="error field-error" id="token_ttl-error">token lifetime must be a whole number of seconds from 60 to 2592000<\/p>/)
      assert.match(refused.text, /id="token_ttl"[^>]*aria-describedby="token_ttl-hint token_ttl-error" aria-invalid="true"/)
    }
    const cleared = await p.post(`/developer/apps/${clientId}`, { csrf: csrfOf(appPage), name: 'Route planner', 'scope:api': 'on', token_ttl: '' })
    assert.equal(cleared.status, 303)
    assert.equal((await server.storage.getAppByClientId(clientId))?.tokenTtl, null)
    const badNew = await postCreate(p, { token_ttl: '0' })
    assert.equal(badNew.status, 400)
    assert.match(badNew.text, /id="token_ttl-error"/)
  })

  it('creates a live public app with only redirect URIs; live URLs must be https beside their field', async () => {
    const p = await partner(server)
    const made = await postCreate(p, { environment: 'live', redirect_uris: 'https://notes.example/callback\nhttp://127.0.0.1:9000/cb' })
    assert.equal(made.status, 303, made.text)
    const page = await p.get(made.headers.get('location')!)
    const app = await server.storage.getAppByClientId(clientIdOf(page)!)
    assert.deepEqual([app?.environment, app?.installUrl, app?.redirectUris], ['live', null, ['https://notes.example/callback', 'http://127.0.0.1:9000/cb']])
    const cases: [Record<string, string>, string, RegExp][] = [
      [{ redirect_uris: 'http://notes.example/callback' }, 'redirect_uris', /redirect URI http:\/\/notes\.example\/callback must use https/],
      [{ install_url: 'http://notes.example/install' }, 'install_url', /install URL http:\/\/notes\.example\/install must use https/],
      [{ redirect_uris: 'https://n.example/cb', data_api_url: 'http://n.example/events' }, 'data_api_url', /Data API URL http:\/\/n\.example\/events must use https/],
      [{}, 'install_url', /a live public app needs an install URL .*, a redirect URI .*, or both/],
    ]
    for (const [fields, field, message] of cases) {
      const refused = await postCreate(p, { environment: 'live', ...fields })
      assert.equal(refused.status, 400, field)
      assert.match(refused.text, new RegExp(`<p class="error field-error" id="${field}-error">`))
      assert.match(refused.text, message)
    }
    // A sandbox app keeps plain http for loopback only: a code sent over http can be read on the way.
    assert.equal((await postCreate(p, { redirect_uris: 'http://localhost:3000/cb' })).status, 303)
    assert.equal((await postCreate(p, { redirect_uris: 'http://dev.example/cb' })).status, 400)
  })
})

describe('app edits never widen a grant', () => {
  eachEngine('widening the app keeps the grant and its tokens as consented; narrowing narrows new tokens', async (engine) => {
    const server = await startServer({ engine, overrides: open })
    try {
      const app = await publicSandboxApp(server.storage, { scopes: 'api' })
      const token = (scope?: string) =>
        postJson(server.url('/oauth/token'), {
          client_id: app.clientId,
          client_secret: app.clientSecret,
          target_id: app.sandboxTenant.id,
          grant_type: 'client_credentials',
          ...(scope ? { scope } : {}),
        })
      await updateApp(server.runtime.ctx, cliActor, { clientId: app.clientId, fields: { scopes: 'api fields:read:all' } })
      server.runtime.ctx.cache.apply({ kind: 'app', ref: app.app.id })
      const grant = (await server.storage.listGrants({ appId: app.app.id }))[0]!
      assert.deepEqual(grant.scopes, ['api'], 'the grant is what was consented')
      assert.equal(decodeJwt((await token()).json.access_token).payload.scope, 'api')
      const wider = await token('fields:read:all')
      assert.equal(wider.status, 400)
      assert.equal(wider.json.error, 'invalid_scope')
      // createGrant on an existing grant returns it unchanged: wider access needs a new consent or install.
      assert.deepEqual((await createGrant(server.runtime.ctx, cliActor, { clientId: app.clientId, tenantId: app.sandboxTenant.id })).scopes, ['api'])

      // Narrowing: the app may no longer ask for `api`, so new tokens no longer carry it.
      await server.storage.widenGrantScopes(grant.id, ['maps:write'], Date.now())
      server.runtime.ctx.cache.apply({ kind: 'grant', ref: grant.id })
      await updateApp(server.runtime.ctx, cliActor, { clientId: app.clientId, fields: { scopes: 'maps:write' } })
      server.runtime.ctx.cache.apply({ kind: 'app', ref: app.app.id })
      assert.equal(decodeJwt((await token()).json.access_token).payload.scope, 'maps:write')
      assert.equal((await token('api')).json.error, 'invalid_scope')
    } finally {
      await server.close()
    }
  })
})

describe('admin API: apps', () => {
  const adminToken = randomBytes(32).toString('base64url')
  let server: TestServer
  before(async () => {
    server = await startServer({ overrides: { ...open, adminToken } })
  })
  after(() => server.close())
  const post = (path: string, body: unknown) =>
    request(server.url(path), {
      method: 'POST',
      body: JSON.stringify(body),
      headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
    })

  it('creates a live public app with only redirect URIs, refuses http off loopback with a 400, and installs sandbox apps at once', async () => {
    const live = await post('/admin/v1/apps', { name: 'Field notes', kind: 'public', environment: 'live', redirect_uris: ['https://notes.example/cb'] })
    assert.equal(live.status, 201, live.text)
    assert.equal(live.json.install_url, null)
    const refused = await post('/admin/v1/apps', {
      name: 'Field notes',
      kind: 'public',
      environment: 'live',
      redirect_uris: ['https://notes.example/cb'],
      data_api_url: 'http://notes.example/events',
    })
    assert.equal(refused.status, 400)
    assert.equal(refused.json.error, 'invalid_request')
    assert.match(refused.json.error_description, /Data API URL http:\/\/notes\.example\/events must use https in a live app/)
    const loopback = await post('/admin/v1/apps', { name: 'Local', kind: 'public', environment: 'live', install_url: 'http://localhost:8080/install' })
    assert.equal(loopback.status, 201, loopback.text)

    const sandbox = await post('/admin/v1/apps', { name: 'Try', kind: 'public', environment: 'sandbox', install_url: 'https://try.example/install' })
    assert.equal(sandbox.status, 201, sandbox.text)
    const token = await fieldEdgeToken(server, sandbox.json.client_id, sandbox.json.client_secret, sandbox.json.sandbox_target_id)
    assert.equal(token.status, 200, token.text)

    const audit = await request(server.url(`/admin/v1/audit?client_id=${sandbox.json.client_id}`), { headers: { authorization: `Bearer ${adminToken}` } })
    assert.equal(audit.status, 200, audit.text)
    assert.deepEqual(
      audit.json.map((e: Record<string, unknown>) => [e.action, e.client_id, e.tenant_id, e.address]),
      [['app.created', sandbox.json.client_id, sandbox.json.sandbox_target_id, '127.0.0.1']],
    )
  })
})

import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { after, before, describe, it } from 'node:test'
import { approveApp, cliActor, createGrant, createUser, updateApp, verifyEventSignature } from '@fieldgate/core'
import { decodeJwt, eachEngine, postJson, publicSandboxApp, request, startServer, waitUntil, type Res, type TestServer } from './helpers.js'
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
      new RegExp(
        `<td data-label="Who">${p.email.replace(/[.]/g, '\\.')}</td><td data-label="Address">127\\.0\\.0\\.1</td>\\s*<td data-label="What">App created</td><td data-label="App"><code>${clientId}</code></td><td data-label="Farm"><code>${targetId}</code></td>`,
      ),
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

  const patch = (clientId: string, body: unknown) =>
    request(server.url(`/admin/v1/apps/${clientId}`), {
      method: 'PATCH',
      body: JSON.stringify(body),
      headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
    })
  const settings = (json: Record<string, unknown>) =>
    Object.fromEntries(
      ['public_client', 'token_endpoint_auth_method', 'refresh_tokens', 'access_token_format', 'require_dpop', 'require_par', 'registration'].map((k) => [k, json[k]]),
    )

  it('creates a public client with no secret, shows its OAuth 2.1 settings, and changes them with PATCH', async () => {
    const pub = await post('/admin/v1/apps', {
      name: 'Agent',
      kind: 'public',
      environment: 'live',
      public_client: true,
      redirect_uris: ['http://127.0.0.1/cb'],
      require_dpop: true,
    })
    assert.equal(pub.status, 201, pub.text)
    assert.equal('client_secret' in pub.json, false, 'no secret in the answer')
    assert.deepEqual(settings(pub.json), {
      public_client: true,
      token_endpoint_auth_method: 'none',
      refresh_tokens: true,
      access_token_format: 'jwt',
      require_dpop: true,
      require_par: false,
      registration: 'portal',
    })
    const app = (await server.storage.getAppByClientId(pub.json.client_id))!
    assert.equal((await server.storage.listLiveSecrets(app.id, Date.now())).length, 0)
    const rotation = await post(`/admin/v1/apps/${pub.json.client_id}/rotate-secret`, { grace: 0 })
    assert.equal(rotation.status, 400)
    assert.equal(rotation.json.error_description, 'a public client has no secret to rotate')

    const off = await patch(pub.json.client_id, { refresh_tokens: false })
    assert.equal(off.status, 400)
    assert.deepEqual([off.json.error, off.json.error_description], ['invalid_request', 'a public client always gets refresh tokens'])
    const retype = await patch(pub.json.client_id, { public_client: false })
    assert.equal(retype.status, 400, 'the client type is chosen once')
    const changed = await patch(pub.json.client_id, { access_token_format: 'opaque', require_dpop: false, require_par: true })
    assert.equal(changed.status, 200, changed.text)
    assert.deepEqual(settings(changed.json), { ...settings(pub.json), access_token_format: 'opaque', require_dpop: false, require_par: true })
    const listed = await request(server.url('/admin/v1/apps'), { headers: { authorization: `Bearer ${adminToken}` } })
    assert.deepEqual(settings(listed.json.find((a: { client_id: string }) => a.client_id === pub.json.client_id)), settings(changed.json))
    const [entry] = await server.storage.listAudit({ appIds: [app.id], limit: 1 })
    assert.deepEqual([entry?.action, entry?.actor, entry?.details.changed], ['app.updated', 'admin-api', ['accessTokenFormat', 'requireDpop', 'requirePar']])
  })

  it('creates a confidential client with refresh tokens, patches any field, and refuses bad patches', async () => {
    const conf = await post('/admin/v1/apps', { name: 'Server', kind: 'public', environment: 'sandbox', refresh_tokens: true, access_token_format: 'opaque', require_par: true })
    assert.equal(conf.status, 201, conf.text)
    assert.match(conf.json.client_secret, /^fgs_sandbox_/)
    assert.deepEqual(settings(conf.json), {
      public_client: false,
      token_endpoint_auth_method: 'client_secret_basic',
      refresh_tokens: true,
      access_token_format: 'opaque',
      require_dpop: false,
      require_par: true,
      registration: 'portal',
    })
    const id = conf.json.client_id
    const renamed = await patch(id, { name: 'Server 2', refresh_tokens: false, contact_email: 'ops@server.example', token_ttl: 900 })
    assert.equal(renamed.status, 200, renamed.text)
    assert.deepEqual([renamed.json.name, renamed.json.refresh_tokens, renamed.json.contact_email, renamed.json.token_ttl], ['Server 2', false, 'ops@server.example', 900])
    const cleared = await patch(id, { contact_email: null, token_ttl: null })
    assert.equal(cleared.status, 200, cleared.text)
    assert.deepEqual([cleared.json.contact_email, cleared.json.token_ttl, cleared.json.name], [null, null, 'Server 2'])
    const refusals: [unknown, number, RegExp][] = [
      [{}, 400, /nothing to change/],
      [{ token_ttl: 0 }, 400, /token lifetime must be a whole number/],
      [{ access_token_format: 'paseto' }, 400, /access_token_format/],
      [{ kind: 'private' }, 400, /kind|additional/],
      [{ redirect_uris: ['http://server.example/cb'] }, 400, /redirect URI http:\/\/server\.example\/cb must use https/],
    ]
    for (const [body, status, message] of refusals) {
      const r = await patch(id, body)
      assert.equal(r.status, status, JSON.stringify(body))
      assert.equal(r.json.error, 'invalid_request')
      assert.match(r.json.error_description, message)
    }
    assert.equal((await patch('fg_unknownclient', { name: 'X' })).status, 404)
    assert.equal((await server.storage.getAppByClientId(id))?.name, 'Server 2', 'refusals change nothing')
  })

  it('documents the settings and the update in OpenAPI', async () => {
    const doc = (await request(server.url('/openapi.json'))).json
    const body = (op: { requestBody: { content: Record<string, { schema: { properties: Record<string, unknown> } }> } }) =>
      Object.keys(op.requestBody.content['application/json']!.schema.properties)
    const settingsIn = ['refresh_tokens', 'access_token_format', 'require_dpop', 'require_par']
    assert.deepEqual(
      settingsIn.filter((k) => !body(doc.paths['/admin/v1/apps/{client_id}'].patch).includes(k)),
      [],
    )
    assert.deepEqual(
      [...settingsIn, 'public_client'].filter((k) => !body(doc.paths['/admin/v1/apps'].post).includes(k)),
      [],
    )
    assert.equal(body(doc.paths['/admin/v1/apps/{client_id}'].patch).includes('public_client'), false, 'the client type is chosen once')
    const shown = doc.paths['/admin/v1/apps'].get.responses['200'].content['application/json'].schema.items.properties
    assert.deepEqual(shown.token_endpoint_auth_method.enum, ['none', 'client_secret_basic'])
    assert.deepEqual(doc.paths['/admin/v1/apps/{client_id}'].patch.requestBody.content['application/json'].schema.properties.token_ttl.type, ['integer', 'null'])
  })
})

/** A Data API receiver on loopback that answers `status` and keeps what arrived. */
class Receiver {
  readonly received: { body: string; signature: string }[] = []
  status = 204
  private server: Server | undefined

  async listen(): Promise<string> {
    this.server = createServer((req, res) => {
      let body = ''
      req.setEncoding('utf8').on('data', (c: string) => {
        body += c
      })
      req.on('end', () => {
        this.received.push({ body, signature: String(req.headers['fieldgate-signature']) })
        res.writeHead(this.status).end()
      })
    })
    await new Promise<void>((ok) => this.server!.listen(0, '127.0.0.1', ok))
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/events`
  }

  close(): Promise<void> {
    return new Promise((ok) => {
      this.server?.closeAllConnections()
      this.server ? this.server.close(() => ok()) : ok()
    })
  }
}

const listing = {
  short_description: 'Plans the week of fieldwork',
  logo_url: 'https://planner.example/logo.png',
  publisher: 'Planner & Co',
  'category:Scheduling': 'on',
  'category:Mapping': 'on',
  support_url: 'https://planner.example/help',
  privacy_policy_url: 'https://planner.example/privacy',
}

/**
 * Issue 14, the portal part: the marketplace listing in the app form and the admin API, its errors
 * beside each field, its review for live apps, and the app page's sections with the Data API's
 * deliveries, test events and Retry now.
 */
describe('developer portal: the marketplace listing and the Data API section', () => {
  let server: TestServer
  let receiver: Receiver
  let dataApiUrl: string
  const adminToken = randomBytes(24).toString('hex')
  // A retry waits a minute: only Retry now brings it forward within the test.
  const webhooks = { allowPrivateTargets: true, pollMs: 50, timeoutMs: 1000, leaseMs: 3000, baseDelayMs: 60_000, maxDelayMs: 60_000, maxAgeSeconds: 86400, batch: 20 }
  before(async () => {
    server = await startServer({ overrides: { ...open, adminToken, webhooks } })
    receiver = new Receiver()
    dataApiUrl = await receiver.listen()
  })
  after(async () => {
    await server.close()
    await receiver.close()
  })

  it('stores the listing from the form, shows it in the edit form, and refuses bad values beside their field, changing nothing', async () => {
    const p = await partner(server)
    const res = await postCreate(p, { install_url: 'https://planner.example/install', ...listing })
    assert.equal(res.status, 303, res.text)
    const clientId = clientIdOf(await p.get(res.headers.get('location')!))!
    const app = await server.storage.getAppByClientId(clientId)
    assert.deepEqual(
      [app?.shortDescription, app?.logoUrl, app?.publisher, app?.categories, app?.supportUrl, app?.privacyPolicyUrl],
      ['Plans the week of fieldwork', 'https://planner.example/logo.png', 'Planner & Co', ['Scheduling', 'Mapping'], listing.support_url, listing.privacy_policy_url],
    )
    const page = await p.get(`/developer/apps/${clientId}`)
    assert.match(page.text, /id="short_description" name="short_description" type="text" value="Plans the week of fieldwork"/)
    assert.match(page.text, /id="publisher" name="publisher" type="text" value="Planner &amp; Co"/)
    assert.match(page.text, /name="category:Scheduling" checked/)
    assert.doesNotMatch(page.text, /name="category:Weather" checked/)

    const base = { csrf: csrfOf(page), name: 'Route planner', 'scope:api': 'on', install_url: 'https://planner.example/install' }
    const cases: [Record<string, string>, string, RegExp][] = [
      [{ logo_url: 'http://planner.example/logo.png' }, 'logo_url', /logo URL must be an https URL/],
      [{ logo_url: 'javascript:alert(1)' }, 'logo_url', /logo URL must be an https URL/],
      [{ short_description: 'x'.repeat(141) }, 'short_description', /short description is at most 140 characters/],
      [{ short_description: 'two\nlines' }, 'short_description', /short description must be one line/],
      [{ publisher: 'p'.repeat(101) }, 'publisher', /publisher is at most 100 characters/],
      [{ 'category:Scheduling': 'on', 'category:Mapping': 'on', 'category:Weather': 'on', 'category:Livestock': 'on' }, 'categories', /choose at most 3 categories/],
      [{ support_url: 'mailto:help@planner.example' }, 'support_url', /support URL must be an https URL/],
      [{ privacy_policy_url: 'ftp://planner.example/privacy' }, 'privacy_policy_url', /privacy policy URL must be an https URL/],
    ]
    for (const [fields, field, message] of cases) {
      const refused = await p.post(`/developer/apps/${clientId}`, { ...base, ...fields })
      assert.equal(refused.status, 400, field)
      const beside = new RegExp(`<p class="error field-error" id="${field}-error">([^<]*)</p>`).exec(refused.text)?.[1] ?? assert.fail(`no error beside ${field}`)
      assert.match(beside, message)
      assert.match(refused.text, new RegExp(`id="${field}"[^>]*aria-describedby="[^"]*${field}-error"[^>]*aria-invalid="true"`), `${field} names its error`)
      assert.match(refused.text, new RegExp(`<a href="#${field}">`), 'the summary links to the field')
    }
    assert.deepEqual(await server.storage.getAppByClientId(clientId), app, 'nothing changed')

    // Blank clears: no logo, no links, the contact email as publisher.
    const cleared = await p.post(`/developer/apps/${clientId}`, base)
    assert.equal(cleared.status, 303)
    const after = await server.storage.getAppByClientId(clientId)
    assert.deepEqual([after?.logoUrl, after?.publisher, after?.categories, after?.supportUrl, after?.shortDescription], [null, null, [], null, ''])
  })

  it('round-trips the listing through the admin API, and refuses an unknown category with a clear message', async () => {
    const post = (body: unknown) =>
      request(server.url('/admin/v1/apps'), { method: 'POST', body: JSON.stringify(body), headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' } })
    const body = {
      name: 'Yield maps',
      kind: 'public',
      environment: 'sandbox',
      install_url: 'https://yield.example/install',
      logo_url: 'https://yield.example/logo.svg',
      short_description: 'Yield maps from your combine',
      categories: ['Mapping', 'Agronomy'],
      publisher: 'Yield Ltd',
      support_url: 'https://yield.example/support',
      privacy_policy_url: 'https://yield.example/privacy',
    }
    const made = await post(body)
    assert.equal(made.status, 201, made.text)
    const { name: _n, kind: _k, environment: _e, install_url: _i, ...sent } = body
    const shown = (json: Record<string, unknown>) =>
      Object.fromEntries(['logo_url', 'short_description', 'categories', 'publisher', 'support_url', 'privacy_policy_url'].map((k) => [k, json[k]]))
    assert.deepEqual(shown(made.json), sent)
    const listed = await request(server.url('/admin/v1/apps'), { headers: { authorization: `Bearer ${adminToken}` } })
    assert.equal(listed.status, 200, listed.text)
    assert.deepEqual(shown(listed.json.find((a: { client_id: string }) => a.client_id === made.json.client_id)), sent)

    const unknown = await post({ ...body, categories: ['Mapping', 'Cooking'] })
    assert.equal(unknown.status, 400)
    assert.equal(unknown.json.error, 'invalid_request')
    assert.match(unknown.json.error_description, /categories must be among: Scheduling, .* \(not Cooking\)/)
    const plain = await post({ ...body, support_url: 'http://yield.example/support' })
    assert.equal(plain.status, 400)
    assert.match(plain.json.error_description, /support URL must be an https URL/)
  })

  it("a live app's listing changes wait for review: the old listing stays in force and the operator sees both", async () => {
    const p = await partner(server)
    const res = await postCreate(p, { environment: 'live', install_url: 'https://planner.example/install', listed: 'on', ...listing })
    assert.equal(res.status, 303, res.text)
    const clientId = clientIdOf(await p.get(res.headers.get('location')!))!
    await approveApp(server.runtime.ctx, cliActor, { clientId })
    const page = await p.get(`/developer/apps/${clientId}`)
    const saved = await p.post(`/developer/apps/${clientId}`, {
      csrf: csrfOf(page),
      name: 'Route planner',
      'scope:api': 'on',
      install_url: 'https://planner.example/install',
      listed: 'on',
      ...listing,
      publisher: 'Someone Famous',
      'category:Mapping': 'off',
      'category:Weather': 'on',
      logo_url: 'https://elsewhere.example/logo.png',
    })
    assert.equal(saved.status, 303)
    assert.match(saved.headers.get('location')!, /notice=submitted/)
    const app = (await server.storage.getAppByClientId(clientId))!
    assert.deepEqual([app.review, app.publisher, app.categories, app.logoUrl], ['pending', 'Planner & Co', ['Scheduling', 'Mapping'], listing.logo_url], 'in force as approved')
    assert.deepEqual(
      [app.proposed?.publisher, app.proposed?.categories, app.proposed?.logoUrl],
      ['Someone Famous', ['Scheduling', 'Weather'], 'https://elsewhere.example/logo.png'],
    )
    const after = await p.get(`/developer/apps/${clientId}`)
    assert.match(after.text, /Your changes wait for review<\/strong> \(logo, categories, publisher\)/)
    assert.match(after.text, /id="publisher" name="publisher" type="text" value="Someone Famous"/, 'the form shows what waits')

    const opEmail = `op-${randomBytes(4).toString('hex')}@fieldgate.example`
    await createUser(server.runtime.ctx, cliActor, { email: opEmail, password: Person.password, operator: true })
    const operator = new Person(server, opEmail)
    assert.equal((await operator.signIn()).status, 303)
    const queue = await operator.get('/operator/review')
    assert.equal(queue.status, 200)
    const row = (label: string) => new RegExp(`<div>${label}</div><div class="changed">([^<]*)</div><div class="changed">([^<]*) <span class="tag">changed</span>`).exec(queue.text)
    assert.deepEqual(row('Publisher')?.slice(1), ['Planner &amp; Co', 'Someone Famous'])
    assert.deepEqual(row('Categories')?.slice(1), ['Scheduling, Mapping', 'Scheduling, Weather'])
    assert.deepEqual(row('Logo URL')?.slice(1), [listing.logo_url, 'https://elsewhere.example/logo.png'])
    assert.match(queue.text, /<div>Support URL<\/div><div>https:\/\/planner\.example\/help<\/div><div>https:\/\/planner\.example\/help<\/div>/, 'unchanged fields unmarked')
    await approveApp(server.runtime.ctx, cliActor, { clientId })
    const approved = (await server.storage.getAppByClientId(clientId))!
    assert.deepEqual([approved.publisher, approved.categories, approved.proposed], ['Someone Famous', ['Scheduling', 'Weather'], null])
  })

  it('splits the app page into sections, sends a signed test event, shows it delivered with body, status and time, retries a waiting one now, and pages and filters deliveries', async () => {
    const p = await partner(server)
    const res = await postCreate(p, { install_url: 'https://planner.example/install', data_api_url: dataApiUrl })
    const created = await p.get(res.headers.get('location')!)
    const clientId = clientIdOf(created)!
    const secret = secretOf(created)!
    const app = (await server.storage.getAppByClientId(clientId))!
    const path = `/developer/apps/${clientId}`
    const page = await p.get(path)
    for (const id of ['settings', 'credentials', 'data-api', 'activity']) {
      assert.match(page.text, new RegExp(`<a href="#${id}">`), `nav links to #${id}`)
      assert.match(page.text, new RegExp(`<section id="${id}" aria-labelledby="${id}-heading">`), `section ${id}`)
    }

    const forged = await p.post(`${path}/test-event`, { csrf: 'forged' })
    assert.equal(forged.status, 403, 'CSRF first')
    const sent = await p.post(`${path}/test-event`, { csrf: csrfOf(page) })
    assert.equal(sent.status, 303)
    assert.equal(sent.headers.get('location'), `${path}?notice=test_sent#data-api`)
    await waitUntil(async () => receiver.received.some((r) => r.body.includes('"type":"ping"') && r.body.includes(clientId)), 10_000)
    const ping = receiver.received.find((r) => r.body.includes('"type":"ping"') && r.body.includes(clientId))!
    assert.equal(verifyEventSignature(ping.signature, ping.body, secret, Math.floor(Date.now() / 1000)), true, 'signed with the client secret')
    const event = JSON.parse(ping.body) as { id: string; data: { test: boolean } }
    assert.equal(event.data.test, true)
    await waitUntil(async () => (await server.storage.getEvent(event.id))?.state === 'delivered', 5000)
    const shown = await p.get(`${path}?notice=test_sent`)
    assert.match(shown.text, /<p role="status">A test event is on its way to your Data API URL\.<\/p>/)
    const item =
      new RegExp(`<li class="delivery" id="event-${event.id}">([\\s\\S]*?)</li>\\s*(?=<li class="delivery"|</ul>)`).exec(shown.text)?.[1] ?? assert.fail('the test event is listed')
    assert.match(item, /<strong>Test event<\/strong> <code>ping<\/code>/)
    assert.match(item, /<span class="tag">Delivered<\/span>/)
    assert.match(item, /<pre class="delivery-body">\{\n {2}&quot;id&quot;: &quot;evt_/, 'the request body, as sent')
    assert.match(item, /<time datetime="[^"]+" data-local="time">\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC<\/time>: status <strong>204<\/strong> in \d+ ms/)
    assert.match(item, /action="\/developer\/apps\/[^/]+\/events\/evt_[0-9a-f]+\/redeliver"/, 'a delivered event can be redelivered')
    const audit = await server.storage.listAudit({ appIds: [app.id], limit: 5 })
    assert.ok(
      audit.some((e) => e.action === 'event.test_sent' && e.objectId === event.id && e.actor === p.email),
      'audited, by whom',
    )

    // The receiver fails: the retry waits a minute, until Retry now.
    receiver.status = 500
    const again = await p.post(`${path}/test-event`, { csrf: csrfOf(page) })
    assert.equal(again.status, 303)
    let failing = ''
    await waitUntil(async () => {
      const [latest] = await server.storage.listEvents({ appId: app.id, limit: 1 })
      failing = latest?.id ?? ''
      return latest?.state === 'pending' && latest.attempts === 1
    }, 10_000)
    const waiting = await p.get(`${path}?state=pending`)
    const waitingItem =
      new RegExp(`<li class="delivery" id="event-${failing}">([\\s\\S]*?)</li>\\s*(?=<li class="delivery"|</ul>)`).exec(waiting.text)?.[1] ?? assert.fail('listed as waiting')
    assert.match(waitingItem, /<span class="tag">Retrying<\/span>/)
    assert.match(waitingItem, /status <strong>500<\/strong>/)
    assert.doesNotMatch(waiting.text, new RegExp(`id="event-${event.id}"`), 'the filter leaves the delivered one out')
    assert.match(waiting.text, /<option value="pending" selected>Waiting<\/option>/)
    receiver.status = 204
    const retried = await p.post(`${path}/events/${failing}/retry`, { csrf: csrfOf(page) })
    assert.equal(retried.status, 303)
    assert.equal(retried.headers.get('location'), `${path}?notice=retrying#data-api`)
    await waitUntil(async () => (await server.storage.getEvent(failing))?.state === 'delivered', 5000)
    assert.deepEqual(
      (await server.storage.listAttempts(failing)).map((a) => a.status),
      [500, 204],
    )
    const late = await p.post(`${path}/events/${failing}/retry`, { csrf: csrfOf(page) })
    assert.equal(late.headers.get('location'), `${path}?notice=busy#data-api`, 'delivered already: nothing to retry')
    const stranger = await partner(server)
    const strangerPage = await stranger.get('/developer')
    assert.equal((await stranger.post(`${path}/events/${failing}/retry`, { csrf: csrfOf(strangerPage) })).status, 404, "another partner's app is as good as absent")
    assert.equal((await stranger.post(`${path}/test-event`, { csrf: csrfOf(strangerPage) })).status, 404)

    // Ten a page: twelve test events and the sandbox install's grant.created make thirteen, three on the next page.
    for (let i = 0; i < 10; i++) assert.equal((await p.post(`${path}/test-event`, { csrf: csrfOf(page) })).status, 303)
    const first = await p.get(path)
    assert.equal((first.text.match(/<li class="delivery"/g) ?? []).length, 10)
    const next = /<a href="([^"]+)" rel="next">Next<\/a>/.exec(first.text)?.[1] ?? assert.fail('a next page')
    assert.equal(next, `${path}?events=10#data-api`)
    const second = await p.get(next.replace('#data-api', ''))
    assert.equal((second.text.match(/<li class="delivery"/g) ?? []).length, 3)
    assert.match(second.text, /<strong>Access granted<\/strong> <code>grant\.created<\/code>/, 'the oldest, last')
    assert.match(second.text, /rel="prev">Previous<\/a>/)
    assert.doesNotMatch(second.text, /rel="next"/)
    const junk = await p.get(`${path}?state=everything&events=-5&activity=x`)
    assert.equal(junk.status, 200, 'an odd query shows the first page of everything')
    assert.equal((junk.text.match(/<li class="delivery"/g) ?? []).length, 10)
  })

  it('says to set a Data API URL before a test event, beside the field', async () => {
    const p = await partner(server)
    const res = await postCreate(p, { install_url: 'https://planner.example/install' })
    const clientId = clientIdOf(await p.get(res.headers.get('location')!))!
    const page = await p.get(`/developer/apps/${clientId}`)
    assert.doesNotMatch(page.text, /Send a test event/, 'no button without a URL')
    const refused = await p.post(`/developer/apps/${clientId}/test-event`, { csrf: csrfOf(page) })
    assert.equal(refused.status, 400)
    assert.match(refused.text, /<p class="error field-error" id="data_api_url-error">set a Data API URL first: test events are sent there<\/p>/)
  })
})

/**
 * Issue 16, the portal part: the Client type chosen at Create, the Tokens settings in the app form,
 * and the app page saying what the client is; a public client has no secret anywhere.
 */
describe('developer portal: OAuth 2.1 client settings', () => {
  let server: TestServer
  before(async () => {
    server = await startServer({ overrides: open })
  })
  after(() => server.close())

  const checkbox = (page: Res, id: string) => new RegExp(`<input type="checkbox" id="${id}"[^>]*>`).exec(page.text)?.[0] ?? assert.fail(`no ${id} checkbox`)

  it('creates a public client with no secret page, shows it on its page without secrets, and refuses a rotation', async () => {
    const p = await partner(server)
    const newPage = await p.get('/developer/apps/new')
    assert.match(newPage.text, /<fieldset id="client_type"><legend>Client type<\/legend>/)
    assert.match(newPage.text, /<input type="radio" name="client_type" value="confidential" checked aria-describedby="client_type-confidential-hint"> Confidential/)
    assert.match(newPage.text, /<p class="muted hint" id="client_type-public-hint">A desktop, mobile or agent app: no secret/)

    const res = await postCreate(p, { client_type: 'public', redirect_uris: 'http://127.0.0.1:8123/cb\ncom.example.planner:/callback' })
    assert.equal(res.status, 303, res.text)
    const location = res.headers.get('location')!
    assert.match(location, /^\/developer\/apps\/[0-9a-f]{32}\?notice=created_public$/, 'to the app, not to a secret page')
    const clientId = /apps\/([0-9a-f]{32})/.exec(location)![1]!
    const app = (await server.storage.getAppByClientId(clientId))!
    assert.deepEqual([app.publicClient, app.refreshTokens, app.redirectUris], [true, true, ['http://127.0.0.1:8123/cb', 'com.example.planner:/callback']])
    assert.equal((await server.storage.listLiveSecrets(app.id, Date.now())).length, 0, 'no secret stored')

    const page = await p.get(location)
    assert.match(page.text, /<p role="status">The app is created\. It is a public client: it has no secret/)
    assert.match(page.text, /<dt>Client type<\/dt><dd>Public client \(<code>token_endpoint_auth_method<\/code> <code>none<\/code>\)/)
    assert.match(page.text, /<dt>Tokens<\/dt><dd>Refresh tokens, with JWT access tokens that expire<\/dd>/)
    assert.match(page.text, /<dt>Client secret<\/dt><dd>None: a public client sends its client ID alone/)
    assert.doesNotMatch(page.text, /Rotate secret|name="grace"|Client secrets/, 'no secret section, no rotation')
    assert.doesNotMatch(page.text, /<dt>Registered<\/dt>/, 'made in the portal')
    const refresh = checkbox(page, 'refresh_tokens')
    assert.match(refresh, / checked disabled aria-describedby="refresh_tokens-hint"/)
    assert.doesNotMatch(refresh, /name=/, 'the disabled box sends nothing itself')
    assert.match(page.text, /<input type="hidden" name="refresh_tokens" value="on">/)
    assert.match(page.text, /<p class="muted hint" id="refresh_tokens-hint">Always on for a public client/)
    const home = await p.get('/developer')
    assert.match(home.text, /<span class="muted">public, sandbox, public client<\/span>/)

    const rotation = await p.post(`/developer/apps/${clientId}/rotate-secret`, { csrf: csrfOf(page), grace: '0' })
    assert.equal(rotation.status, 400)
    assert.match(rotation.text, /<p class="error" role="alert">a public client has no secret to rotate<\/p>/)
    assert.equal((await server.storage.listLiveSecrets(app.id, Date.now())).length, 0, 'still none')

    // Saving the form as the page sends it keeps the refresh tokens; leaving them out is refused beside the field.
    const base = { csrf: csrfOf(page), name: 'Route planner', 'scope:api': 'on', redirect_uris: 'http://127.0.0.1:8123/cb' }
    const saved = await p.post(`/developer/apps/${clientId}`, { ...base, refresh_tokens: 'on', require_dpop: 'on' })
    assert.equal(saved.status, 303, saved.text)
    assert.deepEqual([(await server.storage.getAppByClientId(clientId))?.refreshTokens, (await server.storage.getAppByClientId(clientId))?.requireDpop], [true, true])
    const before = await server.storage.getAppByClientId(clientId)
    const refused = await p.post(`/developer/apps/${clientId}`, base)
    assert.equal(refused.status, 400)
    assert.match(refused.text, /<p class="error field-error" id="refresh_tokens-error">a public client always gets refresh tokens<\/p>/)
    assert.match(checkbox(refused, 'refresh_tokens'), /aria-describedby="refresh_tokens-hint refresh_tokens-error" aria-invalid="true"/)
    assert.match(refused.text, /<a href="#refresh_tokens">a public client always gets refresh tokens<\/a>/)
    assert.deepEqual(await server.storage.getAppByClientId(clientId), before, 'nothing changed')
  })

  it('a public client keeps its refresh tokens whatever the box said at Create; a confidential one gets its secret page', async () => {
    const p = await partner(server)
    const pub = await postCreate(p, { client_type: 'public', redirect_uris: 'http://localhost:3000/cb', require_par: 'on' })
    assert.equal(pub.status, 303, pub.text)
    const made = (await server.storage.getAppByClientId(/apps\/([0-9a-f]{32})/.exec(pub.headers.get('location')!)![1]!))!
    assert.deepEqual([made.publicClient, made.refreshTokens, made.requirePar], [true, true, true])
    const conf = await postCreate(p, { client_type: 'confidential', refresh_tokens: 'on', access_token_format: 'opaque' })
    assert.equal(conf.status, 303, conf.text)
    assert.match(conf.headers.get('location')!, /\/secret\?h=/)
    const secretPage = await p.get(conf.headers.get('location')!)
    const app = (await server.storage.getAppByClientId(clientIdOf(secretPage)!))!
    assert.deepEqual([app.publicClient, app.refreshTokens, app.accessTokenFormat], [false, true, 'opaque'])
    // A public client's redirect URIs are checked as the core checks them, beside the field, with the choice kept.
    const refused = await postCreate(p, { client_type: 'public', redirect_uris: 'javascript:alert(1)' })
    assert.equal(refused.status, 400)
    assert.match(refused.text, /id="redirect_uris-error"/)
    assert.match(refused.text, /value="public" checked/)
  })

  it('saves the token settings from the edit form, shows them, and refuses an unknown format', async () => {
    const p = await partner(server)
    const res = await postCreate(p, {})
    const clientId = clientIdOf(await p.get(res.headers.get('location')!))!
    const path = `/developer/apps/${clientId}`
    const page = await p.get(path)
    assert.match(page.text, /<dt>Client type<\/dt><dd>Confidential client \(<code>token_endpoint_auth_method<\/code> <code>client_secret_basic<\/code>\)/)
    assert.match(page.text, /<dt>Tokens<\/dt><dd>No refresh tokens/)
    assert.match(page.text, /Rotate secret/)
    for (const id of ['refresh_tokens', 'require_dpop', 'require_par']) {
      const box = checkbox(page, id)
      assert.doesNotMatch(box, /checked|disabled/, `${id} off by default`)
      assert.match(box, new RegExp(`name="${id}" aria-describedby="${id}-hint"`))
      assert.match(page.text, new RegExp(`<label class="check"><input type="checkbox" id="${id}"`), `${id} is labelled`)
    }
    assert.match(page.text, /<label for="access_token_format">Access tokens with refresh<\/label>/)
    assert.match(page.text, /<select id="access_token_format" name="access_token_format" aria-describedby="access_token_format-hint">/)
    assert.match(page.text, /<p class="muted hint" id="require_par-hint">Authorization requests must be pushed to \/oauth\/par first/)

    const base = { csrf: csrfOf(page), name: 'Route planner', 'scope:api': 'on' }
    const on = await p.post(path, { ...base, refresh_tokens: 'on', access_token_format: 'opaque', require_dpop: 'on', require_par: 'on' })
    assert.equal(on.status, 303, on.text)
    assert.equal(on.headers.get('location'), `${path}?notice=saved`)
    const app = (await server.storage.getAppByClientId(clientId))!
    assert.deepEqual([app.refreshTokens, app.accessTokenFormat, app.requireDpop, app.requirePar], [true, 'opaque', true, true])
    const shown = await p.get(path)
    for (const id of ['refresh_tokens', 'require_dpop', 'require_par']) assert.match(checkbox(shown, id), / checked/, id)
    assert.match(shown.text, /<option value="opaque" selected>/)
    assert.match(shown.text, /<dt>Tokens<\/dt><dd>Refresh tokens, with opaque access tokens that expire<\/dd>/)
    assert.match(shown.text, /<dt>DPoP<\/dt><dd>Required/)
    assert.match(shown.text, /<dt>Pushed authorization requests<\/dt><dd>Required/)
    const [entry] = await server.storage.listAudit({ appIds: [app.id], limit: 1 })
    assert.deepEqual(entry?.details.changed, ['refreshTokens', 'accessTokenFormat', 'requireDpop', 'requirePar'], 'the audit names what changed')

    const bad = await p.post(path, { ...base, access_token_format: 'paseto' })
    assert.equal(bad.status, 400)
    assert.match(bad.text, /<p class="error field-error" id="access_token_format-error">access token format must be one of: jwt, opaque/, 'beside the field')
    assert.deepEqual(await server.storage.getAppByClientId(clientId), app, 'nothing changed')

    // Boxes left unticked are off again; the format stays as it was when none is sent.
    const off = await p.post(path, base)
    assert.equal(off.status, 303)
    const after = (await server.storage.getAppByClientId(clientId))!
    assert.deepEqual([after.refreshTokens, after.accessTokenFormat, after.requireDpop, after.requirePar], [false, 'opaque', false, false])
  })

  it('says how a registered client came to be', async () => {
    const p = await partner(server)
    const res = await postCreate(p, { client_type: 'public', redirect_uris: 'http://127.0.0.1:9/cb' })
    const clientId = /apps\/([0-9a-f]{32})/.exec(res.headers.get('location')!)![1]!
    const app = (await server.storage.getAppByClientId(clientId))!
    for (const [registration, words] of [
      ['dynamic', /<dt>Registered<\/dt><dd>By the app itself, through dynamic client registration \(RFC 7591\)\. Not reviewed: a farm connects it only through consent/],
      ['metadata_document', /<dt>Registered<\/dt><dd>By the app itself: its client ID is the URL of its client metadata document\./],
    ] as const) {
      await server.storage.updateApp({ ...app, registration })
      server.runtime.ctx.cache.apply({ kind: 'app', ref: app.id })
      assert.match((await p.get(`/developer/apps/${clientId}`)).text, words, registration)
    }
  })
})

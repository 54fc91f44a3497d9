import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { after, before, describe, it } from 'node:test'
import { approveApp, cliActor, createApp, createTenant, createUser, describeScope, queryHmac, updateApp, type Tenant } from '@fieldgate/core'
import { FieldgateError, completionUrl, readInstallRequest, verifyInstallRequest, type CompletionStatus } from '@fieldgate/client'
import { bearer, postJson, request, runCli, startServer, tempDir, type Res, type TestServer } from './helpers.js'
import { Person, csrfOf, hiddenFields } from './person.js'

/** Partners here sign up and create apps at once; verifying the address first is accounts.test.ts's. */
const open = { signup: 'open' } as const

const INSTALL = 'https://partner.example/install'

/** A partner signed up through the portal, as a browser would. */
async function partner(server: TestServer): Promise<Person> {
  const p = new Person(server, `partner-${randomBytes(4).toString('hex')}@partner.example`)
  const page = await p.get('/signup')
  const res = await p.post('/signup', { csrf: csrfOf(page), email: p.email, password: Person.password })
  assert.equal(res.status, 303, res.text)
  assert.equal(res.headers.get('location'), '/developer')
  return p
}

interface CreatedApp {
  clientId: string
  clientSecret: string
  page: Res
}

async function createAppThroughPortal(p: Person, fields: Record<string, string>): Promise<CreatedApp> {
  const form = await p.get('/developer/apps/new')
  assert.equal(form.status, 200, form.text)
  const posted = await p.post('/developer/apps', {
    csrf: csrfOf(form),
    kind: 'public',
    environment: 'sandbox',
    name: 'Route planner',
    description: 'Plans routes',
    install_url: INSTALL,
    contact_email: 'dev@partner.example',
    'scope:api': 'on',
    ...fields,
  })
  assert.equal(posted.status, 303, posted.text)
  const page = await p.get(posted.headers.get('location')!)
  assert.equal(page.status, 200, page.text)
  const value = (id: string) => new RegExp(`id="${id}" type="text" readonly value="([^"]+)"`).exec(page.text)?.[1] ?? assert.fail(`no ${id}`)
  return { clientId: value('client_id'), clientSecret: value('client_secret'), page }
}

/** A live app as an operator approved it: until then no customer sees it (review.test.ts). */
async function approved(server: TestServer, app: CreatedApp): Promise<CreatedApp> {
  await approveApp(server.runtime.ctx, cliActor, { clientId: app.clientId })
  return app
}

/** A tenant and its owner, signed in. */
async function tenantOwner(server: TestServer, environment: 'sandbox' | 'live'): Promise<{ tenant: Tenant; person: Person }> {
  const tenant = await createTenant(server.runtime.ctx, cliActor, { name: `Acme ${randomBytes(3).toString('hex')}`, environment })
  const email = `owner-${randomBytes(4).toString('hex')}@acme.example`
  await createUser(server.runtime.ctx, cliActor, { email, password: Person.password, tenantId: tenant.id, role: 'owner' })
  const person = new Person(server, email)
  assert.equal((await person.signIn()).status, 303)
  return { tenant, person }
}

async function install(person: Person, clientId: string, tenantId: string): Promise<Res> {
  const page = await person.get(`/marketplace/apps/${clientId}?tenant=${tenantId}`)
  assert.equal(page.status, 200, page.text)
  return person.post(`/marketplace/apps/${clientId}/install`, hiddenFields(page.text))
}

/** The partner's check, with the SDK they use, at `nowSeconds`. */
const partnerVerifies = (q: URLSearchParams | string, secret: string, nowSeconds = Math.floor(Date.now() / 1000)) =>
  verifyInstallRequest(q, secret, { now: () => nowSeconds * 1000 })

/** The partner's signed link back (the SDK's completionUrl), as a path on `server`. */
async function signedCompletion(
  server: TestServer,
  app: CreatedApp,
  targetId: string,
  status: CompletionStatus,
  extra: { errorDescription?: string; now?: () => number } = {},
): Promise<string> {
  const url = new URL(await completionUrl({ issuer: server.origin, clientId: app.clientId, clientSecret: app.clientSecret, targetId, status, ...extra }))
  return url.pathname + url.search
}

const tokenFor = (server: TestServer, app: CreatedApp, targetId: string) =>
  postJson(server.url('/oauth/token'), { client_id: app.clientId, client_secret: app.clientSecret, target_id: targetId, grant_type: 'client_credentials' })

describe('developer portal and marketplace over HTTP', () => {
  let server: TestServer
  before(async () => {
    server = await startServer({ overrides: open })
  })
  after(() => server.close())

  it('creates an app, shows its secret once, and never again on any page', async () => {
    const p = await partner(server)
    const home = await p.get('/developer')
    const sandboxId = /id="sandbox-target-id">([^<]+)</.exec(home.text)?.[1]
    assert.ok(sandboxId)
    const app = await createAppThroughPortal(p, {})
    assert.match(app.clientSecret, /^fgs_sandbox_/)
    assert.match(app.page.text, /shown only this once/)
    assert.equal(app.page.headers.get('cache-control'), 'no-store')
    for (const path of ['/developer', `/developer/apps/${app.clientId}`, '/marketplace/installed', '/connected-apps']) {
      const page = await p.get(path)
      assert.equal(page.text.includes(app.clientSecret), false, path)
    }
    // The secret works, and is stored only hashed (and sealed for signing installs).
    const stored = await server.storage.getAppByClientId(app.clientId)
    const secrets = await server.storage.listLiveSecrets(stored!.id, Date.now())
    assert.equal(JSON.stringify(secrets).includes(app.clientSecret), false)
    const audit = await server.storage.listAudit({ appIds: [stored!.id], limit: 10 })
    assert.deepEqual(
      audit.map((e) => [e.action, e.actor]),
      [['app.created', p.email]],
    )
  })

  it('installs on the sandbox with a signed redirect the partner can verify, and a token for target_id', async () => {
    const p = await partner(server)
    const app = await createAppThroughPortal(p, {})
    const appPage = await p.get(`/developer/apps/${app.clientId}`)
    const res = await p.post(`/developer/apps/${app.clientId}/install-sandbox`, { csrf: csrfOf(appPage) })
    assert.equal(res.status, 303)
    const location = new URL(res.headers.get('location')!)
    assert.equal(location.origin + location.pathname, INSTALL)
    const q = location.searchParams
    const sandbox = (await server.storage.getUserByEmail(p.email))!.sandboxTenantId!
    assert.equal(q.get('target_id'), sandbox)
    assert.equal(q.get('target'), (await server.storage.getTenant(sandbox))!.marketplaceId)
    const now = Math.floor(Date.now() / 1000)
    assert.ok(Math.abs(Number(q.get('timestamp')) - now) < 5)
    assert.equal(await partnerVerifies(q, app.clientSecret, now), true)
    assert.equal(q.get('hmac'), queryHmac({ target: q.get('target')!, target_id: q.get('target_id')!, timestamp: q.get('timestamp')! }, app.clientSecret))
    for (const [name, value] of [
      ['target_id', randomBytes(8).toString('hex')],
      // One second before the signed one (not before `now`: the two may be a second apart).
      ['timestamp', String(Number(q.get('timestamp')) - 1)],
      ['hmac', '0'.repeat(64)],
      ['target', 'x'],
    ]) {
      const tampered = new URLSearchParams(q)
      tampered.set(name!, value!)
      assert.equal(await partnerVerifies(tampered, app.clientSecret, now), false, name)
    }
    assert.equal(await partnerVerifies(q, `${app.clientSecret}x`, now), false, 'another secret')
    assert.equal(await partnerVerifies(q, app.clientSecret, now + 3600), false, 'too old')
    const token = await tokenFor(server, app, sandbox)
    assert.equal(token.status, 200, token.text)
    assert.equal(token.json.expires_in, 28000)
    assert.equal((await request(server.url('/api/rest/v2/workorders'), { headers: bearer(token.json.access_token) })).status, 200)
  })

  it('signs every parameter of an install URL with its own query string; the SDK verifies it and refuses a tampered one or a non-numeric timestamp', async () => {
    const p = await partner(server)
    const app = await createAppThroughPortal(p, { install_url: `${INSTALL}?partner=acme&region=eu+west` })
    const appPage = await p.get(`/developer/apps/${app.clientId}`)
    const res = await p.post(`/developer/apps/${app.clientId}/install-sandbox`, { csrf: csrfOf(appPage) })
    assert.equal(res.status, 303, res.text)
    const location = new URL(res.headers.get('location')!)
    const q = location.searchParams
    assert.deepEqual([...q.keys()].sort(), ['hmac', 'partner', 'region', 'target', 'target_id', 'timestamp'])
    assert.equal(q.get('region'), 'eu west')
    assert.equal(await partnerVerifies(location.href, app.clientSecret), true, 'the whole URL')
    assert.equal(await partnerVerifies(location.search, app.clientSecret), true, 'its query string')
    assert.equal(await partnerVerifies(q, app.clientSecret), true, 'its parameters')
    for (const [name, value] of [
      ['partner', 'evil'],
      ['region', 'us'],
    ] as const) {
      const tampered = new URLSearchParams(q)
      tampered.set(name, value)
      assert.equal(await partnerVerifies(tampered, app.clientSecret), false, name)
    }
    const read = await readInstallRequest(location.href, [`${app.clientSecret}old`, app.clientSecret])
    assert.equal(read.targetId, (await server.storage.getUserByEmail(p.email))!.sandboxTenantId)
    assert.equal(read.target, q.get('target'))
    const forged = new URLSearchParams(q)
    forged.set('target_id', randomBytes(8).toString('hex'))
    await assert.rejects(readInstallRequest(forged, app.clientSecret), (err) => err instanceof FieldgateError && err.code === 'invalid_signature')
    const added = new URLSearchParams(q)
    added.append('extra', '1')
    assert.equal(await partnerVerifies(added, app.clientSecret), false, 'an added parameter')
    // Correctly signed, yet not Unix seconds in digits: Number() would read each of these as a time.
    const now = Math.floor(Date.now() / 1000)
    for (const timestamp of [` ${now}`, `${now}.0`, `0x${now.toString(16)}`, `${now / 1000}e3`, `+${now}`, '']) {
      const odd = new URLSearchParams(q)
      odd.set('timestamp', timestamp)
      odd.set('hmac', queryHmac(odd, app.clientSecret))
      assert.equal(await partnerVerifies(odd, app.clientSecret), false, `timestamp ${JSON.stringify(timestamp)}`)
    }
    const control = new URLSearchParams(q)
    control.set('timestamp', String(now))
    control.set('hmac', queryHmac(control, app.clientSecret))
    assert.equal(await partnerVerifies(control, app.clientSecret), true, 'the control: the same, with digits')
  })

  it('a tenant admin installs a live app once, completes setup, and uninstalling stops its tokens at once', async () => {
    const p = await partner(server)
    const app = await approved(server, await createAppThroughPortal(p, { environment: 'live', listed: 'on', name: 'Live planner' }))
    assert.match(app.clientSecret, /^fgs_live_/)
    const { tenant, person } = await tenantOwner(server, 'live')
    const market = await person.get(`/marketplace?tenant=${tenant.id}`)
    assert.match(market.text, /Live planner/)
    const first = await install(person, app.clientId, tenant.id)
    assert.equal(first.status, 303)
    const q = new URL(first.headers.get('location')!).searchParams
    assert.equal(q.get('target'), tenant.marketplaceId)
    assert.equal(q.get('target_id'), tenant.id)
    assert.equal(await partnerVerifies(q, app.clientSecret), true)
    const token = (await tokenFor(server, app, tenant.id)).json.access_token as string
    assert.ok(token)
    await install(person, app.clientId, tenant.id)
    const grants = (await server.storage.listGrants({ tenantId: tenant.id })).filter((g) => g.status === 'active')
    assert.equal(grants.length, 1, 'installing twice makes one grant')

    const done = await person.get(await signedCompletion(server, app, tenant.id, 'success'))
    assert.equal(done.status, 200, done.text)
    assert.match(done.text, /is installed/)
    assert.equal((await server.storage.getInstall(grants[0]!.id))?.state, 'complete')

    const partnerView = await p.get(`/developer/apps/${app.clientId}`)
    assert.match(partnerView.text, /App installed/)
    assert.equal(partnerView.text.includes(person.email), false, "a partner does not learn the customer's people")
    const installed = await person.get('/marketplace/installed')
    assert.match(installed.text, /Live planner/)
    assert.match(installed.text, new RegExp(`by ${person.email.replace('.', '\\.')}`))
    const fields = [...installed.text.matchAll(/<form method="post" action="\/connected-apps\/disconnect">([\s\S]*?)<\/form>/g)]
    assert.equal(fields.length, 1)
    const res = await person.post('/connected-apps/disconnect', hiddenFields(fields[0]![1]!))
    assert.equal(res.headers.get('location'), '/marketplace/installed?notice=disconnected')
    const api = await request(server.url('/api/rest/v2/workorders'), { headers: bearer(token) })
    assert.equal(api.status, 401)
    const actions = (await server.storage.listAudit({ tenantIds: [tenant.id], limit: 20 })).map((e) => e.action)
    assert.deepEqual(actions.sort(), ['app.installed', 'app.installed', 'app.uninstalled', 'install.completed'])
  })

  it('shows a setup error with retry and removal', async () => {
    const p = await partner(server)
    const app = await approved(server, await createAppThroughPortal(p, { environment: 'live', listed: 'on' }))
    const { tenant, person } = await tenantOwner(server, 'live')
    await install(person, app.clientId, tenant.id)
    const page = await person.get(await signedCompletion(server, app, tenant.id, 'error', { errorDescription: 'No <b>licence</b>' }))
    assert.equal(page.status, 200, 'a failure the partner reports is a page, never a 5xx')
    assert.match(page.text, /No &lt;b&gt;licence&lt;\/b&gt;/, 'the partner message is shown escaped')
    assert.match(page.text, /Try again/)
    assert.match(page.text, /Remove the install/)
  })

  it('installs exactly the scopes the page showed: widened or narrowed since, nothing is granted and the page is shown again', async () => {
    const p = await partner(server)
    const app = await approved(server, await createAppThroughPortal(p, { environment: 'live', listed: 'on' }))
    const { tenant, person } = await tenantOwner(server, 'live')
    const path = `/marketplace/apps/${app.clientId}?tenant=${tenant.id}`
    const shown = hiddenFields((await person.get(path)).text)
    assert.equal(shown.scopes, 'api')
    // The partner widens the app while the admin looks at the page.
    await updateApp(server.runtime.ctx, cliActor, { clientId: app.clientId, fields: { scopes: 'api alerts:write' } })
    const again = await person.post(`/marketplace/apps/${app.clientId}/install`, shown)
    assert.equal(again.status, 409, again.text)
    assert.match(again.text, /changed since the page was shown\. Nothing was installed/)
    assert.match(again.text, /<code>alerts:write<\/code>/, 'the page shows the new list')
    assert.deepEqual(await server.storage.listGrants({ tenantId: tenant.id }), [], 'nothing granted')
    // The new page's form grants the new list, exactly.
    const res = await person.post(`/marketplace/apps/${app.clientId}/install`, hiddenFields(again.text))
    assert.equal(res.status, 303, res.text)
    const [grant] = await server.storage.listGrants({ tenantId: tenant.id })
    assert.deepEqual([...grant!.scopes].sort(), ['alerts:write', 'api'])
    // Narrowed since the page was shown: nothing changes either.
    const wide = hiddenFields((await person.get(path)).text)
    await updateApp(server.runtime.ctx, cliActor, { clientId: app.clientId, fields: { scopes: 'api' } })
    assert.equal((await person.post(`/marketplace/apps/${app.clientId}/install`, wide)).status, 409)
    assert.deepEqual((await server.storage.getGrant(grant!.id))?.scopes, grant!.scopes)
  })

  it('refuses an Install form whose scope list was changed or moved to another app or tenant', async () => {
    const p = await partner(server)
    const app = await approved(server, await createAppThroughPortal(p, { environment: 'live', listed: 'on' }))
    const other = await approved(server, await createAppThroughPortal(p, { environment: 'live', listed: 'on', name: 'Other' }))
    const { tenant, person } = await tenantOwner(server, 'live')
    const second = await createTenant(server.runtime.ctx, cliActor, { name: 'Second', environment: 'live' })
    await server.storage.addMembership({ userId: (await server.storage.getUserByEmail(person.email))!.id, tenantId: second.id, role: 'owner' })
    const shown = hiddenFields((await person.get(`/marketplace/apps/${app.clientId}?tenant=${tenant.id}`)).text)
    await updateApp(server.runtime.ctx, cliActor, { clientId: app.clientId, fields: { scopes: 'api alerts:write' } })
    const forged: [string, Record<string, string>][] = [
      ['widened in the form', { ...shown, scopes: 'api alerts:write' }],
      ['no binding', { ...shown, shown: '' }],
      ['another tenant', { ...shown, tenant_id: second.id }],
    ]
    for (const [what, form] of forged) {
      const res = await person.post(`/marketplace/apps/${app.clientId}/install`, form)
      assert.equal(res.status, 403, what)
    }
    assert.equal((await person.post(`/marketplace/apps/${other.clientId}/install`, shown)).status, 403, 'another app')
    for (const t of [tenant, second]) assert.deepEqual(await server.storage.listGrants({ tenantId: t.id }), [])
  })

  it('shows each card as installed, setup pending or setup failed, from the stored install', async () => {
    const p = await partner(server)
    const name = `Card ${randomBytes(3).toString('hex')}`
    const app = await approved(server, await createAppThroughPortal(p, { environment: 'live', listed: 'on', name }))
    const { tenant, person } = await tenantOwner(server, 'live')
    const card = async () => {
      const page = (await person.get(`/marketplace?tenant=${tenant.id}`)).text
      const section = new RegExp(`<section class="app-card" aria-label="${name}">([\\s\\S]*?)</section>`).exec(page)
      return section?.[0] ?? ''
    }
    assert.doesNotMatch(await card(), /Installed|Setup/)
    await install(person, app.clientId, tenant.id)
    assert.match(await card(), /<strong>Setup pending<\/strong>/)
    await person.get(await signedCompletion(server, app, tenant.id, 'error', { errorDescription: 'No licence' }))
    const failed = await card()
    assert.match(failed, /<strong>Setup failed<\/strong>/)
    assert.doesNotMatch(failed, /Installed/)
    await person.get(await signedCompletion(server, app, tenant.id, 'success'))
    assert.match(await card(), /<strong>Installed<\/strong>/)
  })

  it('/marketplace/complete changes an install only when the partner signed the link, within five minutes', async () => {
    const p = await partner(server)
    const app = await approved(server, await createAppThroughPortal(p, { environment: 'live', listed: 'on' }))
    const { tenant, person } = await tenantOwner(server, 'live')
    await install(person, app.clientId, tenant.id)
    const [grant] = await server.storage.listGrants({ tenantId: tenant.id })
    const state = async () => (await server.storage.getInstall(grant!.id))?.state
    const signed = new URL(await signedCompletion(server, app, tenant.id, 'error', { errorDescription: 'Pay us first' }), server.origin).searchParams
    const variant = (change: (q: URLSearchParams) => void) => {
      const q = new URLSearchParams(signed)
      change(q)
      return `/marketplace/complete?${q}`
    }
    const unsigned: [string, string][] = [
      ['unsigned', `/marketplace/complete?${new URLSearchParams({ client_id: app.clientId, target_id: tenant.id, status: 'error', error_description: 'Pay us first' })}`],
      ['message changed', variant((q) => q.set('error_description', 'Call 555-0100 now'))],
      ['status changed', variant((q) => q.set('status', 'success'))],
      ['hmac removed', variant((q) => q.delete('hmac'))],
      ['signed by another secret', await signedCompletion(server, { ...app, clientSecret: `${app.clientSecret}x` }, tenant.id, 'error', { errorDescription: 'Pay us first' })],
      ['six minutes old', await signedCompletion(server, app, tenant.id, 'error', { errorDescription: 'Pay us first', now: () => Date.now() - 360_000 })],
    ]
    // A non-numeric timestamp the partner's secret signed is refused too.
    const odd = new URLSearchParams(signed)
    odd.set('timestamp', `${Math.floor(Date.now() / 1000)}.0`)
    odd.set('hmac', queryHmac(odd, app.clientSecret))
    unsigned.push(['non-numeric timestamp', `/marketplace/complete?${odd}`])
    for (const [what, path] of unsigned) {
      const page = await person.get(path)
      assert.equal(page.status, 400, `${what}: ${page.text}`)
      assert.match(page.text, /is not signed or has expired/, what)
      assert.match(page.text, /nothing was changed/, what)
      assert.match(page.text, /<strong>Setup pending<\/strong>/, what)
      assert.doesNotMatch(page.text, /Pay us first|555-0100/, `${what}: the unsigned message is not shown`)
      assert.equal(await state(), 'pending', what)
    }
    const failed = await person.get(`/marketplace/complete?${signed}`)
    assert.equal(failed.status, 200, failed.text)
    assert.match(failed.text, /said: Pay us first/)
    assert.equal(await state(), 'failed')
    // Unsigned again: the failure stays, shown as it is.
    const after = await person.get(`/marketplace/complete?${new URLSearchParams({ client_id: app.clientId, target_id: tenant.id, status: 'success' })}`)
    assert.equal(after.status, 400)
    assert.match(after.text, /<strong>Setup failed<\/strong>/)
    assert.equal(await state(), 'failed')
    // During a rotation's grace period the old secret still signs.
    const appPage = await p.get(`/developer/apps/${app.clientId}`)
    const rotated = await p.post(`/developer/apps/${app.clientId}/rotate-secret`, { csrf: csrfOf(appPage), grace: '3600' })
    assert.equal(rotated.status < 400, true, rotated.text)
    assert.equal((await person.get(await signedCompletion(server, app, tenant.id, 'success'))).status, 200)
    assert.equal(await state(), 'complete')
    const audit = (await server.storage.listAudit({ tenantIds: [tenant.id], limit: 20 })).map((e) => e.action)
    assert.deepEqual(audit.filter((a) => a.startsWith('install.')).sort(), ['install.completed', 'install.failed'])
  })

  it('refuses a sandbox app on a live tenant, and a live app on a sandbox tenant', async () => {
    const p = await partner(server)
    const sandboxApp = await createAppThroughPortal(p, { listed: 'on' })
    const liveApp = await approved(server, await createAppThroughPortal(p, { environment: 'live', listed: 'on' }))
    const live = await tenantOwner(server, 'live')
    const res = await install(live.person, sandboxApp.clientId, live.tenant.id)
    assert.equal(res.status, 400)
    assert.match(res.text, /cannot be installed on a live tenant/)
    const sandbox = await tenantOwner(server, 'sandbox')
    assert.equal((await install(sandbox.person, liveApp.clientId, sandbox.tenant.id)).status, 400)
    assert.deepEqual(await server.storage.listGrants({ tenantId: live.tenant.id }), [])
    // Nor does the marketplace list it there.
    assert.doesNotMatch((await live.person.get('/marketplace')).text, new RegExp(sandboxApp.clientId))
    // And the token endpoint agrees.
    assert.equal((await tokenFor(server, sandboxApp, live.tenant.id)).json.error, 'invalid_grant')
  })

  it("never lets a partner see or change another partner's app", async () => {
    const owner = await partner(server)
    const app = await createAppThroughPortal(owner, { name: 'Mine' })
    const other = await partner(server)
    const page = await other.get(`/developer/apps/${app.clientId}`)
    assert.equal(page.status, 404)
    const csrf = csrfOf(await other.get('/developer'))
    for (const path of ['', '/rotate-secret', '/delete', '/install-sandbox']) {
      const res = await other.post(`/developer/apps/${app.clientId}${path}`, { csrf, name: 'Stolen', confirm: 'on', grace: '0' })
      assert.equal(res.status, 404, path)
    }
    const stored = await server.storage.getAppByClientId(app.clientId)
    assert.equal(stored?.name, 'Mine')
    assert.equal((await server.storage.listLiveSecrets(stored!.id, Date.now())).length, 1)
  })

  it('refuses every form without its CSRF token', async () => {
    const p = await partner(server)
    const app = await approved(server, await createAppThroughPortal(p, { environment: 'live', listed: 'on' }))
    const { tenant, person } = await tenantOwner(server, 'live')
    await install(person, app.clientId, tenant.id)
    const grant = (await server.storage.listGrants({ tenantId: tenant.id }))[0]!
    const posts: [Person, string, Record<string, string>][] = [
      [p, '/developer/apps', { name: 'X', kind: 'public', install_url: INSTALL }],
      [p, `/developer/apps/${app.clientId}`, { name: 'Renamed' }],
      [p, `/developer/apps/${app.clientId}/rotate-secret`, { grace: '0' }],
      [p, `/developer/apps/${app.clientId}/delete`, { confirm: 'on' }],
      [p, `/developer/apps/${app.clientId}/install-sandbox`, {}],
      [person, `/marketplace/apps/${app.clientId}/install`, { tenant_id: tenant.id }],
      [person, '/connected-apps/disconnect', { grant_id: grant.id }],
      [person, '/logout', {}],
    ]
    for (const [who, path, form] of posts) {
      for (const csrf of [undefined, 'forged']) {
        const res = await who.post(path, { ...form, ...(csrf ? { csrf } : {}) })
        assert.equal(res.status, 403, `${path} ${csrf}`)
      }
    }
    const stored = await server.storage.getAppByClientId(app.clientId)
    assert.equal(stored?.name, 'Route planner')
    assert.equal((await server.storage.getGrant(grant.id))?.status, 'active')
    assert.equal((await person.get('/connected-apps')).status, 200, 'still signed in')
  })

  it('rotates with a grace period, signs installs with the new secret, and deleting ends every token', async () => {
    const p = await partner(server)
    const app = await approved(server, await createAppThroughPortal(p, { environment: 'live', listed: 'on' }))
    const { tenant, person } = await tenantOwner(server, 'live')
    await install(person, app.clientId, tenant.id)
    const token = (await tokenFor(server, app, tenant.id)).json.access_token as string
    const appPage = await p.get(`/developer/apps/${app.clientId}`)
    const rotation = await p.post(`/developer/apps/${app.clientId}/rotate-secret`, { csrf: csrfOf(appPage), grace: '3600' })
    assert.equal(rotation.status, 303)
    const rotated = await p.get(rotation.headers.get('location')!)
    const newSecret = /id="client_secret" type="text" readonly value="([^"]+)"/.exec(rotated.text)![1]!
    assert.notEqual(newSecret, app.clientSecret)
    assert.equal((await tokenFor(server, app, tenant.id)).status, 200, 'the old secret works in its grace period')
    assert.equal((await tokenFor(server, { ...app, clientSecret: newSecret }, tenant.id)).status, 200)
    const again = await install(person, app.clientId, tenant.id)
    const q = new URL(again.headers.get('location')!).searchParams
    assert.equal(await partnerVerifies(q, newSecret), true)

    // Used just before, so this process has the grant cached as active when the app is deleted.
    assert.equal((await request(server.url('/api/rest/v2/workorders'), { headers: bearer(token) })).status, 200)
    const del = await p.post(`/developer/apps/${app.clientId}/delete`, { csrf: csrfOf(appPage), confirm: 'on' })
    assert.equal(del.status, 303)
    assert.equal((await request(server.url('/api/rest/v2/workorders'), { headers: bearer(token) })).status, 401)
    assert.equal((await tokenFor(server, { ...app, clientSecret: newSecret }, tenant.id)).status, 401)
    assert.equal(await server.storage.getAppByClientId(app.clientId), undefined)
  })
})

describe('admin API', () => {
  const adminToken = randomBytes(32).toString('base64url')
  let server: TestServer
  before(async () => {
    server = await startServer({ overrides: { ...open, adminToken } })
  })
  after(() => server.close())
  const admin = (path: string, init: RequestInit = {}) =>
    request(server.url(path), { ...init, headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json', ...init.headers } })
  const post = (path: string, body: unknown) => admin(path, { method: 'POST', body: JSON.stringify(body) })

  it('is off without FIELDGATE_ADMIN_TOKEN', async () => {
    const off = await startServer()
    try {
      assert.equal((await request(off.url('/admin/v1/tenants'), { headers: { authorization: `Bearer ${adminToken}` } })).status, 404)
    } finally {
      await off.close()
    }
  })

  it('refuses a missing or wrong token with a Bearer challenge', async () => {
    const none = await request(server.url('/admin/v1/tenants'))
    assert.equal(none.status, 401)
    assert.match(none.headers.get('www-authenticate')!, /^Bearer/)
    const wrong = await request(server.url('/admin/v1/tenants'), { headers: { authorization: `Bearer ${adminToken}x` } })
    assert.equal(wrong.status, 401)
    assert.equal(wrong.json.error, 'invalid_token')
  })

  it('does what the CLI does: tenants, users, apps, secrets, grants, keys, audit', async () => {
    const tenant = await post('/admin/v1/tenants', { name: 'Acme', environment: 'sandbox' })
    assert.equal(tenant.status, 201, tenant.text)
    assert.ok((await admin('/admin/v1/tenants')).json.some((t: { id: string }) => t.id === tenant.json.id))
    const user = await post('/admin/v1/users', { email: 'admin-api@acme.example', password: Person.password, tenant_id: tenant.json.id, role: 'owner' })
    assert.equal(user.status, 201, user.text)
    const app = await post('/admin/v1/apps', { name: 'API app', kind: 'private', tenant_id: tenant.json.id, scopes: 'api' })
    assert.equal(app.status, 201, app.text)
    assert.match(app.json.client_secret, /^fgs_sandbox_/)
    const token = await postJson(server.url('/oauth/token'), { grant_type: 'client_credentials', client_id: app.json.client_id, client_secret: app.json.client_secret })
    assert.equal(token.status, 200)
    const rotated = await post(`/admin/v1/apps/${app.json.client_id}/rotate-secret`, { grace: 0 })
    assert.equal(rotated.status, 200, rotated.text)
    assert.notEqual(rotated.json.client_secret, app.json.client_secret)
    const grants = await admin(`/admin/v1/grants?tenant_id=${tenant.json.id}`)
    assert.equal(grants.json.length, 1)
    const revoked = await post(`/admin/v1/grants/${grants.json[0].id}/revoke`, {})
    assert.equal(revoked.json.status, 'revoked')
    assert.equal((await request(server.url('/api/rest/v2/workorders'), { headers: bearer(token.json.access_token) })).status, 401)
    const keys = await post('/admin/v1/keys/rotate', {})
    assert.equal(keys.status, 200, keys.text)
    assert.deepEqual(keys.json.map((k: { state: string }) => k.state).sort(), ['active', 'next', 'retiring'])
    const audit = await admin(`/admin/v1/audit?client_id=${app.json.client_id}`)
    assert.deepEqual(
      audit.json.map((e: { action: string }) => e.action),
      ['grant.revoked', 'secret.rotated', 'app.created'],
    )
    assert.ok(audit.json.every((e: { actor: string }) => e.actor === 'admin-api'))
    assert.equal((await admin(`/admin/v1/apps/${app.json.client_id}`, { method: 'DELETE' })).status, 204)
  })

  it('answers bad input with 400 JSON errors, an unknown app with 404', async () => {
    const bad = await post('/admin/v1/tenants', { name: 'Acme', environment: 'moon' })
    assert.equal(bad.status, 400)
    assert.equal(bad.json.error, 'invalid_request')
    const extra = await post('/admin/v1/apps', { name: 'X', kind: 'private', surprise: true })
    assert.equal(extra.status, 400)
    for (const nul of ['/admin/v1/grants/%00/revoke', '/admin/v1/apps/a%00b/rotate-secret']) assert.equal((await post(nul, {})).status, 400, nul)
    assert.equal((await admin('/admin/v1/grants?tenant_id=%00')).status, 400)
    // An app that does not exist is not bad input: 404 not_found, as for any missing resource.
    const unknown = await post('/admin/v1/apps/nope/rotate-secret', {})
    assert.equal(unknown.status, 404)
    assert.equal(unknown.json.error, 'not_found')
    assert.match(unknown.json.error_description, /no app/)
  })

  it('is documented in OpenAPI at /openapi.json', async () => {
    const doc = await request(server.url('/openapi.json'))
    assert.equal(doc.status, 200)
    assert.equal(doc.json.openapi, '3.1.0')
    const paths = Object.keys(doc.json.paths)
    for (const p of [
      '/admin/v1/tenants',
      '/admin/v1/users',
      '/admin/v1/apps',
      '/admin/v1/apps/{client_id}/rotate-secret',
      '/admin/v1/grants',
      '/admin/v1/keys/rotate',
      '/admin/v1/audit',
    ]) {
      assert.ok(paths.includes(p), p)
    }
    // The APIs a program calls (admin, resources, OAuth and dialect endpoints, well-known, probes, the gateways' check), never the pages.
    const client = ['/oauth/token', '/oauth/introspect', '/oauth/revoke', '/authentication/api/oauth/token', '/healthz', '/readyz', '/forward-auth']
    assert.ok(
      paths.every((p) => p.startsWith('/admin/v1/') || p.startsWith('/api/') || p.startsWith('/v1/') || p.startsWith('/.well-known/') || client.includes(p)),
      paths.join(' '),
    )
    assert.deepEqual(doc.json.paths['/admin/v1/tenants'].post.security, [{ adminToken: [] }])
    assert.deepEqual(doc.json.components.securitySchemes.adminToken, { type: 'http', scheme: 'bearer' })
  })
})

describe('fieldgate audit list', () => {
  it('lists what the CLI did, as JSON', async () => {
    const dataDir = tempDir('fg-audit-')
    const tenant = await runCli(['tenants', 'create', '--name', 'Audit Co', '--environment', 'sandbox', '--json'], { FIELDGATE_DATA_DIR: dataDir })
    const app = await runCli(['apps', 'create', '--name', 'Audited', '--kind', 'private', '--tenant', tenant.json.id, '--json'], { FIELDGATE_DATA_DIR: dataDir })
    await runCli(['apps', 'rotate-secret', app.json.client_id, '--grace', '0', '--json'], { FIELDGATE_DATA_DIR: dataDir })
    const list = await runCli(['audit', 'list', '--json'], { FIELDGATE_DATA_DIR: dataDir })
    assert.equal(list.code, 0, list.stderr)
    assert.deepEqual(
      list.json.map((e: { action: string; actor: string }) => [e.action, e.actor]),
      [
        ['secret.rotated', 'cli'],
        ['app.created', 'cli'],
      ],
    )
    const filtered = await runCli(['audit', 'list', '--app', 'nope', '--json'], { FIELDGATE_DATA_DIR: dataDir })
    assert.equal(filtered.code, 1)
  })
})

/**
 * Issue 14, the marketplace part: cards with logo (or initials), one line, publisher and categories;
 * search and a category filter by GET, paged; an app's page with what it can do, its publisher and
 * links, and Install / Cancel.
 */
describe('marketplace: listings, search and an app page', () => {
  let server: TestServer
  let tenant: Tenant
  let person: Person
  const word = `zq${randomBytes(3).toString('hex')}`
  before(async () => {
    server = await startServer({ overrides: open })
    ;({ tenant, person } = await tenantOwner(server, 'live'))
  })
  after(() => server.close())

  /** A listed live app, made by an operator (so in force at once). */
  const listed = (name: string, fields: Partial<Parameters<typeof createApp>[2]> = {}) =>
    createApp(server.runtime.ctx, cliActor, { name, kind: 'public', environment: 'live', installUrl: INSTALL, listed: true, contactEmail: 'dev@partner.example', ...fields })
  const cards = (text: string) => [...text.matchAll(/<section class="app-card" aria-label="([^"]+)">/g)].map((m) => m[1])
  const market = (query: Record<string, string>) => person.get(`/marketplace?${new URLSearchParams({ tenant: tenant.id, ...query })}`)

  it('shows each card with its logo or initials, one line, publisher and categories', async () => {
    const logo = await listed(`Soil ${word} probe`, {
      logoUrl: 'https://soil.example/logo.png',
      shortDescription: 'Moisture by the hour',
      categories: ['Agronomy', 'Weather'],
      publisher: 'Soil Sense',
    })
    await listed(`bare ${word} tool`, { description: 'd'.repeat(300) })
    const page = await market({ q: word })
    assert.equal(page.status, 200)
    const card = (name: string) => new RegExp(`<section class="app-card" aria-label="${name}">([\\s\\S]*?)</section>`).exec(page.text)?.[1] ?? assert.fail(`no card for ${name}`)
    const withLogo = card(logo.app.name)
    assert.match(withLogo, /<img class="app-logo small" src="https:\/\/soil\.example\/logo\.png" alt="" width="48" height="48">/)
    assert.match(withLogo, /<p class="publisher">by Soil Sense<\/p>/)
    assert.match(withLogo, /<p>Moisture by the hour<\/p>/)
    assert.match(withLogo, /<li class="tag">Agronomy<\/li><li class="tag">Weather<\/li>/)
    const bare = card(`bare ${word} tool`)
    assert.match(bare, /<span class="app-logo small initials" aria-hidden="true">BZ<\/span>/, 'initials of the first two words')
    assert.match(bare, /<p class="publisher">by dev@partner\.example<\/p>/, 'the contact email stands in for a publisher')
    assert.match(bare, /<p>d{139}…<\/p>/, 'the long description, cut to a line')
    assert.doesNotMatch(bare, /class="categories"/)
    // The CSP lets the logo load: https images only, nothing else from elsewhere.
    assert.match(page.headers.get('content-security-policy') ?? '', /img-src 'self' https:;/)
  })

  it('searches name, short description and publisher; filters by category; pages by GET; odd queries show everything', async () => {
    const tag = `yx${randomBytes(3).toString('hex')}`
    await listed(`Harvest ${tag}`, { categories: ['Scheduling'] })
    await listed('Moisture map', { shortDescription: `Maps for ${tag.toUpperCase()} fields`, categories: ['Mapping'] })
    await listed('Ledger', { publisher: `Books ${tag} Ltd`, categories: ['Accounting', 'Mapping'] })
    await listed(`Sandbox ${tag}`, { environment: 'sandbox' })
    await listed(`Hidden ${tag}`, { listed: false })
    const found = await market({ q: tag })
    assert.deepEqual(cards(found.text).sort(), [`Harvest ${tag}`, 'Ledger', 'Moisture map'].sort(), 'name, short description (any case) and publisher; listed live apps only')
    assert.match(found.text, /<p class="muted" role="status">3 apps match\.<\/p>/)
    assert.match(found.text, new RegExp(`<input type="search" id="q" name="q" value="${tag}"`), 'the box keeps the search')
    const mapping = await market({ q: tag, category: 'Mapping' })
    assert.deepEqual(cards(mapping.text).sort(), ['Ledger', 'Moisture map'])
    assert.match(mapping.text, /<option value="Mapping" selected>Mapping<\/option>/)
    const none = await market({ q: tag, category: 'Livestock' })
    assert.deepEqual(cards(none.text), [])
    assert.match(none.text, new RegExp(`No apps match “${tag}” in Livestock\\. <a href="/marketplace\\?tenant=${tenant.id}">Show all apps</a>`))
    const odds: Record<string, string>[] = [{ category: 'Cooking' }, { offset: '-1' }, { offset: 'x' }, { q: '%' }]
    for (const odd of odds) {
      const res = await market(odd)
      assert.equal(res.status, 200, JSON.stringify(odd))
    }
    assert.ok(cards((await market({ category: 'Cooking' })).text).length >= 3, 'an unknown category filters nothing')
    assert.deepEqual(cards((await market({ q: '%' })).text), [], '% is a character, not a wildcard')

    // Twenty a page, newest first.
    const many = `pg${randomBytes(3).toString('hex')}`
    for (let i = 1; i <= 23; i++) await listed(`${many} ${String(i).padStart(2, '0')}`)
    const first = await market({ q: many })
    assert.equal(cards(first.text).length, 20)
    assert.equal(cards(first.text)[0], `${many} 23`)
    assert.match(first.text, /23 apps match, showing 1–20 of 23\./)
    const next = /<a href="([^"]+)" rel="next">Next<\/a>/.exec(first.text)?.[1]?.replace(/&amp;/g, '&') ?? assert.fail('a next page')
    assert.equal(next, `/marketplace?tenant=${tenant.id}&q=${many}&offset=20`)
    const second = await person.get(next)
    assert.deepEqual(cards(second.text), [`${many} 03`, `${many} 02`, `${many} 01`])
    assert.match(second.text, /rel="prev">Previous<\/a>/)
    assert.doesNotMatch(second.text, /rel="next"/)
  })

  it("shows an app's page with what it can do in people's words, its publisher and links, and Install / Cancel", async () => {
    const made = await listed(`Fleet ${word}`, {
      scopes: 'api fields:read:all',
      shortDescription: 'Where your tractors are',
      description: 'Live positions of every machine.',
      categories: ['Telematics'],
      publisher: 'Fleet Works',
      supportUrl: 'https://fleet.example/support',
      privacyPolicyUrl: 'https://fleet.example/privacy',
    })
    const page = await person.get(`/marketplace/apps/${made.app.clientId}?tenant=${tenant.id}`)
    assert.equal(page.status, 200)
    assert.match(page.text, /<span class="app-logo large initials" aria-hidden="true">FZ<\/span>/)
    assert.match(page.text, /<p class="publisher">by <strong>Fleet Works<\/strong> · <a href="mailto:dev@partner\.example">dev@partner\.example<\/a><\/p>/)
    assert.match(page.text, /<p class="lead">Where your tractors are<\/p>/)
    assert.match(page.text, /<p>Live positions of every machine\.<\/p>/)
    assert.match(page.text, /<a href="https:\/\/fleet\.example\/support" rel="noopener noreferrer">Support<\/a> <span class="muted">\(fleet\.example\)<\/span>/)
    assert.match(page.text, /<a href="https:\/\/fleet\.example\/privacy" rel="noopener noreferrer">Privacy policy<\/a>/)
    assert.match(page.text, new RegExp(`<code>fields:read:all</code><br><span>${describeScope('fields:read:all').replace(/[.()]/g, '\\$&')}</span>`))
    assert.match(page.text, /<button type="submit" class="primary">Install<\/button> <a class="button secondary" href="\/marketplace\?tenant=[^"]+">Cancel<\/a>/)
    const cancel = /<a class="button secondary" href="([^"]+)">Cancel<\/a>/.exec(page.text)![1]!
    assert.equal(cancel, `/marketplace?tenant=${tenant.id}`, 'Cancel goes back to the list, changing nothing')
    assert.equal((await person.get(cancel)).status, 200)
    assert.deepEqual(await server.storage.listGrants({ tenantId: tenant.id, appId: made.app.id }), [])
    const bare = await listed(`Plain ${word}`)
    const plain = await person.get(`/marketplace/apps/${bare.app.clientId}?tenant=${tenant.id}`)
    assert.match(plain.text, /No support page given\./)
    assert.match(plain.text, /No privacy policy given\./)
    assert.match(plain.text, /by <strong><a href="mailto:dev@partner\.example">dev@partner\.example<\/a><\/strong>/, 'the contact email stands in, as a link')
  })
})

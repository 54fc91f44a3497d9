/**
 * The operator console (/operator) over real HTTP, as a browser without script uses it: only operators
 * see it, every listing searches and pages, and the review and suspension forms change what they say,
 * answer with a redirect, and explain a refused form beside its field. The chromium journey is in
 * accounts-browser.test.ts.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { after, before, describe, it } from 'node:test'
import { randomUUID } from 'node:crypto'
import { cliActor, createApp, createTenant, createUser, personActor, updateApp, type App, type Grant, type OutboxEvent, type User } from '@fieldgate/core'
import { startServer, type TestServer } from './helpers.js'
import { csrfOf, hiddenFields, Person } from './person.js'

const unique = () => randomBytes(4).toString('hex')

describe('the operator console', () => {
  let server: TestServer
  let operator: Person
  let partner: User
  let stranger: Person

  before(async () => {
    server = await startServer()
    const ctx = server.runtime.ctx
    const opEmail = `ops-${unique()}@platform.example`
    await createUser(ctx, cliActor, { email: opEmail, password: Person.password, operator: true })
    operator = new Person(server, opEmail)
    assert.equal((await operator.signIn()).status, 303)
    partner = await createUser(ctx, cliActor, { email: `dev-${unique()}@partner.example`, password: Person.password })
    const strangerEmail = `someone-${unique()}@farm.example`
    await createUser(ctx, cliActor, { email: strangerEmail, password: Person.password })
    stranger = new Person(server, strangerEmail)
    await stranger.signIn()
  })
  after(() => server?.close())

  const liveApp = async (name: string): Promise<App> =>
    (
      await createApp(server.runtime.ctx, personActor(partner, '127.0.0.1'), {
        name,
        kind: 'public',
        environment: 'live',
        installUrl: 'https://sync.example/install',
        redirectUris: ['https://sync.example/cb'],
        scopes: 'api',
        listed: true,
        contactEmail: 'dev@sync.example',
      })
    ).app

  it('does not exist for anyone but operators; a signed-out visitor is sent to sign in', async () => {
    for (const path of ['/operator', '/operator/review', '/operator/apps', '/operator/users', '/operator/grants', '/operator/deliveries', '/operator/mail']) {
      const refused = await stranger.get(path)
      assert.equal(refused.status, 404, path)
      assert.doesNotMatch(refused.text, /Operator console/)
      const out = await new Person(server, 'x@example.com').get(path)
      assert.equal(out.status, 303)
      assert.equal(out.headers.get('location'), `/login?return_to=${encodeURIComponent(path)}`)
    }
    assert.doesNotMatch((await stranger.get('/connected-apps')).text, /href="\/operator"/, 'no console link for others')
    assert.match((await operator.get('/connected-apps')).text, /href="\/operator">Operator console/)
    const form = await stranger.get('/connected-apps')
    const app = await liveApp(`Forged ${unique()}`)
    const forged = await stranger.post(`/operator/apps/${app.clientId}/approve`, { csrf: csrfOf(form) })
    assert.equal(forged.status, 404)
    assert.equal((await server.storage.getApp(app.id))?.review, 'pending', 'nothing approved')
  })

  it('the overview counts what waits, and every page renders with what it lists', async () => {
    const name = `Overview Sync ${unique()}`
    const app = await liveApp(name)
    const home = await operator.get('/operator')
    assert.equal(home.status, 200, home.text)
    assert.match(home.text, /<strong>\d+<\/strong> waiting for review/)
    for (const href of ['/operator/grants', '/operator/deliveries'])
      assert.match(home.text, new RegExp(`<nav aria-label="Operator console"[^]*href="${href}"[^]*</nav>`), `${href} in the navigation`)
    const pages: [string, RegExp][] = [
      ['/operator/review', new RegExp(name)],
      ['/operator/apps', new RegExp(app.clientId)],
      [`/operator/apps/${app.clientId}`, /waiting for review/],
      ['/operator/users', new RegExp(partner.email)],
      [`/operator/users/${partner.id}`, new RegExp(name)],
      ['/operator/tenants', /<h1>Tenants<\/h1>/],
      ['/operator/audit', /app\.created|<h1>Audit log<\/h1>/],
      ['/operator/security', /<h1>Security events<\/h1>/],
      ['/operator/mail', /local mailbox/],
      ['/operator/grants', /<h1>Grants<\/h1>/],
      ['/operator/deliveries', /<h1>Data API deliveries<\/h1>/],
    ]
    for (const [path, shows] of pages) {
      const page = await operator.get(path)
      assert.equal(page.status, 200, `${path}: ${page.text.slice(0, 300)}`)
      assert.match(page.text, shows, path)
    }
  })

  it('the review queue shows what is in force beside what is proposed; Approve and Reject change the app and redirect', async () => {
    const name = `Review Sync ${unique()}`
    const app = await liveApp(name)
    const queue = await operator.get(`/operator/review?q=${encodeURIComponent(name)}`)
    assert.match(queue.text, /New app/)
    assert.match(queue.text, /In force \(not live yet\)/)

    // Reject without a reason: refused beside the field, nothing changed.
    const rejectForm = (page: string) => {
      const form = page.slice(page.indexOf(`action="/operator/apps/${app.clientId}/reject"`))
      return hiddenFields(form.slice(0, form.indexOf('</form>')))
    }
    const noReason = await operator.post(`/operator/apps/${app.clientId}/reject`, { ...rejectForm(queue.text), reason: '  ' })
    assert.equal(noReason.status, 400)
    assert.match(noReason.text, new RegExp(`id="reject-reason-${app.clientId}-error">a rejection needs a reason`))
    assert.equal((await server.storage.getApp(app.id))?.review, 'pending')

    const rejected = await operator.post(`/operator/apps/${app.clientId}/reject`, { ...rejectForm(queue.text), reason: 'The name copies the platform' })
    assert.equal(rejected.status, 303)
    assert.equal(rejected.headers.get('location'), '/operator/review?notice=rejected')
    const after = (await server.storage.getApp(app.id))!
    assert.equal(after.review, 'rejected')
    assert.equal(after.reviewReason, 'The name copies the platform')
    const [entry] = await server.storage.listAudit({ appIds: [app.id], limit: 1 })
    assert.equal(entry?.action, 'app.rejected')
    assert.equal(entry?.actor, operator.email, 'the audit names the operator, not the console')

    // The partner changes it, which asks for review again; the operator approves it from its page.
    await updateApp(server.runtime.ctx, personActor(partner, '127.0.0.1'), { clientId: app.clientId, fields: { name: `${name} Tools` } })
    const page = await operator.get(`/operator/apps/${app.clientId}`)
    assert.match(page.text, /<span class="tag">changed<\/span>/)
    const approveForm = page.text.slice(page.text.indexOf(`action="/operator/apps/${app.clientId}/approve"`))
    const approved = await operator.post(`/operator/apps/${app.clientId}/approve`, { ...hiddenFields(approveForm.slice(0, approveForm.indexOf('</form>'))), reason: 'Thanks' })
    assert.equal(approved.status, 303)
    assert.equal(approved.headers.get('location'), `/operator/apps/${app.clientId}?notice=approved`)
    assert.match((await operator.get(approved.headers.get('location')!)).text, /Approved: the partner was told/)
    assert.equal((await server.storage.getApp(app.id))?.review, 'approved')
  })

  it('suspends and unsuspends an app and an account from their pages; a missing reason is explained beside its field', async () => {
    const app = await liveApp(`Suspend Sync ${unique()}`)
    const page = await operator.get(`/operator/apps/${app.clientId}`)
    const csrf = csrfOf(page)
    const empty = await operator.post(`/operator/apps/${app.clientId}/suspend`, { csrf, reason: '' })
    assert.equal(empty.status, 400)
    assert.match(empty.text, /id="reason-error"/)
    const suspended = await operator.post(`/operator/apps/${app.clientId}/suspend`, { csrf, reason: 'Phishing reports' })
    assert.equal(suspended.status, 303)
    assert.match((await operator.get(suspended.headers.get('location')!)).text, /Phishing reports/)
    assert.notEqual((await server.storage.getApp(app.id))?.suspendedAt, null)
    assert.equal((await operator.post(`/operator/apps/${app.clientId}/unsuspend`, { csrf })).status, 303)
    assert.equal((await server.storage.getApp(app.id))?.suspendedAt, null)

    const user = await createUser(server.runtime.ctx, cliActor, { email: `bad-${unique()}@partner.example`, password: Person.password })
    const noReason = await operator.post(`/operator/users/${user.id}/suspend`, { csrf, reason: '' })
    assert.equal(noReason.status, 400)
    assert.match(noReason.text, /id="reason-error"/)
    const done = await operator.post(`/operator/users/${user.id}/suspend`, { csrf, reason: 'Fraud' })
    assert.equal(done.status, 303)
    assert.notEqual((await server.storage.getUser(user.id))?.suspendedAt, null)
    const self = await server.storage.getUserByEmail(operator.email)
    const own = await operator.get(`/operator/users/${self!.id}`)
    assert.match(own.text, /An operator account cannot be suspended/)
    assert.equal((await operator.post(`/operator/users/${user.id}/unsuspend`, { csrf })).status, 303)
    assert.equal((await server.storage.getUser(user.id))?.suspendedAt, null)
  })

  it('searches and pages every listing; a bad query is a 400 page, never a 500', async () => {
    const tag = unique()
    for (let i = 0; i < 52; i++) await createTenant(server.runtime.ctx, cliActor, { name: `Paged ${tag} ${String(i).padStart(2, '0')}`, environment: 'live' })
    const first = await operator.get(`/operator/tenants?q=${tag}`)
    assert.equal((first.text.match(new RegExp(`Paged ${tag}`, 'g')) ?? []).length, 50)
    assert.match(first.text, /rel="next"/)
    const second = await operator.get(`/operator/tenants?q=${tag}&page=2`)
    assert.equal((second.text.match(new RegExp(`Paged ${tag}`, 'g')) ?? []).length, 2)
    assert.match(second.text, /rel="prev"/)
    assert.doesNotMatch(second.text, /rel="next"/)
    for (const bad of ['page=abc', 'page=0', 'page=-1', `q=${'x'.repeat(300)}`, 'kind=nonsense']) {
      const res = await operator.get(`/operator/security?${bad}`)
      assert.equal(res.status, 400, bad)
    }
    assert.equal((await operator.get('/operator/apps/nope')).status, 404)
    assert.equal((await operator.get('/operator/users/nope')).status, 404)
    assert.equal((await operator.get('/operator/tenants/00000000-0000-0000-0000-000000000000')).status, 404)
  })

  /** `n` tenants named `Farm <tag> NN`, each with a grant of `app`, oldest first. */
  const grantsOf = async (app: App, tag: string, n: number): Promise<Grant[]> => {
    const grants: Grant[] = []
    for (let i = 0; i < n; i++) {
      const t = await createTenant(server.runtime.ctx, cliActor, { name: `Farm ${tag} ${String(i).padStart(2, '0')}`, environment: 'live' })
      const g: Grant = { id: randomUUID(), appId: app.id, tenantId: t.id, scopes: ['api'], status: 'active', createdAt: 1_000 + i, updatedAt: 1_000 + i }
      grants.push(await server.storage.createGrant(g))
    }
    return grants
  }
  const rowsOf = (page: string, tag: string) => (page.match(new RegExp(`>Farm ${tag} \\d\\d<`, 'g')) ?? []).length

  it('lists every grant, paged, by app or tenant name, client_id or tenant id, and by status; the app page shows a first page and links to it', async () => {
    const tag = unique()
    const app = await liveApp(`Grants Sync ${tag}`)
    const other = await liveApp(`Other Sync ${unique()}`)
    const grants = await grantsOf(app, tag, 52)
    const theirs = await grantsOf(other, unique(), 1)

    const first = await operator.get(`/operator/grants?q=${tag}`)
    assert.equal(first.status, 200, first.text.slice(0, 300))
    assert.equal(rowsOf(first.text, tag), 50)
    assert.match(first.text, new RegExp(`href="/operator/grants\\?q=${tag}&amp;page=2" rel="next"`))
    const second = await operator.get(`/operator/grants?q=${tag}&page=2`)
    assert.equal(rowsOf(second.text, tag), 2)
    assert.match(second.text, /rel="prev"/)
    assert.doesNotMatch(second.text, /rel="next"/)

    // By client_id: that app's grants and no other's; by a tenant's id: its grant alone.
    const byClient = await operator.get(`/operator/grants?q=${app.clientId}&page=2`)
    assert.equal(rowsOf(byClient.text, tag), 2)
    assert.doesNotMatch((await operator.get(`/operator/grants?q=${app.clientId}`)).text, new RegExp(other.clientId))
    const byTenant = await operator.get(`/operator/grants?q=${grants[7]!.tenantId}`)
    assert.equal(rowsOf(byTenant.text, tag), 1)
    assert.match(byTenant.text, new RegExp(`Farm ${tag} 07`))

    // A revoked grant, by status, within the app.
    await server.storage.revokeGrant(grants[3]!.id, Date.now())
    const revoked = await operator.get(`/operator/grants?app=${app.clientId}&status=revoked`)
    assert.equal(rowsOf(revoked.text, tag), 1)
    assert.match(revoked.text, new RegExp(`Farm ${tag} 03<[^]*revoked`))
    assert.match(revoked.text, /Only the grants of/)
    assert.equal(rowsOf((await operator.get(`/operator/grants?app=${app.clientId}&status=active&page=2`)).text, tag), 1)
    assert.match((await operator.get(`/operator/grants?tenant=${theirs[0]!.tenantId}`)).text, new RegExp(other.name))

    // The app's page: the first ten, and the way to the rest.
    const page = await operator.get(`/operator/apps/${app.clientId}`)
    assert.equal(rowsOf(page.text, tag), 10)
    assert.match(page.text, new RegExp(`More than shown here.</strong> <a href="/operator/grants\\?app=${app.clientId}">All grants of this app</a>`))

    for (const bad of ['status=gone', 'page=0', `q=${'x'.repeat(300)}`]) assert.equal((await operator.get(`/operator/grants?${bad}`)).status, 400, bad)
    assert.equal((await operator.get('/operator/grants?app=nope')).status, 404)
    assert.equal((await operator.get('/operator/grants?tenant=00000000-0000-0000-0000-000000000000')).status, 404)
    assert.equal((await stranger.get(`/operator/grants?app=${app.clientId}`)).status, 404)
  })

  it('the tenant page shows its first members and grants, and links to the paged listings of all', async () => {
    const tag = unique()
    const tenant = await createTenant(server.runtime.ctx, cliActor, { name: `Members ${tag}`, environment: 'live' })
    for (let i = 0; i < 11; i++)
      await createUser(server.runtime.ctx, cliActor, {
        email: `m${String(i).padStart(2, '0')}-${tag}@farm.example`,
        password: Person.password,
        tenantId: tenant.id,
        role: 'member',
      })
    const page = await operator.get(`/operator/tenants/${tenant.id}`)
    assert.equal(page.status, 200, page.text.slice(0, 300))
    const members = (text: string) => (text.match(new RegExp(`>m\\d\\d-${tag}@farm\\.example<`, 'g')) ?? []).length
    assert.equal(members(page.text), 10)
    assert.match(page.text, new RegExp(`More than shown here.</strong> <a href="/operator/users\\?tenant=${tenant.id}">All members</a>`))
    const all = await operator.get(`/operator/users?tenant=${tenant.id}`)
    assert.equal(members(all.text), 11)
    assert.doesNotMatch(all.text, new RegExp(partner.email), 'only that tenant’s members')
    assert.match(all.text, new RegExp(`<input type="hidden" name="tenant" value="${tenant.id}">`), 'a search keeps the tenant')
    assert.equal(members((await operator.get(`/operator/users?tenant=${tenant.id}&q=m03-`)).text), 1)
  })

  const event = (app: App, over: Partial<OutboxEvent> = {}): OutboxEvent => ({
    id: `evt_${randomBytes(16).toString('hex')}`,
    appId: app.id,
    tenantId: null,
    type: 'record.created',
    body: '{"id":"x"}',
    state: 'delivered',
    attempts: 1,
    // Far ahead: the dispatcher leaves a waiting one alone until Retry now.
    nextAttemptAt: Date.now() + 3_600_000,
    lockedUntil: null,
    createdAt: Date.now(),
    deliveredAt: Date.now(),
    lastError: null,
    ...over,
  })

  it("lists any app's Data API deliveries, paged and by app and state, each linking to its attempts, with Redeliver and Retry now audited", async () => {
    const app = await liveApp(`Deliveries Sync ${unique()}`)
    const other = await liveApp(`Quiet Sync ${unique()}`)
    const at = Date.now()
    const delivered = Array.from({ length: 50 }, (_, i) => event(app, { createdAt: at - 1000 + i }))
    const failed = event(app, { state: 'failed', attempts: 8, lastError: 'the receiver answered 500', deliveredAt: null, createdAt: at + 1 })
    const waiting = event(app, { state: 'pending', attempts: 2, deliveredAt: null, createdAt: at + 2 })
    const elsewhere = event(other, { createdAt: at + 3 })
    await server.storage.queueEvents([...delivered, failed, waiting, elsewhere])

    const first = await operator.get(`/operator/deliveries?app=${app.clientId}`)
    assert.equal(first.status, 200, first.text.slice(0, 300))
    const listed = (text: string) => [...text.matchAll(/<a href="\/operator\/deliveries\/(evt_[0-9a-f]+)">/g)].map((m) => m[1])
    assert.deepEqual(
      listed(first.text),
      [
        waiting.id,
        failed.id,
        ...delivered
          .slice(-48)
          .map((e) => e.id)
          .reverse(),
      ],
      'newest first, 50 a page',
    )
    assert.match(first.text, new RegExp(`href="/operator/deliveries\\?app=${app.clientId}&amp;page=2" rel="next"`))
    assert.match(first.text, new RegExp(`href="/operator/deliveries/${failed.id}#attempts">8 attempts`))
    assert.deepEqual(listed((await operator.get(`/operator/deliveries?app=${app.clientId}&page=2`)).text), [delivered[1]!.id, delivered[0]!.id])
    assert.deepEqual(listed((await operator.get(`/operator/deliveries?app=${app.clientId}&state=failed`)).text), [failed.id])
    assert.deepEqual(listed((await operator.get(`/operator/deliveries?app=${other.clientId}`)).text), [elsewhere.id])
    const everyone = await operator.get('/operator/deliveries?state=delivered')
    assert.ok(listed(everyone.text).includes(elsewhere.id), 'every app, without a filter')
    assert.match(everyone.text, new RegExp(`>${other.name}</a>`), 'each with its app')

    // The app's page shows the newest ten and links to all.
    const appPage = await operator.get(`/operator/apps/${app.clientId}`)
    assert.equal((appPage.text.match(/<li class="delivery"/g) ?? []).length, 10)
    assert.match(appPage.text, new RegExp(`<a href="/operator/deliveries\\?app=${app.clientId}">All deliveries of this app</a>`))

    // A failed one: its attempts' page, and Redeliver as the operator, audited.
    const one = await operator.get(`/operator/deliveries/${failed.id}`)
    assert.equal(one.status, 200)
    assert.match(one.text, /id="attempts"/)
    assert.match(one.text, /the receiver answered 500|Not attempted yet/)
    const redeliver = `/operator/deliveries/${failed.id}/redeliver`
    assert.match(one.text, new RegExp(`action="${redeliver}"`))
    assert.doesNotMatch(one.text, /\/retry"/, 'a failed event is redelivered, not retried')
    assert.equal((await operator.post(redeliver, { csrf: 'forged' })).status, 403, 'CSRF')
    assert.equal((await stranger.post(redeliver, { csrf: csrfOf(await stranger.get('/connected-apps')) })).status, 404, 'not for others')
    assert.equal((await server.storage.getEvent(failed.id))?.state, 'failed', 'nothing changed yet')
    const done = await operator.post(redeliver, { csrf: csrfOf(one) })
    assert.equal(done.status, 303)
    assert.equal(done.headers.get('location'), `/operator/deliveries/${failed.id}?notice=redelivered`)
    assert.equal((await server.storage.getEvent(failed.id))?.state, 'pending')
    assert.match((await operator.get(done.headers.get('location')!)).text, /role="status">The event will be delivered again/)
    const audited = async (action: string) => (await server.storage.listAudit({ appIds: [app.id], limit: 20 })).filter((e) => e.action === action)
    const [entry] = await audited('event.redelivered')
    assert.equal(entry?.actor, operator.email)
    assert.equal(entry?.objectId, failed.id)
    assert.equal(entry?.clientId, app.clientId)

    // A waiting one: Retry now, audited; a second click while it is already due still answers with a redirect.
    const wait = await operator.get(`/operator/deliveries/${waiting.id}`)
    const retry = `/operator/deliveries/${waiting.id}/retry`
    assert.match(wait.text, new RegExp(`action="${retry}"`))
    const retried = await operator.post(retry, { csrf: csrfOf(wait) })
    assert.equal(retried.status, 303)
    assert.match(retried.headers.get('location')!, new RegExp(`^/operator/deliveries/${waiting.id}\\?notice=(retrying|busy)$`))
    if (retried.headers.get('location')!.endsWith('retrying')) assert.equal((await audited('event.retried'))[0]?.actor, operator.email)

    assert.equal((await operator.get('/operator/deliveries/evt_nope')).status, 404)
    assert.equal((await operator.post('/operator/deliveries/evt_nope/redeliver', { csrf: csrfOf(one) })).status, 404)
    assert.equal((await operator.get('/operator/deliveries?app=nope')).status, 404)
    for (const bad of ['state=lost', 'page=0']) assert.equal((await operator.get(`/operator/deliveries?${bad}`)).status, 400, bad)
  })

  it('refuses a console form without its CSRF token', async () => {
    const app = await liveApp(`Csrf Sync ${unique()}`)
    const res = await operator.post(`/operator/apps/${app.clientId}/approve`, { csrf: 'forged' })
    assert.equal(res.status, 403)
    assert.equal((await server.storage.getApp(app.id))?.review, 'pending')
  })
})

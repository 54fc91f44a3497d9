/**
 * The operator console (/operator) over real HTTP, as a browser without script uses it: only operators
 * see it, every listing searches and pages, and the review and suspension forms change what they say,
 * answer with a redirect, and explain a refused form beside its field. The chromium journey is in
 * accounts-browser.test.ts.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { after, before, describe, it } from 'node:test'
import { cliActor, createApp, createTenant, createUser, personActor, updateApp, type App, type User } from '@fieldgate/core'
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
    for (const path of ['/operator', '/operator/review', '/operator/apps', '/operator/users', '/operator/mail']) {
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

  it('refuses a console form without its CSRF token', async () => {
    const app = await liveApp(`Csrf Sync ${unique()}`)
    const res = await operator.post(`/operator/apps/${app.clientId}/approve`, { csrf: 'forged' })
    assert.equal(res.status, 403)
    assert.equal((await server.storage.getApp(app.id))?.review, 'pending')
  })
})

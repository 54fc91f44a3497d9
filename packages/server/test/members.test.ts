/**
 * Tenant membership: an existing account joins a second tenant, roles change, members leave, and a
 * tenant never loses its last owner; tenant owners and operators may do it, nobody else. Through the
 * core operations as a person, the CLI and the admin API, on a real store.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { after, before, describe, it } from 'node:test'
import { cliActor, createTenant, createUser, invite, personActor, removeMembership, setMembership, type Tenant, type User } from '@fieldgate/core'
import { postJson, runCli, startServer, waitUntil, type TestServer } from './helpers.js'
import { csrfOf, hiddenFields, Person } from './person.js'

const adminToken = randomBytes(32).toString('base64url')
const admin = { authorization: `Bearer ${adminToken}` }
const unique = () => randomBytes(4).toString('hex')

describe('tenant membership', () => {
  let server: TestServer
  let farm: Tenant
  let owner: User
  before(async () => {
    server = await startServer({ overrides: { adminToken } })
    farm = await createTenant(server.runtime.ctx, cliActor, { name: 'Hill Farm', environment: 'live' })
    owner = await createUser(server.runtime.ctx, cliActor, { email: `owner-${unique()}@farm.example`, password: 'correct horse battery', tenantId: farm.id, role: 'owner' })
  })
  after(() => server?.close())

  const account = (role?: 'owner' | 'admin' | 'member', tenantId?: string) =>
    createUser(server.runtime.ctx, cliActor, { email: `p-${unique()}@farm.example`, password: 'correct horse battery', ...(tenantId && role ? { tenantId, role } : {}) })
  const roleIn = async (user: User, tenant: Tenant) => (await server.storage.listMemberships(user.id)).find((m) => m.tenantId === tenant.id)?.role

  it('an owner adds an existing account, changes its role and removes it; an admin may not', async () => {
    const ctx = server.runtime.ctx
    const other = await createTenant(ctx, cliActor, { name: 'Other Farm', environment: 'live' })
    const person = await account('member', other.id)
    const asOwner = personActor(owner, '127.0.0.1')
    await setMembership(ctx, asOwner, { tenantId: farm.id, email: person.email, role: 'admin' })
    assert.equal(await roleIn(person, farm), 'admin', 'a member of a second tenant')
    assert.equal(await roleIn(person, other), 'member', 'and still of the first')
    await assert.rejects(setMembership(ctx, personActor(person, '127.0.0.1'), { tenantId: farm.id, email: owner.email, role: 'member' }), { code: 'forbidden' })
    await setMembership(ctx, asOwner, { tenantId: farm.id, email: person.email.toUpperCase(), role: 'member' })
    assert.equal(await roleIn(person, farm), 'member')
    await removeMembership(ctx, asOwner, { tenantId: farm.id, email: person.email })
    assert.equal(await roleIn(person, farm), undefined)
    const actions = (await server.storage.listAudit({ tenantIds: [farm.id], limit: 10 })).map((e) => e.action)
    assert.deepEqual(actions.slice(0, 3), ['membership.removed', 'membership.changed', 'membership.added'])
    await assert.rejects(setMembership(ctx, asOwner, { tenantId: farm.id, email: 'nobody@farm.example', role: 'member' }), { code: 'not_found' })
    await assert.rejects(setMembership(ctx, asOwner, { tenantId: farm.id, email: person.email, role: 'king' }), { code: 'invalid' })
  })

  it('never leaves a tenant without an owner', async () => {
    const ctx = server.runtime.ctx
    const tenant = await createTenant(ctx, cliActor, { name: 'Solo Farm', environment: 'live' })
    const only = await account('owner', tenant.id)
    await assert.rejects(setMembership(ctx, cliActor, { tenantId: tenant.id, email: only.email, role: 'admin' }), { code: 'conflict', message: /would have no owner/ })
    await assert.rejects(removeMembership(ctx, cliActor, { tenantId: tenant.id, email: only.email }), { code: 'conflict' })
    const second = await account()
    await setMembership(ctx, cliActor, { tenantId: tenant.id, email: second.email, role: 'owner' })
    await setMembership(ctx, cliActor, { tenantId: tenant.id, email: only.email, role: 'member' })
    assert.equal(await roleIn(only, tenant), 'member', 'with another owner, the first may step down')
  })

  it('fieldgate users add-membership / remove-membership and the admin API', async () => {
    const env = { FIELDGATE_DATA_DIR: server.config.dataDir }
    const person = await account()
    const added = await runCli(['users', 'add-membership', '--email', person.email, '--tenant', farm.id, '--role', 'admin', '--json'], env)
    assert.equal(added.code, 0, added.stderr)
    assert.deepEqual(added.json, { user_id: person.id, tenant_id: farm.id, role: 'admin' })
    const last = await runCli(['users', 'remove-membership', '--email', owner.email, '--tenant', farm.id], env)
    assert.equal(last.code, 1)
    assert.match(last.stderr, /would have no owner/)
    assert.equal((await runCli(['users', 'remove-membership', '--email', person.email, '--tenant', farm.id], env)).code, 0)

    const api = await postJson(server.url('/admin/v1/memberships'), { email: person.email, tenant_id: farm.id, role: 'member' }, admin)
    assert.equal(api.status, 200, api.text)
    assert.equal(await roleIn(person, farm), 'member')
    const refused = await postJson(server.url('/admin/v1/memberships/remove'), { email: owner.email, tenant_id: farm.id }, admin)
    assert.equal(refused.status, 409, refused.text)
    const unknown = await postJson(server.url('/admin/v1/memberships'), { email: 'nobody@farm.example', tenant_id: farm.id, role: 'member' }, admin)
    assert.equal(unknown.status, 404)
    assert.equal((await postJson(server.url('/admin/v1/memberships/remove'), { email: person.email, tenant_id: farm.id }, admin)).status, 200)
  })
})

describe('invitations', () => {
  let server: TestServer
  let farm: Tenant
  let owner: User
  before(async () => {
    server = await startServer({ overrides: { adminToken, signup: 'invite' } })
    farm = await createTenant(server.runtime.ctx, cliActor, { name: 'Hill Farm', environment: 'live' })
    owner = await createUser(server.runtime.ctx, cliActor, { email: `owner-${unique()}@farm.example`, password: Person.password, tenantId: farm.id, role: 'owner' })
  })
  after(() => server?.close())

  /** The link of the newest invitation to `email`, from the local mailbox (no SMTP here). */
  const invitationLink = async (email: string): Promise<string> => {
    let text: string | null | undefined
    await waitUntil(async () => {
      const [mail] = await server.storage.listMail({ query: email })
      text = mail?.state === 'local' ? mail.text : undefined
      return Boolean(text)
    }, 5_000)
    const url = /https?:\/\/\S+\/invitations\/accept\?token=\S+/.exec(text ?? '')?.[0] ?? assert.fail(`no link in ${text}`)
    const at = new URL(url)
    return at.pathname + at.search
  }

  it('an owner invites a new address: the invitee sets a password, is signed in, confirmed and a member; the link works once', async () => {
    const email = `new-${unique()}@farm.example`
    await invite(server.runtime.ctx, personActor(owner, '127.0.0.1'), { tenantId: farm.id, email, role: 'admin' })
    const link = await invitationLink(email)
    const p = new Person(server, email)
    const page = await p.get(link)
    assert.equal(page.status, 200)
    assert.match(page.text, new RegExp(`${owner.email} invited <strong>${email}</strong> to join <strong>Hill Farm</strong> as an admin`))
    const short = await p.post('/invitations/accept', { ...hiddenFields(page.text), password: 'short' })
    assert.equal(short.status, 400)
    assert.match(short.text, /id="password-error">password must be at least 10 characters/)
    const accepted = await p.post('/invitations/accept', { ...hiddenFields(page.text), password: Person.password })
    assert.equal(accepted.status, 303, accepted.text)
    assert.equal((await p.get('/connected-apps')).status, 200, 'signed in')
    const user = (await server.storage.getUserByEmail(email))!
    assert.notEqual(user.emailVerifiedAt, null, 'the link reached the address')
    assert.equal((await server.storage.listMemberships(user.id))[0]?.role, 'admin')
    assert.equal((await p.get(link)).status, 400, 'a link works once')
  })

  it('an address with an account accepts signed in as itself; anyone else is refused', async () => {
    const member = await createUser(server.runtime.ctx, cliActor, { email: `m-${unique()}@farm.example`, password: Person.password })
    const cli = await runCli(['users', 'invite', '--email', member.email, '--tenant', farm.id, '--role', 'member', '--json'], { FIELDGATE_DATA_DIR: server.config.dataDir })
    assert.equal(cli.code, 0, cli.stderr)
    const link = await invitationLink(member.email)
    const visitor = new Person(server, member.email)
    assert.match((await visitor.get(link)).text, /Sign in as .* to accept/)
    const stranger = new Person(server, owner.email)
    await stranger.signIn()
    const token = new URL(link, server.origin).searchParams.get('token')!
    const wrong = await stranger.post('/invitations/accept', { token, csrf: csrfOf(await stranger.get('/connected-apps')) })
    assert.equal(wrong.status, 403)
    assert.match(wrong.text, /This invitation is for/)
    await visitor.signIn()
    const accepted = await visitor.post('/invitations/accept', hiddenFields((await visitor.get(link)).text))
    assert.equal(accepted.status, 303)
    assert.equal((await server.storage.listMemberships(member.id)).find((m) => m.tenantId === farm.id)?.role, 'member')
  })

  it('an operator invitation makes an operator; only operators send one; the admin API sends them too', async () => {
    await assert.rejects(invite(server.runtime.ctx, personActor(owner, '127.0.0.1'), { email: 'x@platform.example' }), { code: 'forbidden' })
    const email = `ops-${unique()}@platform.example`
    const sent = await postJson(server.url('/admin/v1/invitations'), { email }, admin)
    assert.equal(sent.status, 201, sent.text)
    const p = new Person(server, email)
    const page = await p.get(await invitationLink(email))
    assert.match(page.text, /as an <strong>operator<\/strong>/)
    const accepted = await p.post('/invitations/accept', { ...hiddenFields(page.text), password: Person.password })
    assert.equal(accepted.headers.get('location'), '/operator')
    assert.equal((await server.storage.getUserByEmail(email))?.operator, true)
    assert.equal((await p.get('/operator')).status, 200)
  })

  it('under the invite policy nobody signs up: the page says how to join and the form is refused', async () => {
    const p = new Person(server, `walk-in-${unique()}@farm.example`)
    const page = await p.get('/signup')
    assert.match(page.text, /Accounts here are by invitation/)
    assert.doesNotMatch(page.text, /name="password"/)
    const refused = await p.post('/signup', { csrf: csrfOf(await p.get('/login')), email: p.email, password: Person.password })
    assert.equal(refused.status, 403)
    assert.equal(await server.storage.getUserByEmail(p.email), undefined)
  })
})

describe('the members page, for a tenant owner', () => {
  let server: TestServer
  before(async () => {
    server = await startServer()
  })
  after(() => server?.close())

  it('an owner invites, changes a role and removes a member from the page; a farm keeps its owner; others may not', async () => {
    const ctx = server.runtime.ctx
    const farm = await createTenant(ctx, cliActor, { name: 'Brook Farm', environment: 'live' })
    const owner = await createUser(ctx, cliActor, { email: `owner-${unique()}@farm.example`, password: Person.password, tenantId: farm.id, role: 'owner' })
    const hand = await createUser(ctx, cliActor, { email: `hand-${unique()}@farm.example`, password: Person.password, tenantId: farm.id, role: 'member' })
    const p = new Person(server, owner.email)
    await p.signIn()
    assert.match((await p.get('/connected-apps')).text, new RegExp(`href="/tenants/${farm.id}/members">Members of Brook Farm`))
    const path = `/tenants/${farm.id}/members`
    const page = await p.get(path)
    assert.equal(page.status, 200)
    assert.match(page.text, new RegExp(hand.email))
    const csrf = csrfOf(page)

    const badInvite = await p.post(`${path}/invite`, { csrf, email: 'not an address', role: 'member' })
    assert.equal(badInvite.status, 400)
    assert.match(badInvite.text, /id="email-error">email is not an email address/)
    const invited = await p.post(`${path}/invite`, { csrf, email: `new-${unique()}@farm.example`, role: 'admin' })
    assert.equal(invited.status, 303)
    assert.equal(invited.headers.get('location'), `${path}?notice=invited`)
    assert.match((await p.get(invited.headers.get('location')!)).text, /Invitation sent/)

    assert.equal((await p.post(`${path}/role`, { csrf, email: hand.email, role: 'admin' })).status, 303)
    assert.equal((await server.storage.listMemberships(hand.id))[0]?.role, 'admin')
    const alone = await p.post(`${path}/role`, { csrf, email: owner.email, role: 'member' })
    assert.equal(alone.status, 409)
    assert.match(alone.text, /would have no owner/)
    assert.equal((await p.post(`${path}/remove`, { csrf, email: hand.email })).status, 303)
    assert.equal((await server.storage.listMemberships(hand.id)).length, 0)

    const outsider = await createUser(ctx, cliActor, { email: `x-${unique()}@farm.example`, password: Person.password })
    const o = new Person(server, outsider.email)
    await o.signIn()
    assert.equal((await o.get(path)).status, 403)
    assert.equal((await o.post(`${path}/remove`, { csrf: csrfOf(await o.get('/connected-apps')), email: owner.email })).status, 403)
  })
})

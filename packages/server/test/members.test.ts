/**
 * Tenant membership: an existing account joins a second tenant, roles change, members leave, and a
 * tenant never loses its last owner; tenant owners and operators may do it, nobody else. Through the
 * core operations as a person, the CLI and the admin API, on a real store. Invitations: mailed links
 * (read from the outbox) a new person accepts with a password and an existing one signed in, once,
 * for a week; the members page of a tenant's owners, over real HTTP.
 */
import assert from 'node:assert/strict'
import { randomBytes, randomUUID } from 'node:crypto'
import { after, before, describe, it } from 'node:test'
import {
  acceptInvitation,
  cliActor,
  createTenant,
  createUser,
  inviteMember,
  inviteOperator,
  newEmailLink,
  personActor,
  removeMembership,
  setMembership,
  type Tenant,
  type User,
} from '@fieldgate/core'
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

// ---- invitations and the members page ----

const dayMs = 24 * 3600 * 1000

describe('invitations and the members page', () => {
  let server: TestServer
  let farm: Tenant
  let owner: User
  let ownerBrowser: Person
  before(async () => {
    server = await startServer({ overrides: { adminToken } })
    farm = await createTenant(server.runtime.ctx, cliActor, { name: 'Valley Farm', environment: 'live' })
    owner = await createUser(server.runtime.ctx, cliActor, { email: `owner-${unique()}@farm.example`, password: Person.password, tenantId: farm.id, role: 'owner' })
    ownerBrowser = new Person(server, owner.email)
    assert.equal((await ownerBrowser.signIn()).status, 303)
  })
  after(() => server?.close())

  const membersPath = (tenant: Tenant) => `/tenants/${tenant.id}/members`
  const account = (role?: 'owner' | 'admin' | 'member', tenantId?: string) =>
    createUser(server.runtime.ctx, cliActor, { email: `p-${unique()}@farm.example`, password: Person.password, ...(tenantId && role ? { tenantId, role } : {}) })
  const roleIn = async (user: Pick<User, 'id'>, tenant: Tenant) => (await server.storage.listMemberships(user.id)).find((m) => m.tenantId === tenant.id)?.role
  const signedIn = async (email: string) => {
    const p = new Person(server, email)
    assert.equal((await p.signIn()).status, 303)
    return p
  }

  /** The path of the newest invitation mailed to `email`, from the outbox (no SMTP here: kept locally). */
  const invitationLink = async (email: string): Promise<string> => {
    const mail = (await server.storage.listMail({ query: email })).find((m) => m.to === email && m.kind === 'invite') ?? assert.fail(`no invitation to ${email}`)
    assert.ok(mail.state === 'local' || mail.state === 'pending', mail.state)
    const url = new URL(/https?:\/\/\S+\/invitations\/accept\?token=\S+/.exec(mail.text ?? '')?.[0] ?? assert.fail(`no link in ${mail.text}`))
    assert.equal(url.origin, server.origin, 'the link is on the issuer')
    return url.pathname + url.search
  }
  const tokenOf = (path: string) => new URL(path, server.origin).searchParams.get('token') ?? ''
  const invite = async (email: string, role: string, by = ownerBrowser, tenant = farm) => {
    const page = await by.get(membersPath(tenant))
    assert.equal(page.status, 200, page.text)
    return by.post(`${membersPath(tenant)}/invite`, { csrf: csrfOf(page), email, role })
  }

  it('an owner invites; a new person sets a password and is a confirmed member, signed in; the link works once', async () => {
    const email = `new-${unique()}@farm.example`
    const sent = await invite(email.toUpperCase(), 'admin')
    assert.equal(sent.status, 303, sent.text)
    assert.equal(sent.headers.get('location'), `${membersPath(farm)}?notice=invited`)
    const page = await ownerBrowser.get(sent.headers.get('location')!)
    assert.match(page.text, /The invitation is on its way/)
    assert.match(page.text, new RegExp(`Invitations waiting[\\s\\S]*${email}`), 'listed as waiting, by its lower-case address')
    const audit = await server.storage.listAudit({ tenantIds: [farm.id], limit: 5 })
    assert.equal(audit[0]?.action, 'invitation.sent')
    assert.equal(audit[0]?.actor, owner.email)

    const link = await invitationLink(email)
    const invitee = new Person(server, email)
    const offer = await invitee.get(link)
    assert.equal(offer.status, 200, offer.text)
    assert.match(offer.text, /Valley Farm<\/strong> as an admin/)
    assert.match(offer.text, new RegExp(`${owner.email} invited`))
    assert.match(offer.text, /name="password"/)
    assert.equal(await server.storage.getUserByEmail(email), undefined, 'opening the link changes nothing')

    const short = await invitee.post('/invitations/accept', { csrf: csrfOf(offer), token: tokenOf(link), password: 'short' })
    assert.equal(short.status, 400)
    assert.match(short.text, /id="password-error">password must be at least 10 characters/)
    const accepted = await invitee.post('/invitations/accept', { csrf: csrfOf(short), token: tokenOf(link), password: Person.password })
    assert.equal(accepted.status, 303, accepted.text)
    assert.equal(accepted.headers.get('location'), '/connected-apps')
    const home = await invitee.get('/connected-apps')
    assert.equal(home.status, 200, 'signed in')
    assert.match(home.text, new RegExp(`<span class="who">${email}</span>`))
    const user = await server.storage.getUserByEmail(email)
    assert.ok(user?.emailVerifiedAt, 'the click confirmed the address')
    assert.equal(await roleIn(user, farm), 'admin')
    assert.equal((await server.storage.listAudit({ tenantIds: [farm.id], limit: 1 }))[0]?.action, 'invitation.accepted')

    const again = await new Person(server, email).get(link)
    assert.equal(again.status, 400)
    assert.match(again.text, /used already or has expired/)
    const replay = await invitee.post('/invitations/accept', { csrf: csrfOf(home), token: tokenOf(link), password: Person.password })
    assert.equal(replay.status, 400, 'posting it again does nothing')
    assert.doesNotMatch((await ownerBrowser.get(membersPath(farm))).text, /Invitations waiting/)
  })

  it('an existing person accepts signed in; a visitor is sent to sign in; someone else signed in is refused', async () => {
    const person = await account()
    assert.equal((await invite(person.email, 'member')).status, 303)
    const link = await invitationLink(person.email)

    const visitor = new Person(server, person.email)
    const offer = await visitor.get(link)
    assert.equal(offer.status, 200)
    assert.match(offer.text, /Sign in as .* to accept/)
    assert.match(offer.text, /href="\/login\?return_to=%2Finvitations%2Faccept%3Ftoken%3D/)
    const asVisitor = await visitor.post('/invitations/accept', { csrf: csrfOf(await visitor.get('/login')), token: tokenOf(link) })
    assert.equal(asVisitor.status, 403)
    assert.match(asVisitor.text, /has an account: sign in as/)

    const other = await signedIn((await account()).email)
    const seen = await other.get(link)
    assert.match(seen.text, /You are signed in as p-\w+@farm\.example, but this invitation is for/)
    assert.doesNotMatch(seen.text, /Accept the invitation/)
    const wrong = await other.post('/invitations/accept', { csrf: csrfOf(seen), token: tokenOf(link) })
    assert.equal(wrong.status, 403)
    assert.match(wrong.text, /This invitation is for .*, but you are signed in as/)
    assert.equal(await roleIn(person, farm), undefined)

    const right = await signedIn(person.email)
    const page = await right.get(link)
    assert.match(page.text, /Accept the invitation/)
    const done = await right.post('/invitations/accept', { csrf: csrfOf(page), token: tokenOf(link) })
    assert.equal(done.status, 303, done.text)
    assert.equal(await roleIn(person, farm), 'member', 'the refusals did not spend the link')
  })

  it('an expired invitation opens nothing', async () => {
    const email = `late-${unique()}@farm.example`
    const old = newEmailLink(Date.now() - 8 * dayMs, 'invite', { email, tenantId: farm.id, role: 'member', invitedBy: owner.email })
    assert.equal(old.record.expiresAt, old.record.createdAt + 7 * dayMs, 'a week')
    await server.storage.saveEmailToken(old.record)
    const p = new Person(server, email)
    const page = await p.get(`/invitations/accept?token=${old.token}`)
    assert.equal(page.status, 400)
    assert.match(page.text, /used already or has expired/)
    const post = await p.post('/invitations/accept', { csrf: csrfOf(await p.get('/login')), token: old.token, password: Person.password })
    assert.equal(post.status, 400)
    assert.equal(await server.storage.getUserByEmail(email), undefined)
  })

  it('an admin or a member may not see the members page, invite or change roles', async () => {
    for (const role of ['admin', 'member'] as const) {
      const person = await account(role, farm.id)
      const p = await signedIn(person.email)
      const page = await p.get(membersPath(farm))
      assert.equal(page.status, 403, role)
      assert.match(page.text, /needs one of its owners/)
      const csrf = csrfOf(page)
      const mailBefore = (await server.storage.listMail({ limit: 500 })).length
      const tried = await p.post(`${membersPath(farm)}/invite`, { csrf, email: `x-${unique()}@farm.example`, role: 'owner' })
      assert.equal(tried.status, 403)
      assert.equal((await p.post(`${membersPath(farm)}/role`, { csrf, user_id: person.id, role: 'owner' })).status, 403)
      assert.equal((await p.post(`${membersPath(farm)}/remove`, { csrf, user_id: owner.id })).status, 403)
      assert.equal((await server.storage.listMail({ limit: 500 })).length, mailBefore, 'nothing mailed')
      assert.equal(await roleIn(person, farm), role)
      assert.doesNotMatch((await p.get('/connected-apps')).text, /\/members"/, 'no Members link for them')
    }
    assert.match((await ownerBrowser.get('/connected-apps')).text, new RegExp(`<a href="${membersPath(farm)}">Members of Valley Farm</a>`), 'the owner has one')
  })

  it('the page changes roles and removes members, never the last owner, with the reason beside the row', async () => {
    const ctx = server.runtime.ctx
    const solo = await createTenant(ctx, cliActor, { name: 'Solo Farm', environment: 'live' })
    const only = await account('owner', solo.id)
    const helper = await account('member', solo.id)
    const p = await signedIn(only.email)
    const page = await p.get(membersPath(solo))
    assert.equal(page.status, 200)
    const csrf = csrfOf(page)
    const demote = await p.post(`${membersPath(solo)}/role`, { csrf, user_id: only.id, role: 'member' })
    assert.equal(demote.status, 409)
    assert.match(demote.text, new RegExp(`id="role-${only.id}-error">Solo Farm would have no owner`))
    const leave = await p.post(`${membersPath(solo)}/remove`, { csrf, user_id: only.id })
    assert.equal(leave.status, 409)
    assert.equal(await roleIn(only, solo), 'owner')
    const bad = await p.post(`${membersPath(solo)}/role`, { csrf, user_id: helper.id, role: 'king' })
    assert.equal(bad.status, 400)
    assert.match(bad.text, new RegExp(`id="role-${helper.id}-error">role must be one of`))
    const badInvite = await p.post(`${membersPath(solo)}/invite`, { csrf, email: 'not an address', role: 'member' })
    assert.equal(badInvite.status, 400)
    assert.match(badInvite.text, /id="email-error">email is not an email address/)
    assert.match(badInvite.text, /value="not an address"/, 'what was typed stays')
    const twice = await p.post(`${membersPath(solo)}/invite`, { csrf, email: helper.email, role: 'member' })
    assert.equal(twice.status, 409)
    assert.match(twice.text, /is a member of Solo Farm already/)

    const promote = await p.post(`${membersPath(solo)}/role`, { csrf, user_id: helper.id, role: 'owner' })
    assert.equal(promote.status, 303)
    assert.equal(await roleIn(helper, solo), 'owner')
    assert.equal((await p.post(`${membersPath(solo)}/role`, { csrf, user_id: only.id, role: 'admin' })).status, 303, 'with another owner the first may step down')
    const h = await signedIn(helper.email)
    const removed = await h.post(`${membersPath(solo)}/remove`, { csrf: csrfOf(await h.get(membersPath(solo))), user_id: only.id })
    assert.equal(removed.status, 303)
    assert.equal(removed.headers.get('location'), `${membersPath(solo)}?notice=removed`)
    assert.equal(await roleIn(only, solo), undefined)
    const actions = (await server.storage.listAudit({ tenantIds: [solo.id], limit: 10 })).map((e) => e.action)
    assert.deepEqual(actions.slice(0, 3), ['membership.removed', 'membership.changed', 'membership.changed'])
    assert.equal((await p.post(`${membersPath(solo)}/role`, { csrf, user_id: randomUUID(), role: 'owner' })).status, 403, 'no longer an owner there')
  })

  it('an invitation never lowers a role someone has', async () => {
    const ctx = server.runtime.ctx
    const admin = await account('admin', farm.id)
    const link = newEmailLink(Date.now(), 'invite', { email: admin.email, tenantId: farm.id, role: 'member', invitedBy: owner.email })
    await server.storage.saveEmailToken(link.record)
    const accepted = await acceptInvitation(ctx, personActor(admin, '127.0.0.1'), { token: link.token })
    assert.equal(accepted.created, false)
    assert.equal(await roleIn(admin, farm), 'admin')
  })

  it('fieldgate users invite and POST /admin/v1/invitations: to a tenant, or to be an operator', async () => {
    const env = { FIELDGATE_DATA_DIR: server.config.dataDir, FIELDGATE_ISSUER: server.issuer }
    const member = `cli-${unique()}@farm.example`
    const cli = await runCli(['users', 'invite', '--email', member, '--tenant', farm.id, '--role', 'member', '--json'], env)
    assert.equal(cli.code, 0, cli.stderr)
    assert.equal((cli.json as { invited: string }).invited, member)
    assert.match(await invitationLink(member), /^\/invitations\/accept\?token=fgl_/)
    const neither = await runCli(['users', 'invite', '--email', member], env)
    assert.equal(neither.code, 1)
    assert.match(neither.stderr, /give --tenant \(with --role\) or --operator/)

    const operator = `op-${unique()}@farm.example`
    assert.equal((await runCli(['users', 'invite', '--email', operator, '--operator'], env)).code, 0)
    const link = await invitationLink(operator)
    const p = new Person(server, operator)
    const offer = await p.get(link)
    assert.match(offer.text, /this platform as an <strong>operator<\/strong>/)
    assert.match(offer.text, /The people who run this platform invited/)
    const done = await p.post('/invitations/accept', { csrf: csrfOf(offer), token: tokenOf(link), password: Person.password })
    assert.equal(done.status, 303, done.text)
    assert.equal(done.headers.get('location'), '/operator')
    assert.equal((await server.storage.getUserByEmail(operator))?.operator, true)

    const byApi = `api-${unique()}@farm.example`
    const api = await postJson(server.url('/admin/v1/invitations'), { email: byApi, tenant_id: farm.id, role: 'owner' }, admin)
    assert.equal(api.status, 201, api.text)
    assert.equal((api.json as { invited: string }).invited, byApi)
    assert.match((await server.storage.listInvitations(farm.id, Date.now())).map((i) => `${i.email} ${i.role}`).join('\n'), new RegExp(`${byApi} owner`))
    assert.equal((await postJson(server.url('/admin/v1/invitations'), { email: `o-${unique()}@farm.example`, operator: true }, admin)).status, 201)
    assert.equal((await postJson(server.url('/admin/v1/invitations'), { email: byApi }, admin)).status, 400)
    assert.equal((await postJson(server.url('/admin/v1/invitations'), { email: byApi, tenant_id: farm.id, operator: true }, admin)).status, 400)
    assert.equal((await postJson(server.url('/admin/v1/invitations'), { email: owner.email, tenant_id: farm.id, role: 'member' }, admin)).status, 409, 'a member already')
    await assert.rejects(inviteOperator(server.runtime.ctx, personActor(owner, '127.0.0.1'), { email: byApi }), { code: 'forbidden' })
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
    await inviteMember(server.runtime.ctx, personActor(owner, '127.0.0.1'), { tenantId: farm.id, email, role: 'admin' })
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
    await assert.rejects(inviteOperator(server.runtime.ctx, personActor(owner, '127.0.0.1'), { email: 'x@platform.example' }), { code: 'forbidden' })
    const email = `ops-${unique()}@platform.example`
    const sent = await postJson(server.url('/admin/v1/invitations'), { email, operator: true }, admin)
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
    assert.match((await p.get(invited.headers.get('location')!)).text, /The invitation is on its way/)

    assert.equal((await p.post(`${path}/role`, { csrf, user_id: hand.id, role: 'admin' })).status, 303)
    assert.equal((await server.storage.listMemberships(hand.id))[0]?.role, 'admin')
    const alone = await p.post(`${path}/role`, { csrf, user_id: owner.id, role: 'member' })
    assert.equal(alone.status, 409)
    assert.match(alone.text, /would have no owner/)
    assert.equal((await p.post(`${path}/remove`, { csrf, user_id: hand.id })).status, 303)
    assert.equal((await server.storage.listMemberships(hand.id)).length, 0)

    const outsider = await createUser(ctx, cliActor, { email: `x-${unique()}@farm.example`, password: Person.password })
    const o = new Person(server, outsider.email)
    await o.signIn()
    assert.equal((await o.get(path)).status, 403)
    assert.equal((await o.post(`${path}/remove`, { csrf: csrfOf(await o.get('/connected-apps')), user_id: owner.id })).status, 403)
  })
})

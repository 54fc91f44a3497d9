/**
 * Tenant membership: an existing account joins a second tenant, roles change, members leave, and a
 * tenant never loses its last owner; tenant owners and operators may do it, nobody else. Through the
 * core operations as a person, the CLI and the admin API, on a real store.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { after, before, describe, it } from 'node:test'
import { cliActor, createTenant, createUser, personActor, removeMembership, setMembership, type Tenant, type User } from '@fieldgate/core'
import { postJson, runCli, startServer, type TestServer } from './helpers.js'

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

import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { after, before, describe, it } from 'node:test'
import {
  OperationError,
  approveApp,
  cliActor,
  createApp,
  createGrant,
  createInitialAccessToken,
  listInitialAccessTokens,
  registerClient,
  revokeInitialAccessToken,
  createTenant,
  createUser,
  deleteApp,
  findInstallableApp,
  findOwnApp,
  installApp,
  listConnections,
  listReviewQueue,
  personActor,
  redeliverEvent,
  retryEventNow,
  sendTestEvent,
  rejectApp,
  revokeGrant,
  rotateSecret,
  rotateSigningKeys,
  setOperatorRole,
  suspendAccount,
  suspendApp,
  updateApp,
  visitorActor,
  type OperationContext,
  type Person,
  type Tenant,
} from '@fieldgate/core'
import { databaseUrl, startServer, type Engine, type TestServer } from './helpers.js'

/**
 * Who may do what (core/src/operations/access.ts), called the way every edge calls it: an operator
 * anything, a person only their own apps and the tenants they own or administer, a visitor only sign
 * up. A refusal changes nothing in the store.
 */
function accessRules(engine: Engine): void {
  let server: TestServer
  let ctx: OperationContext
  let farm: Tenant
  let owner: Person
  let member: Person
  let partner: Person
  let stranger: Person
  before(async () => {
    server = await startServer({ engine, listen: false })
    ctx = server.runtime.ctx
    farm = await createTenant(ctx, cliActor, { name: 'Access farm', environment: 'sandbox' })
    const user = async (role?: 'owner' | 'member') =>
      personActor(
        await createUser(ctx, cliActor, {
          email: `p-${randomBytes(4).toString('hex')}@farm.example`,
          password: 'correct horse battery',
          ...(role ? { tenantId: farm.id, role } : {}),
        }),
        '127.0.0.1',
      )
    owner = await user('owner')
    member = await user('member')
    partner = await user()
    stranger = await user()
  })
  after(() => server.close())

  const codeOf = (p: Promise<unknown>) =>
    p.then(
      () => 'allowed',
      (err: unknown) => (err instanceof OperationError ? err.code : String(err)),
    )

  it('lets only an operator create tenants, grant directly and rotate signing keys', async () => {
    assert.equal(await codeOf(createTenant(ctx, owner, { name: 'Mine', environment: 'sandbox' })), 'forbidden')
    const app = await createApp(ctx, partner, { name: 'Partner app', kind: 'public', environment: 'sandbox' })
    assert.equal(await codeOf(createGrant(ctx, owner, { clientId: app.app.clientId, tenantId: farm.id })), 'forbidden')
    const { signingAlg } = server.config
    assert.equal(await codeOf(rotateSigningKeys(ctx, partner, { alg: signingAlg, defaultMaxTtl: 3600 })), 'forbidden')
    assert.equal((await server.storage.listGrants({ tenantId: farm.id })).length, 0)
  })

  it("gives a person their own apps only: another partner's app is not found, and stays as it was", async () => {
    const { app } = await createApp(ctx, partner, { name: 'Only mine', kind: 'public', environment: 'sandbox' })
    assert.equal(app.ownerUserId, partner.user.id)
    assert.equal(await findOwnApp(ctx, stranger, app.clientId), undefined)
    assert.equal((await findOwnApp(ctx, partner, app.clientId))?.id, app.id)
    assert.equal(await codeOf(updateApp(ctx, stranger, { clientId: app.clientId, fields: { name: 'Taken over' } })), 'not_found')
    assert.equal(await codeOf(rotateSecret(ctx, stranger, { clientId: app.clientId, graceSeconds: 0 })), 'not_found')
    assert.equal(await codeOf(deleteApp(ctx, stranger, { clientId: app.clientId })), 'not_found')
    assert.equal((await server.storage.getApp(app.id))?.name, 'Only mine')
    assert.equal((await server.storage.listLiveSecrets(app.id, Date.now())).length, 1)
  })

  it('lets a person make a private app only on a tenant they administer', async () => {
    assert.equal(await codeOf(createApp(ctx, member, { name: 'Member app', kind: 'private', tenantId: farm.id })), 'invalid')
    const made = await createApp(ctx, owner, { name: 'Owner app', kind: 'private', tenantId: farm.id })
    assert.equal(made.app.tenantId, farm.id)
  })

  it("installs only as an owner or admin, and only a listed app or one's own", async () => {
    const listed = await createApp(ctx, partner, { name: 'Listed', kind: 'public', environment: 'sandbox', installUrl: 'https://partner.example/i', listed: true })
    const unlisted = await createApp(ctx, partner, { name: 'Unlisted', kind: 'public', environment: 'sandbox', installUrl: 'https://partner.example/i' })
    const install = (who: Person, clientId: string, scopes: string[]) => installApp(ctx, who, { clientId, tenantId: farm.id, shownScopes: scopes })
    assert.equal(await findInstallableApp(ctx, owner, unlisted.app.clientId), undefined)
    assert.equal(await codeOf(install(owner, unlisted.app.clientId, unlisted.app.scopes)), 'not_found')
    assert.equal(await codeOf(install(member, listed.app.clientId, listed.app.scopes)), 'forbidden')
    assert.equal(await server.storage.findActiveGrant(listed.app.id, farm.id), undefined)
    const { grant } = await install(owner, listed.app.clientId, listed.app.scopes)
    const seen = await listConnections(ctx, member)
    assert.deepEqual(
      seen.filter((c) => c.grant.id === grant.id).map((c) => c.canDisconnect),
      [false],
    )
    assert.equal(await codeOf(revokeGrant(ctx, member, { grantId: grant.id })), 'forbidden')
    assert.equal(await codeOf(revokeGrant(ctx, stranger, { grantId: grant.id })), 'forbidden')
    assert.equal((await server.storage.getGrant(grant.id))?.status, 'active')
    await revokeGrant(ctx, owner, { grantId: grant.id })
    assert.equal((await server.storage.getGrant(grant.id))?.status, 'revoked')
    const audit = await server.storage.listAudit({ tenantIds: [farm.id], limit: 5 })
    assert.equal(audit[0]?.action, 'app.uninstalled')
    assert.equal(audit[0]?.actorUserId, owner.user.id)
  })

  it("redelivers only the events of a person's own apps", async () => {
    const { app } = await createApp(ctx, cliActor, { name: 'Hooked', kind: 'private', tenantId: farm.id, dataApiUrl: 'https://partner.example/hook' })
    const [event] = await server.storage.listEvents({ appId: app.id, limit: 1 })
    assert.ok(event)
    assert.equal(await codeOf(redeliverEvent(ctx, partner, { eventId: event.id })), 'not_found')
    assert.equal(await codeOf(redeliverEvent(ctx, cliActor, { eventId: 'no-such-event' })), 'not_found')
    assert.equal(await codeOf(retryEventNow(ctx, partner, { eventId: event.id })), 'not_found')
  })

  it("sends test events only to a person's own apps (or an operator's), audited; retries only their events", async () => {
    const mine = await createApp(ctx, partner, {
      name: 'Pinged',
      kind: 'public',
      environment: 'sandbox',
      installUrl: 'https://partner.example/i',
      dataApiUrl: 'https://partner.example/hook',
    })
    const before = await server.storage.listEvents({ appId: mine.app.id, limit: 50 })
    for (const who of [owner, member, stranger, visitorActor('127.0.0.1')]) {
      assert.equal(await codeOf(sendTestEvent(ctx, who, { clientId: mine.app.clientId })), 'not_found')
    }
    assert.deepEqual(await server.storage.listEvents({ appId: mine.app.id, limit: 50 }), before, 'a refusal queues nothing')
    const event = await sendTestEvent(ctx, partner, { clientId: mine.app.clientId })
    assert.equal(event.type, 'ping')
    assert.equal((await server.storage.getEvent(event.id))?.state, 'pending')
    const [entry] = await server.storage.listAudit({ appIds: [mine.app.id], limit: 1 })
    assert.deepEqual([entry?.action, entry?.actorUserId, entry?.objectId], ['event.test_sent', partner.user.id, event.id])
    assert.equal((await sendTestEvent(ctx, cliActor, { clientId: mine.app.clientId })).type, 'ping', 'an operator may too')
    assert.equal(await codeOf(retryEventNow(ctx, stranger, { eventId: event.id })), 'not_found')
    assert.equal((await retryEventNow(ctx, partner, { eventId: event.id })).event.id, event.id)
    const silent = await createApp(ctx, partner, { name: 'Silent', kind: 'public', environment: 'sandbox', installUrl: 'https://partner.example/i' })
    assert.equal(await codeOf(sendTestEvent(ctx, partner, { clientId: silent.app.clientId })), 'invalid', 'no Data API URL')
  })

  it('lets only an operator review, suspend and give the operator role; a refusal changes nothing', async () => {
    const { app } = await createApp(ctx, partner, { name: 'Reviewed', kind: 'public', environment: 'live', installUrl: 'https://partner.example/i' })
    assert.equal(app.review, 'pending')
    for (const who of [partner, owner, visitorActor('127.0.0.1')]) {
      assert.equal(await codeOf(listReviewQueue(ctx, who)), 'forbidden')
      assert.equal(await codeOf(approveApp(ctx, who, { clientId: app.clientId })), 'forbidden')
      assert.equal(await codeOf(rejectApp(ctx, who, { clientId: app.clientId, reason: 'no' })), 'forbidden')
      assert.equal(await codeOf(suspendApp(ctx, who, { clientId: app.clientId, reason: 'no' })), 'forbidden')
      assert.equal(await codeOf(suspendAccount(ctx, who, { email: stranger.user.email, reason: 'no' })), 'forbidden')
      assert.equal(await codeOf(setOperatorRole(ctx, who, { email: partner.user.email, operator: true })), 'forbidden')
    }
    const stored = await server.storage.getApp(app.id)
    assert.deepEqual([stored?.review, stored?.suspendedAt], ['pending', null])
    assert.equal((await server.storage.getUser(partner.user.id))?.operator, false)
    assert.equal((await server.storage.getUser(stranger.user.id))?.suspendedAt, null)
    assert.equal(await codeOf(approveApp(ctx, cliActor, { clientId: app.clientId })), 'allowed')
  })

  it("lets only an operator make, list and revoke initial access tokens; a registered client is nobody's to manage in the portal", async () => {
    for (const who of [partner, owner, visitorActor('127.0.0.1')]) {
      assert.equal(await codeOf(createInitialAccessToken(ctx, who, {})), 'forbidden')
      assert.equal(await codeOf(listInitialAccessTokens(ctx, who)), 'forbidden')
      assert.equal(await codeOf(revokeInitialAccessToken(ctx, who, { id: 'x' })), 'forbidden')
    }
    assert.deepEqual(await server.storage.listInitialAccessTokens(), [])
    const made = await createInitialAccessToken(ctx, cliActor, { note: 'ops' })
    assert.deepEqual(
      (await listInitialAccessTokens(ctx, cliActor)).map((t) => t.id),
      [made.token.id],
    )
    const registered = await registerClient(server.runtime.ctx, visitorActor('127.0.0.1'), {
      metadata: { redirect_uris: ['https://agent.example/cb'], token_endpoint_auth_method: 'none' },
    })
    const clientId = registered.app.clientId
    for (const who of [partner, owner]) {
      assert.equal(await findOwnApp(ctx, who, clientId), undefined)
      assert.equal(await codeOf(updateApp(ctx, who, { clientId, fields: { name: 'Mine now' } })), 'not_found')
      assert.equal(await codeOf(deleteApp(ctx, who, { clientId })), 'not_found')
    }
    assert.equal((await server.storage.getAppByClientId(clientId))?.name, 'Unnamed app')
    assert.equal(await codeOf(deleteApp(ctx, cliActor, { clientId })), 'allowed')
  })

  it('lets a visitor sign up and nothing more', async () => {
    const visitor = visitorActor('127.0.0.1')
    const email = `v-${randomBytes(4).toString('hex')}@farm.example`
    assert.equal(await codeOf(createUser(ctx, visitor, { email, password: 'correct horse battery', tenantId: farm.id, role: 'owner' })), 'forbidden')
    assert.equal(await server.storage.getUserByEmail(email), undefined)
    assert.equal((await createUser(ctx, visitor, { email, password: 'correct horse battery' })).email, email)
    assert.equal(await codeOf(createUser(ctx, owner, { email: `x${email}`, password: 'correct horse battery' })), 'forbidden')
    assert.equal(await codeOf(createApp(ctx, visitor, { name: 'Anon', kind: 'public' })), 'forbidden')
  })
}

describe('access rules (SQLite)', () => accessRules('sqlite'))
if (databaseUrl) describe('access rules (PostgreSQL)', () => accessRules('postgres'))
else describe('access rules (PostgreSQL)', { skip: 'DATABASE_URL is not set' }, () => {})

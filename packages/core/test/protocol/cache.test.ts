/**
 * The per-process cache: bounded (least recently used first out), and invalidated by tag, so a change
 * drops exactly what it touched. On a real SQLite store: what the cache answers is checked against
 * what the store says after changes made behind its back.
 */
import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { after, before, describe, it } from 'node:test'
import { TaggedLru, StoreCache, authenticateAccessToken, cliActor, createApp, hashSecret, revocationEndpoint, type App, type CoreContext, type User } from '@fieldgate/core'
import { connectPublicClient, openContext, person, privateApp, type TestContext } from './context.js'

describe('TaggedLru', () => {
  it('forgets the least recently used entry first, never holding more than its capacity', () => {
    const lru = new TaggedLru<number>(3)
    for (const [i, key] of ['a', 'b', 'c'].entries()) lru.set(key, i, [])
    assert.equal(lru.get('a'), 0, 'a is now the most recently used')
    lru.set('d', 3, [])
    assert.equal(lru.size, 3)
    assert.equal(lru.get('b'), undefined, 'b was the least recently used')
    assert.deepEqual(
      ['a', 'c', 'd'].map((k) => lru.get(k)),
      [0, 2, 3],
    )
    for (let i = 0; i < 1000; i++) lru.set(`k${i}`, i, [`t${i % 7}`])
    assert.equal(lru.size, 3)
  })

  it('drops every entry of a tag, and only those, however the entries were evicted or replaced', () => {
    const lru = new TaggedLru<string>(10)
    lru.set('x', 'x1', ['grant g1', 'tenant t1'])
    lru.set('y', 'y1', ['grant g1'])
    lru.set('z', 'z1', ['grant g2', 'tenant t1'])
    lru.set('y', 'y2', ['grant g3'])
    lru.dropTag('grant g1')
    assert.deepEqual(
      ['x', 'y', 'z'].map((k) => lru.get(k)),
      [undefined, 'y2', 'z1'],
    )
    lru.dropTag('tenant t1')
    assert.equal(lru.get('z'), undefined)
    lru.dropTag('unknown')
    assert.equal(lru.size, 1)
    // An evicted entry leaves no tag behind that could drop a later entry under the same key.
    const small = new TaggedLru<number>(1)
    small.set('a', 1, ['old'])
    small.set('b', 2, [])
    small.set('a', 3, [])
    small.dropTag('old')
    assert.equal(small.get('a'), 3)
  })

  it('fills the slots dropped entries left before evicting anything, and keeps tags shared by several entries', () => {
    const lru = new TaggedLru<number>(3)
    lru.set('a', 1, ['tenant t', 'grant a'])
    lru.set('b', 2, ['tenant t', 'grant b'])
    lru.set('c', 3, ['grant c'])
    lru.dropTag('grant a')
    lru.set('d', 4, ['tenant t'])
    assert.deepEqual(
      ['b', 'c', 'd'].map((k) => lru.get(k)),
      [2, 3, 4],
      'd took the slot a left',
    )
    lru.delete('b')
    lru.dropTag('tenant t')
    assert.deepEqual(
      ['b', 'c', 'd'].map((k) => lru.get(k)),
      [undefined, 3, undefined],
    )
    // Used entries get a second round: c and e were read, so f evicts the one that was not.
    lru.set('e', 5, [])
    lru.set('g', 6, [])
    lru.get('c')
    lru.get('e')
    lru.set('f', 7, [])
    assert.deepEqual(
      ['c', 'e', 'g', 'f'].map((k) => lru.get(k)),
      [3, 5, undefined, 7],
    )
  })

  it('refuses a capacity below one', () => {
    assert.throws(() => new TaggedLru(0), RangeError)
  })
})

describe('StoreCache on a SQLite store', () => {
  const REDIRECT = 'http://127.0.0.1/cb'
  let t: TestContext
  let ctx: CoreContext
  let agent: App
  let owner: User
  let tenantId: string
  before(async () => {
    t = await openContext()
    ctx = t.ctx
    const p = await person(ctx)
    owner = p.user
    tenantId = p.tenant.id
    agent = (
      await createApp(ctx, cliActor, {
        name: 'Agent',
        kind: 'public',
        environment: 'live',
        scopes: 'api',
        redirectUris: [REDIRECT],
        publicClient: true,
        accessTokenFormat: 'opaque',
      })
    ).app
  })
  after(() => t.close())

  async function opaqueToken(): Promise<string> {
    const { result } = await connectPublicClient(ctx, agent, owner, tenantId, REDIRECT)
    assert.match(result.accessToken, /^[0-9a-f]{64}$/)
    return result.accessToken
  }

  it('keeps a tenant with its grant until a change of either, and never keeps an absent grant', async () => {
    const cache = new StoreCache(ctx.storage, 2)
    const { app, tenant } = await privateApp(ctx)
    const found = await cache.tenantGrant(app.id, tenant.id)
    assert.equal(found?.tenant.id, tenant.id)
    const grant = found!.grant!
    assert.equal(grant.status, 'active')
    // Revoked behind the cache's back: it still answers from memory, as it would until the feed says so.
    await ctx.storage.revokeGrant(grant.id, Date.now())
    assert.equal((await cache.tenantGrant(app.id, tenant.id))?.grant?.id, grant.id)
    cache.apply({ kind: 'grant', ref: grant.id })
    assert.deepEqual(await cache.tenantGrant(app.id, tenant.id), { tenant, grant: undefined })
    // No grant is not remembered: a new install is seen at once.
    const again = await ctx.storage.createGrant({ ...grant, id: randomUUID(), status: 'active' })
    assert.equal((await cache.tenantGrant(app.id, tenant.id))?.grant?.id, again.id)
    // A tenant change drops it too.
    await ctx.storage.renameTenant(tenant.id, 'Renamed')
    cache.apply({ kind: 'tenant', ref: tenant.id })
    assert.equal((await cache.tenantGrant(app.id, tenant.id))?.tenant.name, 'Renamed')
  })

  it('stays within its bound: the least recently used tenants are read again', async () => {
    const cache = new StoreCache(ctx.storage, 2)
    const apps = [await privateApp(ctx), await privateApp(ctx), await privateApp(ctx)]
    for (const { app, tenant } of apps) await cache.tenantGrant(app.id, tenant.id)
    const [first] = apps
    await ctx.storage.revokeGrant((await ctx.storage.findActiveGrant(first!.app.id, first!.tenant.id))!.id, Date.now())
    // Evicted (capacity 2, three read): read again from the store, which says revoked.
    assert.equal((await cache.tenantGrant(first!.app.id, first!.tenant.id))?.grant, undefined)
  })

  it('answers an opaque token from memory until the change its revocation appends', async () => {
    const cache = new StoreCache(ctx.storage)
    const token = await opaqueToken()
    const hash = hashSecret(token)
    assert.equal((await cache.opaqueToken(hash))?.token.revokedAt, null)
    const revoked = await ctx.storage.revokeOpaqueToken(hash, Date.now())
    assert.ok(revoked)
    assert.equal((await cache.opaqueToken(hash))?.token.revokedAt, null, 'served from memory until the change arrives')
    // What the change feed hands the cache: the change the revocation appended.
    const [change] = (await ctx.storage.changesSince((await ctx.storage.latestChangeSeq()) - 1)).filter((c) => c.kind === 'grant')
    assert.equal(change?.ref, revoked.grantId)
    cache.apply(change!)
    assert.equal((await cache.opaqueToken(hash))?.token.revokedAt, revoked.revokedAt)
  })

  it('refuses a revoked opaque token at once in the process that revoked it (RFC 7009)', async () => {
    const token = await opaqueToken()
    assert.equal((await authenticateAccessToken(ctx, token)).clientId, agent.clientId)
    await revocationEndpoint(ctx, { params: { client_id: agent.clientId, token }, authorization: undefined })
    await assert.rejects(authenticateAccessToken(ctx, token), /revoked/)
  })
})

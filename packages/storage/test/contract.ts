import assert from 'node:assert/strict'
import { randomBytes, randomUUID } from 'node:crypto'
import { after, afterEach, before, beforeEach, describe, it } from 'node:test'
import {
  newClientSettings,
  cliActor,
  storeContext,
  createApp as adminCreateApp,
  ensureSigningKeys,
  reviewedFields,
  createTenant as adminCreateTenant,
  createUser as adminCreateUser,
  type ApiRecord,
  type App,
  type AppSecret,
  type AuditEntry,
  type AuthorizationCode,
  type EmailToken,
  type InitialAccessToken,
  type Install,
  type Grant,
  type MailMessage,
  type SecurityEvent,
  type OpaqueToken,
  type RefreshToken,
  type OutboxEvent,
  type SecretHandle,
  type Session,
  type SigningKeyRecord,
  type Storage,
  type Tenant,
  type TenantGrant,
  type User,
} from '@fieldgate/core'

/**
 * The contract every Storage adapter must pass. Each area runs on its own fresh, migrated store, so
 * counts and the change feed start from empty. Rows are built here with explicit values (times are
 * fixed epoch ms around T) so every expectation comes from what the store gives back.
 */
export function storageContract(name: string, openStore: () => Promise<Storage>): void {
  // Which tests call each method, for the last test's check against `covered`.
  const calls = new Map<string, Set<string>>()
  let running: string | undefined
  const open = async (): Promise<Storage> =>
    recording(await openStore(), (method) => {
      if (running !== undefined) calls.set(method, (calls.get(method) ?? new Set()).add(running))
    })

  describe(`${name} storage contract`, () => {
    beforeEach((t) => {
      running = t.name
    })
    afterEach(() => {
      running = undefined
    })

    describe('tenants', () => {
      const db = freshStore(open)

      it('migrate() can run again on a migrated store', async () => {
        await db().migrate()
      })

      it('round-trips every field through create, get and list', async () => {
        const s = db()
        const live = tenant({ name: 'Acme Plumbing', environment: 'live', createdAt: T + 1 })
        assert.deepEqual(await s.createTenant(live), live)
        const sandbox = await adminCreateTenant(storeContext(s, { now: () => T + 2 }), cliActor, { name: 'Acme sandbox', environment: 'sandbox' })
        assert.deepEqual(await s.getTenant(live.id), live)
        assert.deepEqual(await s.getTenant(sandbox.id), sandbox)
        assert.deepEqual(sortById(await s.listTenants()), sortById([live, sandbox]))
      })

      it('returns undefined for an unknown id', async () => {
        assert.equal(await db().getTenant(randomUUID()), undefined)
      })

      it('listTenants finds part of a name in any case, and pages', async () => {
        const s = db()
        const tag = hex()
        const made: Tenant[] = []
        for (let i = 0; i < 4; i++) made.push(await s.createTenant(tenant({ name: `Farm ${i} ${tag}`, createdAt: T + 10 + i })))
        assert.deepEqual(await s.listTenants({ query: `FARM 2 ${tag}` }), [made[2]])
        assert.deepEqual(await s.listTenants({ query: tag, limit: 2, offset: 2 }), made.slice(2))
      })

      it('rejects a duplicate marketplaceId', async () => {
        const s = db()
        const first = await s.createTenant(tenant())
        const dup = tenant({ marketplaceId: first.marketplaceId })
        await assert.rejects(s.createTenant(dup))
        assert.equal(await s.getTenant(dup.id), undefined)
      })

      it('renameTenant renames one tenant with what goes alongside and a tenant change; false for none', async () => {
        const s = db()
        const [a, b] = [await s.createTenant(tenant({ name: 'Old name' })), await s.createTenant(tenant({ name: 'Other' }))]
        const seq = await s.latestChangeSeq()
        const entry = auditEntry({ tenantId: a.id, objectId: a.id, action: 'tenant.renamed' })
        assert.equal(await s.renameTenant(a.id, 'New name', { audit: [entry] }), true)
        assert.deepEqual(await s.getTenant(a.id), { ...a, name: 'New name' })
        assert.deepEqual(await s.getTenant(b.id), b, 'other tenants stay')
        assert.deepEqual(
          (await s.changesSince(seq)).map(({ kind, ref }) => ({ kind, ref })),
          [{ kind: 'tenant', ref: a.id }],
        )
        assert.deepEqual(await s.listAudit({ tenantIds: [a.id], limit: 10 }), [entry])
        assert.equal(await s.renameTenant(randomUUID(), 'Nobody'), false)
        assert.equal(await s.latestChangeSeq(), seq + 1, 'no change for a tenant that is not there')
      })
    })

    describe('users and memberships', () => {
      const db = freshStore(open)
      let t1: Tenant, t2: Tenant
      before(async () => {
        t1 = await db().createTenant(tenant())
        t2 = await db().createTenant(tenant())
      })

      it('creates a user with memberships and finds it by email in any case', async () => {
        const s = db()
        const user = await adminCreateUser(storeContext(s, { now: () => T }), cliActor, {
          email: 'Alice@Example.COM',
          password: 'correct horse battery',
          tenantId: t1.id,
          role: 'admin',
        })
        assert.equal(user.email, 'alice@example.com')
        assert.deepEqual(await s.getUserByEmail('alice@example.com'), user)
        assert.deepEqual(await s.getUserByEmail('ALICE@example.Com'), user)
        assert.deepEqual(await s.listMemberships(user.id), [{ userId: user.id, tenantId: t1.id, role: 'admin' }])
        assert.equal(await s.getUserByEmail('nobody@example.com'), undefined)
      })

      it('stores several memberships given at creation', async () => {
        const s = db()
        const u = await s.createUser(user(), [
          { tenantId: t1.id, role: 'owner' },
          { tenantId: t2.id, role: 'member' },
        ])
        assert.deepEqual(
          sortBy(await s.listMemberships(u.id), 'tenantId'),
          sortBy(
            [
              { userId: u.id, tenantId: t1.id, role: 'owner' },
              { userId: u.id, tenantId: t2.id, role: 'member' },
            ],
            'tenantId',
          ),
        )
      })

      it('addMembership adds, then upserts the role', async () => {
        const s = db()
        const u = await s.createUser(user(), [{ tenantId: t1.id, role: 'member' }])
        await s.addMembership({ userId: u.id, tenantId: t2.id, role: 'member' })
        await s.addMembership({ userId: u.id, tenantId: t1.id, role: 'owner' })
        assert.deepEqual(
          sortBy(await s.listMemberships(u.id), 'tenantId'),
          sortBy(
            [
              { userId: u.id, tenantId: t1.id, role: 'owner' },
              { userId: u.id, tenantId: t2.id, role: 'member' },
            ],
            'tenantId',
          ),
        )
      })

      it('rejects a duplicate email', async () => {
        const s = db()
        const first = await s.createUser(user(), [])
        const dup = user({ email: first.email })
        await assert.rejects(s.createUser(dup, []))
        assert.deepEqual(await s.getUserByEmail(first.email), first)
      })

      it("setSandboxTenant sets the user's sandbox tenant and leaves other users alone", async () => {
        const s = db()
        const [u, other] = [await s.createUser(user(), []), await s.createUser(user(), [])]
        await s.setSandboxTenant(u.id, t2.id)
        assert.deepEqual(await s.getUser(u.id), { ...u, sandboxTenantId: t2.id })
        assert.deepEqual(await s.getUser(other.id), other)
        await s.setSandboxTenant(u.id, t1.id)
        assert.equal((await s.getUser(u.id))?.sandboxTenantId, t1.id)
        await assert.rejects(s.setSandboxTenant(other.id, randomUUID()), 'the tenant must exist')
        assert.deepEqual(await s.getUser(other.id), other)
      })

      it('updateUser saves verification, operator role, suspension and password with what goes alongside, never id, createdAt or sandbox', async () => {
        const s = db()
        const [u, other] = [await s.createUser(user({ sandboxTenantId: t1.id }), []), await s.createUser(user(), [])]
        const changed: User = {
          ...u,
          email: `${hex()}@example.org`,
          passwordHash: '$argon2id$other',
          emailVerifiedAt: T + 5,
          operator: true,
          suspendedAt: T + 6,
          suspendedReason: 'spam',
        }
        const event = securityEvent({ kind: 'account.suspended', userId: u.id })
        const mail = mailMessage({ to: u.email })
        await s.updateUser({ ...changed, createdAt: T + 99, sandboxTenantId: null }, { security: [event], mail: [mail] })
        assert.deepEqual(await s.getUser(u.id), changed)
        assert.deepEqual(await s.getUser(other.id), other)
        assert.deepEqual(await s.listSecurityEvents({ userId: u.id }), [event])
        assert.deepEqual(
          (await s.listMail({ query: u.email })).map((m) => m.id),
          [mail.id],
        )
      })

      it('listUsers lists oldest first, finds part of an email in any case, and pages', async () => {
        const s = db()
        const tag = hex()
        const made: User[] = []
        for (let i = 0; i < 5; i++) made.push(await s.createUser(user({ email: `p${i}.${tag}@example.com`, createdAt: T + 100 + i }), []))
        assert.deepEqual(await s.listUsers({ query: tag.toUpperCase() }), made)
        assert.deepEqual(await s.listUsers({ query: tag, limit: 2, offset: 1 }), made.slice(1, 3))
        assert.deepEqual(await s.listUsers({ query: `p4.${tag}` }), [made[4]])
        // LIKE's wildcards are matched as themselves.
        assert.deepEqual(await s.listUsers({ query: '%' }), [])
        assert.deepEqual(await s.listUsers({ query: `p_.${tag}` }), [])
        assert.ok((await s.listUsers()).length >= 5)
      })

      it('listUsers keeps operators or the others, and the members of a tenant', async () => {
        const s = db()
        const tag = hex()
        const t = await s.createTenant(tenant())
        const op = await s.createUser(user({ email: `op.${tag}@example.com`, operator: true, createdAt: T + 200 }), [])
        const member = await s.createUser(user({ email: `member.${tag}@example.com`, createdAt: T + 201 }), [{ tenantId: t.id, role: 'admin' }])
        const neither = await s.createUser(user({ email: `neither.${tag}@example.com`, createdAt: T + 202 }), [])
        assert.deepEqual(await s.listUsers({ query: tag, operator: true }), [op])
        assert.deepEqual(await s.listUsers({ query: tag, operator: false }), [member, neither])
        assert.deepEqual(await s.listUsers({ tenantId: t.id }), [member])
        assert.deepEqual(await s.listUsers({ tenantId: t.id, operator: true }), [])
        assert.deepEqual(await s.listUsers({ tenantId: randomUUID() }), [])
      })

      it("listMembers gives a tenant's members with their roles; removeMembership removes one with what goes alongside", async () => {
        const s = db()
        const t = await s.createTenant(tenant())
        const a = await s.createUser(user({ email: `a.${hex()}@example.com` }), [{ tenantId: t.id, role: 'owner' }])
        const b = await s.createUser(user({ email: `b.${hex()}@example.com` }), [
          { tenantId: t.id, role: 'member' },
          { tenantId: t1.id, role: 'admin' },
        ])
        assert.deepEqual(await s.listMembers(t.id), [
          { user: a, role: 'owner' },
          { user: b, role: 'member' },
        ])
        const audit = auditEntry({ tenantId: t.id, objectId: b.id, action: 'membership.removed' })
        assert.equal(await s.removeMembership(b.id, t.id, { audit: [audit] }), true)
        assert.equal(await s.removeMembership(b.id, t.id), false)
        assert.deepEqual(await s.listMembers(t.id), [{ user: a, role: 'owner' }])
        assert.deepEqual(await s.listMemberships(b.id), [{ userId: b.id, tenantId: t1.id, role: 'admin' }])
        assert.deepEqual(
          (await s.listAudit({ tenantIds: [t.id], limit: 10 })).map((e) => e.id),
          [audit.id],
        )
        const added = auditEntry({ tenantId: t.id, objectId: b.id, action: 'membership.added' })
        await s.addMembership({ userId: b.id, tenantId: t.id, role: 'admin' }, { audit: [added] })
        assert.deepEqual(
          (await s.listMembers(t.id)).map((m) => m.role),
          ['owner', 'admin'],
        )
        assert.deepEqual((await s.listAudit({ tenantIds: [t.id], limit: 10 })).map((e) => e.id).sort(), [audit.id, added.id].sort())
      })

      it('listMembers gives one page of members by email when asked', async () => {
        const s = db()
        const t = await s.createTenant(tenant())
        const tag = hex()
        const people = []
        for (const name of ['c', 'a', 'b']) people.push(await s.createUser(user({ email: `${name}.${tag}@example.com` }), [{ tenantId: t.id, role: 'member' }]))
        const emails = (list: { user: User }[]) => list.map((m) => m.user.email.slice(0, 1))
        assert.deepEqual(emails(await s.listMembers(t.id, { limit: 2 })), ['a', 'b'])
        assert.deepEqual(emails(await s.listMembers(t.id, { limit: 2, offset: 2 })), ['c'])
        assert.deepEqual(emails(await s.listMembers(t.id)), ['a', 'b', 'c'], 'no page: all of them')
      })

      it('createUser is atomic: a bad membership leaves no user behind', async () => {
        const s = db()
        const u = user()
        await assert.rejects(
          s.createUser(u, [
            { tenantId: t1.id, role: 'member' },
            { tenantId: randomUUID(), role: 'member' },
          ]),
        )
        assert.equal(await s.getUserByEmail(u.email), undefined)
        assert.deepEqual(await s.listMemberships(u.id), [])
      })
    })

    describe('apps', () => {
      const db = freshStore(open)
      let t: Tenant, owner: User
      before(async () => {
        t = await db().createTenant(tenant())
        owner = await db().createUser(user(), [])
      })

      it('round-trips arrays, nullable fields and tokenTtl', async () => {
        const s = db()
        const full = app({
          tenantId: t.id,
          ownerUserId: owner.id,
          installUrl: 'https://partner.example/install',
          redirectUris: ['https://partner.example/cb', 'http://localhost:8080/cb?x=1'],
          contactEmail: 'dev@partner.example',
          dataApiUrl: 'https://partner.example/data',
          scopes: ['api', 'fields:read:all', 'maps:write'],
          tokenTtl: 3600,
        })
        const bare = app({ redirectUris: [], scopes: [], tokenTtl: null, createdAt: T + 1 })
        const fullGrant = grant(full.id, t.id, { scopes: ['api'] })
        assert.deepEqual(await s.createApp(full, secret(full.id), fullGrant), full)
        await s.createApp(bare, secret(bare.id))
        for (const a of [full, bare]) {
          assert.deepEqual(await s.getApp(a.id), a)
          assert.deepEqual(await s.getAppByClientId(a.clientId), a)
        }
        assert.deepEqual(sortById(await s.listApps()), sortById([full, bare]))
        assert.deepEqual(await s.getGrant(fullGrant.id), fullGrant)
        assert.equal(await s.getApp(randomUUID()), undefined)
        assert.equal(await s.getAppByClientId('fg_nope'), undefined)
      })

      it('stores the first secret with the app', async () => {
        const s = db()
        const a = app()
        const first = secret(a.id)
        await s.createApp(a, first)
        assert.deepEqual(await s.listLiveSecrets(a.id, T), [first])
      })

      it('createApp is atomic: when the grant fails, nothing of the app is stored', async () => {
        const s = db()
        const a = app({ tenantId: t.id })
        const first = secret(a.id)
        await assert.rejects(s.createApp(a, first, grant(a.id, randomUUID())))
        assert.equal(await s.getApp(a.id), undefined)
        assert.equal(await s.getAppByClientId(a.clientId), undefined)
        assert.deepEqual(await s.listLiveSecrets(a.id, T), [])
        // No half-written rows: the very same app and secret can be stored afterwards.
        await s.createApp(a, first)
        assert.deepEqual(await s.getApp(a.id), a)
      })

      it('works with the admin helper: a marketplace sandbox app gets a tenant and a grant', async () => {
        const s = db()
        const created = await adminCreateApp(storeContext(s, { now: () => T }), cliActor, {
          name: 'Route planner',
          kind: 'public',
          scopes: 'api fields:read:all',
          redirectUris: ['https://planner.example/cb'],
        })
        assert.ok(created.sandboxTenant)
        assert.deepEqual(await s.getApp(created.app.id), created.app)
        assert.deepEqual(await s.getTenant(created.sandboxTenant.id), created.sandboxTenant)
        const g = await s.findActiveGrant(created.app.id, created.sandboxTenant.id)
        assert.deepEqual(g?.scopes, ['api', 'fields:read:all'])
        assert.equal((await s.listLiveSecrets(created.app.id, T)).length, 1)
      })

      it('lists only the apps a user owns when asked', async () => {
        const s = db()
        const mine = app({ ownerUserId: owner.id, createdAt: T + 20 })
        await s.createApp(mine, secret(mine.id))
        const owned = await s.listApps({ ownerUserId: owner.id })
        assert.ok(owned.length >= 1)
        assert.ok(owned.every((a) => a.ownerUserId === owner.id))
        assert.ok(owned.some((a) => a.id === mine.id))
        assert.deepEqual(await s.listApps({ ownerUserId: randomUUID() }), [])
      })

      it('updateApp saves the editable fields, never id, clientId or createdAt, and appends an app change with what goes alongside', async () => {
        const s = db()
        const a = app()
        await s.createApp(a, secret(a.id))
        const seq = await s.latestChangeSeq()
        const edited: App = {
          ...a,
          clientId: `fg_${hex()}`,
          createdAt: T + 99,
          name: 'Renamed',
          kind: 'public',
          environment: 'live',
          tenantId: t.id,
          ownerUserId: owner.id,
          installUrl: 'https://app.example/install',
          redirectUris: ['https://app.example/cb2', 'https://app.example/cb3'],
          contactEmail: 'ops@app.example',
          dataApiUrl: 'https://app.example/data',
          scopes: ['api', 'leads:read'],
          tokenTtl: 600,
          description: 'Does things',
          listed: true,
        }
        const entry = auditEntry({ appId: a.id, objectId: a.id, action: 'app.updated' })
        await s.updateApp(edited, { audit: [entry] })
        const stored = { ...edited, clientId: a.clientId, createdAt: a.createdAt }
        assert.deepEqual(await s.getApp(a.id), stored)
        assert.deepEqual(await s.getAppByClientId(a.clientId), stored)
        assert.equal(await s.getAppByClientId(edited.clientId), undefined)
        assert.deepEqual(await changesAfter(s, seq), [{ kind: 'app', ref: a.id }])
        assert.deepEqual(
          (await s.listAudit({ appIds: [a.id], limit: 10 })).map((x) => x.id),
          [entry.id],
        )
      })

      it('deleteApp removes the app with its secrets, grants, installs, codes and tokens, and appends a change for each active grant and the app', async () => {
        const s = db()
        const other = await s.createTenant(tenant())
        const a = app({ tenantId: t.id })
        const [active, revoked] = [grant(a.id, t.id), grant(a.id, other.id)]
        await s.createApp(a, secret(a.id), active)
        await s.createGrant(revoked, { install: { grantId: revoked.id, installedBy: null, state: 'complete', error: null, createdAt: T, updatedAt: T } })
        await s.revokeGrant(revoked.id, T + 1)
        const code: AuthorizationCode = {
          codeHash: hex(),
          appId: a.id,
          tenantId: t.id,
          userId: owner.id,
          grantId: active.id,
          redirectUri: null,
          scopes: ['api'],
          codeChallenge: null,
          resource: null,
          dpopJkt: null,
          expiresAt: T + 60_000,
          consumedAt: null,
          createdAt: T,
        }
        await s.saveCode(code)
        const token: OpaqueToken = {
          tokenHash: hex(),
          grantId: active.id,
          appId: a.id,
          tenantId: t.id,
          userId: owner.id,
          codeHash: code.codeHash,
          createdAt: T + 2,
          revokedAt: null,
          expiresAt: null,
          resource: null,
          jkt: null,
          familyId: null,
          scopes: null,
        }
        assert.equal(await s.redeemCode(code.codeHash, T + 2, { accessToken: token }), true)
        const kept = app()
        await s.createApp(kept, secret(kept.id))
        const seq = await s.latestChangeSeq()

        // The app is gone when the entry is written, so it names the client_id itself.
        const entry = auditEntry({ appId: a.id, clientId: a.clientId, objectId: a.id, action: 'app.deleted', at: T + 3 })
        assert.equal(await s.deleteApp(a.id, T + 3, { audit: [entry] }), true)
        assert.equal(await s.getApp(a.id), undefined)
        assert.equal(await s.getAppByClientId(a.clientId), undefined)
        assert.deepEqual(await s.listLiveSecrets(a.id, T), [])
        assert.equal(await s.getGrant(active.id), undefined)
        assert.equal(await s.getGrant(revoked.id), undefined)
        assert.deepEqual(await s.listGrants({ appId: a.id }), [])
        assert.equal(await s.getInstall(revoked.id), undefined)
        assert.equal(await s.getCode(code.codeHash), undefined)
        assert.equal(await s.findOpaqueToken(token.tokenHash), undefined)
        const changes = await s.changesSince(seq)
        assert.deepEqual(
          changes.map(({ kind, ref }) => ({ kind, ref })),
          [
            { kind: 'grant', ref: active.id },
            { kind: 'app', ref: a.id },
          ],
        )
        assert.ok(changes.every((c) => c.createdAt === T + 3))
        assert.deepEqual(await s.listAudit({ appIds: [a.id], limit: 10 }), [entry])
        assert.deepEqual(await s.getApp(kept.id), kept, 'other apps stay')

        const again = auditEntry({ appId: a.id, clientId: a.clientId, objectId: a.id })
        assert.equal(await s.deleteApp(a.id, T + 4, { audit: [again] }), false)
        assert.deepEqual(await s.listAudit({ appIds: [a.id], limit: 10 }), [entry], 'nothing goes alongside a delete that deleted nothing')
      })
    })

    describe('apps: review and suspension', () => {
      const db = freshStore(open)

      it('round-trips review, proposed values and suspension; listApps filters by review, searches and pages', async () => {
        const s = db()
        const pending = app({
          name: 'Hay Sync',
          kind: 'public',
          environment: 'live',
          review: 'pending',
          approvedAt: null,
          proposed: {
            name: 'Hay Sync 2',
            scopes: ['api', 'fields:read'],
            installUrl: 'https://hay.example/i',
            redirectUris: ['https://hay.example/cb'],
            dataApiUrl: null,
            logoUrl: 'https://hay.example/logo-2.png',
            shortDescription: 'Hay bales, synced',
            categories: ['Inventory', 'Reporting'],
            publisher: 'Hay Co',
            supportUrl: 'https://hay.example/help',
            privacyPolicyUrl: 'https://hay.example/privacy',
          },
          createdAt: T + 1,
        })
        const suspended = app({ name: 'Barn Watch', suspendedAt: T + 2, suspendedReason: 'abuse', suspendedWithAccount: true, createdAt: T + 2 })
        const rejected = app({ name: 'Hay Tools', review: 'rejected', reviewReason: 'misleading name', createdAt: T + 3 })
        for (const a of [pending, suspended, rejected]) await s.createApp(a, secret(a.id))
        for (const a of [pending, suspended, rejected]) assert.deepEqual(await s.getApp(a.id), a)
        assert.deepEqual(await s.listApps({ review: 'pending' }), [pending])
        assert.deepEqual(await s.listApps({ query: 'hay' }), [pending, rejected])
        assert.deepEqual(await s.listApps({ query: suspended.clientId.toUpperCase() }), [suspended])
        assert.deepEqual(await s.listApps({ limit: 2, offset: 1 }), [suspended, rejected])
        const approved: App = { ...pending, ...pending.proposed!, review: 'approved', reviewReason: 'fine', approvedAt: T + 4, proposed: null }
        await s.updateApp(approved)
        assert.deepEqual(await s.getApp(pending.id), approved)
        assert.deepEqual(await s.listApps({ review: 'pending' }), [])
      })

      it('listApps filters by tenant, kind, environment and suspension, each with the others', async () => {
        const s = db()
        const t = await s.createTenant(tenant())
        const own = app({ name: 'Tenant app', tenantId: t.id, createdAt: T + 5 })
        await s.createApp(own, secret(own.id))
        const all = await s.listApps()
        const names = (list: App[]) => list.map((a) => a.name)
        assert.deepEqual(await s.listApps({ tenantId: t.id }), [own])
        assert.deepEqual(await s.listApps({ tenantId: randomUUID() }), [])
        assert.deepEqual(names(await s.listApps({ kind: 'public' })), names(all.filter((a) => a.kind === 'public')))
        assert.deepEqual(names(await s.listApps({ environment: 'live' })), names(all.filter((a) => a.environment === 'live')))
        assert.deepEqual(names(await s.listApps({ suspended: true })), ['Barn Watch'])
        assert.deepEqual(names(await s.listApps({ suspended: false })), names(all.filter((a) => a.suspendedAt === null)))
        assert.deepEqual(await s.listApps({ kind: 'private', environment: 'sandbox', suspended: false, query: 'tenant' }), [own])
        assert.ok(all.some((a) => a.kind === 'public') && all.some((a) => a.environment === 'live'), 'the filters have something to leave out')
      })
    })

    describe('apps: marketplace listing', () => {
      const db = freshStore(open)

      it('round-trips the listing (logo, short description, categories, publisher, links) and in a proposal', async () => {
        const s = db()
        const listing = {
          logoUrl: 'https://barn.example/logo.png',
          shortDescription: 'Plans the week’s fieldwork',
          categories: ['Scheduling', 'Mapping'] as App['categories'],
          publisher: 'Barn & Co',
          supportUrl: 'https://barn.example/support',
          privacyPolicyUrl: 'https://barn.example/privacy',
        }
        const a = app({ kind: 'public', listed: true, installUrl: 'https://barn.example/i', ...listing })
        const bare = app()
        for (const x of [a, bare]) await s.createApp(x, secret(x.id))
        assert.deepEqual(await s.getApp(a.id), a)
        assert.deepEqual(await s.getAppByClientId(bare.clientId), bare)
        assert.deepEqual(bare.categories, [], 'no categories is an empty list, not null')
        const changed: App = { ...a, categories: ['Telematics'], publisher: null, logoUrl: null, shortDescription: '' }
        await s.updateApp(changed)
        assert.deepEqual(await s.getApp(a.id), changed)
        const proposed: App = { ...changed, review: 'pending', proposed: { ...reviewedFields(changed), name: 'Barn 2', categories: ['Agronomy', 'Weather'], supportUrl: null } }
        await s.updateApp(proposed)
        assert.deepEqual(await s.getApp(a.id), proposed, 'a proposed listing round-trips')
      })
    })

    describe('app secrets', () => {
      const db = freshStore(open)

      it('keeps the old secret live until graceEndsAt and not after', async () => {
        const s = db()
        const a = app()
        const s1 = secret(a.id)
        await s.createApp(a, s1)
        const s2 = secret(a.id, { createdAt: T + 10 })
        await s.rotateSecret(a.id, s2, T + 1000)
        assert.deepEqual(sortById(await s.listLiveSecrets(a.id, T + 999)), sortById([{ ...s1, expiresAt: T + 1000 }, s2]))
        // Like codes, a secret is dead at its expiry instant.
        assert.deepEqual(await s.listLiveSecrets(a.id, T + 1000), [s2])
        assert.deepEqual(await s.listLiveSecrets(a.id, T + 999_999), [s2])
      })

      it('a later rotation shortens but never lengthens an earlier grace period', async () => {
        const s = db()
        const a = app()
        const s1 = secret(a.id)
        await s.createApp(a, s1)
        const s2 = secret(a.id, { createdAt: T + 1 })
        await s.rotateSecret(a.id, s2, T + 10_000)
        const s3 = secret(a.id, { createdAt: T + 2 })
        await s.rotateSecret(a.id, s3, T + 500) // shortens s1 from T+10000 to T+500
        assert.deepEqual(sortById(await s.listLiveSecrets(a.id, T + 3)), sortById([{ ...s1, expiresAt: T + 500 }, { ...s2, expiresAt: T + 500 }, s3]))
        const s4 = secret(a.id, { createdAt: T + 4 })
        await s.rotateSecret(a.id, s4, T + 20_000) // must not lengthen s1 or s2
        assert.deepEqual(
          sortById(await s.listLiveSecrets(a.id, T + 5)),
          sortById([{ ...s1, expiresAt: T + 500 }, { ...s2, expiresAt: T + 500 }, { ...s3, expiresAt: T + 20_000 }, s4]),
        )
        assert.deepEqual(sortById(await s.listLiveSecrets(a.id, T + 500)), sortById([{ ...s3, expiresAt: T + 20_000 }, s4]))
      })

      it('rotateSecret appends one app change', async () => {
        const s = db()
        const a = app()
        await s.createApp(a, secret(a.id))
        const seq = await s.latestChangeSeq()
        await s.rotateSecret(a.id, secret(a.id), T + 1000)
        assert.deepEqual(await changesAfter(s, seq), [{ kind: 'app', ref: a.id }])
      })

      it('rotateSecret is atomic: a failed insert leaves the current secret current and no change', async () => {
        const s = db()
        const a = app()
        const s1 = secret(a.id)
        await s.createApp(a, s1)
        const seq = await s.latestChangeSeq()
        await assert.rejects(s.rotateSecret(a.id, { ...secret(a.id), id: s1.id }, T + 1000))
        assert.deepEqual(await s.listLiveSecrets(a.id, T + 999_999), [s1])
        assert.equal(await s.latestChangeSeq(), seq)
      })
    })

    describe('grants', () => {
      const db = freshStore(open)
      let tA: Tenant, tB: Tenant, a1: App, a2: App
      before(async () => {
        const s = db()
        tA = await s.createTenant(tenant())
        tB = await s.createTenant(tenant())
        a1 = app()
        a2 = app()
        for (const a of [a1, a2]) await s.createApp(a, secret(a.id))
      })

      it('creates, gets, finds the active grant and lists with filters', async () => {
        const s = db()
        const g1 = grant(a1.id, tA.id, { scopes: ['api', 'work_orders:read'] })
        const g2 = grant(a1.id, tB.id, { createdAt: T + 1, updatedAt: T + 1 })
        const g3 = grant(a2.id, tA.id, { scopes: [], createdAt: T + 2, updatedAt: T + 2 })
        for (const g of [g1, g2, g3]) assert.deepEqual(await s.createGrant(g), g)
        assert.deepEqual(await s.getGrant(g1.id), g1)
        assert.deepEqual(await s.getGrant(g3.id), g3)
        assert.equal(await s.getGrant(randomUUID()), undefined)
        assert.deepEqual(await s.findActiveGrant(a1.id, tA.id), g1)
        assert.deepEqual(await s.findActiveGrant(a2.id, tA.id), g3)
        assert.equal(await s.findActiveGrant(a2.id, tB.id), undefined)
        assert.deepEqual(sortById(await s.listGrants()), sortById([g1, g2, g3]))
        assert.deepEqual(sortById(await s.listGrants({ appId: a1.id })), sortById([g1, g2]))
        assert.deepEqual(sortById(await s.listGrants({ tenantId: tA.id })), sortById([g1, g3]))
        assert.deepEqual(await s.listGrants({ appId: a2.id, tenantId: tA.id }), [g3])
        assert.deepEqual(await s.listGrants({ appId: randomUUID() }), [])
      })

      it('listGrants pages oldest first, keeps a status, and finds part of an app or tenant name, client_id or tenant id in any case', async () => {
        const s = db()
        const tag = hex()
        const farm = await s.createTenant(tenant({ name: `Upper ${tag} Farm` }))
        const other = await s.createTenant(tenant({ name: 'Elsewhere' }))
        const sync = app({ name: `Sync ${tag}` })
        const plain = app({ name: 'Plain' })
        for (const a of [sync, plain]) await s.createApp(a, secret(a.id))
        const gs = [
          grant(sync.id, other.id, { createdAt: T + 10 }),
          grant(plain.id, farm.id, { createdAt: T + 11, status: 'revoked' }),
          grant(plain.id, other.id, { createdAt: T + 12 }),
          grant(sync.id, farm.id, { createdAt: T + 13 }),
        ]
        for (const g of gs) await s.createGrant(g)
        const ids = (list: Grant[]) => list.map((g) => g.id)
        assert.deepEqual(ids(await s.listGrants({ appId: plain.id, limit: 1 })), [gs[1]!.id], 'oldest first')
        assert.deepEqual(ids(await s.listGrants({ appId: plain.id, limit: 1, offset: 1 })), [gs[2]!.id], 'the next page')
        assert.deepEqual(ids(await s.listGrants({ appId: plain.id, limit: 1, offset: 2 })), [])
        assert.deepEqual(ids(await s.listGrants({ appId: plain.id, status: 'active' })), [gs[2]!.id])
        assert.deepEqual(ids(await s.listGrants({ tenantId: farm.id, status: 'revoked', limit: 5 })), [gs[1]!.id])
        // By the app's name, whatever the tenant; by the tenant's, whatever the app; in any case.
        assert.deepEqual(ids(await s.listGrants({ query: `SYNC ${tag.toUpperCase()}` })), [gs[0]!.id, gs[3]!.id])
        assert.deepEqual(ids(await s.listGrants({ query: `upper ${tag}` })), [gs[1]!.id, gs[3]!.id])
        assert.deepEqual(ids(await s.listGrants({ query: `${tag} farm`, status: 'active', limit: 5 })), [gs[3]!.id])
        assert.deepEqual(ids(await s.listGrants({ query: plain.clientId })), [gs[1]!.id, gs[2]!.id])
        assert.deepEqual(ids(await s.listGrants({ query: farm.id.toUpperCase(), appId: sync.id })), [gs[3]!.id])
        assert.deepEqual(await s.listGrants({ query: `${tag}%_!` }), [], 'wildcards are plain characters')
        assert.deepEqual(ids(await s.listGrants({ query: `Sync ${tag}`, limit: 1, offset: 1 })), [gs[3]!.id])
      })

      it('findTenantGrant reads a tenant with the active grant of one app on it, in one call', async () => {
        const s = db()
        const g = (await s.findActiveGrant(a1.id, tA.id))!
        assert.deepEqual(await s.findTenantGrant(a1.id, tA.id), { tenant: tA, grant: g })
        // A tenant without that app's grant, and one that does not exist.
        const tC = await s.createTenant(tenant())
        assert.deepEqual(await s.findTenantGrant(a1.id, tC.id), { tenant: tC, grant: undefined })
        assert.equal(await s.findTenantGrant(a1.id, randomUUID()), undefined)
        // Another app's grant on the same tenant is never the answer.
        assert.deepEqual((await s.findTenantGrant(a2.id, tA.id))?.grant, await s.findActiveGrant(a2.id, tA.id))
        // Many at once, as requests in flight ask (PostgreSQL answers them with one query per app):
        // each gets its own tenant and its own app's grant, or nothing.
        const asked: [string, string][] = [
          [a1.id, tA.id],
          [a2.id, tA.id],
          [a1.id, tC.id],
          [a1.id, randomUUID()],
          [a2.id, tB.id],
          [a1.id, tA.id],
        ]
        const together = await Promise.all(asked.map(([app, t]) => s.findTenantGrant(app, t)))
        const alone: (TenantGrant | undefined)[] = []
        for (const [app, t] of asked) alone.push(await s.findTenantGrant(app, t))
        assert.deepEqual(together, alone)
        assert.deepEqual(
          together.map((f) => f?.grant?.appId ?? null),
          [a1.id, a2.id, null, null, null, a1.id],
        )
      })

      it('allows one active grant per app and tenant, and a new one after revoking', async () => {
        const s = db()
        const first = (await s.findActiveGrant(a1.id, tA.id))!
        await assert.rejects(s.createGrant(grant(a1.id, tA.id)))
        assert.equal(await s.revokeGrant(first.id, T + 100), true)
        assert.equal(await s.revokeGrant(first.id, T + 200), false)
        assert.deepEqual(await s.getGrant(first.id), { ...first, status: 'revoked', updatedAt: T + 100 })
        assert.equal(await s.findActiveGrant(a1.id, tA.id), undefined)
        const next = grant(a1.id, tA.id, { createdAt: T + 300, updatedAt: T + 300 })
        await s.createGrant(next)
        assert.deepEqual(await s.findActiveGrant(a1.id, tA.id), next)
        assert.equal(await s.revokeGrant(randomUUID(), T), false)
      })

      it('revokeGrant appends a grant change only when it revoked something', async () => {
        const s = db()
        const g = (await s.findActiveGrant(a1.id, tB.id))!
        const seq = await s.latestChangeSeq()
        assert.equal(await s.revokeGrant(g.id, T + 400), true)
        assert.equal(await s.revokeGrant(g.id, T + 500), false)
        assert.deepEqual(await changesAfter(s, seq), [{ kind: 'grant', ref: g.id }])
      })

      it('widenGrantScopes adds to an active grant, appends a change, and ignores revoked grants', async () => {
        const s = db()
        const active = (await s.findActiveGrant(a2.id, tA.id))!
        const seq = await s.latestChangeSeq()
        const widened = { ...active, scopes: [...active.scopes, 'work_orders:write'], updatedAt: T + 600 }
        assert.deepEqual(await s.widenGrantScopes(active.id, ['work_orders:write'], T + 600), widened)
        assert.deepEqual(await s.getGrant(active.id), widened)
        assert.deepEqual(await changesAfter(s, seq), [{ kind: 'grant', ref: active.id }])
        // Nothing new: unchanged, no change appended.
        assert.deepEqual(await s.widenGrantScopes(active.id, ['work_orders:write'], T + 650), widened)
        assert.deepEqual(await changesAfter(s, seq), [{ kind: 'grant', ref: active.id }])
        // Concurrent consents each adding a scope: none is lost.
        await Promise.all(['a:1', 'a:2', 'a:3', 'a:4'].map((scope, i) => s.widenGrantScopes(active.id, [scope], T + 660 + i)))
        assert.deepEqual((await s.getGrant(active.id))!.scopes.slice(widened.scopes.length).sort(), ['a:1', 'a:2', 'a:3', 'a:4'])

        const revoked = (await s.listGrants({ appId: a1.id, tenantId: tB.id }))[0]!
        assert.equal(revoked.status, 'revoked')
        const seq2 = await s.latestChangeSeq()
        assert.equal(await s.widenGrantScopes(revoked.id, ['extra'], T + 700), undefined)
        assert.deepEqual(await s.getGrant(revoked.id), revoked)
        assert.equal(await s.latestChangeSeq(), seq2)
      })

      it('saveInstall stores an install, then updates all but its createdAt, with what goes alongside, atomically', async () => {
        const s = db()
        const g = grant(a2.id, tB.id)
        await s.createGrant(g)
        assert.equal(await s.getInstall(g.id), undefined)
        const installer = await s.createUser(user(), [])
        const install: Install = { grantId: g.id, installedBy: installer.id, state: 'pending', error: null, createdAt: T, updatedAt: T }
        const e1 = auditEntry({ appId: a2.id, tenantId: tB.id, objectId: g.id, action: 'install.started' })
        await s.saveInstall(install, { audit: [e1] })
        assert.deepEqual(await s.getInstall(g.id), install)
        const failed: Install = { ...install, installedBy: null, state: 'failed', error: 'the partner answered 500', createdAt: T + 50, updatedAt: T + 50 }
        await s.saveInstall(failed)
        assert.deepEqual(await s.getInstall(g.id), { ...failed, createdAt: T })
        assert.deepEqual(
          (await s.listAudit({ tenantIds: [tB.id], limit: 10 })).map((x) => x.id),
          [e1.id],
        )

        const nowhere = randomUUID()
        const lost = auditEntry({ appId: a2.id, tenantId: tB.id, objectId: nowhere })
        await assert.rejects(s.saveInstall({ ...install, grantId: nowhere }, { audit: [lost] }), 'the grant must exist')
        assert.equal(await s.getInstall(nowhere), undefined)
        assert.deepEqual(
          (await s.listAudit({ tenantIds: [tB.id], limit: 10 })).map((x) => x.id),
          [e1.id],
        )
      })
    })

    describe('concurrent secret rotations', () => {
      const db = freshStore(open)

      it('leave exactly one current secret', async () => {
        const s = db()
        const a = app()
        await s.createApp(a, secret(a.id))
        await Promise.all([1, 2, 3, 4].map((i) => s.rotateSecret(a.id, secret(a.id, { createdAt: T + i }), T + 1000)))
        const live = await s.listLiveSecrets(a.id, T)
        assert.equal(live.length, 5)
        assert.equal(live.filter((x) => x.expiresAt === null).length, 1)
      })
    })

    describe('signing keys', () => {
      const db = freshStore(open)
      const k1 = signingKey({ kid: 'k1', state: 'active' })
      const k2 = signingKey({ kid: 'k2', state: 'next', createdAt: T + 1 })
      const k3 = signingKey({ kid: 'k3', state: 'next', createdAt: T + 2 })

      it('inserts keys, round-trips them and appends a keys change', async () => {
        const s = db()
        assert.deepEqual(await s.listSigningKeys(), [])
        const seq = await s.latestChangeSeq()
        await s.saveSigningKeys([k1, k2], [])
        assert.deepEqual(sortBy(await s.listSigningKeys(), 'kid'), [k1, k2])
        assert.deepEqual(
          (await changesAfter(s, seq)).map((c) => c.kind),
          ['keys'],
        )
      })

      it('inserts and moves keys between states in one call', async () => {
        const s = db()
        const seq = await s.latestChangeSeq()
        await s.saveSigningKeys(
          [k3],
          [
            { kid: 'k1', state: 'retiring', retireAt: T + 86_400_000 },
            { kid: 'k2', state: 'active', retireAt: null },
          ],
        )
        assert.deepEqual(sortBy(await s.listSigningKeys(), 'kid'), [{ ...k1, state: 'retiring', retireAt: T + 86_400_000 }, { ...k2, state: 'active' }, k3])
        assert.deepEqual(
          (await changesAfter(s, seq)).map((c) => c.kind),
          ['keys'],
        )
      })

      it('is atomic: a failing insert applies none of the batch', async () => {
        const s = db()
        const stored = await s.listSigningKeys()
        const seq = await s.latestChangeSeq()
        const k4 = signingKey({ kid: 'k4', state: 'next' })
        await assert.rejects(s.saveSigningKeys([k4, { ...k1, state: 'next' }], [{ kid: 'k3', state: 'active', retireAt: null }]))
        assert.deepEqual(await s.listSigningKeys(), stored)
        assert.equal(await s.latestChangeSeq(), seq)
      })
    })

    describe('signing keys: compare-and-set', () => {
      const db = freshStore(open)

      it('writes nothing and returns false when the keys changed since the plan was read', async () => {
        const s = db()
        const k1 = signingKey({ kid: 'c1', state: 'active' })
        assert.equal(await s.saveSigningKeys([k1], [], []), true)
        const seq = await s.latestChangeSeq()
        // Planned from an empty table, but c1 is there now.
        assert.equal(await s.saveSigningKeys([signingKey({ kid: 'c2', state: 'active' })], [], []), false)
        // Planned from c1 as next, but it is active.
        assert.equal(await s.saveSigningKeys([], [{ kid: 'c1', state: 'retiring', retireAt: T }], [{ kid: 'c1', state: 'next' }]), false)
        assert.deepEqual(await s.listSigningKeys(), [k1])
        assert.equal(await s.latestChangeSeq(), seq)
        assert.equal(await s.saveSigningKeys([], [{ kid: 'c1', state: 'retiring', retireAt: T }], [{ kid: 'c1', state: 'active' }]), true)
        assert.equal((await s.listSigningKeys())[0]!.state, 'retiring')
      })

      it('lets exactly one of several concurrent first starts create keys', async () => {
        const s = db()
        await s.saveSigningKeys([], [{ kid: 'c1', state: 'retired', retireAt: T }])
        const masterKey = randomBytes(32)
        const results = await Promise.all([1, 2, 3].map(() => ensureSigningKeys(s, 'ES256', masterKey)))
        const live = (await s.listSigningKeys()).filter((k) => k.state !== 'retired')
        assert.deepEqual(live.map((k) => k.state).sort(), ['active', 'next'])
        for (const r of results) assert.deepEqual(r.map((k) => k.kid).sort(), (await s.listSigningKeys()).map((k) => k.kid).sort())
      })
    })

    describe('change feed', () => {
      const db = freshStore(open)

      it('starts empty at seq 0', async () => {
        assert.equal(await db().latestChangeSeq(), 0)
        assert.deepEqual(await db().changesSince(0), [])
      })

      it('returns strictly newer changes in order and honours limit', async () => {
        const s = db()
        const t = await s.createTenant(tenant())
        const a = app()
        const g = grant(a.id, t.id)
        await s.createApp(a, secret(a.id), g)
        const seqs: number[] = []
        const step = async (write: () => Promise<unknown>) => {
          await write()
          seqs.push(await s.latestChangeSeq())
        }
        await step(() => s.rotateSecret(a.id, secret(a.id), T + 1))
        await step(() => s.saveSigningKeys([signingKey({ kid: 'feed' })], []))
        await step(() => s.widenGrantScopes(g.id, ['more'], T + 2))
        await step(() => s.revokeGrant(g.id, T + 3))
        await step(() => s.rotateSecret(a.id, secret(a.id), T + 4))
        for (let i = 1; i < seqs.length; i++) assert.ok(seqs[i]! > seqs[i - 1]!, `seq ${seqs[i]} after ${seqs[i - 1]}`)
        assert.ok(seqs[0]! > 0)

        const all = await s.changesSince(0)
        assert.deepEqual(
          all.map((c) => c.seq),
          seqs,
        )
        assert.deepEqual(
          all.map((c) => c.kind),
          ['app', 'keys', 'grant', 'grant', 'app'],
        )
        assert.deepEqual(
          all.map((c) => c.ref),
          [a.id, 'feed', g.id, g.id, a.id],
        )
        for (const c of all) assert.equal(typeof c.createdAt, 'number')

        assert.deepEqual(
          (await s.changesSince(seqs[1]!)).map((c) => c.seq),
          seqs.slice(2),
        )
        assert.deepEqual(
          (await s.changesSince(0, 2)).map((c) => c.seq),
          seqs.slice(0, 2),
        )
        assert.deepEqual(
          (await s.changesSince(seqs[1]!, 2)).map((c) => c.seq),
          seqs.slice(2, 4),
        )
        assert.deepEqual(await s.changesSince(seqs[4]!), [])
      })

      it('changesIn returns the changes with the given sequence numbers that exist, in order', async () => {
        const s = db()
        const all = await s.changesSince(0)
        assert.ok(all.length >= 5)
        assert.deepEqual(await s.changesIn([all[3]!.seq, all[1]!.seq, all[4]!.seq + 1_000_000]), [all[1], all[3]])
        assert.deepEqual(await s.changesIn([all[0]!.seq]), [all[0]])
        assert.deepEqual(await s.changesIn([]), [])
      })

      it('watchChanges wakes the watcher after a commit where the engine signals one, never where it cannot, until stopped', async () => {
        const s = db()
        let wakes = 0
        const errors: unknown[] = []
        const stop = s.watchChanges(
          () => {
            wakes++
          },
          (err) => errors.push(err),
        )
        try {
          if (s.engine === 'postgres') {
            // PostgreSQL wakes once as soon as it listens, for whatever was committed before.
            await until(() => wakes === 1, 'the wake that follows LISTEN')
            await s.saveSigningKeys([signingKey({ kid: 'watched' })], [])
            await until(() => wakes === 2, 'a wake for the commit')
          } else {
            await s.saveSigningKeys([signingKey({ kid: 'watched' })], [])
            await new Promise((r) => setTimeout(r, 50))
            assert.equal(wakes, 0)
          }
        } finally {
          await stop()
        }
        const woken = wakes
        await s.saveSigningKeys([signingKey({ kid: 'unwatched' })], [])
        await new Promise((r) => setTimeout(r, 100))
        assert.equal(wakes, woken, 'no wake after stopping')
        assert.deepEqual(errors, [])
      })
    })

    describe('authorization codes', () => {
      const db = freshStore(open)
      let base: Omit<AuthorizationCode, 'codeHash'>
      let clientId: string
      before(async () => {
        const s = db()
        const t = await s.createTenant(tenant())
        const u = await s.createUser(user(), [{ tenantId: t.id, role: 'member' }])
        const a = app({ tenantId: t.id, redirectUris: ['https://app.example/cb'] })
        clientId = a.clientId
        const g = grant(a.id, t.id)
        await s.createApp(a, secret(a.id), g)
        base = {
          appId: a.id,
          tenantId: t.id,
          userId: u.id,
          grantId: g.id,
          redirectUri: 'https://app.example/cb',
          scopes: ['api', 'work_orders:read'],
          codeChallenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
          resource: null,
          dpopJkt: null,
          expiresAt: T + 60_000,
          consumedAt: null,
          createdAt: T,
        }
      })
      const code = (over: Partial<AuthorizationCode> = {}): AuthorizationCode => ({ ...base, codeHash: hex(), ...over })

      const opaque = (c: AuthorizationCode, over: Partial<OpaqueToken> = {}): OpaqueToken => ({
        tokenHash: hex(),
        grantId: c.grantId,
        appId: c.appId,
        tenantId: c.tenantId,
        userId: c.userId,
        codeHash: c.codeHash,
        createdAt: T + 5,
        revokedAt: null,
        expiresAt: null,
        resource: null,
        jkt: null,
        familyId: null,
        scopes: null,
        ...over,
      })

      it('round-trips a code, with and without redirect_uri and challenge', async () => {
        const s = db()
        const c = code()
        const bare = code({ scopes: [], codeChallenge: null, redirectUri: null })
        await s.saveCode(c)
        await s.saveCode(bare)
        assert.deepEqual(await s.getCode(c.codeHash), c)
        assert.deepEqual(await s.getCode(bare.codeHash), bare)
        assert.equal(await s.getCode(hex()), undefined)
      })

      it('redeems a code once, storing its token in the same step', async () => {
        const s = db()
        const c = code()
        await s.saveCode(c)
        const token = opaque(c)
        assert.equal(await s.redeemCode(c.codeHash, T + 5, { accessToken: token }), true)
        assert.deepEqual(await s.getCode(c.codeHash), { ...c, consumedAt: T + 5 })
        const found = await s.findOpaqueToken(token.tokenHash)
        assert.deepEqual(found?.token, token)
        assert.equal(found?.clientId, clientId)
        assert.deepEqual(found?.grant.scopes, ['api'])
        const second = opaque(c)
        assert.equal(await s.redeemCode(c.codeHash, T + 6, { accessToken: second }), false)
        assert.equal(await s.findOpaqueToken(second.tokenHash), undefined, 'a losing redemption stores no token')
        assert.equal(await s.redeemCode(hex(), T, { accessToken: opaque(c) }), false)
      })

      it('refuses an expired code (expiresAt <= now)', async () => {
        const s = db()
        const atExpiry = code({ expiresAt: T + 1000 })
        const late = code({ expiresAt: T + 1000 })
        const inTime = code({ expiresAt: T + 1000 })
        for (const c of [atExpiry, late, inTime]) await s.saveCode(c)
        assert.equal(await s.redeemCode(atExpiry.codeHash, T + 1000, { accessToken: opaque(atExpiry) }), false)
        assert.equal(await s.redeemCode(late.codeHash, T + 5000, { accessToken: opaque(late) }), false)
        assert.equal(await s.redeemCode(inTime.codeHash, T + 999, { accessToken: opaque(inTime) }), true)
        assert.equal((await s.getCode(atExpiry.codeHash))?.consumedAt, null)
      })

      it('has exactly one winner among 50 concurrent redemptions, and the replays find its token to revoke', async () => {
        const s = db()
        const c = code()
        await s.saveCode(c)
        const tokens = Array.from({ length: 50 }, () => opaque(c))
        const results = await Promise.all(tokens.map((t, i) => s.redeemCode(c.codeHash, T + 10 + i, { accessToken: t })))
        assert.equal(results.filter(Boolean).length, 1)
        const stored = (await Promise.all(tokens.map((t) => s.findOpaqueToken(t.tokenHash)))).filter((r) => r !== undefined)
        assert.equal(stored.length, 1)
        assert.equal(await s.revokeTokensFromCode(c.codeHash, T + 100), 1)
        assert.equal((await s.findOpaqueToken(stored[0]!.token.tokenHash))?.token.revokedAt, T + 100)
        assert.equal(await s.revokeTokensFromCode(c.codeHash, T + 101), 0)
      })

      it('every revocation of opaque tokens appends one grant change for their grant, and only then', async () => {
        const s = db()
        const c = code()
        await s.saveCode(c)
        const a = opaque(c)
        await s.redeemCode(c.codeHash, T + 5, { accessToken: a })
        let seq = await s.latestChangeSeq()
        await s.revokeOpaqueToken(a.tokenHash, T + 7)
        await s.revokeOpaqueToken(a.tokenHash, T + 8)
        assert.deepEqual(await changesAfter(s, seq), [{ kind: 'grant', ref: c.grantId }])

        const replayed = code()
        await s.saveCode(replayed)
        await s.redeemCode(replayed.codeHash, T + 5, { accessToken: opaque(replayed) })
        seq = await s.latestChangeSeq()
        await s.revokeTokensFromCode(replayed.codeHash, T + 9)
        await s.revokeTokensFromCode(replayed.codeHash, T + 10)
        assert.deepEqual(await changesAfter(s, seq), [{ kind: 'grant', ref: replayed.grantId }])

        // A refresh family's opaque access tokens (family id: the code's hash).
        const family = code()
        await s.saveCode(family)
        await s.redeemCode(family.codeHash, T + 5, { accessToken: opaque(family, { codeHash: null, familyId: family.codeHash }) })
        seq = await s.latestChangeSeq()
        await s.revokeRefreshFamily(family.codeHash, T + 11)
        await s.revokeRefreshFamily(family.codeHash, T + 12)
        assert.deepEqual(await changesAfter(s, seq), [{ kind: 'grant', ref: family.grantId }])
      })

      it('revokes an opaque token once; revoking its grant revokes the rest', async () => {
        const s = db()
        const c = code()
        await s.saveCode(c)
        const a = opaque(c)
        await s.redeemCode(c.codeHash, T + 5, { accessToken: a })
        const revoked = await s.revokeOpaqueToken(a.tokenHash, T + 7)
        assert.deepEqual(revoked, { ...a, revokedAt: T + 7 })
        assert.equal(await s.revokeOpaqueToken(a.tokenHash, T + 8), undefined)
        assert.equal(await s.revokeOpaqueToken(hex(), T + 8), undefined)

        const c2 = code()
        await s.saveCode(c2)
        const b = opaque(c2)
        await s.redeemCode(c2.codeHash, T + 5, { accessToken: b })
        assert.equal(await s.revokeGrant(c2.grantId, T + 9), true)
        const found = await s.findOpaqueToken(b.tokenHash)
        assert.equal(found?.token.revokedAt, T + 9)
        assert.equal(found?.grant.status, 'revoked')
      })

      const refresh = (c: AuthorizationCode, over: Partial<RefreshToken> = {}): RefreshToken => ({
        tokenHash: hex(),
        familyId: c.codeHash,
        grantId: c.grantId,
        appId: c.appId,
        tenantId: c.tenantId,
        userId: c.userId,
        scopes: ['api', 'work_orders:read'],
        resource: 'https://api.example/mcp',
        jkt: null,
        familyCreatedAt: T,
        createdAt: T + 5,
        expiresAt: T + 60_000,
        usedAt: null,
        revokedAt: null,
        ...over,
      })

      it('stores a refresh token with the code, and rotates it once: a second use ends the family and its access tokens', async () => {
        const s = db()
        const c = code()
        await s.saveCode(c)
        const first = refresh(c, { jkt: 'x'.repeat(43) })
        assert.equal(await s.redeemCode(c.codeHash, T + 5, { refreshToken: first }), true)
        assert.deepEqual(await s.findRefreshToken(first.tokenHash), first)
        const second = refresh(c, { createdAt: T + 10 })
        const access = opaque(c, { codeHash: null, familyId: c.codeHash, expiresAt: T + 900_000, scopes: ['api'], resource: 'https://api.example/mcp', jkt: 'y'.repeat(43) })
        assert.equal(await s.rotateRefreshToken(first.tokenHash, T + 10, { refreshToken: second, accessToken: access }), 'rotated')
        assert.equal((await s.findRefreshToken(first.tokenHash))?.usedAt, T + 10)
        assert.deepEqual((await s.findOpaqueToken(access.tokenHash))?.token, access)
        const third = refresh(c)
        assert.equal(await s.rotateRefreshToken(first.tokenHash, T + 11, { refreshToken: third }), 'reused')
        assert.equal(await s.findRefreshToken(third.tokenHash), undefined, 'a reuse stores nothing')
        assert.equal((await s.findRefreshToken(second.tokenHash))?.revokedAt, T + 11)
        assert.equal((await s.findOpaqueToken(access.tokenHash))?.token.revokedAt, T + 11)
        assert.equal(await s.rotateRefreshToken(second.tokenHash, T + 12, { refreshToken: refresh(c) }), 'invalid', 'a revoked token does not rotate')
        assert.equal(await s.rotateRefreshToken(hex(), T + 12, {}), 'invalid')
      })

      it('refuses to rotate an expired refresh token; exactly one of 20 concurrent rotations wins', async () => {
        const s = db()
        const c = code()
        await s.saveCode(c)
        const old = refresh(c, { expiresAt: T + 100 })
        await s.redeemCode(c.codeHash, T + 5, { refreshToken: old })
        assert.equal(await s.rotateRefreshToken(old.tokenHash, T + 100, { refreshToken: refresh(c) }), 'invalid')
        assert.equal((await s.findRefreshToken(old.tokenHash))?.usedAt, null)

        const c2 = code()
        await s.saveCode(c2)
        const live = refresh(c2)
        await s.redeemCode(c2.codeHash, T + 5, { refreshToken: live })
        const results = await Promise.all(Array.from({ length: 20 }, (_, i) => s.rotateRefreshToken(live.tokenHash, T + 10 + i, { refreshToken: refresh(c2) })))
        assert.equal(results.filter((r) => r === 'rotated').length, 1)
      })

      it('revokeRefreshFamily, revokeTokensFromCode and revokeGrant end refresh tokens', async () => {
        const s = db()
        const own = await s.createGrant(grant(base.appId, (await s.createTenant(tenant())).id))
        const [c1, c2, c3] = [code(), code(), code({ grantId: own.id, tenantId: own.tenantId })]
        for (const c of [c1, c2, c3]) await s.saveCode(c)
        const [r1, r2, r3] = [refresh(c1), refresh(c2), refresh(c3)]
        await s.redeemCode(c1.codeHash, T + 5, { refreshToken: r1 })
        await s.redeemCode(c2.codeHash, T + 5, { refreshToken: r2 })
        await s.redeemCode(c3.codeHash, T + 5, { refreshToken: r3 })
        assert.equal(await s.revokeRefreshFamily(c1.codeHash, T + 6), 1)
        assert.equal(await s.revokeRefreshFamily(c1.codeHash, T + 7), 0)
        assert.equal((await s.findRefreshToken(r1.tokenHash))?.revokedAt, T + 6)
        assert.equal(await s.revokeTokensFromCode(c2.codeHash, T + 8), 1)
        assert.equal((await s.findRefreshToken(r2.tokenHash))?.revokedAt, T + 8)
        assert.equal(await s.revokeGrant(c3.grantId, T + 9), true)
        assert.equal((await s.findRefreshToken(r3.tokenHash))?.revokedAt, T + 9)
      })

      it('keeps a pushed request until it is used or expires; exactly one use wins', async () => {
        const s = db()
        const pushed = { uriHash: hex(), appId: base.appId, params: { client_id: clientId, scope: 'api', state: 'é"' }, createdAt: T, expiresAt: T + 600_000, usedAt: null }
        await s.savePushedRequest(pushed)
        assert.deepEqual(await s.getPushedRequest(pushed.uriHash, T + 1), pushed)
        assert.equal(await s.getPushedRequest(pushed.uriHash, T + 600_000), undefined)
        assert.equal(await s.getPushedRequest(hex(), T + 1), undefined)
        const uses = await Promise.all(Array.from({ length: 10 }, () => s.usePushedRequest(pushed.uriHash, T + 2)))
        assert.equal(uses.filter(Boolean).length, 1)
        assert.equal(await s.getPushedRequest(pushed.uriHash, T + 3), undefined)
        // A later push clears what had expired by its time.
        const later = { ...pushed, uriHash: hex(), createdAt: T + 700_000, expiresAt: T + 1_300_000 }
        await s.savePushedRequest(later)
        assert.equal(await s.usePushedRequest(pushed.uriHash, T + 700_001), false)
        assert.equal(await s.usePushedRequest(later.uriHash, T + 700_001), true)
      })
    })

    describe('initial access tokens', () => {
      const db = freshStore(open)

      it('keeps initial access tokens by hash, newest first, and revokes each once with what goes alongside', async () => {
        const s = db()
        const made = (over: Partial<InitialAccessToken> = {}): InitialAccessToken => ({
          id: randomUUID(),
          tokenHash: hex(),
          note: 'for é"agents',
          createdBy: 'cli',
          createdAt: T,
          expiresAt: null,
          revokedAt: null,
          ...over,
        })
        const [older, newer] = [made(), made({ createdAt: T + 1, expiresAt: T + 86_400_000 })]
        const entry = auditEntry({ objectId: older.id, action: 'registration_token.created' })
        await s.saveInitialAccessToken(older, { audit: [entry] })
        await s.saveInitialAccessToken(newer)
        assert.deepEqual(await s.findInitialAccessToken(older.tokenHash), older)
        assert.deepEqual(await s.findInitialAccessToken(newer.tokenHash), newer)
        assert.equal(await s.findInitialAccessToken(hex()), undefined)
        assert.deepEqual(await s.listInitialAccessTokens(), [newer, older])
        assert.ok((await s.listAudit({ limit: 10 })).some((e) => e.id === entry.id))
        await assert.rejects(s.saveInitialAccessToken(made({ tokenHash: older.tokenHash })), 'a hash is one token')

        const revoked = auditEntry({ objectId: older.id, action: 'registration_token.revoked' })
        assert.equal(await s.revokeInitialAccessToken(older.id, T + 5, { audit: [revoked] }), true)
        assert.equal(await s.revokeInitialAccessToken(older.id, T + 6), false, 'once')
        assert.equal(await s.revokeInitialAccessToken(randomUUID(), T + 6), false)
        assert.deepEqual(await s.findInitialAccessToken(older.tokenHash), { ...older, revokedAt: T + 5 })
        assert.equal((await s.listAudit({ limit: 10 })).filter((e) => e.id === revoked.id).length, 1)
      })
    })

    describe('sessions', () => {
      const db = freshStore(open)

      it('finds a session until it expires, and never after it is deleted', async () => {
        const s = db()
        const u = await s.createUser(user(), [])
        assert.deepEqual(await s.getUser(u.id), u)
        assert.equal(await s.getUser(randomUUID()), undefined)
        const session: Session = { idHash: hex(), userId: u.id, createdAt: T, expiresAt: T + 1000 }
        await s.createSession(session)
        assert.deepEqual(await s.getSession(session.idHash, T + 999), session)
        assert.equal(await s.getSession(session.idHash, T + 1000), undefined)
        await s.deleteSession(session.idHash)
        assert.equal(await s.getSession(session.idHash, T), undefined)
        assert.equal(await s.getSession(hex(), T), undefined)
      })

      it("deleteUserSessions ends every session of a user but the one kept, and no one else's", async () => {
        const s = db()
        const [u, other] = [await s.createUser(user(), []), await s.createUser(user(), [])]
        const session = (userId: string): Session => ({ idHash: hex(), userId, createdAt: T, expiresAt: T + 1000 })
        const [keep, end1, end2, theirs] = [session(u.id), session(u.id), session(u.id), session(other.id)]
        for (const x of [keep, end1, end2, theirs]) await s.createSession(x)
        assert.equal(await s.deleteUserSessions(u.id, keep.idHash), 2)
        assert.deepEqual(await s.getSession(keep.idHash, T), keep)
        assert.equal(await s.getSession(end1.idHash, T), undefined)
        assert.deepEqual(await s.getSession(theirs.idHash, T), theirs)
        assert.equal(await s.deleteUserSessions(u.id), 1)
        assert.equal(await s.getSession(keep.idHash, T), undefined)
      })
    })

    describe('invitations', () => {
      // A store of its own: the mail saved here would be counted by the mail tests.
      const db = freshStore(open)

      it("saveEmailToken commits the mail and audit alongside; listInvitations gives a tenant's open invitations, newest first", async () => {
        const s = db()
        const t = await s.createTenant(tenant())
        const older = emailToken({ purpose: 'invite', tenantId: t.id, role: 'member', createdAt: T, expiresAt: T + 3_600_000 })
        const newer = emailToken({ purpose: 'invite', tenantId: t.id, role: 'owner', createdAt: T + 1, expiresAt: T + 3_600_000 })
        const spent = emailToken({ purpose: 'invite', tenantId: t.id, role: 'admin', createdAt: T + 2 })
        const expired = emailToken({ purpose: 'invite', tenantId: t.id, role: 'admin', createdAt: T, expiresAt: T + 10 })
        const operator = emailToken({ purpose: 'invite', createdAt: T + 3 })
        const verify = emailToken({ purpose: 'verify', tenantId: t.id })
        const mail = mailMessage({ to: older.email, kind: 'invite' })
        const audit = auditEntry({ tenantId: t.id, objectId: older.email, action: 'invitation.sent' })
        await s.saveEmailToken(older, { mail: [mail], audit: [audit] })
        for (const x of [newer, spent, expired, operator, verify]) await s.saveEmailToken(x)
        await s.useEmailToken(spent.idHash, T + 5)
        assert.deepEqual(await s.listInvitations(t.id, T + 100), [newer, older])
        const toOperate = await s.listInvitations(null, T + 100)
        assert.ok(toOperate.some((x) => x.idHash === operator.idHash) && toOperate.every((x) => x.tenantId === null && x.purpose === 'invite'))
        assert.deepEqual(
          (await s.listMail({ query: older.email })).map((m) => m.id),
          [mail.id],
        )
        assert.deepEqual(
          (await s.listAudit({ tenantIds: [t.id], limit: 10 })).map((e) => e.id),
          [audit.id],
        )
      })
    })

    describe('email links, mail and security events', () => {
      const db = freshStore(open)

      it('gives an email token until it expires; useEmailToken spends it once, exactly one of 20 concurrent uses winning', async () => {
        const s = db()
        const t = await s.createTenant(tenant())
        const u = await s.createUser(user(), [])
        const invite = emailToken({ purpose: 'invite', userId: null, tenantId: t.id, role: 'admin', invitedBy: u.id })
        const reset = emailToken({ purpose: 'reset', userId: u.id })
        for (const x of [invite, reset]) await s.saveEmailToken(x)
        assert.deepEqual(await s.getEmailToken(invite.idHash, T + 1), invite)
        assert.equal(await s.getEmailToken(invite.idHash, invite.expiresAt), undefined)
        assert.equal(await s.useEmailToken(reset.idHash, reset.expiresAt), undefined, 'expired')
        const uses = await Promise.all(Array.from({ length: 20 }, () => s.useEmailToken(reset.idHash, T + 1)))
        assert.deepEqual(
          uses.filter((x) => x !== undefined),
          [{ ...reset, usedAt: T + 1 }],
        )
        assert.equal(await s.getEmailToken(reset.idHash, T + 2), undefined, 'spent')
        assert.equal(await s.useEmailToken(hex(), T), undefined)
      })

      it('saves mail, updates its delivery state, and lists it newest first by state and recipient', async () => {
        const s = db()
        const [a, b] = [
          mailMessage({ to: 'ann@example.com', createdAt: T + 1 }),
          mailMessage({ to: 'bob@example.com', subject: 'Reset your password', createdAt: T + 2, state: 'pending' }),
        ]
        for (const m of [a, b]) await s.saveMail(m)
        assert.deepEqual(await s.listMail(), [b, a])
        assert.deepEqual(await s.listMail({ state: 'pending' }), [b])
        assert.deepEqual(await s.listMail({ query: 'RESET' }), [b])
        assert.deepEqual(await s.listMail({ limit: 1, offset: 1 }), [a])
        const sent: MailMessage = { ...b, state: 'sent', attempts: 1, sentAt: T + 3, text: null, error: null, subject: 'ignored', to: 'ignored' }
        await s.updateMail(sent)
        assert.deepEqual(await s.listMail({ state: 'sent' }), [{ ...sent, subject: b.subject, to: b.to }])
      })

      it('leases pending mail to one claimer at a time, oldest first, until the lease ends or the mail is saved', async () => {
        const s = db()
        const [a, b, local] = [
          mailMessage({ to: 'ann@example.com', createdAt: T + 1, state: 'pending' }),
          mailMessage({ to: 'bob@example.com', createdAt: T + 2, state: 'pending' }),
          mailMessage({ to: 'cat@example.com', createdAt: T, state: 'local' }),
        ]
        for (const m of [b, a, local]) await s.saveMail(m)
        const claims = await Promise.all(Array.from({ length: 8 }, () => s.claimMail(T + 10, 60_000, 10)))
        const won = claims.filter((c) => c.length > 0)
        assert.equal(won.length, 1, 'one of 8 concurrent claims gets the mail')
        assert.deepEqual(
          won[0]?.map((m) => [m.id, m.attempts]),
          [
            [a.id, 1],
            [b.id, 1],
          ],
          'oldest first, each attempt counted',
        )
        assert.deepEqual(await s.claimMail(T + 20, 60_000, 10), [], 'leased')
        assert.deepEqual(
          (await s.claimMail(T + 60_011, 60_000, 1)).map((m) => [m.id, m.attempts]),
          [[a.id, 2]],
          'claimable again once the lease ended',
        )
        await s.updateMail({ ...b, state: 'sent', attempts: 1, sentAt: T + 30, text: null })
        await s.updateMail({ ...a, attempts: 2, error: 'connection refused' }, T + 300_000)
        assert.deepEqual(await s.claimMail(T + 200_000, 60_000, 10), [], 'sent mail is not claimed, local mail never is, a retry waits')
        assert.deepEqual(
          (await s.claimMail(T + 300_001, 60_000, 10)).map((m) => [m.id, m.attempts, m.error]),
          [[a.id, 3, 'connection refused']],
        )
      })

      it('records security events and lists them newest first by kind, user, address and search', async () => {
        const s = db()
        const u = randomUUID()
        const failed = securityEvent({ kind: 'sign_in.failed', at: T + 1, email: 'Ann@Example.com', address: '198.51.100.1', details: { reason: 'password' } })
        const ok = securityEvent({ kind: 'sign_in.new_address', at: T + 2, userId: u, address: '198.51.100.1' })
        const replay = securityEvent({ kind: 'code.replayed', at: T + 3, clientId: 'fg_replayer', tenantId: randomUUID() })
        for (const e of [failed, ok, replay]) await s.recordSecurityEvent(e)
        assert.deepEqual(await s.listSecurityEvents(), [replay, ok, failed])
        assert.deepEqual(await s.listSecurityEvents({ kinds: ['sign_in.failed', 'sign_in.new_address'] }), [ok, failed])
        assert.deepEqual(await s.listSecurityEvents({ userId: u, address: '198.51.100.1' }), [ok])
        assert.deepEqual(await s.listSecurityEvents({ userId: u, address: '198.51.100.2' }), [])
        assert.deepEqual(await s.listSecurityEvents({ query: 'ann@example' }), [failed])
        assert.deepEqual(await s.listSecurityEvents({ query: 'replayer' }), [replay])
        assert.deepEqual(await s.listSecurityEvents({ limit: 1, offset: 2 }), [failed])
      })
    })

    describe('secret handles', () => {
      const db = freshStore(open)

      it('gives a handle to its own browser once with its secret, then without, and to no one after it expires', async () => {
        const s = db()
        const a = app()
        await s.createApp(a, secret(a.id))
        const handle: SecretHandle = {
          idHash: hex(),
          browserHash: hex(),
          appId: a.id,
          heading: 'New client secret',
          note: 'n',
          secretEnc: 'v1.sealed',
          createdAt: T,
          expiresAt: T + 1000,
          shownAt: null,
        }
        await s.saveSecretHandle(handle)
        assert.equal(await s.takeSecretHandle(handle.idHash, hex(), T + 1), undefined, 'another browser')
        assert.equal(await s.takeSecretHandle(hex(), handle.browserHash, T + 1), undefined, 'unknown handle')
        const views = await Promise.all([1, 2, 3].map(() => s.takeSecretHandle(handle.idHash, handle.browserHash, T + 2)))
        const firsts = views.filter((v) => v?.first)
        assert.equal(firsts.length, 1, 'exactly one view gets the secret')
        assert.deepEqual(firsts[0]?.handle, handle)
        const again = await s.takeSecretHandle(handle.idHash, handle.browserHash, T + 3)
        assert.equal(again?.first, false)
        assert.equal(again?.handle.secretEnc, '', 'the sealed secret is gone once shown')
        assert.equal(await s.takeSecretHandle(handle.idHash, handle.browserHash, T + 1000), undefined, 'expired')
        // Saving a new handle drops the expired ones.
        await s.saveSecretHandle({ ...handle, idHash: hex(), createdAt: T + 2000, expiresAt: T + 3000 })
        assert.equal(await s.takeSecretHandle(handle.idHash, handle.browserHash, T), undefined)
      })
    })

    describe('records', () => {
      const db = freshStore(open)

      it('round-trips records, lists a kind newest first, by creator, and pages by cursor', async () => {
        const s = db()
        const t = await s.createTenant(tenant())
        const other = await s.createTenant(tenant())
        const rec = (over: Partial<ApiRecord>): ApiRecord => ({
          id: randomUUID(),
          tenantId: t.id,
          kind: 'field',
          data: { name: 'North', area_ha: 12.5, tags: ['a'] },
          createdByClientId: 'app-a',
          createdByUserId: null,
          createdAt: T,
          ...over,
        })
        const made = [
          rec({ createdAt: T + 1 }),
          rec({ createdAt: T + 2, createdByClientId: 'app-b' }),
          rec({ createdAt: T + 2 }),
          rec({ createdAt: T + 3, createdByClientId: null, createdByUserId: randomUUID() }),
          rec({ kind: 'alert', createdAt: T + 4 }),
        ]
        for (const r of made) assert.deepEqual(await s.createRecord(r), r)
        await s.createRecord(rec({ tenantId: other.id }))
        assert.deepEqual(await s.getRecord(t.id, 'field', made[0]!.id), made[0])
        assert.equal(await s.getRecord(t.id, 'alert', made[0]!.id), undefined, 'kind is part of the key')
        assert.equal(await s.getRecord(other.id, 'field', made[0]!.id), undefined, 'so is the tenant')
        const fields = await s.listRecords(t.id, 'field', { limit: 10 })
        assert.equal(fields.length, 4)
        for (let i = 1; i < fields.length; i++) assert.ok(fields[i - 1]!.createdAt >= fields[i]!.createdAt)
        const own = await s.listRecords(t.id, 'field', { limit: 10, createdByClientId: 'app-a' })
        assert.deepEqual(sortById(own), sortById([made[0]!, made[2]!]))
        const first = await s.listRecords(t.id, 'field', { limit: 2 })
        const rest = await s.listRecords(t.id, 'field', { limit: 10, before: { createdAt: first[1]!.createdAt, id: first[1]!.id } })
        assert.deepEqual(
          [...first, ...rest].map((r) => r.id),
          fields.map((r) => r.id),
        )
      })
    })

    describe('audit log', () => {
      const db = freshStore(open)

      it('recordAudit stores an entry; listAudit gives entries about the apps or tenants asked for, newest first, up to limit', async () => {
        const s = db()
        const [t1, t2] = [await s.createTenant(tenant()), await s.createTenant(tenant())]
        const [a1, a2] = [app(), app()]
        for (const a of [a1, a2]) await s.createApp(a, secret(a.id))
        const onA1 = auditEntry({
          at: T + 1,
          appId: a1.id,
          objectId: a1.id,
          actorUserId: randomUUID(),
          address: '203.0.113.7',
          details: { changed: ['name'], n: 2, nested: { ok: true } },
        })
        const onT1 = auditEntry({ at: T + 2, tenantId: t1.id, objectId: t1.id, actor: 'admin' })
        const onBoth = auditEntry({ at: T + 3, appId: a2.id, tenantId: t1.id, objectId: randomUUID(), clientId: 'fg_named' })
        const onT2 = auditEntry({ at: T + 4, tenantId: t2.id, objectId: t2.id })
        const [tieLow, tieHigh] = [auditEntry({ at: T + 5, objectId: 'x' }), auditEntry({ at: T + 5, objectId: 'y' })].sort((x, y) => (x.id < y.id ? -1 : 1))
        for (const e of [onT1, onA1, onT2, onBoth, tieHigh!, tieLow!]) await s.recordAudit(e)

        // An entry naming only an app's id gets that app's client_id.
        const stored = { ...onA1, clientId: a1.clientId }
        assert.deepEqual(await s.listAudit({ limit: 10 }), [tieHigh, tieLow, onT2, onBoth, onT1, stored])
        assert.deepEqual(await s.listAudit({ limit: 2 }), [tieHigh, tieLow])
        assert.deepEqual(await s.listAudit({ appIds: [a1.id], limit: 10 }), [stored])
        assert.deepEqual(await s.listAudit({ tenantIds: [t1.id], limit: 10 }), [onBoth, onT1])
        assert.deepEqual(await s.listAudit({ appIds: [a1.id, a2.id], limit: 10 }), [onBoth, stored])
        assert.deepEqual(await s.listAudit({ appIds: [a1.id], tenantIds: [t2.id], limit: 10 }), [onT2, stored])
        assert.deepEqual(await s.listAudit({ appIds: [a1.id], tenantIds: [t1.id], limit: 1 }), [onBoth])
        // Owning neither apps nor tenants, an owner sees nothing.
        assert.deepEqual(await s.listAudit({ appIds: [], tenantIds: [], limit: 10 }), [])
        assert.deepEqual(await s.listAudit({ appIds: [], limit: 10 }), [])
        assert.deepEqual(await s.listAudit({ appIds: [randomUUID()], limit: 10 }), [])
      })

      it('listAudit finds part of the actor, action or client_id, and pages by offset', async () => {
        const s = db()
        const tag = hex()
        const byAnn = auditEntry({ at: T + 10, actor: `ann.${tag}@example.com`, action: 'app.updated' })
        const reviewed = auditEntry({ at: T + 11, action: `app.approved`, clientId: `fg_${tag}` })
        for (const e of [byAnn, reviewed]) await s.recordAudit(e)
        assert.deepEqual(await s.listAudit({ query: `ANN.${tag}`, limit: 10 }), [byAnn])
        assert.deepEqual(await s.listAudit({ query: tag, limit: 10 }), [reviewed, byAnn])
        assert.deepEqual(await s.listAudit({ query: tag, limit: 1, offset: 1 }), [byAnn])
        assert.deepEqual(await s.listAudit({ query: 'app.approved', limit: 10 }), [reviewed])
      })
    })

    describe('Data API outbox', () => {
      const db = freshStore(open)
      const event = (appId: string, over: Partial<OutboxEvent> = {}): OutboxEvent => ({
        id: `evt_${hex()}`,
        appId,
        tenantId: null,
        type: 'record.created',
        body: '{"a":1}',
        state: 'pending',
        attempts: 0,
        nextAttemptAt: T,
        lockedUntil: null,
        createdAt: T,
        deliveredAt: null,
        lastError: null,
        ...over,
      })

      it('writes events with the change, leases each to one claimer, and records attempts under the lease only', async () => {
        const s = db()
        const t = await s.createTenant(tenant())
        const a = app()
        await s.createApp(a, secret(a.id))
        const rec: ApiRecord = { id: randomUUID(), tenantId: t.id, kind: 'alert', data: {}, createdByClientId: a.clientId, createdByUserId: null, createdAt: T }
        const events = Array.from({ length: 30 }, () => event(a.id))
        await s.createRecord(rec, { events: events.slice(0, 10) })
        const g = grant(a.id, t.id)
        await s.createGrant(g, { events: events.slice(10, 20) })
        await s.revokeGrant(g.id, T, { events: events.slice(20, 30) })
        // Five claimers at once: every event goes to exactly one.
        const claims = await Promise.all([1, 2, 3, 4, 5].map(() => s.claimEvents(T + 1, T + 60_000, 8)))
        const claimed = claims.flat().map((e) => e.id)
        assert.equal(claimed.length, 30)
        assert.equal(new Set(claimed).size, 30)
        assert.deepEqual(await s.claimEvents(T + 2, T + 60_000, 50), [], 'leased events are not handed out again')
        assert.equal((await s.claimEvents(T + 60_001, T + 120_000, 50)).length, 30, 'an expired lease frees them')

        const first = events[0]!
        const attempt = { id: randomUUID(), eventId: first.id, at: T + 60_002, status: 500, error: 'the receiver answered 500', durationMs: 12 }
        const retry = { id: first.id, state: 'pending' as const, attempts: 1, nextAttemptAt: T + 70_000, deliveredAt: null, lastError: attempt.error }
        assert.deepEqual(await s.finishAttempts([{ event: retry, leasedUntil: T + 60_000, attempt }]), [false], 'not under a lease this caller holds')
        assert.deepEqual(await s.finishAttempts([{ event: retry, leasedUntil: T + 120_000, attempt }]), [true])
        assert.deepEqual(await s.listAttempts(first.id), [attempt])
        assert.deepEqual(await s.getEvent(first.id), { ...first, ...retry, lockedUntil: null })
        const done = { id: first.id, state: 'delivered' as const, attempts: 2, nextAttemptAt: T + 70_000, deliveredAt: T + 70_001, lastError: null }
        const [again] = await s.claimEvents(T + 70_000, T + 80_000, 1)
        assert.equal(again?.id, first.id)
        assert.deepEqual(await s.finishAttempts([{ event: done, leasedUntil: T + 80_000, attempt: { ...attempt, id: randomUUID(), status: 204, error: null } }]), [true])
        assert.equal((await s.listEvents({ appId: a.id, state: 'delivered', limit: 10 })).length, 1)
        const sentAgain = auditEntry({ appId: a.id, objectId: first.id, action: 'event.redelivered' })
        assert.equal(await s.redeliver(first.id, T + 90_000, { audit: [sentAgain] }), true)
        const notAgain = auditEntry({ appId: a.id, objectId: first.id, action: 'event.redelivered' })
        assert.equal(await s.redeliver(first.id, T + 90_000, { audit: [notAgain] }), false, 'already pending')
        assert.deepEqual(
          (await s.listAudit({ appIds: [a.id], limit: 5 })).map((e) => e.id),
          [sentAgain.id],
          'what goes along commits only with a redelivery',
        )
        const redelivered = await s.getEvent(first.id)
        assert.equal(redelivered?.state, 'pending')
        assert.equal(redelivered?.body, first.body, 'same body, same id')
      })

      it('records a batch of attempts at once, each only under its own lease', async () => {
        const s = db()
        const a = app()
        await s.createApp(a, secret(a.id))
        // Due before anything the other tests left, so these are the ones claimed.
        const events = [event(a.id, { nextAttemptAt: T - 10 }), event(a.id, { nextAttemptAt: T - 10 }), event(a.id, { nextAttemptAt: T - 10 })]
        await s.queueEvents(events)
        assert.equal((await s.claimEvents(T + 1, T + 60_000, 2)).length, 2)
        const [later] = await s.claimEvents(T + 1, T + 70_000, 1)
        assert.ok(later && events.some((e) => e.id === later.id))
        const stale = events.find((e) => e.id !== later.id)
        const finished = events.map((e) => ({
          event: { id: e.id, state: 'delivered' as const, attempts: 1, nextAttemptAt: e.nextAttemptAt, deliveredAt: T + 5, lastError: null },
          leasedUntil: e.id === later.id ? T + 70_000 : e === stale ? T + 1 : T + 60_000,
          attempt: { id: randomUUID(), eventId: e.id, at: T + 2, status: 204, error: null, durationMs: 3 },
        }))
        assert.deepEqual(
          await s.finishAttempts(finished),
          events.map((e) => e !== stale),
          'the one under a lease it does not hold is not recorded',
        )
        assert.deepEqual(await s.finishAttempts([]), [])
        for (const f of finished) {
          const recorded = f.event.id !== stale?.id
          assert.deepEqual(await s.listAttempts(f.event.id), recorded ? [f.attempt] : [])
          assert.equal((await s.getEvent(f.event.id))?.state, recorded ? 'delivered' : 'pending')
        }
      })

      it('queues an event with its audit entry, pages events by state, and retries a waiting one now', async () => {
        const s = db()
        const a = app()
        await s.createApp(a, secret(a.id))
        const waiting = event(a.id, { createdAt: T + 1, nextAttemptAt: T + 3_600_000, attempts: 2, lastError: 'the receiver answered 500' })
        const newer = event(a.id, { createdAt: T + 2 })
        const entry: AuditEntry = {
          id: randomUUID(),
          at: T,
          actor: 'cli',
          actorUserId: null,
          action: 'event.test_sent',
          appId: a.id,
          clientId: null,
          tenantId: null,
          objectId: waiting.id,
          address: null,
          details: {},
        }
        await s.queueEvents([waiting, newer], { audit: [entry] })
        assert.deepEqual(await s.getEvent(waiting.id), waiting)
        assert.deepEqual(
          (await s.listAudit({ appIds: [a.id], limit: 5 })).map((e) => e.id),
          [entry.id],
          'the audit entry came with it',
        )
        assert.deepEqual(
          (await s.listEvents({ appId: a.id, limit: 1 })).map((e) => e.id),
          [newer.id],
          'newest first',
        )
        assert.deepEqual(
          (await s.listEvents({ appId: a.id, limit: 1, offset: 1 })).map((e) => e.id),
          [waiting.id],
          'the next page',
        )
        assert.deepEqual(await s.listEvents({ appId: a.id, state: 'failed', limit: 5 }), [])
        const retried = auditEntry({ appId: a.id, objectId: waiting.id, action: 'event.retried' })
        assert.equal(await s.retryNow(waiting.id, T + 10, { audit: [retried] }), true)
        assert.equal((await s.getEvent(waiting.id))?.nextAttemptAt, T + 10, 'due now')
        assert.deepEqual((await s.claimEvents(T + 10, T + 60_000, 5)).map((e) => e.id).sort(), [waiting.id, newer.id].sort())
        const busy = auditEntry({ appId: a.id, objectId: waiting.id, action: 'event.retried' })
        assert.equal(await s.retryNow(waiting.id, T + 20, { audit: [busy] }), false, 'leased to a dispatcher: it is being attempted')
        assert.deepEqual((await s.listAudit({ appIds: [a.id], limit: 5 })).map((e) => e.id).sort(), [entry.id, retried.id].sort(), 'what goes along commits only with a retry')
        assert.equal(await s.retryNow(`evt_${hex()}`, T + 20), false, 'unknown')
        const attempt = { id: randomUUID(), eventId: newer.id, at: T + 30, status: 204, error: null, durationMs: 3 }
        await s.finishAttempts([
          { event: { id: newer.id, state: 'delivered', attempts: 1, nextAttemptAt: T, deliveredAt: T + 30, lastError: null }, leasedUntil: T + 60_000, attempt },
        ])
        assert.equal(await s.retryNow(newer.id, T + 70_000), false, 'delivered: redeliver it instead')
        assert.deepEqual(
          (await s.listEvents({ appId: a.id, state: 'delivered', limit: 5 })).map((e) => e.id),
          [newer.id],
        )
        const lost = event(a.id)
        await assert.rejects(s.queueEvents([lost], { audit: [entry] }), 'the audit id is taken')
        assert.equal(await s.getEvent(lost.id), undefined, 'nothing of a failed queueing stays')
      })

      it('writes no events when the change fails', async () => {
        const s = db()
        const a = app()
        await s.createApp(a, secret(a.id))
        const e = event(a.id)
        await assert.rejects(s.createGrant(grant(a.id, randomUUID()), { events: [e] }))
        assert.equal(await s.getEvent(e.id), undefined)
      })

      it('commits what goes alongside a change (audit, events, tenant, install) with it, and none of it when the change fails', async () => {
        const s = db()
        const made = tenant()
        const a = app({ tenantId: made.id })
        const entry = (objectId: string): AuditEntry => ({
          id: randomUUID(),
          at: T,
          actor: 'cli',
          actorUserId: null,
          action: 'test',
          appId: a.id,
          clientId: null,
          tenantId: made.id,
          objectId,
          address: null,
          details: { n: 1 },
        })
        const onApp = entry(a.id)
        await s.createApp(a, secret(a.id), undefined, { tenant: made, audit: [onApp] })
        assert.deepEqual(await s.getTenant(made.id), made)
        const g = grant(a.id, made.id)
        const install: Install = { grantId: g.id, installedBy: null, state: 'pending', error: null, createdAt: T, updatedAt: T }
        const [onGrant, onWiden] = [entry(g.id), entry(g.id)]
        const e = event(a.id)
        await s.createGrant(g, { install, events: [e], audit: [onGrant] })
        assert.deepEqual(await s.getInstall(g.id), install)
        assert.equal((await s.getEvent(e.id))?.id, e.id)
        // Called with the grant as it ends up, even when the scopes did not grow.
        await s.widenGrantScopes(g.id, ['api'], T + 1, (as) => ({ audit: [{ ...onWiden, details: { scopes: as.scopes } }] }))
        const audited = () => s.listAudit({ appIds: [a.id], limit: 10 }).then((l) => l.map((x) => x.id).sort())
        assert.deepEqual(await audited(), [onApp.id, onGrant.id, onWiden.id].sort())
        // An entry naming only the app's id gets the app's client_id from the store; one naming it keeps it.
        const stored = await s.listAudit({ appIds: [a.id], limit: 10 })
        assert.deepEqual([...new Set(stored.map((x) => x.clientId))], [a.clientId])
        await s.recordAudit({ ...entry(a.id), at: T + 5, clientId: 'fg_named' })
        assert.equal((await s.listAudit({ appIds: [a.id], limit: 1 }))[0]?.clientId, 'fg_named')

        const other = tenant()
        const lost = [entry(a.id), entry(a.id)]
        const lostEvent = event(a.id)
        await assert.rejects(s.createApp({ ...a, clientId: `fg_${hex()}` }, secret(a.id), undefined, { tenant: other, audit: [lost[0]!] }), 'the app id is taken')
        assert.equal(await s.getTenant(other.id), undefined)
        const refused = grant(a.id, randomUUID())
        await assert.rejects(s.createGrant(refused, { install: { ...install, grantId: refused.id }, events: [lostEvent], audit: [lost[1]!] }))
        assert.equal(await s.getInstall(refused.id), undefined)
        assert.equal(await s.getEvent(lostEvent.id), undefined)
        assert.deepEqual(
          (await s.listAudit({ appIds: [a.id], limit: 10 }))
            .filter((x) => x.clientId !== 'fg_named')
            .map((x) => x.id)
            .sort(),
          [onApp.id, onGrant.id, onWiden.id].sort(),
        )
      })
    })

    describe('Data API outbox: the backlog', () => {
      const db = freshStore(open)

      it('countPendingEvents counts events waiting to be delivered, leased or not, and no others', async () => {
        const s = db()
        assert.equal(await s.countPendingEvents(), 0)
        const t = await s.createTenant(tenant())
        const a = app()
        await s.createApp(a, secret(a.id))
        const events = [1, 2, 3].map((i) => outboxEvent(a.id, { nextAttemptAt: T + i }))
        await s.createRecord({ id: randomUUID(), tenantId: t.id, kind: 'alert', data: {}, createdByClientId: null, createdByUserId: null, createdAt: T }, { events })
        assert.equal(await s.countPendingEvents(), 3)
        const [first] = await s.claimEvents(T + 1, T + 60_000, 1)
        assert.equal(first?.id, events[0]!.id)
        assert.equal(await s.countPendingEvents(), 3, 'a leased event is still waiting')
        const attempt = { id: randomUUID(), eventId: first.id, at: T + 2, status: 204, error: null, durationMs: 3 }
        assert.deepEqual(
          await s.finishAttempts([
            { event: { id: first.id, state: 'delivered', attempts: 1, nextAttemptAt: first.nextAttemptAt, deliveredAt: T + 2, lastError: null }, leasedUntil: T + 60_000, attempt },
          ]),
          [true],
        )
        assert.equal(await s.countPendingEvents(), 2)
        await s.redeliver(first.id, T + 3)
        assert.equal(await s.countPendingEvents(), 3)
      })
    })

    describe('upstream sign-in', () => {
      const db = freshStore(open)
      const ISS = 'https://idp.example'

      it("links an account by issuer and sub, notes later sign-ins, and lists a user's links", async () => {
        const s = db()
        const u = await s.createUser(user(), [])
        const identity = { issuer: ISS, subject: 'sub-1', userId: u.id, createdAt: T, lastSignInAt: T }
        await s.saveUpstreamIdentity(identity)
        assert.deepEqual(await s.getUpstreamIdentity(ISS, 'sub-1'), identity)
        assert.equal(await s.getUpstreamIdentity('https://other.example', 'sub-1'), undefined)
        assert.equal(await s.getUpstreamIdentity(ISS, 'SUB-1'), undefined)
        // A second save is a sign-in: only lastSignInAt changes, never whom it links to.
        await s.saveUpstreamIdentity({ ...identity, userId: u.id, createdAt: T + 5, lastSignInAt: T + 10 })
        assert.deepEqual(await s.getUpstreamIdentity(ISS, 'sub-1'), { ...identity, lastSignInAt: T + 10 })
        const other = { issuer: 'https://other.example', subject: 'x', userId: u.id, createdAt: T + 1, lastSignInAt: T + 1 }
        await s.saveUpstreamIdentity(other, { audit: [auditEntry({ objectId: u.id, action: 'user.upstream_linked' })] })
        assert.deepEqual(await s.listUpstreamIdentities(u.id), [{ ...identity, lastSignInAt: T + 10 }, other])
        assert.equal((await s.listAudit({ limit: 10 })).filter((e) => e.action === 'user.upstream_linked' && e.objectId === u.id).length, 1)
      })

      it('applies upstream memberships: adds, changes roles, removes only those given, and a local removal drops the mark', async () => {
        const s = db()
        const [a, b, c] = [await s.createTenant(tenant()), await s.createTenant(tenant()), await s.createTenant(tenant())]
        const u = await s.createUser(user(), [{ tenantId: c.id, role: 'owner' }])
        await s.applyUpstreamMemberships(u.id, ISS, {
          put: [
            { userId: u.id, tenantId: a.id, role: 'member' },
            { userId: u.id, tenantId: b.id, role: 'admin' },
          ],
          remove: [],
        })
        const roles = async () => Object.fromEntries((await s.listMemberships(u.id)).map((m) => [m.tenantId, m.role]))
        assert.deepEqual(await roles(), { [a.id]: 'member', [b.id]: 'admin', [c.id]: 'owner' })
        assert.deepEqual((await s.listUpstreamMemberships(u.id, ISS)).map((m) => m.tenantId).sort(), [a.id, b.id].sort())
        assert.deepEqual(await s.listUpstreamMemberships(u.id, 'https://other.example'), [])
        await s.applyUpstreamMemberships(
          u.id,
          ISS,
          { put: [{ userId: u.id, tenantId: a.id, role: 'owner' }], remove: [b.id] },
          { audit: [auditEntry({ objectId: u.id, action: 'membership.upstream' })] },
        )
        assert.deepEqual(await roles(), { [a.id]: 'owner', [c.id]: 'owner' })
        assert.deepEqual(
          (await s.listUpstreamMemberships(u.id, ISS)).map((m) => m.tenantId),
          [a.id],
        )
        assert.ok((await s.listAudit({ limit: 50 })).some((e) => e.action === 'membership.upstream' && e.objectId === u.id))
        // Taken away here: the mark goes with it, so the upstream no longer owns that membership.
        assert.equal(await s.removeMembership(u.id, a.id), true)
        assert.deepEqual(await s.listUpstreamMemberships(u.id, ISS), [])
      })

      it('keeps what logout needs with an upstream session, and ends sessions by sub, by sid, or both', async () => {
        const s = db()
        const u = await s.createUser(user(), [])
        const session = (): Session => ({ idHash: hex(), userId: u.id, createdAt: T, expiresAt: T + 1000 })
        const [one, two, three, local] = [session(), session(), session(), session()]
        await s.createUpstreamSession(one, { issuer: ISS, subject: 'alice', sid: 'sid-1', idToken: 'eyJ.one' })
        await s.createUpstreamSession(two, { issuer: ISS, subject: 'alice', sid: 'sid-2', idToken: 'eyJ.two' })
        await s.createUpstreamSession(three, { issuer: ISS, subject: 'bob', sid: null, idToken: 'eyJ.three' })
        await s.createSession(local)
        assert.deepEqual(await s.getSession(one.idHash, T), one)
        assert.deepEqual(await s.getUpstreamSession(one.idHash), { sessionIdHash: one.idHash, issuer: ISS, subject: 'alice', sid: 'sid-1', idToken: 'eyJ.one' })
        assert.equal(await s.getUpstreamSession(local.idHash), undefined)
        assert.equal(await s.deleteUpstreamSessions(ISS, {}), 0)
        assert.equal(await s.deleteUpstreamSessions('https://other.example', { subject: 'alice' }), 0)
        assert.equal(await s.deleteUpstreamSessions(ISS, { subject: 'alice', sid: 'sid-3' }), 0)
        assert.equal(await s.deleteUpstreamSessions(ISS, { sid: 'sid-1' }), 1)
        assert.equal(await s.getSession(one.idHash, T), undefined)
        assert.equal(await s.getUpstreamSession(one.idHash), undefined)
        assert.deepEqual(await s.getSession(two.idHash, T), two)
        assert.equal(await s.deleteUpstreamSessions(ISS, { subject: 'bob' }), 1)
        assert.equal(await s.deleteUpstreamSessions(ISS, { subject: 'alice', sid: 'sid-2' }), 1)
        assert.deepEqual(await s.getSession(local.idHash, T), local)
        // Ending a session here drops its upstream part with it.
        const four = session()
        await s.createUpstreamSession(four, { issuer: ISS, subject: 'alice', sid: null, idToken: 'eyJ.four' })
        await s.deleteSession(four.idHash)
        assert.equal(await s.getUpstreamSession(four.idHash), undefined)
      })
    })

    describe('DPoP proofs', () => {
      const db = freshStore(open)

      it('remembers a proof once: a second time is a replay, and of 20 concurrent calls exactly one wins', async () => {
        const s = db()
        const [first, other] = [hex(), hex()]
        assert.equal(await s.rememberProof(first, T + 60_000), true)
        assert.equal(await s.rememberProof(first, T + 60_000), false, 'seen before')
        assert.equal(await s.rememberProof(first, T + 120_000), false, 'another expiry does not make it new')
        assert.equal(await s.rememberProof(other, T + 60_000), true, 'another proof is not one seen')
        const raced = hex()
        const results = await Promise.all(Array.from({ length: 20 }, () => s.rememberProof(raced, T + 60_000)))
        assert.equal(results.filter(Boolean).length, 1)
      })

      it('forgetExpiredProofs forgets only proofs expired before now, which may then be remembered again', async () => {
        const s = db()
        const [old, edge, live] = [hex(), hex(), hex()]
        const now = T + 10_000_000
        await s.rememberProof(old, now - 1)
        await s.rememberProof(edge, now)
        await s.rememberProof(live, now + 60_000)
        assert.ok((await s.forgetExpiredProofs(now)) >= 1)
        assert.equal(await s.forgetExpiredProofs(now), 0, 'nothing left to forget')
        assert.equal(await s.rememberProof(old, now + 60_000), true, 'forgotten')
        assert.equal(await s.rememberProof(edge, now + 60_000), false, 'not yet expired at now')
        assert.equal(await s.rememberProof(live, now + 60_000), false, 'still remembered')
      })
    })

    describe('closing', () => {
      it('close() ends the store: it answers no more queries', async () => {
        const s = await open()
        await s.migrate()
        const made = await s.createTenant(tenant())
        assert.deepEqual(await s.getTenant(made.id), made)
        await s.close()
        await assert.rejects(s.getTenant(made.id))
      })
    })

    describe('records: pages across ties', () => {
      const db = freshStore(open)
      let tA: Tenant, tB: Tenant
      const ordersA: ApiRecord[] = []
      before(async () => {
        const s = db()
        tA = await s.createTenant(tenant())
        tB = await s.createTenant(tenant())
        // Five share one createdAt so pages must break ties by id.
        for (const at of [T + 1, T + 2, T + 2, T + 2, T + 2, T + 2, T + 3, T + 4]) {
          ordersA.push(await s.createRecord(workOrder(tA.id, { createdAt: at, createdByClientId: at === T + 3 ? null : 'fg_client' })))
        }
        await s.createRecord(workOrder(tB.id, { createdAt: T + 2 }))
        await s.createRecord({ ...workOrder(tA.id, { createdAt: T + 2 }), kind: 'lead' })
      })

      it("lists a tenant's records of a kind newest first, and only that tenant's", async () => {
        const s = db()
        const list = await s.listRecords(tA.id, 'work_order', { limit: 100 })
        assert.deepEqual(sortById(list), sortById(ordersA))
        for (let i = 1; i < list.length; i++) assert.ok(list[i - 1]!.createdAt >= list[i]!.createdAt, 'newest first')
        assert.deepEqual(
          (await s.listRecords(tB.id, 'work_order', { limit: 100 })).map((o) => o.tenantId),
          [tB.id],
        )
        assert.deepEqual(await s.listRecords(randomUUID(), 'work_order', { limit: 100 }), [])
        assert.equal((await s.listRecords(tA.id, 'work_order', { limit: 3 })).length, 3)
      })

      it('pages with a (createdAt, id) cursor across ties with no duplicates or gaps, by creator or not', async () => {
        const s = db()
        for (const creator of [{}, { createdByClientId: 'fg_client' }]) {
          const full = await s.listRecords(tA.id, 'work_order', { limit: 100, ...creator })
          assert.equal(full.length, 'createdByClientId' in creator ? 7 : 8)
          for (const limit of [1, 2, 3, 4]) {
            const seen: ApiRecord[] = []
            let cursor: { createdAt: number; id: string } | undefined
            for (let page = 0; page < 20; page++) {
              const rows = await s.listRecords(tA.id, 'work_order', cursor ? { limit, before: cursor, ...creator } : { limit, ...creator })
              assert.ok(rows.length <= limit)
              seen.push(...rows)
              if (rows.length < limit) break
              const last = rows[rows.length - 1]!
              cursor = { createdAt: last.createdAt, id: last.id }
            }
            assert.deepEqual(
              seen.map((o) => o.id),
              full.map((o) => o.id),
              `pages of ${limit}`,
            )
          }
        }
      })
    })

    // Last, so every area has run: a method no test called, or not the one `covered` names, fails here.
    it('calls every Storage method, each in the test the coverage table names', () => {
      const missing = Object.entries(covered).filter(([method, test]) => !calls.get(method)?.has(test))
      assert.deepEqual(
        missing.map(
          ([method, test]) => `${method}: "${test}" ${calls.has(method) ? `did not call it (${[...calls.get(method)!].join('; ')} did)` : 'nor any other test called it'}`,
        ),
        [],
      )
    })
  })
}

/**
 * Every Storage method and a contract test that calls it. Typed by the interface, so a method added
 * to Storage without an entry here does not compile; the suite's last test checks that each named test
 * did call its method.
 */
const covered: Record<Exclude<keyof Storage, 'engine'>, string> = {
  migrate: 'migrate() can run again on a migrated store',
  close: 'close() ends the store: it answers no more queries',

  createTenant: 'round-trips every field through create, get and list',
  getTenant: 'round-trips every field through create, get and list',
  listTenants: 'round-trips every field through create, get and list',
  renameTenant: 'renameTenant renames one tenant with what goes alongside and a tenant change; false for none',
  createUser: 'stores several memberships given at creation',
  getUser: "setSandboxTenant sets the user's sandbox tenant and leaves other users alone",
  getUserByEmail: 'creates a user with memberships and finds it by email in any case',
  setSandboxTenant: "setSandboxTenant sets the user's sandbox tenant and leaves other users alone",
  listMemberships: 'creates a user with memberships and finds it by email in any case',
  addMembership: 'addMembership adds, then upserts the role',
  updateUser: 'updateUser saves verification, operator role, suspension and password with what goes alongside, never id, createdAt or sandbox',
  listUsers: 'listUsers lists oldest first, finds part of an email in any case, and pages',
  listMembers: 'listMembers gives one page of members by email when asked',
  removeMembership: "listMembers gives a tenant's members with their roles; removeMembership removes one with what goes alongside",
  deleteUserSessions: "deleteUserSessions ends every session of a user but the one kept, and no one else's",
  saveEmailToken: 'gives an email token until it expires; useEmailToken spends it once, exactly one of 20 concurrent uses winning',
  getEmailToken: 'gives an email token until it expires; useEmailToken spends it once, exactly one of 20 concurrent uses winning',
  useEmailToken: 'gives an email token until it expires; useEmailToken spends it once, exactly one of 20 concurrent uses winning',
  listInvitations: "saveEmailToken commits the mail and audit alongside; listInvitations gives a tenant's open invitations, newest first",
  claimMail: 'leases pending mail to one claimer at a time, oldest first, until the lease ends or the mail is saved',
  saveMail: 'saves mail, updates its delivery state, and lists it newest first by state and recipient',
  updateMail: 'saves mail, updates its delivery state, and lists it newest first by state and recipient',
  listMail: 'saves mail, updates its delivery state, and lists it newest first by state and recipient',
  recordSecurityEvent: 'records security events and lists them newest first by kind, user, address and search',
  listSecurityEvents: 'records security events and lists them newest first by kind, user, address and search',
  createSession: 'finds a session until it expires, and never after it is deleted',
  getSession: 'finds a session until it expires, and never after it is deleted',
  deleteSession: 'finds a session until it expires, and never after it is deleted',

  createApp: 'round-trips arrays, nullable fields and tokenTtl',
  getApp: 'round-trips arrays, nullable fields and tokenTtl',
  getAppByClientId: 'round-trips arrays, nullable fields and tokenTtl',
  listApps: 'lists only the apps a user owns when asked',
  updateApp: 'updateApp saves the editable fields, never id, clientId or createdAt, and appends an app change with what goes alongside',
  deleteApp: 'deleteApp removes the app with its secrets, grants, installs, codes and tokens, and appends a change for each active grant and the app',
  listLiveSecrets: 'keeps the old secret live until graceEndsAt and not after',
  rotateSecret: 'keeps the old secret live until graceEndsAt and not after',
  saveSecretHandle: 'gives a handle to its own browser once with its secret, then without, and to no one after it expires',
  takeSecretHandle: 'gives a handle to its own browser once with its secret, then without, and to no one after it expires',

  createGrant: 'creates, gets, finds the active grant and lists with filters',
  getGrant: 'creates, gets, finds the active grant and lists with filters',
  findActiveGrant: 'creates, gets, finds the active grant and lists with filters',
  findTenantGrant: 'findTenantGrant reads a tenant with the active grant of one app on it, in one call',
  listGrants: 'listGrants pages oldest first, keeps a status, and finds part of an app or tenant name, client_id or tenant id in any case',
  widenGrantScopes: 'widenGrantScopes adds to an active grant, appends a change, and ignores revoked grants',
  revokeGrant: 'allows one active grant per app and tenant, and a new one after revoking',
  saveInstall: 'saveInstall stores an install, then updates all but its createdAt, with what goes alongside, atomically',
  getInstall: 'saveInstall stores an install, then updates all but its createdAt, with what goes alongside, atomically',

  saveCode: 'round-trips a code, with and without redirect_uri and challenge',
  getCode: 'round-trips a code, with and without redirect_uri and challenge',
  redeemCode: 'redeems a code once, storing its token in the same step',
  revokeTokensFromCode: 'has exactly one winner among 50 concurrent redemptions, and the replays find its token to revoke',
  findOpaqueToken: 'redeems a code once, storing its token in the same step',
  revokeOpaqueToken: 'revokes an opaque token once; revoking its grant revokes the rest',
  findRefreshToken: 'stores a refresh token with the code, and rotates it once: a second use ends the family and its access tokens',
  rotateRefreshToken: 'refuses to rotate an expired refresh token; exactly one of 20 concurrent rotations wins',
  revokeRefreshFamily: 'revokeRefreshFamily, revokeTokensFromCode and revokeGrant end refresh tokens',
  savePushedRequest: 'keeps a pushed request until it is used or expires; exactly one use wins',
  saveInitialAccessToken: 'keeps initial access tokens by hash, newest first, and revokes each once with what goes alongside',
  findInitialAccessToken: 'keeps initial access tokens by hash, newest first, and revokes each once with what goes alongside',
  listInitialAccessTokens: 'keeps initial access tokens by hash, newest first, and revokes each once with what goes alongside',
  revokeInitialAccessToken: 'keeps initial access tokens by hash, newest first, and revokes each once with what goes alongside',
  getPushedRequest: 'keeps a pushed request until it is used or expires; exactly one use wins',
  usePushedRequest: 'keeps a pushed request until it is used or expires; exactly one use wins',

  recordAudit: 'recordAudit stores an entry; listAudit gives entries about the apps or tenants asked for, newest first, up to limit',
  listAudit: 'recordAudit stores an entry; listAudit gives entries about the apps or tenants asked for, newest first, up to limit',

  listSigningKeys: 'inserts keys, round-trips them and appends a keys change',
  saveSigningKeys: 'inserts and moves keys between states in one call',

  createRecord: 'round-trips records, lists a kind newest first, by creator, and pages by cursor',
  getRecord: 'round-trips records, lists a kind newest first, by creator, and pages by cursor',
  listRecords: 'round-trips records, lists a kind newest first, by creator, and pages by cursor',

  claimEvents: 'writes events with the change, leases each to one claimer, and records attempts under the lease only',
  finishAttempts: 'writes events with the change, leases each to one claimer, and records attempts under the lease only',
  getEvent: 'writes events with the change, leases each to one claimer, and records attempts under the lease only',
  countPendingEvents: 'countPendingEvents counts events waiting to be delivered, leased or not, and no others',
  listEvents: 'writes events with the change, leases each to one claimer, and records attempts under the lease only',
  listAttempts: 'writes events with the change, leases each to one claimer, and records attempts under the lease only',
  redeliver: 'writes events with the change, leases each to one claimer, and records attempts under the lease only',
  queueEvents: 'queues an event with its audit entry, pages events by state, and retries a waiting one now',
  retryNow: 'queues an event with its audit entry, pages events by state, and retries a waiting one now',

  changesSince: 'returns strictly newer changes in order and honours limit',
  changesIn: 'changesIn returns the changes with the given sequence numbers that exist, in order',
  latestChangeSeq: 'returns strictly newer changes in order and honours limit',
  watchChanges: 'watchChanges wakes the watcher after a commit where the engine signals one, never where it cannot, until stopped',

  getUpstreamIdentity: "links an account by issuer and sub, notes later sign-ins, and lists a user's links",
  listUpstreamIdentities: "links an account by issuer and sub, notes later sign-ins, and lists a user's links",
  saveUpstreamIdentity: "links an account by issuer and sub, notes later sign-ins, and lists a user's links",
  listUpstreamMemberships: 'applies upstream memberships: adds, changes roles, removes only those given, and a local removal drops the mark',
  applyUpstreamMemberships: 'applies upstream memberships: adds, changes roles, removes only those given, and a local removal drops the mark',
  createUpstreamSession: 'keeps what logout needs with an upstream session, and ends sessions by sub, by sid, or both',
  getUpstreamSession: 'keeps what logout needs with an upstream session, and ends sessions by sub, by sid, or both',
  rememberProof: 'remembers a proof once: a second time is a replay, and of 20 concurrent calls exactly one wins',
  forgetExpiredProofs: 'forgetExpiredProofs forgets only proofs expired before now, which may then be remembered again',
  deleteUpstreamSessions: 'keeps what logout needs with an upstream session, and ends sessions by sub, by sid, or both',
}

/** `store`, telling `called` the name of each method called on it. */
function recording(store: Storage, called: (method: string) => void): Storage {
  return new Proxy(store, {
    get(target, property, receiver) {
      const value: unknown = Reflect.get(target, property, receiver)
      if (typeof property !== 'string' || typeof value !== 'function') return value
      return (...args: unknown[]): unknown => {
        called(property)
        return Reflect.apply(value, target, args)
      }
    },
  })
}

/** Opens a fresh store for the enclosing describe, migrates it, and closes it afterwards. */
function freshStore(open: () => Promise<Storage>): () => Storage {
  let store: Storage | undefined
  before(async () => {
    store = await open()
    await store.migrate()
  })
  after(async () => {
    await store?.close()
  })
  return () => {
    assert.ok(store, 'store is not open')
    return store
  }
}

const T = 1_700_000_000_000
const hex = () => randomBytes(16).toString('hex')

const tenant = (over: Partial<Tenant> = {}): Tenant => ({
  id: randomUUID(),
  name: 'Tenant',
  environment: 'sandbox',
  marketplaceId: randomUUID(),
  createdAt: T,
  ...over,
})

const user = (over: Partial<User> = {}): User => ({
  id: randomUUID(),
  email: `${hex()}@example.com`,
  passwordHash: '$argon2id$fake',
  createdAt: T,
  sandboxTenantId: null,
  emailVerifiedAt: null,
  operator: false,
  suspendedAt: null,
  suspendedReason: null,
  ...over,
})

/** An app row with every field set; `over` changes some. */
export const app = (over: Partial<App> = {}): App => ({
  id: randomUUID(),
  clientId: `fg_${hex()}`,
  name: 'App',
  kind: 'private',
  environment: 'sandbox',
  tenantId: null,
  ownerUserId: null,
  installUrl: null,
  redirectUris: ['https://app.example/cb'],
  contactEmail: null,
  dataApiUrl: null,
  scopes: ['api'],
  tokenTtl: null,
  createdAt: T,
  description: '',
  listed: false,
  logoUrl: null,
  shortDescription: '',
  categories: [],
  publisher: null,
  supportUrl: null,
  privacyPolicyUrl: null,
  review: 'approved',
  reviewReason: null,
  approvedAt: T,
  proposed: null,
  suspendedAt: null,
  suspendedReason: null,
  suspendedWithAccount: false,
  ...newClientSettings(false),
  ...over,
})

const emailToken = (over: Partial<EmailToken> = {}): EmailToken => ({
  idHash: hex(),
  purpose: 'verify',
  userId: null,
  email: `${hex()}@example.com`,
  tenantId: null,
  role: null,
  invitedBy: null,
  createdAt: T,
  expiresAt: T + 3_600_000,
  usedAt: null,
  ...over,
})

const mailMessage = (over: Partial<MailMessage> = {}): MailMessage => ({
  id: randomUUID(),
  to: `${hex()}@example.com`,
  subject: 'Confirm your email',
  text: 'Follow https://fieldgate.example/x',
  kind: 'verify',
  state: 'local',
  attempts: 0,
  error: null,
  createdAt: T,
  sentAt: null,
  ...over,
})

const securityEvent = (over: Partial<SecurityEvent> = {}): SecurityEvent => ({
  id: randomUUID(),
  at: T,
  kind: 'sign_in.failed',
  userId: null,
  email: null,
  clientId: null,
  tenantId: null,
  address: null,
  details: {},
  ...over,
})

/** A secret row of `appId`; `over` changes some fields. */
export const secret = (appId: string, over: Partial<AppSecret> = {}): AppSecret => ({
  id: randomUUID(),
  appId,
  secretHash: hex(),
  hint: 'abcd',
  createdAt: T,
  expiresAt: null,
  secretEnc: null,
  ...over,
})

const grant = (appId: string, tenantId: string, over: Partial<Grant> = {}): Grant => ({
  id: randomUUID(),
  appId,
  tenantId,
  scopes: ['api'],
  status: 'active',
  createdAt: T,
  updatedAt: T,
  ...over,
})

const signingKey = (over: Partial<SigningKeyRecord> & Pick<SigningKeyRecord, 'kid'>): SigningKeyRecord => ({
  alg: 'ES256',
  state: 'next',
  publicJwk: `{"kid":"${over.kid}"}`,
  privateJwkEnc: hex(),
  createdAt: T,
  retireAt: null,
  ...over,
})

const auditEntry = (over: Partial<AuditEntry> = {}): AuditEntry => ({
  id: randomUUID(),
  at: T,
  actor: 'cli',
  actorUserId: null,
  action: 'test',
  appId: null,
  clientId: null,
  tenantId: null,
  objectId: randomUUID(),
  address: null,
  details: {},
  ...over,
})

const outboxEvent = (appId: string, over: Partial<OutboxEvent> = {}): OutboxEvent => ({
  id: `evt_${hex()}`,
  appId,
  tenantId: null,
  type: 'record.created',
  body: '{"a":1}',
  state: 'pending',
  attempts: 0,
  nextAttemptAt: T,
  lockedUntil: null,
  createdAt: T,
  deliveredAt: null,
  lastError: null,
  ...over,
})

/** A work order as the API stores it: a record of kind `work_order`. */
const workOrder = (tenantId: string, over: Partial<ApiRecord> = {}): ApiRecord => ({
  id: randomUUID(),
  tenantId,
  kind: 'work_order',
  data: { title: 'Fix the boiler', status: 'draft' },
  createdByClientId: null,
  createdByUserId: null,
  createdAt: T,
  ...over,
})

async function changesAfter(s: Storage, seq: number): Promise<{ kind: string; ref: string }[]> {
  return (await s.changesSince(seq)).map(({ kind, ref }) => ({ kind, ref }))
}

function sortBy<R, K extends keyof R>(rows: R[], key: K): R[] {
  return [...rows].sort((a, b) => (a[key] < b[key] ? -1 : a[key] > b[key] ? 1 : 0))
}

const sortById = <R extends { id: string }>(rows: R[]): R[] => sortBy(rows, 'id')

/** Polls `check` every 10 ms; fails naming `what` after 5 s. */
export async function until(check: () => boolean, what: string): Promise<void> {
  for (const started = Date.now(); !check(); await new Promise((r) => setTimeout(r, 10))) {
    if (Date.now() - started > 5000) assert.fail(`timed out waiting for ${what}`)
  }
}

import type {
  Alongside, ApiRecord, App, AppSecret, AuditEntry, AuthorizationCode, DeliveryAttempt, Install, OutboxEvent, Change, Grant, Membership, OpaqueToken, OpaqueTokenRecord, SecretHandle, Session, SigningKeyRecord,
  Storage, Tenant, User, WorkOrder,
} from '@fieldgate/core'
import { Migrator, sql, type Compilable, type CompiledQuery, type Kysely, type Selectable, type Transaction } from 'kysely'
import { migrationsFor } from './migrations/index.js'
import type { Database } from './schema.js'

type Row<T extends keyof Database> = Selectable<Database[T]>
type Db = Kysely<Database> | Transaction<Database>

/** How an engine signals committed changes (see Storage.watchChanges). */
export type ChangeWatcher = (wake: () => void, onError: (err: unknown) => void) => () => Promise<void>

/**
 * The Storage interface over Kysely. SQLite and PostgreSQL share every query; they differ only in how
 * they connect (sqlite.ts, postgres.ts) and in column types (migrations/).
 */
export class SqlStorage implements Storage {
  constructor(
    readonly engine: 'sqlite' | 'postgres',
    private readonly db: Kysely<Database>,
    /** PostgreSQL: the schema this store lives in; its migration bookkeeping lives there too. */
    private readonly schemaName?: () => Promise<string>,
    /** Runs before migrations, e.g. to create the PostgreSQL schema they go into. */
    private readonly prepare?: () => Promise<void>,
    private readonly watcher?: ChangeWatcher,
  ) {}

  async migrate(): Promise<void> {
    await this.prepare?.()
    // Kysely, told no schema, takes migration tables in any schema of the database for its own.
    const schema = await this.schemaName?.()
    const { error } = await new Migrator({
      db: this.db,
      provider: migrationsFor(this.engine),
      ...(schema ? { migrationTableSchema: schema } : {}),
    }).migrateToLatest()
    if (error) throw error
  }

  close(): Promise<void> {
    return this.db.destroy()
  }

  // tenants

  async createTenant(tenant: Tenant): Promise<Tenant> {
    await this.db.insertInto('tenants').values(tenant).execute()
    return tenant
  }

  async getTenant(id: string): Promise<Tenant | undefined> {
    return toTenant(await this.db.selectFrom('tenants').selectAll().where('id', '=', id).executeTakeFirst())
  }

  async listTenants(): Promise<Tenant[]> {
    const rows = await this.db.selectFrom('tenants').selectAll().orderBy('createdAt').orderBy('id').execute()
    return rows.map((r) => toTenant(r)!)
  }

  // users

  async createUser(user: User, memberships: Omit<Membership, 'userId'>[]): Promise<User> {
    await this.db.transaction().execute(async (tx) => {
      await tx.insertInto('users').values(user).execute()
      for (const m of memberships) await tx.insertInto('memberships').values({ ...m, userId: user.id }).execute()
    })
    return user
  }

  async getUser(id: string): Promise<User | undefined> {
    return this.db.selectFrom('users').selectAll().where('id', '=', id).executeTakeFirst()
  }

  async setSandboxTenant(userId: string, tenantId: string): Promise<void> {
    await this.db.updateTable('users').set({ sandboxTenantId: tenantId }).where('id', '=', userId).execute()
  }

  async getUserByEmail(email: string): Promise<User | undefined> {
    return this.db.selectFrom('users').selectAll().where('email', '=', email.toLowerCase()).executeTakeFirst()
  }

  async listMemberships(userId: string): Promise<Membership[]> {
    const rows = await this.db.selectFrom('memberships').selectAll().where('userId', '=', userId).execute()
    return rows.map((r) => ({ ...r, role: r.role as Membership['role'] }))
  }

  async addMembership(m: Membership): Promise<void> {
    await this.db.insertInto('memberships').values(m)
      .onConflict((oc) => oc.columns(['userId', 'tenantId']).doUpdateSet({ role: m.role })).execute()
  }

  // apps and secrets

  async createApp(app: App, secret: AppSecret, grant?: Grant, also: Alongside = {}): Promise<App> {
    const { tenant, ...rest } = also
    await this.db.transaction().execute(async (tx) => {
      // The app's sandbox tenant goes first: the app row references it.
      if (tenant) await tx.insertInto('tenants').values(tenant).execute()
      await tx.insertInto('apps').values(fromApp(app)).execute()
      await tx.insertInto('appSecrets').values(secret).execute()
      if (grant) await tx.insertInto('grants').values(fromGrant(grant)).execute()
      await writeAlongside(tx, rest)
    })
    return app
  }

  async getApp(id: string): Promise<App | undefined> {
    return toApp(await this.db.selectFrom('apps').selectAll().where('id', '=', id).executeTakeFirst())
  }

  async getAppByClientId(clientId: string): Promise<App | undefined> {
    return toApp(await this.db.selectFrom('apps').selectAll().where('clientId', '=', clientId).executeTakeFirst())
  }

  async listApps(filter: { ownerUserId?: string } = {}): Promise<App[]> {
    let q = this.db.selectFrom('apps').selectAll()
    if (filter.ownerUserId) q = q.where('ownerUserId', '=', filter.ownerUserId)
    const rows = await q.orderBy('createdAt').orderBy('id').execute()
    return rows.map((r) => toApp(r)!)
  }

  async updateApp(app: App, also: Alongside = {}): Promise<void> {
    const { id, clientId: _c, createdAt: _t, ...fields } = fromApp(app)
    await this.db.transaction().execute(async (tx) => {
      await tx.updateTable('apps').set(fields).where('id', '=', id).execute()
      await appendChange(tx, 'app', id, Date.now())
      await writeAlongside(tx, also)
    })
  }

  async deleteApp(id: string, now: number, also: Alongside = {}): Promise<boolean> {
    return this.db.transaction().execute(async (tx) => {
      // Grants created meanwhile wait for this lock (their insert references the app), so none escapes the change feed.
      await this.lockApp(tx, id)
      const grants = await tx.selectFrom('grants').select('id').where('appId', '=', id).where('status', '=', 'active').execute()
      for (const g of grants) await appendChange(tx, 'grant', g.id, now)
      await appendChange(tx, 'app', id, now)
      const result = await tx.deleteFrom('apps').where('id', '=', id).executeTakeFirst()
      const deleted = Number(result.numDeletedRows) === 1
      if (deleted) await writeAlongside(tx, also)
      return deleted
    })
  }

  async listLiveSecrets(appId: string, now: number): Promise<AppSecret[]> {
    return this.db.selectFrom('appSecrets').selectAll().where('appId', '=', appId)
      .where((eb) => eb.or([eb('expiresAt', 'is', null), eb('expiresAt', '>', now)]))
      .execute()
  }

  async rotateSecret(appId: string, secret: AppSecret, graceEndsAt: number, also: Alongside = {}): Promise<void> {
    await this.db.transaction().execute(async (tx) => {
      await this.lockApp(tx, appId)
      await tx.updateTable('appSecrets').set({ expiresAt: graceEndsAt })
        .where('appId', '=', appId).where('expiresAt', 'is', null).execute()
      // Secrets already in a grace period never get a longer one from a later rotation.
      await tx.updateTable('appSecrets').set({ expiresAt: graceEndsAt })
        .where('appId', '=', appId).where('expiresAt', '>', graceEndsAt).execute()
      await tx.insertInto('appSecrets').values(secret).execute()
      await appendChange(tx, 'app', appId, secret.createdAt)
      await writeAlongside(tx, also)
    })
  }

  /**
   * PostgreSQL: serialises changes to one app (READ COMMITTED would let two rotations each see only
   * the old secret). SQLite's BEGIN IMMEDIATE already lets one writer in at a time.
   */
  private async lockApp(tx: Transaction<Database>, appId: string): Promise<void> {
    if (this.engine === 'postgres') await tx.selectFrom('apps').select('id').where('id', '=', appId).forUpdate().execute()
  }

  // grants

  async createGrant(grant: Grant, also: Alongside = {}): Promise<Grant> {
    await this.db.transaction().execute(async (tx) => {
      await tx.insertInto('grants').values(fromGrant(grant)).execute()
      await writeAlongside(tx, also)
    })
    return grant
  }

  async getGrant(id: string): Promise<Grant | undefined> {
    return toGrant(await this.db.selectFrom('grants').selectAll().where('id', '=', id).executeTakeFirst())
  }

  async findActiveGrant(appId: string, tenantId: string): Promise<Grant | undefined> {
    return toGrant(await this.db.selectFrom('grants').selectAll()
      .where('appId', '=', appId).where('tenantId', '=', tenantId).where('status', '=', 'active').executeTakeFirst())
  }

  async listGrants(filter: { appId?: string; tenantId?: string } = {}): Promise<Grant[]> {
    let q = this.db.selectFrom('grants').selectAll()
    if (filter.appId) q = q.where('appId', '=', filter.appId)
    if (filter.tenantId) q = q.where('tenantId', '=', filter.tenantId)
    const rows = await q.orderBy('createdAt').orderBy('id').execute()
    return rows.map((r) => toGrant(r)!)
  }

  async widenGrantScopes(id: string, scopes: string[], now: number, also?: (grant: Grant, grew: boolean) => Alongside): Promise<Grant | undefined> {
    return this.db.transaction().execute(async (tx) => {
      // SQLite's BEGIN IMMEDIATE already holds the write lock; PostgreSQL locks the row.
      let read = tx.selectFrom('grants').selectAll().where('id', '=', id).where('status', '=', 'active')
      if (this.engine === 'postgres') read = read.forUpdate()
      const grant = toGrant(await read.executeTakeFirst())
      if (!grant) return undefined
      const wider = [...new Set([...grant.scopes, ...scopes])]
      if (wider.length === grant.scopes.length) {
        if (also) await writeAlongside(tx, also(grant, false))
        return grant
      }
      await tx.updateTable('grants').set({ scopes: wider.join(' '), updatedAt: now }).where('id', '=', id).execute()
      await appendChange(tx, 'grant', id, now)
      const widened = { ...grant, scopes: wider, updatedAt: now }
      if (also) await writeAlongside(tx, also(widened, true))
      return widened
    })
  }

  async revokeGrant(id: string, now: number, also: Alongside = {}): Promise<boolean> {
    return this.db.transaction().execute(async (tx) => {
      const result = await tx.updateTable('grants').set({ status: 'revoked', updatedAt: now })
        .where('id', '=', id).where('status', '=', 'active').executeTakeFirst()
      const revoked = Number(result.numUpdatedRows) === 1
      if (revoked) {
        await tx.updateTable('opaqueTokens').set({ revokedAt: now }).where('grantId', '=', id).where('revokedAt', 'is', null).execute()
        await appendChange(tx, 'grant', id, now)
        await writeAlongside(tx, also)
      }
      return revoked
    })
  }

  // installs and the audit log

  async saveInstall(install: Install, also: Alongside = {}): Promise<void> {
    await this.db.transaction().execute(async (tx) => {
      await upsertInstall(tx, install)
      await writeAlongside(tx, also)
    })
  }

  async getInstall(grantId: string): Promise<Install | undefined> {
    const row = await this.db.selectFrom('installs').selectAll().where('grantId', '=', grantId).executeTakeFirst()
    return row && { ...row, state: row.state as Install['state'] }
  }

  async recordAudit(entry: AuditEntry): Promise<void> {
    await insertAudit(this.db, [entry])
  }

  async listAudit(filter: { appIds?: string[]; tenantIds?: string[]; limit: number }): Promise<AuditEntry[]> {
    let q = this.db.selectFrom('auditEntries').selectAll()
    const { appIds, tenantIds } = filter
    if (appIds || tenantIds) {
      // Owners see entries about their apps or their tenants; owning neither, nothing.
      if (!appIds?.length && !tenantIds?.length) return []
      q = q.where((eb) => eb.or([
        ...(appIds?.length ? [eb('appId', 'in', appIds)] : []),
        ...(tenantIds?.length ? [eb('tenantId', 'in', tenantIds)] : []),
      ]))
    }
    const rows = await q.orderBy('at', 'desc').orderBy('id', 'desc').limit(filter.limit).execute()
    return rows.map((r) => ({ ...r, details: JSON.parse(r.details) as Record<string, unknown> }))
  }

  // signing keys

  async listSigningKeys(): Promise<SigningKeyRecord[]> {
    const rows = await this.db.selectFrom('signingKeys').selectAll().orderBy('createdAt').orderBy('kid').execute()
    return rows.map((r) => ({ ...r, state: r.state as SigningKeyRecord['state'] }))
  }

  async saveSigningKeys(
    insert: SigningKeyRecord[], update: Pick<SigningKeyRecord, 'kid' | 'state' | 'retireAt'>[], basedOn?: Pick<SigningKeyRecord, 'kid' | 'state'>[],
  ): Promise<boolean> {
    return this.db.transaction().execute(async (tx) => {
      if (basedOn) {
        // SQLite's BEGIN IMMEDIATE already serialises writers; PostgreSQL needs the table locked, since
        // two processes bootstrapping an empty table have no row to lock.
        if (this.engine === 'postgres') await sql`lock table signing_keys in share row exclusive mode`.execute(tx)
        const current = await tx.selectFrom('signingKeys').select(['kid', 'state']).execute()
        if (keyStates(current) !== keyStates(basedOn)) return false
      }
      for (const key of insert) await tx.insertInto('signingKeys').values(key).execute()
      for (const u of update) await tx.updateTable('signingKeys').set({ state: u.state, retireAt: u.retireAt }).where('kid', '=', u.kid).execute()
      await appendChange(tx, 'keys', insert[0]?.kid ?? update[0]?.kid ?? '', Date.now())
      return true
    })
  }

  // authorization codes

  async saveCode(code: AuthorizationCode): Promise<void> {
    await this.db.insertInto('authorizationCodes').values({ ...code, scopes: code.scopes.join(' ') }).execute()
  }

  async getCode(codeHash: string): Promise<AuthorizationCode | undefined> {
    const row = await this.db.selectFrom('authorizationCodes').selectAll().where('codeHash', '=', codeHash).executeTakeFirst()
    return row && { ...row, scopes: splitScopes(row.scopes) }
  }

  async redeemCode(codeHash: string, now: number, token: OpaqueToken): Promise<boolean> {
    return this.db.transaction().execute(async (tx) => {
      // One conditional update: its row count decides the single winner among concurrent redemptions.
      // A loser's update waits for the winner's commit, so it then finds the token it must revoke.
      const result = await tx.updateTable('authorizationCodes').set({ consumedAt: now })
        .where('codeHash', '=', codeHash).where('consumedAt', 'is', null).where('expiresAt', '>', now)
        .executeTakeFirst()
      if (Number(result.numUpdatedRows) !== 1) return false
      await tx.insertInto('opaqueTokens').values(token).execute()
      return true
    })
  }

  async revokeTokensFromCode(codeHash: string, now: number): Promise<number> {
    const result = await this.db.updateTable('opaqueTokens').set({ revokedAt: now })
      .where('codeHash', '=', codeHash).where('revokedAt', 'is', null).executeTakeFirst()
    return Number(result.numUpdatedRows)
  }

  // opaque tokens

  async findOpaqueToken(tokenHash: string): Promise<OpaqueTokenRecord | undefined> {
    const row = await this.db.selectFrom('opaqueTokens as t')
      .innerJoin('grants as g', 'g.id', 't.grantId')
      .innerJoin('apps as a', 'a.id', 't.appId')
      .selectAll('t')
      .select(['g.scopes as grantScopes', 'g.status as grantStatus', 'g.createdAt as grantCreatedAt', 'g.updatedAt as grantUpdatedAt', 'a.clientId'])
      .where('t.tokenHash', '=', tokenHash)
      .executeTakeFirst()
    if (!row) return undefined
    const { grantScopes, grantStatus, grantCreatedAt, grantUpdatedAt, clientId, ...token } = row
    return {
      token,
      grant: toGrant({ id: token.grantId, appId: token.appId, tenantId: token.tenantId, scopes: grantScopes, status: grantStatus, createdAt: grantCreatedAt, updatedAt: grantUpdatedAt })!,
      clientId,
    }
  }

  async revokeOpaqueToken(tokenHash: string, now: number): Promise<OpaqueToken | undefined> {
    return this.db.updateTable('opaqueTokens').set({ revokedAt: now })
      .where('tokenHash', '=', tokenHash).where('revokedAt', 'is', null).returningAll().executeTakeFirst()
  }

  // secrets shown once

  async saveSecretHandle(handle: SecretHandle): Promise<void> {
    await this.db.transaction().execute(async (tx) => {
      // Expired handles go as new ones come: the table holds only the last few minutes' secrets.
      await tx.deleteFrom('secretHandles').where('expiresAt', '<=', handle.createdAt).execute()
      await tx.insertInto('secretHandles').values(handle).execute()
    })
  }

  async takeSecretHandle(idHash: string, browserHash: string, now: number): Promise<{ handle: SecretHandle; first: boolean } | undefined> {
    return this.db.transaction().execute(async (tx) => {
      const row = await tx.selectFrom('secretHandles').selectAll().where('idHash', '=', idHash).where('browserHash', '=', browserHash)
        .where('expiresAt', '>', now).executeTakeFirst()
      if (!row) return undefined
      // One conditional update: among concurrent views exactly one finds the secret still there.
      const result = await tx.updateTable('secretHandles').set({ shownAt: now, secretEnc: '' })
        .where('idHash', '=', idHash).where('shownAt', 'is', null).executeTakeFirst()
      const first = Number(result.numUpdatedRows) === 1
      return { handle: first ? row : { ...row, secretEnc: '', shownAt: row.shownAt ?? now }, first }
    })
  }

  // sessions

  async createSession(session: Session): Promise<void> {
    await this.db.insertInto('sessions').values(session).execute()
  }

  async getSession(idHash: string, now: number): Promise<Session | undefined> {
    return this.db.selectFrom('sessions').selectAll().where('idHash', '=', idHash).where('expiresAt', '>', now).executeTakeFirst()
  }

  async deleteSession(idHash: string): Promise<void> {
    await this.db.deleteFrom('sessions').where('idHash', '=', idHash).execute()
  }

  // work orders

  async createWorkOrder(order: WorkOrder, also: Alongside = {}): Promise<WorkOrder> {
    await this.db.transaction().execute(async (tx) => {
      await tx.insertInto('workOrders').values(order).execute()
      await writeAlongside(tx, also)
    })
    return order
  }

  async listWorkOrders(tenantId: string, opts: { limit: number; before?: { createdAt: number; id: string } }): Promise<WorkOrder[]> {
    const { limit, before } = opts
    const page = (b?: { createdAt: number; id: string }) => {
      let q = this.db.selectFrom('workOrders').selectAll().where('tenantId', '=', tenantId)
      if (b) {
        q = q.where((eb) => eb.or([
          eb('createdAt', '<', b.createdAt),
          eb.and([eb('createdAt', '=', b.createdAt), eb('id', '<', b.id)]),
        ]))
      }
      return q.orderBy('createdAt', 'desc').orderBy('id', 'desc').limit(limit)
    }
    // The API's hottest read: compiled once per shape, parameters in the order they appear in the SQL.
    return before
      ? this.precompiled('workOrdersBefore', () => page(before), [tenantId, before.createdAt, before.createdAt, before.id, limit])
      : this.precompiled('workOrders', () => page(), [tenantId, limit])
  }

  // records

  async createRecord(record: ApiRecord, also: Alongside = {}): Promise<ApiRecord> {
    await this.db.transaction().execute(async (tx) => {
      await tx.insertInto('records').values({ ...record, data: JSON.stringify(record.data) }).execute()
      await writeAlongside(tx, also)
    })
    return record
  }

  async getRecord(tenantId: string, kind: string, id: string): Promise<ApiRecord | undefined> {
    const row = await this.db.selectFrom('records').selectAll().where('tenantId', '=', tenantId).where('kind', '=', kind).where('id', '=', id).executeTakeFirst()
    return row && toRecord(row)
  }

  async listRecords(
    tenantId: string, kind: string, opts: { limit: number; createdByClientId?: string; before?: { createdAt: number; id: string } },
  ): Promise<ApiRecord[]> {
    let q = this.db.selectFrom('records').selectAll().where('tenantId', '=', tenantId).where('kind', '=', kind)
    if (opts.createdByClientId !== undefined) q = q.where('createdByClientId', '=', opts.createdByClientId)
    const b = opts.before
    if (b) q = q.where((eb) => eb.or([eb('createdAt', '<', b.createdAt), eb.and([eb('createdAt', '=', b.createdAt), eb('id', '<', b.id)])]))
    const rows = await q.orderBy('createdAt', 'desc').orderBy('id', 'desc').limit(opts.limit).execute()
    return rows.map(toRecord)
  }

  private readonly compiled = new Map<string, CompiledQuery>()

  /** Runs a query built once by `build` with new parameters; Kysely would rebuild it on every call. */
  private async precompiled<R>(shape: string, build: () => Compilable<R>, parameters: unknown[]): Promise<R[]> {
    let query = this.compiled.get(shape)
    if (!query) {
      query = build().compile()
      // The first build proves the parameter order: the compiled values must be the ones given.
      if (query.parameters.length !== parameters.length || query.parameters.some((p, i) => p !== parameters[i])) {
        throw new Error(`precompiled query ${shape}: parameters do not line up with its SQL`)
      }
      this.compiled.set(shape, query)
    }
    return (await this.db.executeQuery<R>({ ...query, parameters })).rows
  }

  // the Data API outbox

  async claimEvents(now: number, leaseUntil: number, limit: number): Promise<OutboxEvent[]> {
    // Most polls find nothing due: a plain read first, so they take no write lock.
    const due = await this.db.selectFrom('events').select('id')
      .where('state', '=', 'pending').where('nextAttemptAt', '<=', now)
      .where((eb) => eb.or([eb('lockedUntil', 'is', null), eb('lockedUntil', '<', now)]))
      .limit(1).executeTakeFirst()
    if (!due) return []
    return this.db.transaction().execute(async (tx) => {
      let due = tx.selectFrom('events').select('id')
        .where('state', '=', 'pending').where('nextAttemptAt', '<=', now)
        .where((eb) => eb.or([eb('lockedUntil', 'is', null), eb('lockedUntil', '<', now)]))
        .orderBy('nextAttemptAt').limit(limit)
      // SQLite's BEGIN IMMEDIATE lets one process at a time in; PostgreSQL skips rows others hold.
      if (this.engine === 'postgres') due = due.forUpdate().skipLocked()
      const ids = (await due.execute()).map((r) => r.id)
      if (ids.length === 0) return []
      const rows = await tx.updateTable('events').set({ lockedUntil: leaseUntil }).where('id', 'in', ids).returningAll().execute()
      return rows.map(toEvent).sort((a, b) => a.nextAttemptAt - b.nextAttemptAt)
    })
  }

  async finishAttempt(
    event: Pick<OutboxEvent, 'id' | 'state' | 'attempts' | 'nextAttemptAt' | 'deliveredAt' | 'lastError'>, leasedUntil: number, attempt: DeliveryAttempt,
  ): Promise<boolean> {
    return this.db.transaction().execute(async (tx) => {
      const { id, ...fields } = event
      const result = await tx.updateTable('events').set({ ...fields, lockedUntil: null })
        .where('id', '=', id).where('lockedUntil', '=', leasedUntil).executeTakeFirst()
      if (Number(result.numUpdatedRows) !== 1) return false
      await tx.insertInto('eventAttempts').values(attempt).execute()
      return true
    })
  }

  async getEvent(id: string): Promise<OutboxEvent | undefined> {
    const row = await this.db.selectFrom('events').selectAll().where('id', '=', id).executeTakeFirst()
    return row && toEvent(row)
  }

  async countPendingEvents(): Promise<number> {
    const row = await this.db.selectFrom('events').select((eb) => eb.fn.countAll<number>().as('n')).where('state', '=', 'pending').executeTakeFirst()
    return Number(row?.n ?? 0)
  }

  async listEvents(filter: { appId?: string; state?: OutboxEvent['state']; limit: number }): Promise<OutboxEvent[]> {
    let q = this.db.selectFrom('events').selectAll()
    if (filter.appId) q = q.where('appId', '=', filter.appId)
    if (filter.state) q = q.where('state', '=', filter.state)
    return (await q.orderBy('createdAt', 'desc').orderBy('id', 'desc').limit(filter.limit).execute()).map(toEvent)
  }

  async listAttempts(eventId: string): Promise<DeliveryAttempt[]> {
    return this.db.selectFrom('eventAttempts').selectAll().where('eventId', '=', eventId).orderBy('at').orderBy('id').execute()
  }

  async redeliver(id: string, now: number): Promise<boolean> {
    const result = await this.db.updateTable('events').set({ state: 'pending', nextAttemptAt: now, lockedUntil: null })
      .where('id', '=', id).where('state', '!=', 'pending').executeTakeFirst()
    return Number(result.numUpdatedRows) === 1
  }

  // change feed

  async changesSince(seq: number, limit = 500): Promise<Change[]> {
    const rows = await this.db.selectFrom('changes').selectAll().where('seq', '>', seq).orderBy('seq').limit(limit).execute()
    return rows.map((r) => ({ ...r, kind: r.kind as Change['kind'] }))
  }

  async changesIn(seqs: number[]): Promise<Change[]> {
    if (seqs.length === 0) return []
    const rows = await this.db.selectFrom('changes').selectAll().where('seq', 'in', seqs).orderBy('seq').execute()
    return rows.map((r) => ({ ...r, kind: r.kind as Change['kind'] }))
  }

  async latestChangeSeq(): Promise<number> {
    const row = await this.db.selectFrom('changes').select((eb) => eb.fn.max('seq').as('seq')).executeTakeFirst()
    return Number(row?.seq ?? 0)
  }

  watchChanges(wake: () => void, onError: (err: unknown) => void): () => Promise<void> {
    return this.watcher ? this.watcher(wake, onError) : async () => {}
  }
}

const appendChange = (db: Db, kind: Change['kind'], ref: string, now: number) =>
  db.insertInto('changes').values({ kind, ref, createdAt: now }).execute()

const keyStates = (keys: { kid: string; state: string }[]): string =>
  keys.map((k) => `${k.kid}=${k.state}`).sort().join(' ')

const enqueue = async (db: Db, events: OutboxEvent[]) => {
  if (events.length) await db.insertInto('events').values(events).execute()
}

const insertAudit = async (db: Db, entries: AuditEntry[]) => {
  if (!entries.length) return
  // An entry that names only the app's id gets its client_id from the app, in the same statement.
  const clientIdOf = (e: AuditEntry) => e.clientId ?? (e.appId ? db.selectFrom('apps').select('clientId').where('id', '=', e.appId) : null)
  await db.insertInto('auditEntries').values(entries.map((e) => ({ ...e, clientId: clientIdOf(e), details: JSON.stringify(e.details) }))).execute()
}

const upsertInstall = async (db: Db, install: Install) => {
  const { grantId: _g, createdAt: _c, ...update } = install
  await db.insertInto('installs').values(install).onConflict((oc) => oc.column('grantId').doUpdateSet(update)).execute()
}

/** What a change carries along (storage.ts `Alongside`), written inside the change's transaction. */
async function writeAlongside(db: Db, also: Alongside): Promise<void> {
  if (also.tenant) await db.insertInto('tenants').values(also.tenant).execute()
  if (also.install) await upsertInstall(db, also.install)
  await enqueue(db, also.events ?? [])
  await insertAudit(db, also.audit ?? [])
}

const toEvent = (row: Row<'events'>): OutboxEvent => ({ ...row, state: row.state as OutboxEvent['state'] })

const toRecord = (row: Row<'records'>): ApiRecord => ({ ...row, data: JSON.parse(row.data) as Record<string, unknown> })

const splitScopes = (s: string): string[] => (s === '' ? [] : s.split(' '))

function toTenant(row: Row<'tenants'> | undefined): Tenant | undefined {
  return row && { ...row, environment: row.environment as Tenant['environment'] }
}

function toApp(row: Row<'apps'> | undefined): App | undefined {
  return row && {
    ...row,
    listed: row.listed === 1,
    kind: row.kind as App['kind'],
    environment: row.environment as App['environment'],
    redirectUris: JSON.parse(row.redirectUris) as string[],
    scopes: splitScopes(row.scopes),
  }
}

function fromApp(app: App): Database['apps'] {
  return { ...app, redirectUris: JSON.stringify(app.redirectUris), scopes: app.scopes.join(' '), listed: app.listed ? 1 : 0 }
}

function toGrant(row: Row<'grants'> | undefined): Grant | undefined {
  return row && { ...row, status: row.status as Grant['status'], scopes: splitScopes(row.scopes) }
}

function fromGrant(grant: Grant): Database['grants'] {
  return { ...grant, scopes: grant.scopes.join(' ') }
}

import type {
  ApiRecord, App, AppSecret, AuditEntry, AuthorizationCode, DeliveryAttempt, Install, OutboxEvent, Change, Grant, Membership, OpaqueToken, OpaqueTokenRecord, SecretHandle, Session, SigningKeyRecord,
  Tenant, User, WorkOrder,
} from './model.js'

/**
 * Rows that belong to a change and commit in its transaction, so a crash keeps all of them or none:
 * its audit entries, its outbox events, and for createApp the sandbox tenant made for the app, for a
 * grant the install it is made for.
 */
export interface Alongside {
  audit?: AuditEntry[]
  events?: OutboxEvent[]
  tenant?: Tenant
  install?: Install
}

/** `also` with `events` ahead of its own. */
export const withEvents = (events: OutboxEvent[], also: Alongside = {}): Alongside => ({ ...also, events: [...events, ...(also.events ?? [])] })

/**
 * Everything the core needs from a store. Adapters (SQLite, PostgreSQL) live in @fieldgate/storage and
 * pass one contract suite. Every method that changes several rows is atomic; every change that other
 * processes must see at once also appends to the change feed in the same transaction.
 */
export interface Storage {
  readonly engine: 'sqlite' | 'postgres'
  migrate(): Promise<void>
  close(): Promise<void>

  createTenant(tenant: Tenant): Promise<Tenant>
  getTenant(id: string): Promise<Tenant | undefined>
  listTenants(): Promise<Tenant[]>

  createUser(user: User, memberships: Omit<Membership, 'userId'>[]): Promise<User>
  getUser(id: string): Promise<User | undefined>
  getUserByEmail(email: string): Promise<User | undefined>
  setSandboxTenant(userId: string, tenantId: string): Promise<void>
  listMemberships(userId: string): Promise<Membership[]>
  addMembership(membership: Membership): Promise<void>

  /** Stores an app with its first secret and, for a private app, its grant on its own tenant; `also.tenant` first. */
  createApp(app: App, secret: AppSecret, grant?: Grant, also?: Alongside): Promise<App>
  getApp(id: string): Promise<App | undefined>
  getAppByClientId(clientId: string): Promise<App | undefined>
  listApps(filter?: { ownerUserId?: string }): Promise<App[]>
  /** Saves an app's editable fields; appends an `app` change. */
  updateApp(app: App, also?: Alongside): Promise<void>
  /**
   * Deletes an app with its secrets, grants, codes and tokens, in one transaction; appends a `grant`
   * change for each grant and an `app` change, so every process drops what it cached.
   */
  deleteApp(id: string, now: number, also?: Alongside): Promise<boolean>
  /** Secrets that still authenticate at `now`: the current one and those in a rotation grace period. */
  listLiveSecrets(appId: string, now: number): Promise<AppSecret[]>
  /** Adds `secret` as current; every older current secret expires at `graceEndsAt`. */
  rotateSecret(appId: string, secret: AppSecret, graceEndsAt: number, also?: Alongside): Promise<void>

  createGrant(grant: Grant, also?: Alongside): Promise<Grant>
  getGrant(id: string): Promise<Grant | undefined>
  findActiveGrant(appId: string, tenantId: string): Promise<Grant | undefined>
  listGrants(filter?: { appId?: string; tenantId?: string }): Promise<Grant[]>
  /**
   * Incremental consent: adds `scopes` to an active grant's, atomically (concurrent consents never lose
   * each other's scopes). Appends a `grant` change when the scopes grew; undefined if not active.
   * `also`, given the grant as it ends up and whether it grew, names rows that commit with it.
   */
  widenGrantScopes(id: string, scopes: string[], now: number, also?: (grant: Grant, grew: boolean) => Alongside): Promise<Grant | undefined>
  /** Returns false when the grant was not active. Revokes its opaque tokens too; appends a `grant` change. */
  revokeGrant(id: string, now: number, also?: Alongside): Promise<boolean>

  saveInstall(install: Install, also?: Alongside): Promise<void>
  getInstall(grantId: string): Promise<Install | undefined>

  recordAudit(entry: AuditEntry): Promise<void>
  /** Newest first. */
  listAudit(filter: { appIds?: string[]; tenantIds?: string[]; limit: number }): Promise<AuditEntry[]>

  listSigningKeys(): Promise<SigningKeyRecord[]>
  /**
   * Inserts new keys and moves existing ones between states in one transaction; appends a `keys` change.
   * With `basedOn` (the kid and state of every key the change was planned from) it is a compare-and-set:
   * nothing is written and it returns false when another process changed the keys in between.
   */
  saveSigningKeys(
    insert: SigningKeyRecord[], update: Pick<SigningKeyRecord, 'kid' | 'state' | 'retireAt'>[], basedOn?: Pick<SigningKeyRecord, 'kid' | 'state'>[],
  ): Promise<boolean>

  saveCode(code: AuthorizationCode): Promise<void>
  getCode(codeHash: string): Promise<AuthorizationCode | undefined>
  /**
   * Atomic single use: marks the code consumed and stores the token issued from it, in one transaction.
   * Returns false, storing nothing, when the code was already used or has expired. Among concurrent
   * redemptions exactly one wins (a conditional update whose row count decides).
   */
  redeemCode(codeHash: string, now: number, token: OpaqueToken): Promise<boolean>
  /** Revokes every token issued from a code; returns how many were still active. */
  revokeTokensFromCode(codeHash: string, now: number): Promise<number>

  /** The token with its grant as it is now, revoked or not; undefined for an unknown hash. */
  findOpaqueToken(tokenHash: string): Promise<OpaqueTokenRecord | undefined>
  /** Returns the token if this call revoked it, undefined if it was unknown or already revoked. */
  revokeOpaqueToken(tokenHash: string, now: number): Promise<OpaqueToken | undefined>

  /** Stores a secret to be shown once; drops handles that expired by `handle.createdAt`. */
  saveSecretHandle(handle: SecretHandle): Promise<void>
  /**
   * The handle made for this browser, if it has not expired at `now`. The first call (exactly one among
   * concurrent ones) gets it with its sealed secret and marks it shown, atomically; later calls get it
   * with `first` false and no secret.
   */
  takeSecretHandle(idHash: string, browserHash: string, now: number): Promise<{ handle: SecretHandle; first: boolean } | undefined>

  createSession(session: Session): Promise<void>
  /** The session if it exists and has not expired at `now`. */
  getSession(idHash: string, now: number): Promise<Session | undefined>
  deleteSession(idHash: string): Promise<void>

  createWorkOrder(order: WorkOrder, also?: Alongside): Promise<WorkOrder>
  /** Newest first; `before` is the cursor (an id returned earlier). */
  listWorkOrders(tenantId: string, opts: { limit: number; before?: { createdAt: number; id: string } }): Promise<WorkOrder[]>

  createRecord(record: ApiRecord, also?: Alongside): Promise<ApiRecord>
  getRecord(tenantId: string, kind: string, id: string): Promise<ApiRecord | undefined>
  /** Newest first; only those `createdByClientId` made when it is given; `before` is the cursor. */
  listRecords(tenantId: string, kind: string, opts: { limit: number; createdByClientId?: string; before?: { createdAt: number; id: string } }): Promise<ApiRecord[]>

  /**
   * Leases up to `limit` pending events due at `now` until `leaseUntil`; an event leased by another
   * process is skipped (FOR UPDATE SKIP LOCKED on PostgreSQL, one writer at a time on SQLite), so no
   * attempt is made twice.
   */
  claimEvents(now: number, leaseUntil: number, limit: number): Promise<OutboxEvent[]>
  /** Records an attempt and the event's new state, only while `leasedUntil` is still this caller's lease. */
  finishAttempt(event: Pick<OutboxEvent, 'id' | 'state' | 'attempts' | 'nextAttemptAt' | 'deliveredAt' | 'lastError'>, leasedUntil: number, attempt: DeliveryAttempt): Promise<boolean>
  getEvent(id: string): Promise<OutboxEvent | undefined>
  /** Events waiting to be delivered, for the backlog metric. */
  countPendingEvents(): Promise<number>
  /** Newest first. */
  listEvents(filter: { appId?: string; state?: OutboxEvent['state']; limit: number }): Promise<OutboxEvent[]>
  listAttempts(eventId: string): Promise<DeliveryAttempt[]>
  /** Sends a delivered or failed event again, same id and body; false if it is unknown or pending. */
  redeliver(id: string, now: number): Promise<boolean>

  changesSince(seq: number, limit?: number): Promise<Change[]>
  /** The changes with these sequence numbers that exist now (gaps the feed is waiting on). */
  changesIn(seqs: number[]): Promise<Change[]>
  latestChangeSeq(): Promise<number>
  /**
   * Calls `wake` soon after any process commits a change, where the engine can signal it (PostgreSQL
   * LISTEN/NOTIFY; SQLite never calls it). Returns the function that stops watching. Followers poll
   * all the same, so a signal lost to a dropped connection costs one poll interval, nothing more.
   */
  watchChanges(wake: () => void, onError: (err: unknown) => void): () => Promise<void>
}

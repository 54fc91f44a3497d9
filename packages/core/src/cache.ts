import { TaggedLru } from './lru.js'
import type { App, AppSecret, Change, OpaqueTokenRecord, Tenant } from './model.js'
import type { Storage, TenantGrant } from './storage.js'

export interface ClientRecord {
  app: App
  /** Current secret and those in a grace period; callers still check `expiresAt` against the clock. */
  secrets: AppSecret[]
  /** Set when the record was re-read because a presented secret did not match. */
  refreshedAt?: number
}

/** Entries per kind of record (FIELDGATE_CACHE_ENTRIES' default); about 1 KB each at most. */
export const defaultCacheEntries = 50_000

/**
 * Per-process cache of what the token and API paths read on every request (clients, tenants, grants,
 * opaque tokens), so they cost no query. Bounded: each kind keeps its most recently used entries.
 * Every change another process makes reaches here through the change feed (`apply`), which bounds
 * staleness to one poll; each entry is tagged with the records it was read from, so a change drops
 * exactly the entries it touched without scanning. Absences are never cached, so a new app or install
 * is seen at once.
 */
export class StoreCache {
  private readonly clients: TaggedLru<ClientRecord>
  private readonly tenants: TaggedLru<Tenant>
  private readonly tenantGrants: TaggedLru<TenantGrant>
  private readonly grantStatus: TaggedLru<boolean>
  private readonly opaqueTokens: TaggedLru<OpaqueTokenRecord>
  // Bumped by every invalidation: a read that raced one must not cache what it read.
  private epoch = 0

  constructor(
    private readonly storage: Storage,
    entries = defaultCacheEntries,
  ) {
    this.clients = new TaggedLru(entries)
    this.tenants = new TaggedLru(entries)
    this.tenantGrants = new TaggedLru(entries)
    this.grantStatus = new TaggedLru(entries)
    this.opaqueTokens = new TaggedLru(entries)
  }

  /** `fresh` re-reads the record unless it was re-read in the last 100 ms: wrong secrets cost at most ten queries a second. */
  async client(clientId: string, now: number, fresh = false): Promise<ClientRecord | undefined> {
    const hit = this.clients.get(clientId)
    if (hit && !(fresh && (hit.refreshedAt === undefined || now - hit.refreshedAt > 100))) return hit
    const epoch = this.epoch
    const app = await this.storage.getAppByClientId(clientId)
    if (!app) return undefined
    const record: ClientRecord = { app, secrets: await this.storage.listLiveSecrets(app.id, now), ...(fresh ? { refreshedAt: now } : {}) }
    this.remember(this.clients, clientId, record, [`app ${app.id}`], epoch)
    return record
  }

  tenant(id: string): Promise<Tenant | undefined> {
    return this.through(
      this.tenants,
      id,
      () => this.storage.getTenant(id),
      () => [`tenant ${id}`],
    )
  }

  /** A tenant and the app's active grant on it; kept only while there is a grant (absences are not cached). */
  async tenantGrant(appId: string, tenantId: string): Promise<TenantGrant | undefined> {
    const key = `${appId} ${tenantId}`
    const hit = this.tenantGrants.get(key)
    if (hit) return hit
    const epoch = this.epoch
    const found = await this.storage.findTenantGrant(appId, tenantId)
    if (found?.grant) this.remember(this.tenantGrants, key, found, [`tenant ${tenantId}`, `grant ${found.grant.id}`], epoch)
    return found
  }

  /** Unlike the others, a `false` is kept too: a revoked grant stays revoked. */
  async isGrantActive(grantId: string): Promise<boolean> {
    const active = await this.through(
      this.grantStatus,
      grantId,
      async () => (await this.storage.getGrant(grantId))?.status === 'active',
      () => [`grant ${grantId}`],
    )
    return active === true
  }

  /**
   * An opaque token by its hash, with its grant as it is now. Every revocation of a token appends a
   * `grant` change for the token's grant (in the same transaction), so a revoked token drops out of
   * every process's cache within one poll of the feed.
   */
  opaqueToken(tokenHash: string): Promise<OpaqueTokenRecord | undefined> {
    return this.through(
      this.opaqueTokens,
      tokenHash,
      () => this.storage.findOpaqueToken(tokenHash),
      ({ grant }) => [`grant ${grant.id}`],
    )
  }

  /** Drops whatever a change touched; the change feed calls this, and so does the process that made it. */
  apply(change: Pick<Change, 'kind' | 'ref'>): void {
    this.epoch++
    const tag = `${change.kind} ${change.ref}`
    if (change.kind === 'app') {
      this.clients.dropTag(tag)
    } else if (change.kind === 'tenant') {
      this.tenants.dropTag(tag)
      this.tenantGrants.dropTag(tag)
    } else if (change.kind === 'grant') {
      this.grantStatus.dropTag(tag)
      this.tenantGrants.dropTag(tag)
      this.opaqueTokens.dropTag(tag)
    }
  }

  /** Read-through: a hit, or a load whose result is kept unless it is absent or raced an invalidation. */
  private async through<V>(lru: TaggedLru<V>, key: string, load: () => Promise<V | undefined>, tags: (value: V) => readonly string[]): Promise<V | undefined> {
    const hit = lru.get(key)
    if (hit !== undefined) return hit
    const epoch = this.epoch
    const value = await load()
    if (value !== undefined) this.remember(lru, key, value, tags(value), epoch)
    return value
  }

  private remember<V>(lru: TaggedLru<V>, key: string, value: V, tags: readonly string[], epoch: number): void {
    if (epoch === this.epoch) lru.set(key, value, tags)
  }
}

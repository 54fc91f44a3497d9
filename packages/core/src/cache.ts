import type { App, AppSecret, Change, Grant, Tenant } from './model.js'
import type { Storage } from './storage.js'

export interface ClientRecord {
  app: App
  /** Current secret and those in a grace period; callers still check `expiresAt` against the clock. */
  secrets: AppSecret[]
  /** Set when the record was re-read because a presented secret did not match. */
  refreshedAt?: number
}

/**
 * Per-process cache of what the token and API paths read on every request (clients, tenants, grants),
 * so they cost no query. Every change another process makes reaches here through the change feed
 * (`apply`), which bounds staleness to one poll; absences are never cached, so a new app or install
 * is seen at once.
 */
export class StoreCache {
  private readonly clients = new Map<string, ClientRecord>()
  private readonly tenants = new Map<string, Tenant>()
  private readonly activeGrants = new Map<string, Grant>()
  private readonly grantStatus = new Map<string, boolean>()
  // Bumped by every invalidation: a read that raced one must not cache what it read.
  private epoch = 0

  constructor(
    private readonly storage: Storage,
    private readonly maxEntries = 50_000,
  ) {}

  /** `fresh` re-reads the record unless it was re-read in the last 100 ms: wrong secrets cost at most ten queries a second. */
  async client(clientId: string, now: number, fresh = false): Promise<ClientRecord | undefined> {
    const hit = this.clients.get(clientId)
    if (hit && !(fresh && (hit.refreshedAt === undefined || now - hit.refreshedAt > 100))) return hit
    const epoch = this.epoch
    const app = await this.storage.getAppByClientId(clientId)
    if (!app) return undefined
    const record: ClientRecord = { app, secrets: await this.storage.listLiveSecrets(app.id, now), ...(fresh ? { refreshedAt: now } : {}) }
    this.remember(this.clients, clientId, record, epoch)
    return record
  }

  tenant(id: string): Promise<Tenant | undefined> {
    return this.through(this.tenants, id, () => this.storage.getTenant(id))
  }

  activeGrant(appId: string, tenantId: string): Promise<Grant | undefined> {
    return this.through(this.activeGrants, `${appId} ${tenantId}`, () => this.storage.findActiveGrant(appId, tenantId))
  }

  /** Unlike the others, a `false` is kept too: a revoked grant stays revoked. */
  isGrantActive(grantId: string): Promise<boolean> {
    return this.through(this.grantStatus, grantId, async () => (await this.storage.getGrant(grantId))?.status === 'active')
  }

  /** Drops whatever a change touched; the change feed calls this, and so does the process that made it. */
  apply(change: Pick<Change, 'kind' | 'ref'>): void {
    this.epoch++
    if (change.kind === 'app') {
      for (const [clientId, record] of this.clients) if (record.app.id === change.ref) this.clients.delete(clientId)
    } else if (change.kind === 'tenant') {
      this.tenants.delete(change.ref)
    } else if (change.kind === 'grant') {
      this.grantStatus.delete(change.ref)
      for (const [key, grant] of this.activeGrants) if (grant.id === change.ref) this.activeGrants.delete(key)
    }
  }

  /** Read-through: a hit, or a load whose result is kept unless it is absent or raced an invalidation. */
  private async through<V>(map: Map<string, V>, key: string, load: () => Promise<V>): Promise<V>
  private async through<V>(map: Map<string, V>, key: string, load: () => Promise<V | undefined>): Promise<V | undefined>
  private async through<V>(map: Map<string, V>, key: string, load: () => Promise<V | undefined>): Promise<V | undefined> {
    const hit = map.get(key)
    if (hit !== undefined) return hit
    const epoch = this.epoch
    const value = await load()
    if (value !== undefined) this.remember(map, key, value, epoch)
    return value
  }

  private remember<V>(map: Map<string, V>, key: string, value: V, epoch: number): void {
    if (epoch !== this.epoch) return
    if (map.size >= this.maxEntries) map.clear()
    map.set(key, value)
  }
}

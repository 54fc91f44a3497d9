import type { Grant, Install } from '../model.js'
import type { Alongside } from './alongside.js'

/** Grants (an app's consent on a tenant) and the installs made for them. */
export interface GrantStore {
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
}

import type { Grant, Install, Tenant } from '../model.js'
import type { Alongside } from './alongside.js'
import type { Page } from './tenants.js'

/** What a listing of grants keeps: each given field must match. */
export interface GrantFilter {
  appId?: string
  tenantId?: string
  status?: Grant['status']
}

/** Grants (an app's consent on a tenant) and the installs made for them. */
export interface GrantStore {
  createGrant(grant: Grant, also?: Alongside): Promise<Grant>
  getGrant(id: string): Promise<Grant | undefined>
  findActiveGrant(appId: string, tenantId: string): Promise<Grant | undefined>
  /** A tenant and the app's active grant on it, in one read: what a client-credentials token needs. */
  findTenantGrant(appId: string, tenantId: string): Promise<TenantGrant | undefined>
  /**
   * Oldest first. Every grant that matches when no page is asked for; with a `limit`, `offset` or `query`,
   * one page (50 rows when no limit is said, at most 500), `query` matching part of the app's name or
   * client_id or of the tenant's name or id, in any case.
   */
  listGrants(filter?: GrantFilter & Page): Promise<Grant[]>
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

/** A tenant, and an app's active grant on it if it has one. */
export interface TenantGrant {
  tenant: Tenant
  grant: Grant | undefined
}

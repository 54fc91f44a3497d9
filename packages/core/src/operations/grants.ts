import { randomUUID } from 'node:crypto'
import { auditEntry, type Actor, type Person } from '../audit.js'
import type { OperationContext } from '../context.js'
import { newEvent } from '../events.js'
import type { App, Grant, Install, Tenant } from '../model.js'
import { forbidden, invalid, notFound } from '../operation-error.js'
import { missingFrom } from '../scopes.js'
import { withEvents, type Alongside } from '../storage.js'
import { isLookupKey } from '../client-auth.js'
import { adminTenants, appFor, requireOperator, tenantFor } from './access.js'
import { safeScopes } from './validate.js'

export function newGrant(app: App, tenantId: string, scopes: string[], now: number): Grant {
  return { id: randomUUID(), appId: app.id, tenantId, scopes, status: 'active', createdAt: now, updatedAt: now }
}

/** An operator connects an app to a tenant directly, with the app's scopes or fewer. */
export async function createGrant(ctx: OperationContext, actor: Actor, input: { clientId: string; tenantId: string; scopes?: string }): Promise<Grant> {
  requireOperator(actor, 'grant access directly; people install or connect apps')
  const app = await appFor(ctx, actor, input.clientId)
  const tenant = await tenantFor(ctx, actor, input.tenantId)
  if (app.kind === 'private' && app.tenantId !== tenant.id) throw invalid('a private app acts only on its own tenant')
  if (tenant.environment !== app.environment) throw invalid(`a ${app.environment} app cannot be granted a ${tenant.environment} tenant`)
  const scopes = input.scopes === undefined ? app.scopes : safeScopes(input.scopes)
  const beyond = missingFrom(scopes, app.scopes)
  if (beyond.length) throw invalid(`the app may not ask for: ${beyond.join(' ')}`)
  const existing = await ctx.storage.findActiveGrant(app.id, tenant.id)
  if (existing) return existing
  const now = ctx.now()
  const fresh = newGrant(app, tenant.id, scopes, now)
  const audit = [auditEntry(actor, now, 'grant.created', { objectId: fresh.id, appId: app.id, clientId: app.clientId, tenantId: tenant.id }, { scopes })]
  return ctx.storage.createGrant(fresh, { events: newEvent(app, tenant.id, 'grant.created', { grant_id: fresh.id, scopes }, now), audit })
}

/**
 * Ends a grant and every token standing on it. An operator revokes any grant; a person disconnects
 * (or uninstalls, when it was installed) an app from a tenant they own or administer.
 */
export async function revokeGrant(ctx: OperationContext, actor: Actor, input: { grantId: string }): Promise<Grant> {
  const grant = isLookupKey(input.grantId) ? await ctx.storage.getGrant(input.grantId) : undefined
  const app = grant && (await ctx.storage.getApp(grant.appId))
  // A person disconnects what listConnections offers them to: an active grant of an app, on a tenant they administer.
  if (actor.kind !== 'operator') {
    const theirs = actor.kind === 'person' && grant?.status === 'active' && app && (await adminTenants(ctx, actor.user)).some((t) => t.id === grant.tenantId)
    if (!theirs) throw forbidden('Only an owner or admin of the farm can disconnect this app.')
  }
  if (!grant) throw notFound(`no grant ${input.grantId}`)
  const action = actor.kind === 'operator' ? 'grant.revoked' : (await ctx.storage.getInstall(grant.id)) ? 'app.uninstalled' : 'app.disconnected'
  const now = ctx.now()
  const events = app ? newEvent(app, grant.tenantId, action === 'app.uninstalled' ? 'app.uninstalled' : 'grant.revoked', { grant_id: grant.id }, now) : []
  await ctx.storage.revokeGrant(grant.id, now, { events, audit: [auditEntry(actor, now, action, { objectId: grant.id, appId: grant.appId, tenantId: grant.tenantId })] })
  ctx.cache.apply({ kind: 'grant', ref: grant.id })
  return { ...grant, status: 'revoked' }
}

/**
 * One active grant per (app, tenant): widens it with `scopes`, or creates it; a consent or install
 * racing this one may create it first, and then that one is widened. `also` names rows (an install,
 * its events and audit entry) that commit with the grant as it ends up. A step of installApp and of
 * consent (endpoints/authorize.ts), which check who acts first.
 */
export async function connectApp(
  ctx: OperationContext,
  app: App,
  tenantId: string,
  scopes: string[],
  also?: (grant: Grant) => Alongside,
): Promise<{ grant: Grant; created: boolean }> {
  const now = ctx.now()
  for (let attempt = 0; attempt < 3; attempt++) {
    const existing = await ctx.storage.findActiveGrant(app.id, tenantId)
    if (existing) {
      const widened = await ctx.storage.widenGrantScopes(existing.id, scopes, now, (w, grew) =>
        withEvents(grew ? newEvent(app, tenantId, 'grant.scopes_changed', { grant_id: w.id, scopes: w.scopes }, now) : [], also?.(w)),
      )
      if (widened) {
        ctx.cache.apply({ kind: 'grant', ref: widened.id })
        return { grant: widened, created: false }
      }
      continue
    }
    try {
      const grant = newGrant(app, tenantId, scopes, now)
      const events = newEvent(app, tenantId, 'grant.created', { grant_id: grant.id, scopes }, now)
      return { grant: await ctx.storage.createGrant(grant, withEvents(events, also?.(grant))), created: true }
    } catch {
      // The unique index on active grants refused a second one: another request won; widen theirs.
    }
  }
  throw new Error('could not create or widen the grant')
}

/** An app with an active grant on one of a person's tenants, with how it got there. */
export interface Connection {
  grant: Grant
  app: App
  tenant: Tenant
  install: Install | undefined
  /** The email of who installed it, when it was installed. */
  installedBy: string | undefined
  /** Owners and admins may disconnect; members only see. */
  canDisconnect: boolean
}

/** The active grants on every tenant the person belongs to, with their install record if any. */
export async function listConnections(ctx: OperationContext, actor: Person): Promise<Connection[]> {
  const list: Connection[] = []
  for (const m of await ctx.storage.listMemberships(actor.user.id)) {
    const tenant = await ctx.storage.getTenant(m.tenantId)
    if (!tenant) continue
    for (const grant of await ctx.storage.listGrants({ tenantId: tenant.id })) {
      if (grant.status !== 'active') continue
      const app = await ctx.storage.getApp(grant.appId)
      if (!app) continue
      const install = await ctx.storage.getInstall(grant.id)
      const installer = install?.installedBy ? await ctx.storage.getUser(install.installedBy) : undefined
      list.push({ grant, app, tenant, install, installedBy: installer?.email, canDisconnect: m.role !== 'member' })
    }
  }
  return list
}

import type { Actor } from '../audit.js'
import { isLookupKey } from '../client-auth.js'
import type { OperationContext } from '../context.js'
import type { App, Tenant, User } from '../model.js'
import { forbidden, notFound } from '../operation-error.js'
import { isAvailable } from './review.js'

/*
 * Who may do what, in one place. Every operation calls one of these before it reads what it changes, so
 * the CLI, the admin API and the portal cannot differ, and an edge cannot forget a check:
 * - an operator (CLI, admin API) may do everything;
 * - a person may change only the apps they own, and act (install, connect, disconnect, make a private
 *   app) only on tenants where they are owner or admin;
 * - a visitor may only sign up.
 * Another partner's app is as good as absent (not_found, never forbidden), so ids cannot be probed.
 */

/** The tenants where a person is owner or admin, by name. */
export async function adminTenants(ctx: OperationContext, user: Pick<User, 'id'>): Promise<Tenant[]> {
  const tenants: Tenant[] = []
  for (const m of await ctx.storage.listMemberships(user.id)) {
    if (m.role === 'member') continue
    const tenant = await ctx.cache.tenant(m.tenantId)
    if (tenant) tenants.push(tenant)
  }
  return tenants.sort((a, b) => a.name.localeCompare(b.name))
}

/** Only an operator; `what` completes "only an operator may …". */
export function requireOperator(actor: Actor, what: string): void {
  if (actor.kind !== 'operator') throw forbidden(`only an operator may ${what}`)
}

/** Anyone but a visitor: an operator, or a person signed in. */
export function requireSignedIn(actor: Actor, what: string): void {
  if (actor.kind === 'visitor') throw forbidden(`sign in to ${what}`)
}

/** The tenant, if the actor may act on it: any for an operator, one they administer for a person. */
export async function tenantFor(ctx: OperationContext, actor: Actor, tenantId: string): Promise<Tenant> {
  if (actor.kind === 'operator') {
    const tenant = await ctx.storage.getTenant(tenantId)
    if (!tenant) throw notFound(`no tenant ${tenantId}`)
    return tenant
  }
  const tenant = actor.kind === 'person' ? (await adminTenants(ctx, actor.user)).find((t) => t.id === tenantId) : undefined
  if (!tenant) throw forbidden('acting on a tenant needs its owner or an admin')
  return tenant
}

/** The app by client_id, if the actor may manage it: any for an operator, their own for a person. */
export async function appFor(ctx: OperationContext, actor: Actor, clientId: string): Promise<App> {
  const app = await findOwnApp(ctx, actor, clientId)
  if (!app) throw notFound(`no app with client_id ${clientId}`)
  return app
}

/** As appFor, undefined instead of not_found: for pages that answer with a page of their own. */
export async function findOwnApp(ctx: OperationContext, actor: Actor, clientId: string): Promise<App | undefined> {
  const app = await signedInLookup(ctx, actor, clientId)
  return app && ownsOrOperates(actor, app) ? app : undefined
}

/**
 * A marketplace app a person may see and install: public, approved and not suspended (review.ts), and
 * listed unless it is their own.
 */
export async function findInstallableApp(ctx: OperationContext, actor: Actor, clientId: string): Promise<App | undefined> {
  const app = await signedInLookup(ctx, actor, clientId)
  return app && app.kind === 'public' && isAvailable(app) && (app.listed || ownsOrOperates(actor, app)) ? app : undefined
}

/** The app by client_id for anyone but a visitor; a value that cannot be a client_id finds nothing. */
const signedInLookup = async (ctx: OperationContext, actor: Actor, clientId: string): Promise<App | undefined> =>
  actor.kind === 'visitor' || !isLookupKey(clientId) ? undefined : ctx.storage.getAppByClientId(clientId)

const ownsOrOperates = (actor: Actor, app: App): boolean => actor.kind === 'operator' || (actor.kind === 'person' && app.ownerUserId === actor.user.id)

import type { Actor } from '../audit.js'
import { isLookupKey } from '../client-auth.js'
import type { CoreContext, OperationContext } from '../context.js'
import { InvalidToken, MissingToken, OAuthError } from '../errors.js'
import type { App, Tenant, User } from '../model.js'
import { forbidden, notFound } from '../operation-error.js'
import { hashSecret, sameHash } from '../secrets.js'
import type { InitialAccessToken } from '../storage.js'
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

/**
 * RFC 7591 §3: who may register a client. Under `open` anyone; under `token` only the bearer of a live
 * initial access token (RFC 6750 §3.1 errors: 401 without one or with a bad one), which is returned for
 * the audit entry; under `off` nobody (the endpoint is not even served). An operator always may.
 */
export async function requireRegistrant(ctx: CoreContext, actor: Actor, initialAccessToken: string | undefined): Promise<InitialAccessToken | undefined> {
  const { policy } = ctx.config.registration
  if (actor.kind === 'operator') return undefined
  if (policy === 'off') throw new OAuthError('access_denied', 'client registration is off on this server', 403)
  if (policy === 'open') return undefined
  if (initialAccessToken === undefined) throw new MissingToken()
  const token = isLookupKey(initialAccessToken) ? await ctx.storage.findInitialAccessToken(hashSecret(initialAccessToken)) : undefined
  if (!token || !isLiveInitialAccessToken(token, ctx.now())) throw new InvalidToken('The initial access token is not valid, has expired or was revoked')
  return token
}

/** Whether an initial access token registers now: neither revoked nor expired. */
export const isLiveInitialAccessToken = (token: InitialAccessToken, now: number): boolean => token.revokedAt === null && (token.expiresAt === null || token.expiresAt > now)

// Compared against when the client is unknown, so an unknown client_id costs what a wrong token does.
const decoyRegistrationHash = hashSecret('fieldgate-decoy-registration-token')

/**
 * RFC 7592 §2: only the holder of a client's registration access token may read, change or delete its
 * registration. Any failure (no token, a wrong one, an unknown client, one that did not register
 * itself) is the same 401 invalid_token, compared in constant time, so nothing about the client leaks.
 */
export async function registeredClientFor(ctx: OperationContext, clientId: string, registrationAccessToken: string | undefined): Promise<App> {
  if (registrationAccessToken === undefined) throw new MissingToken()
  const app = isLookupKey(clientId) ? await ctx.storage.getAppByClientId(clientId) : undefined
  const expected = app?.registration === 'dynamic' ? app.registrationTokenHash : null
  const matched = sameHash(expected ?? decoyRegistrationHash, hashSecret(registrationAccessToken))
  if (!app || expected === null || !matched) throw new InvalidToken('The registration access token is not valid for this client')
  return app
}

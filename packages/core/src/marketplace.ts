import { createHmac } from 'node:crypto'
import { connectApp, createTenant } from './admin.js'
import { OperationError, invalid } from './operation-error.js'
import { auditEntry, type AdminOptions } from './audit.js'
import { newEvent } from './events.js'
import type { App, Grant, Install, Tenant, User } from './model.js'
import { sameScopes } from './scopes.js'
import { sameHash, unseal } from './secrets.js'
import type { Alongside, Storage } from './storage.js'

/**
 * FieldEdge's marketplace: a tenant admin installs a partner's public app, the app's
 * install URL receives `?target=<marketplace_id>&target_id=<tenant id>`, the partner gets tokens with
 * client credentials and `target_id`, and sends the person back with success or an error.
 */

/** A partner's own sandbox tenant, made on first use: the `target_id` to test against before any customer. */
export async function ensurePartnerSandbox(storage: Storage, user: User, opts: AdminOptions = {}): Promise<Tenant> {
  if (user.sandboxTenantId) {
    const existing = await storage.getTenant(user.sandboxTenantId)
    if (existing) return existing
  }
  const tenant = await createTenant(storage, { name: `${user.email} sandbox`, environment: 'sandbox' }, opts.now)
  await storage.addMembership({ userId: user.id, tenantId: tenant.id, role: 'owner' })
  await storage.setSandboxTenant(user.id, tenant.id)
  user.sandboxTenantId = tenant.id
  return tenant
}

/**
 * The app's allowed scopes changed between the page that showed them and the Install click: nothing is
 * granted, the person is shown the new list and decides again (wider access always needs a new install).
 */
export class ShownScopesChanged extends OperationError {
  constructor(readonly shown: readonly string[], readonly current: readonly string[]) {
    super('conflict', 'The permissions this app asks for changed since the page was shown. Nothing was installed: check the new list and install again.')
  }
}

/** Marketplace apps only, and each on tenants of its own environment: sandbox on sandbox, live on live. */
export function requireInstallable(app: App, tenant: Tenant): void {
  if (app.kind !== 'public') throw invalid('only marketplace (public) apps are installed')
  if (app.environment === 'live' && !app.installUrl) throw invalid('this app has no install URL: it is connected through /authorize, not installed')
  if (app.environment !== tenant.environment) throw invalid(`a ${app.environment} app cannot be installed on a ${tenant.environment} tenant`)
}

/**
 * Installs `app` on `tenant` for `user`, granting exactly `shownScopes`: the list the install page showed,
 * which must still be the app's allowed scopes (else ShownScopesChanged, and nothing changes). The grant
 * is one per app and tenant, widened with those scopes if it exists; a pending install, an audit entry.
 * Sandbox apps go on sandbox tenants only, live apps on live ones.
 */
export async function installApp(
  storage: Storage, input: { app: App; tenant: Tenant; user: User; shownScopes: readonly string[] }, opts: AdminOptions = {},
): Promise<{ grant: Grant; install: Install }> {
  const { app, tenant, user, shownScopes } = input
  const now = opts.now ?? Date.now()
  requireInstallable(app, tenant)
  if (!sameScopes(shownScopes, app.scopes)) throw new ShownScopesChanged(shownScopes, app.scopes)
  const existing = await storage.findActiveGrant(app.id, tenant.id)
  const previous = existing && await storage.getInstall(existing.id)
  let install: Install | undefined
  // The install, its event and audit entry commit with the grant: a crash leaves all of them or none.
  const along = (grant: Grant): Alongside => {
    const kept = previous?.grantId === grant.id ? previous : undefined
    install = {
      grantId: grant.id, installedBy: kept?.installedBy ?? user.id, state: app.installUrl ? 'pending' : 'complete', error: null,
      createdAt: kept?.createdAt ?? now, updatedAt: now,
    }
    return {
      install,
      events: newEvent(app, tenant.id, 'app.installed', { grant_id: grant.id, scopes: grant.scopes, target: tenant.marketplaceId }, now),
      audit: [auditEntry({ ...opts, now }, 'app.installed', { objectId: grant.id, appId: app.id, tenantId: tenant.id }, { scopes: grant.scopes })],
    }
  }
  const { grant } = await connectApp(storage, app, tenant.id, [...shownScopes], now, along)
  return { grant, install: install! }
}

/** The partner's answer, brought back by the person: setup finished, or failed with a message. */
export async function finishInstall(
  storage: Storage, grant: Grant, outcome: { ok: boolean; error?: string }, opts: AdminOptions = {},
): Promise<Install> {
  const now = opts.now ?? Date.now()
  const previous = await storage.getInstall(grant.id)
  const install: Install = {
    grantId: grant.id, installedBy: previous?.installedBy ?? opts.actor?.userId ?? null, state: outcome.ok ? 'complete' : 'failed',
    error: outcome.ok ? null : (outcome.error ?? 'The app reported an error').slice(0, 500), createdAt: previous?.createdAt ?? now, updatedAt: now,
  }
  const audit = [auditEntry({ ...opts, now }, outcome.ok ? 'install.completed' : 'install.failed', { objectId: grant.id, appId: grant.appId, tenantId: grant.tenantId }, outcome.ok ? {} : { error: install.error })]
  await storage.saveInstall(install, { audit })
  return install
}

/**
 * Where the person goes after Install: the app's install URL (with any query string of its own) plus the
 * documented `target` and `target_id`, `timestamp` and `hmac`. The hmac covers every parameter of this
 * final URL but itself, so a partner verifies exactly what arrives, whatever their install URL carries.
 */
export async function installRedirect(storage: Storage, app: App, tenant: Tenant, masterKey: Buffer, now = Date.now()): Promise<string> {
  if (!app.installUrl) throw invalid('the app has no install URL')
  const secret = await signingSecret(storage, app, masterKey, now)
  const url = new URL(app.installUrl)
  url.searchParams.delete('hmac')
  url.searchParams.set('target', tenant.marketplaceId)
  url.searchParams.set('target_id', tenant.id)
  url.searchParams.set('timestamp', String(Math.floor(now / 1000)))
  url.searchParams.set('hmac', queryHmac(url.searchParams, secret))
  return url.href
}

/** How far a signed query's `timestamp` may be from now, either way: it bounds replays of a captured link. */
export const signedQueryMaxAgeSeconds = 300

/**
 * hex(HMAC-SHA256(key: the client secret, message: every parameter but `hmac`, sorted by name (stably, so
 * a repeated name keeps its order) and form-urlencoded as URLSearchParams does)). Install redirects and
 * `/marketplace/complete` links are signed the same way; @fieldgate/client has the partner's side.
 */
export function queryHmac(params: URLSearchParams | Record<string, string>, clientSecret: string): string {
  return createHmac('sha256', clientSecret).update(signedMessage(params)).digest('hex')
}

function signedMessage(params: URLSearchParams | Record<string, string>): string {
  const pairs = params instanceof URLSearchParams ? [...params] : Object.entries(params)
  const message = new URLSearchParams(pairs.filter(([name]) => name !== 'hmac'))
  message.sort()
  return message.toString()
}

/**
 * Whether a signed query is genuine and recent: `timestamp` is Unix seconds in digits only, within
 * `maxAgeSeconds` of now, and `hmac` matches under one of `clientSecrets` (all live ones, so a rotation's
 * grace period works). Every secret is compared in constant time, with no early exit.
 */
export function verifySignedQuery(
  params: URLSearchParams | Record<string, string>, clientSecrets: readonly string[], nowSeconds: number, maxAgeSeconds = signedQueryMaxAgeSeconds,
): boolean {
  const read = (name: string) => (params instanceof URLSearchParams ? params.get(name) : params[name]) ?? undefined
  const sent = read('hmac')
  const timestamp = read('timestamp')
  if (!sent || !timestamp || !/^\d{1,12}$/.test(timestamp) || Math.abs(nowSeconds - Number(timestamp)) > maxAgeSeconds) return false
  let matched = false
  for (const secret of clientSecrets) matched = sameHash(sent.toLowerCase(), queryHmac(params, secret)) || matched
  return matched
}

/** Every live secret of the app that was kept sealed, newest first: what a partner may have signed with. */
export async function liveSigningSecrets(storage: Storage, app: App, masterKey: Buffer, now: number): Promise<string[]> {
  const sealed = (await storage.listLiveSecrets(app.id, now)).filter((s) => s.secretEnc !== null).sort((a, b) => b.createdAt - a.createdAt)
  const secrets: string[] = []
  for (const s of sealed) {
    try {
      if (s.secretEnc) secrets.push(unseal(s.secretEnc, s.id, masterKey))
    } catch {
      // Sealed under another master key (a restore from elsewhere): it cannot sign, the others still may.
    }
  }
  return secrets
}

/** The newest live secret that was kept sealed; a rotation switches signing to the new secret at once. */
async function signingSecret(storage: Storage, app: App, masterKey: Buffer, now: number): Promise<string> {
  const newest = (await liveSigningSecrets(storage, app, masterKey, now))[0]
  if (!newest) throw invalid('this app has no secret that can sign install requests: rotate its secret')
  return newest
}

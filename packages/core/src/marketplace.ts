import { createHmac } from 'node:crypto'
import { connectApp, createTenant, AdminError } from './admin.js'
import { auditEntry, type AdminOptions } from './audit.js'
import { newEvent } from './events.js'
import type { App, Grant, Install, Tenant, User } from './model.js'
import { sameHash, unseal } from './secrets.js'
import type { Alongside, Storage } from './storage.js'

/**
 * FieldEdge's marketplace (seed 000): a tenant admin installs a partner's public app, the app's
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
 * Installs `app` on `tenant` for `user`: the grant (one per app and tenant, widened to the app's
 * scopes if it exists), a pending install, an audit entry. Sandbox apps go on sandbox tenants only,
 * live apps on live ones.
 */
export async function installApp(
  storage: Storage, input: { app: App; tenant: Tenant; user: User }, opts: AdminOptions = {},
): Promise<{ grant: Grant; install: Install }> {
  const { app, tenant, user } = input
  const now = opts.now ?? Date.now()
  if (app.kind !== 'public') throw new AdminError('only marketplace (public) apps are installed')
  if (app.environment === 'live' && !app.installUrl) throw new AdminError('this app has no install URL: it is connected through /authorize, not installed')
  if (app.environment !== tenant.environment) throw new AdminError(`a ${app.environment} app cannot be installed on a ${tenant.environment} tenant`)
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
  const { grant } = await connectApp(storage, app, tenant.id, app.scopes, now, along)
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
 * Where the person goes after Install: the app's install URL with the documented `target` and
 * `target_id`, plus `timestamp` and `hmac`, so the partner can tell the request came from here.
 */
export async function installRedirect(storage: Storage, app: App, tenant: Tenant, masterKey: Buffer, now = Date.now()): Promise<string> {
  if (!app.installUrl) throw new AdminError('the app has no install URL')
  const secret = await signingSecret(storage, app, masterKey, now)
  const url = new URL(app.installUrl)
  const params = { target: tenant.marketplaceId, target_id: tenant.id, timestamp: String(Math.floor(now / 1000)) }
  for (const [name, value] of Object.entries(params)) url.searchParams.set(name, value)
  url.searchParams.set('hmac', installHmac(params, secret))
  return url.href
}

/**
 * hex(HMAC-SHA256(key: the client secret, message: the other parameters sorted by name and
 * form-urlencoded, `target=…&target_id=…&timestamp=…`)). What a partner computes to verify.
 */
export function installHmac(params: Record<string, string>, clientSecret: string): string {
  const message = new URLSearchParams(Object.entries(params).filter(([k]) => k !== 'hmac').sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))).toString()
  return createHmac('sha256', clientSecret).update(message).digest('hex')
}

/** The partner's side, as the README describes it: the hmac matches and the timestamp is recent. */
export function verifyInstallRequest(query: URLSearchParams, clientSecret: string, nowSeconds: number, maxAgeSeconds = 300): boolean {
  const params = Object.fromEntries(query)
  const sent = params.hmac
  if (!sent || !params.timestamp || Math.abs(nowSeconds - Number(params.timestamp)) > maxAgeSeconds) return false
  return sameHash(sent, installHmac(params, clientSecret))
}

/** The newest live secret that was kept sealed; a rotation switches signing to the new secret at once. */
async function signingSecret(storage: Storage, app: App, masterKey: Buffer, now: number): Promise<string> {
  const secrets = (await storage.listLiveSecrets(app.id, now)).filter((s) => s.secretEnc !== null).sort((a, b) => b.createdAt - a.createdAt)
  const newest = secrets[0]
  if (!newest?.secretEnc) throw new AdminError('this app has no secret that can sign install requests: rotate its secret')
  return unseal(newest.secretEnc, newest.id, masterKey)
}

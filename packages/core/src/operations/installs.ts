import { auditEntry, type Actor } from '../audit.js'
import type { OperationContext } from '../context.js'
import { newEvent } from '../events.js'
import type { App, Grant, Install, Tenant } from '../model.js'
import { OperationError, invalid, notFound } from '../operation-error.js'
import { sameScopes } from '../scopes.js'
import type { Alongside } from '../storage.js'
import { findInstallableApp, tenantFor } from './access.js'
import { connectApp } from './grants.js'

/*
 * FieldEdge's marketplace: a tenant admin installs a partner's public app, the app's install URL
 * receives `target` and `target_id` (marketplace.ts signs them), and the person comes back with the
 * partner's outcome.
 */

/**
 * The app's allowed scopes changed between the page that showed them and the Install click: nothing is
 * granted, the person is shown the new list and decides again (wider access always needs a new install).
 */
export class ShownScopesChanged extends OperationError {
  constructor(
    readonly shown: readonly string[],
    readonly current: readonly string[],
  ) {
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
 * A tenant's owner or admin installs an app (listed, or their own) on it, granting exactly `shownScopes`:
 * the list the install page showed, which must still be the app's allowed scopes (else ShownScopesChanged,
 * and nothing changes). The grant is one per app and tenant, widened with those scopes if it exists; a
 * pending install, an audit entry. Sandbox apps go on sandbox tenants only, live apps on live ones.
 */
export async function installApp(
  ctx: OperationContext,
  actor: Actor,
  input: { clientId: string; tenantId: string; shownScopes: readonly string[] },
): Promise<{ app: App; grant: Grant; install: Install }> {
  const tenant = await tenantFor(ctx, actor, input.tenantId)
  const app = await findInstallableApp(ctx, actor, input.clientId)
  if (!app) throw notFound('This app is not in the marketplace.')
  const { shownScopes } = input
  const now = ctx.now()
  requireInstallable(app, tenant)
  if (!sameScopes(shownScopes, app.scopes)) throw new ShownScopesChanged(shownScopes, app.scopes)
  const existing = await ctx.storage.findActiveGrant(app.id, tenant.id)
  const previous = existing && (await ctx.storage.getInstall(existing.id))
  let install: Install | undefined
  // The install, its event and audit entry commit with the grant: a crash leaves all of them or none.
  const along = (grant: Grant): Alongside => {
    const kept = previous?.grantId === grant.id ? previous : undefined
    install = {
      grantId: grant.id,
      installedBy: kept?.installedBy ?? (actor.kind === 'person' ? actor.user.id : null),
      state: app.installUrl ? 'pending' : 'complete',
      error: null,
      createdAt: kept?.createdAt ?? now,
      updatedAt: now,
    }
    return {
      install,
      events: newEvent(app, tenant.id, 'app.installed', { grant_id: grant.id, scopes: grant.scopes, target: tenant.marketplaceId }, now),
      audit: [auditEntry(actor, now, 'app.installed', { objectId: grant.id, appId: app.id, tenantId: tenant.id }, { scopes: grant.scopes })],
    }
  }
  const { grant } = await connectApp(ctx, app, tenant.id, [...shownScopes], along)
  ctx.cache.apply({ kind: 'grant', ref: grant.id })
  if (!install) throw new Error('the install was not stored with its grant')
  return { app, grant, install }
}

/** The partner's answer, brought back by the person: setup finished, or failed with a message. */
export async function finishInstall(ctx: OperationContext, actor: Actor, input: { grant: Grant; ok: boolean; error?: string }): Promise<Install> {
  const { grant } = input
  await tenantFor(ctx, actor, grant.tenantId)
  const now = ctx.now()
  const previous = await ctx.storage.getInstall(grant.id)
  const install: Install = {
    grantId: grant.id,
    installedBy: previous?.installedBy ?? (actor.kind === 'person' ? actor.user.id : null),
    state: input.ok ? 'complete' : 'failed',
    error: input.ok ? null : (input.error ?? 'The app reported an error').slice(0, 500),
    createdAt: previous?.createdAt ?? now,
    updatedAt: now,
  }
  const audit = [
    auditEntry(
      actor,
      now,
      input.ok ? 'install.completed' : 'install.failed',
      { objectId: grant.id, appId: grant.appId, tenantId: grant.tenantId },
      input.ok ? {} : { error: install.error },
    ),
  ]
  await ctx.storage.saveInstall(install, { audit })
  return install
}

import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import {
  ShownScopesChanged,
  adminTenants,
  appCategories,
  findInstallableApp,
  finishInstall,
  formatScope,
  installApp,
  installRedirect,
  isAvailable,
  isLookupKey,
  liveSigningSecrets,
  parseScope,
  requireInstallable,
  searchListings,
  verifySignedQuery,
  type App,
  type AppCategory,
  type Grant,
  type Params,
  type Tenant,
  type User,
} from '@fieldgate/core'
import { queryOf, readParams } from '../plugins/body.js'
import { CsrfError, type PageKit } from '../plugins/pages.js'
import { installOutcomePage, installStatus, marketplaceAppPage, marketplacePage, unsignedCompletionPage, type InstallStatus, type ShownScopes } from '../pages/marketplace.js'

/** Apps on a page of the marketplace. */
const appsPerPage = 20

/**
 * The list's search as the query asks for it: `q` (at most 200 characters), `category` (one of the
 * fixed list, else all) and `offset` (a whole number); anything else asks for nothing.
 */
function listingQuery(q: Params): { query: string; category: AppCategory | undefined; offset: number } {
  const category = appCategories.find((c) => c === q.category)
  const offset = /^\d{1,5}$/.test(q.offset ?? '') ? Number(q.offset) : 0
  return { query: (q.q ?? '').replace(/\0/g, '').trim().slice(0, 200), category, offset }
}

/** What an install form's binding covers: the app, the tenant and the scope list the page showed. */
const installBinding = 'marketplace.install'

/**
 * The marketplace (FieldEdge's "App Installation Flow"): a tenant admin browses listed apps of their
 * tenant's environment, installs one, is sent to its install URL with `target` and `target_id` (signed),
 * and comes back to `/marketplace/complete` with the partner's outcome (signed by the partner).
 */
export function marketplaceRoutes(app: FastifyInstance, kit: PageKit): void {
  const { ctx } = kit

  /** The signed-in admin and the tenant they act for (`?tenant=`, or their first). */
  const adminContext = async (request: FastifyRequest, reply: FastifyReply, tenantId?: string) => {
    const user = await kit.user(request, reply)
    if (!user) return undefined
    const tenants = await adminTenants(ctx, user)
    const tenant = tenantId ? tenants.find((t) => t.id === tenantId) : tenants[0]
    if (!tenant) {
      await kit.error(request, reply, 403, 'No tenant to install on', 'Installing apps needs an owner or admin of the tenant.')
      return undefined
    }
    return { user, tenants, tenant }
  }

  /** The app's scopes as this page shows them, bound to this browser, app and tenant for the Install form. */
  const shownScopes = (request: FastifyRequest, reply: FastifyReply, found: App, tenant: Tenant): ShownScopes => ({
    scopes: found.scopes,
    binding: kit.browser.bind(request, reply, installBinding, [found.clientId, tenant.id, formatScope(found.scopes)]),
  })

  /** Where a grant's install stands, for the card and the app page. */
  const statusOf = async (grant: Grant | undefined): Promise<InstallStatus | undefined> => (grant ? installStatus(await ctx.storage.getInstall(grant.id)) : undefined)

  const showApp = async (request: FastifyRequest, reply: FastifyReply, c: { user: User; tenant: Tenant }, found: App, status: number, note?: string) => {
    const grant = await ctx.storage.findActiveGrant(found.id, c.tenant.id)
    const page = marketplaceAppPage({
      csrf: kit.csrf(request, reply),
      user: c.user,
      app: found,
      tenant: c.tenant,
      grant,
      status: await statusOf(grant),
      shown: shownScopes(request, reply, found, c.tenant),
      ...(note ? { note } : {}),
    })
    return kit.render(reply, status, page, kit.installTarget(found))
  }

  app.get('/marketplace', async (request, reply) => {
    const c = await adminContext(request, reply, queryOf(request).tenant)
    if (!c) return reply
    const listed = (await ctx.storage.listApps()).filter((a) => a.kind === 'public' && a.listed && isAvailable(a) && a.environment === c.tenant.environment)
    const asked = listingQuery(queryOf(request))
    const found = searchListings(listed, { ...asked, limit: appsPerPage })
    const statuses = new Map<string, InstallStatus>()
    for (const g of await ctx.storage.listGrants({ tenantId: c.tenant.id })) {
      const status = g.status === 'active' ? await statusOf(g) : undefined
      if (status) statuses.set(g.appId, status)
    }
    const search = { query: asked.query, category: asked.category, offset: asked.offset, size: appsPerPage, total: found.total, more: found.more }
    return kit.render(reply, 200, marketplacePage({ csrf: kit.csrf(request, reply), ...c, apps: found.apps, statuses, search }))
  })

  app.get('/marketplace/apps/:clientId', async (request, reply) => {
    const c = await adminContext(request, reply, queryOf(request).tenant)
    if (!c) return reply
    const found = await findInstallableApp(ctx, kit.actor(request, c.user), readParams(request.params).clientId ?? '')
    if (!found) return kit.error(request, reply, 404, 'No such app', 'This app is not in the marketplace.')
    return showApp(request, reply, c, found, 200)
  })

  // Install and Try again: grant exactly the scopes the page showed, or nothing and the page again.
  app.post('/marketplace/apps/:clientId/install', async (request, reply) => {
    const form = kit.form(request)
    const c = await adminContext(request, reply, form.tenant_id ?? '')
    if (!c) return reply
    const found = await findInstallableApp(ctx, kit.actor(request, c.user), readParams(request.params).clientId ?? '')
    if (!found) return kit.error(request, reply, 404, 'No such app', 'This app is not in the marketplace.')
    // Refused as such (400) before the form is read: that page offers no Install form at all.
    requireInstallable(found, c.tenant)
    const shown = shownIn(request, form, found, c.tenant)
    try {
      await installApp(ctx, kit.actor(request, c.user), { clientId: found.clientId, tenantId: c.tenant.id, shownScopes: shown })
    } catch (err) {
      if (err instanceof ShownScopesChanged) return showApp(request, reply, c, found, 409, err.message)
      throw err
    }
    if (!found.installUrl) return reply.redirect('/marketplace/installed', 303)
    return reply.redirect(await installRedirect(ctx.storage, found, c.tenant, kit.masterKey, ctx.now()), 303)
  })

  /** The scope list the form carries, if its binding is this browser's for this app and tenant; else the form is forged. */
  function shownIn(request: FastifyRequest, form: Params, found: App, tenant: Tenant): string[] {
    const scopes = form.scopes ?? ''
    if (!kit.browser.checkBinding(request, form.shown, installBinding, [found.clientId, tenant.id, scopes])) throw new CsrfError()
    return parseScope(scopes)
  }

  // The partner sends the person back here, signed (README): ?client_id=…&target_id=…&status=success|error
  // [&error_description=…]&timestamp=…&hmac=…. Anything unsigned or stale changes nothing and says so.
  app.get('/marketplace/complete', async (request, reply) => {
    const q = queryOf(request)
    const c = await adminContext(request, reply, q.target_id ?? '')
    if (!c) return reply
    const found = q.client_id && isLookupKey(q.client_id) ? await ctx.storage.getAppByClientId(q.client_id) : undefined
    const grant = found && (await ctx.storage.findActiveGrant(found.id, c.tenant.id))
    if (!found || !grant) return kit.error(request, reply, 404, 'No such install', 'This app is not installed on that tenant.')
    const now = ctx.now()
    if (!verifySignedQuery(q, await liveSigningSecrets(ctx.storage, found, kit.masterKey, now), Math.floor(now / 1000))) {
      const page = unsignedCompletionPage({ csrf: kit.csrf(request, reply), user: c.user, app: found, tenant: c.tenant, install: await ctx.storage.getInstall(grant.id) })
      return kit.render(reply, 400, page)
    }
    if (q.status !== 'success' && q.status !== 'error') return kit.error(request, reply, 400, 'Bad request', 'status must be success or error.')
    const ok = q.status === 'success'
    const install = await finishInstall(ctx, kit.actor(request, c.user), { grant, ok, ...(q.error_description ? { error: q.error_description } : {}) })
    const page = installOutcomePage({
      csrf: kit.csrf(request, reply),
      user: c.user,
      app: found,
      tenant: c.tenant,
      grant,
      ok,
      error: install.error,
      shown: shownScopes(request, reply, found, c.tenant),
    })
    return kit.render(reply, 200, page, kit.installTarget(found))
  })
}

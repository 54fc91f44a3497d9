import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { finishInstall, installApp, installRedirect, isLookupKey, type App, type User } from '@fieldgate/core'
import { queryOf } from '../plugins/body.js'
import { adminTenants, type PageKit } from '../plugins/pages.js'
import { installOutcomePage, marketplaceAppPage, marketplacePage } from '../pages/marketplace.js'

/**
 * The marketplace (seed 000, "App Installation Flow"): a tenant admin browses listed apps of their
 * tenant's environment, installs one, is sent to its install URL with `target` and `target_id` (signed),
 * and comes back to `/marketplace/complete` with the partner's outcome.
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

  /** An app a tenant may install: public, and listed in the marketplace unless it is the person's own. */
  const installable = async (clientId: string, user: User): Promise<App | undefined> => {
    const found = isLookupKey(clientId) ? await ctx.storage.getAppByClientId(clientId) : undefined
    return found && found.kind === 'public' && (found.listed || found.ownerUserId === user.id) ? found : undefined
  }

  app.get('/marketplace', async (request, reply) => {
    const c = await adminContext(request, reply, queryOf(request).tenant)
    if (!c) return reply
    const apps = (await ctx.storage.listApps()).filter((a) => a.kind === 'public' && a.listed && a.environment === c.tenant.environment)
    const installed = new Set((await ctx.storage.listGrants({ tenantId: c.tenant.id })).filter((g) => g.status === 'active').map((g) => g.appId))
    return kit.render(reply, 200, marketplacePage({ csrf: kit.csrf(request, reply), ...c, apps, installed }))
  })

  app.get('/marketplace/apps/:clientId', async (request, reply) => {
    const c = await adminContext(request, reply, queryOf(request).tenant)
    if (!c) return reply
    const found = await installable((request.params as { clientId: string }).clientId, c.user)
    if (!found) return kit.error(request, reply, 404, 'No such app', 'This app is not in the marketplace.')
    const grant = await ctx.storage.findActiveGrant(found.id, c.tenant.id)
    return kit.render(reply, 200, marketplaceAppPage({ csrf: kit.csrf(request, reply), user: c.user, app: found, tenant: c.tenant, grant }), kit.installTarget(found))
  })

  app.post('/marketplace/apps/:clientId/install', async (request, reply) => {
    const form = kit.form(request)
    const c = await adminContext(request, reply, form.tenant_id ?? '')
    if (!c) return reply
    const found = await installable((request.params as { clientId: string }).clientId, c.user)
    if (!found) return kit.error(request, reply, 404, 'No such app', 'This app is not in the marketplace.')
    const { grant } = await installApp(ctx.storage, { app: found, tenant: c.tenant, user: c.user }, { actor: kit.actor(request, c.user), now: ctx.now() })
    ctx.cache.apply({ kind: 'grant', ref: grant.id })
    if (!found.installUrl) return reply.redirect('/marketplace/installed', 303)
    return reply.redirect(await installRedirect(ctx.storage, found, c.tenant, kit.masterKey, ctx.now()), 303)
  })

  // The partner sends the person back here: ?client_id=…&target_id=…&status=success|error[&error_description=…]
  app.get('/marketplace/complete', async (request, reply) => {
    const q = queryOf(request)
    const c = await adminContext(request, reply, q.target_id ?? '')
    if (!c) return reply
    const found = q.client_id && isLookupKey(q.client_id) ? await ctx.storage.getAppByClientId(q.client_id) : undefined
    const grant = found && await ctx.storage.findActiveGrant(found.id, c.tenant.id)
    if (!found || !grant) return kit.error(request, reply, 404, 'No such install', 'This app is not installed on that tenant.')
    if (q.status !== 'success' && q.status !== 'error') return kit.error(request, reply, 400, 'Bad request', 'status must be success or error.')
    const ok = q.status === 'success'
    const install = await finishInstall(ctx.storage, grant, { ok, ...(q.error_description ? { error: q.error_description } : {}) }, { actor: kit.actor(request, c.user), now: ctx.now() })
    const page = installOutcomePage({ csrf: kit.csrf(request, reply), user: c.user, app: found, tenant: c.tenant, grant, ok, error: install.error })
    return kit.render(reply, ok ? 200 : 502, page, kit.installTarget(found))
  })
}

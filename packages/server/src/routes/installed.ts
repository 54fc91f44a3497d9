import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { revokeGrant, type CoreContext, type User } from '@fieldgate/core'
import type { PageKit } from '../plugins/pages.js'
import { connectedAppsPage, type Connection } from '../pages/connected-apps.js'

/**
 * Connected apps (fieldmargin) and Installed apps (the marketplace) are one page: every app with a
 * grant on the person's tenants, how and when it got there, and for owners and admins a button that
 * ends the grant and every token standing on it at once.
 */
export function installedRoutes(app: FastifyInstance, kit: PageKit): void {
  const { ctx } = kit

  const show = (title: string) => async (request: FastifyRequest, reply: FastifyReply) => {
    const user = await kit.user(request, reply)
    if (!user) return reply
    const list = await connections(ctx, user)
    const tenantIds = [...new Set(list.filter((c) => c.canDisconnect).map((c) => c.tenant.id))]
    const audit = tenantIds.length ? await ctx.storage.listAudit({ tenantIds, limit: 50 }) : []
    return kit.render(reply, 200, connectedAppsPage({ title, csrf: kit.csrf(request, reply), user, connections: list, audit }))
  }
  app.get('/connected-apps', show('Connected apps'))
  app.get('/marketplace/installed', show('Installed apps'))

  app.post('/connected-apps/disconnect', async (request, reply) => {
    const form = kit.form(request)
    const user = await kit.user(request, reply, '/connected-apps')
    if (!user) return reply
    const connection = (await connections(ctx, user)).find((c) => c.grant.id === form.grant_id)
    if (!connection?.canDisconnect) return kit.error(request, reply, 403, 'Not allowed', 'Only an owner or admin of the farm can disconnect this app.')
    await revokeGrant(ctx.storage, connection.grant.id, { actor: kit.actor(request, user), now: ctx.now() }, connection.install ? 'app.uninstalled' : 'app.disconnected')
    ctx.cache.apply({ kind: 'grant', ref: connection.grant.id })
    return reply.redirect(safeBack(form.back), 303)
  })
}

const safeBack = (back: string | undefined) => (back === '/marketplace/installed' ? back : '/connected-apps')

/** The active grants on every tenant the person belongs to, with their install record if any. */
export async function connections(ctx: CoreContext, user: User): Promise<Connection[]> {
  const list: Connection[] = []
  for (const m of await ctx.storage.listMemberships(user.id)) {
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

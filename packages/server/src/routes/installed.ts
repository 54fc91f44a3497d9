import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { OperationError, listConnections, ownedTenants, revokeGrant } from '@fieldgate/core'
import type { PageKit } from '../plugins/pages.js'
import { connectedAppsPage } from '../pages/connected-apps.js'

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
    const list = await listConnections(ctx, kit.actor(request, user))
    const tenantIds = [...new Set(list.filter((c) => c.canDisconnect).map((c) => c.tenant.id))]
    const audit = tenantIds.length ? await ctx.storage.listAudit({ tenantIds, limit: 50 }) : []
    const owned = await ownedTenants(ctx, user)
    // The one thing this page may say after a form, by name: it never echoes text from its URL.
    const disconnected = new URL(request.url, 'http://page').searchParams.get('notice') === 'disconnected'
    const notice = disconnected ? 'Disconnected: the app can no longer reach your data, and its tokens are refused.' : undefined
    return kit.render(reply, 200, connectedAppsPage({ title, csrf: kit.csrf(request, reply), user, connections: list, audit, owned, notice }))
  }
  app.get('/connected-apps', show('Connected apps'))
  app.get('/marketplace/installed', show('Installed apps'))

  app.post('/connected-apps/disconnect', async (request, reply) => {
    const form = kit.form(request)
    const user = await kit.user(request, reply, '/connected-apps')
    if (!user) return reply
    try {
      await revokeGrant(ctx, kit.actor(request, user), { grantId: form.grant_id ?? '' })
    } catch (err) {
      if (err instanceof OperationError && err.code === 'forbidden') return kit.error(request, reply, 403, 'Not allowed', err.message)
      throw err
    }
    return reply.redirect(`${safeBack(form.back)}?notice=disconnected`, 303)
  })
}

const safeBack = (back: string | undefined) => (back === '/marketplace/installed' ? back : '/connected-apps')

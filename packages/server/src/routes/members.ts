import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { Type } from 'typebox'
import { AuthorizationPageError, OperationError, invite, listTenantMembers, removeMembership, setMembership, type User } from '@fieldgate/core'
import type { PageKit } from '../plugins/pages.js'
import type { FieldError } from '../pages/form.js'
import { membersPage } from '../pages/members.js'

const params = Type.Object({ id: Type.String({ maxLength: 100 }) })
const query = Type.Object({ notice: Type.Optional(Type.Unknown()) })
const notices = { invited: 'Invitation sent.', saved: 'Role changed.', removed: 'Removed.' } as const
const noticeOf = (value: unknown): string | undefined => Object.entries(notices).find(([name]) => name === value)?.[1]

/** A tenant's members page, for its owners (operators have the console): roles, removal, invitations. */
export function memberRoutes(fastify: FastifyInstance, kit: PageKit): void {
  const { ctx } = kit
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>()
  const isId = (id: string) => /^[0-9a-f-]{36}$/.test(id)

  const show = async (
    request: FastifyRequest,
    reply: FastifyReply,
    user: User,
    tenantId: string,
    status = 200,
    say: { notice?: string | undefined; error?: FieldError; email?: string } = {},
  ) => {
    if (!isId(tenantId)) throw new AuthorizationPageError('There is no such farm.', 404)
    const { tenant, members } = await listTenantMembers(ctx, kit.actor(request, user), tenantId)
    return kit.render(reply, status, membersPage({ csrf: kit.csrf(request, reply), user, tenant, members, ...say }))
  }

  app.get('/tenants/:id/members', { schema: { params, querystring: query } }, async (request, reply) => {
    const user = await kit.user(request, reply)
    return user ? show(request, reply, user, request.params.id, 200, { notice: noticeOf(request.query.notice) }) : reply
  })

  const change = (verb: 'invite' | 'role' | 'remove', done: keyof typeof notices) =>
    app.post(`/tenants/:id/members/${verb}`, { schema: { params } }, async (request, reply) => {
      const form = kit.form(request)
      const user = await kit.user(request, reply, `/tenants/${request.params.id}/members`)
      if (!user) return reply
      const tenantId = request.params.id
      if (!isId(tenantId)) throw new AuthorizationPageError('There is no such farm.', 404)
      const actor = kit.actor(request, user)
      const email = form.email ?? ''
      try {
        if (verb === 'invite') await invite(ctx, actor, { tenantId, email, role: form.role ?? 'member' })
        else if (verb === 'role') await setMembership(ctx, actor, { tenantId, email, role: form.role ?? '' })
        else await removeMembership(ctx, actor, { tenantId, email })
      } catch (err) {
        if (!(err instanceof OperationError) || err.code === 'forbidden') throw err
        const status = err.code === 'conflict' ? 409 : err.code === 'not_found' ? 404 : 400
        return show(request, reply, user, tenantId, status, {
          error: { message: err.message, ...(err.field ? { field: err.field } : {}) },
          ...(verb === 'invite' ? { email } : {}),
        })
      }
      return reply.redirect(`/tenants/${tenantId}/members?notice=${done}`, 303)
    })
  change('invite', 'invited')
  change('role', 'saved')
  change('remove', 'removed')
}

import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { Type } from 'typebox'
import {
  OperationError,
  acceptInvitation,
  changeMemberRole,
  consoleActor,
  inviteMember,
  listTenantMembers,
  noteSignIn,
  operationStatus,
  peekInvitation,
  personActor,
  removeMember,
  startSession,
  visitorActor,
  type Actor,
  type Invitation,
  type Params,
  type User,
} from '@fieldgate/core'
import { queryOf } from '../plugins/body.js'
import { sessionCookie } from '../plugins/browser.js'
import type { PageKit } from '../plugins/pages.js'
import { html } from '../pages/html.js'
import { invitationPage, membersPage, type MembersPage } from '../pages/members.js'
import { spentLinkPage } from '../pages/sign-in.js'

/** Notices the members page shows after a form's redirect, named in its query: the page never echoes the URL. */
const notices = {
  invited: 'The invitation is on its way. The link works for 7 days.',
  changed: 'The role is changed.',
  removed: 'They are no longer a member.',
} as const
const isNotice = (value: unknown): value is keyof typeof notices => typeof value === 'string' && Object.hasOwn(notices, value)

const tenantParams = Type.Object({ id: Type.String() })
// A page ignores what it does not understand in its query.
const pageQuery = Type.Object({ notice: Type.Optional(Type.Unknown()) })

/**
 * A tenant's members page (`/tenants/:id/members`), for its owners and operators: change a role,
 * remove someone, invite by email. Every form answers with a 303; a refusal shows the page again with
 * the message beside the field. Accepting an invitation (`/invitations/accept`): the page says who
 * invited whom to what (a GET changes nothing); Accept joins, making the account first for an address
 * without one and signing it in.
 */
export function memberRoutes(fastify: FastifyInstance, kit: PageKit): void {
  const { ctx, browser } = kit
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>()

  /** Operators manage any tenant's members from the browser too, as on the console. */
  const actorOf = (request: FastifyRequest, user: User): Actor => (user.operator ? consoleActor(user, request.ip) : kit.actor(request, user))

  const show = async (request: FastifyRequest, reply: FastifyReply, user: User, tenantId: string, status: number, say: Pick<MembersPage, 'notice' | 'error' | 'invite'> = {}) => {
    const listed = await listTenantMembers(ctx, actorOf(request, user), { tenantId })
    return kit.render(reply, status, membersPage({ csrf: kit.csrf(request, reply), user, ...listed, ...say }))
  }

  app.get('/tenants/:id/members', { schema: { params: tenantParams, querystring: pageQuery } }, async (request, reply) => {
    const user = await kit.user(request, reply)
    if (!user) return reply
    const { notice } = request.query
    return show(request, reply, user, request.params.id, 200, isNotice(notice) ? { notice: notices[notice] } : {})
  })

  /**
   * A form about the tenant's members: CSRF, the person, then the operation; a refusal the person can
   * act on (bad input, a conflict) shows the page again with the message where it belongs.
   */
  const onMembers = (
    path: string,
    run: (c: { request: FastifyRequest; actor: Actor; tenantId: string; form: Params; user: User }) => Promise<string>,
    errorField: (form: Params, err: OperationError) => MembersPage['error'],
    keep?: (form: Params) => MembersPage['invite'],
  ) =>
    app.post(`/tenants/:id/members/${path}`, { schema: { params: tenantParams } }, async (request, reply) => {
      const form = kit.form(request)
      const tenantId = request.params.id
      const user = await kit.user(request, reply, `/tenants/${encodeURIComponent(tenantId)}/members`)
      if (!user) return reply
      try {
        return reply.redirect(await run({ request, actor: actorOf(request, user), tenantId, form, user }), 303)
      } catch (err) {
        if (!(err instanceof OperationError) || err.code === 'forbidden') throw err
        return show(request, reply, user, tenantId, operationStatus[err.code], { error: errorField(form, err), ...(keep ? { invite: keep(form) } : {}) })
      }
    })

  const back = (tenantId: string, notice: keyof typeof notices) => `/tenants/${encodeURIComponent(tenantId)}/members?notice=${notice}`

  onMembers(
    'invite',
    async ({ actor, tenantId, form }) => {
      await inviteMember(ctx, actor, { tenantId, email: form.email ?? '', role: form.role ?? '' })
      return back(tenantId, 'invited')
    },
    (_form, err) => ({ message: err.message, field: err.field === 'role' ? 'invite-role' : 'email' }),
    (form) => ({ ...(form.email !== undefined ? { email: form.email } : {}), ...(form.role !== undefined ? { role: form.role } : {}) }),
  )
  onMembers(
    'role',
    async ({ actor, tenantId, form }) => {
      await changeMemberRole(ctx, actor, { tenantId, userId: form.user_id ?? '', role: form.role ?? '' })
      return back(tenantId, 'changed')
    },
    (form, err) => ({ message: err.message, field: `role-${form.user_id ?? ''}` }),
  )
  onMembers(
    'remove',
    async ({ actor, tenantId, form, user }) => {
      await removeMember(ctx, actor, { tenantId, userId: form.user_id ?? '' })
      // Whoever removed themself cannot see the page any more.
      return form.user_id === user.id && !user.operator ? '/connected-apps' : back(tenantId, 'removed')
    },
    (form, err) => ({ message: err.message, field: `role-${form.user_id ?? ''}` }),
  )

  // ---- accepting an invitation ----

  const refused = (request: FastifyRequest, reply: FastifyReply, err: unknown) => {
    if (!(err instanceof OperationError)) throw err
    if (err.code !== 'invalid') return kit.error(request, reply, operationStatus[err.code], 'This invitation cannot be accepted here', err.message)
    return kit.render(reply, 400, spentLinkPage({ csrf: kit.csrf(request, reply), message: err.message, again: html`Ask whoever invited you for a new invitation.` }))
  }

  app.get('/invitations/accept', async (request, reply) => {
    const token = queryOf(request).token
    let invitation: Invitation
    try {
      invitation = await peekInvitation(ctx, { token })
    } catch (err) {
      return refused(request, reply, err)
    }
    const signedInAs = await browser.user(request)
    return kit.render(reply, 200, invitationPage({ csrf: kit.csrf(request, reply), token: token ?? '', invitation, signedInAs }))
  })

  app.post('/invitations/accept', async (request, reply) => {
    const form = kit.form(request)
    const signedIn = await browser.user(request)
    const actor = signedIn ? personActor(signedIn, request.ip) : visitorActor(request.ip)
    let accepted: Awaited<ReturnType<typeof acceptInvitation>>
    try {
      accepted = await acceptInvitation(ctx, actor, { token: form.token, password: form.password })
    } catch (err) {
      if (err instanceof OperationError && err.field === 'password') {
        const invitation = await peekInvitation(ctx, { token: form.token })
        const page = invitationPage({
          csrf: kit.csrf(request, reply),
          token: form.token ?? '',
          invitation,
          signedInAs: undefined,
          error: { message: err.message, field: 'password' },
        })
        return kit.render(reply, 400, page)
      }
      return refused(request, reply, err)
    }
    if (accepted.created) {
      // A new browser id with the new session, as sign-in does (no session fixation).
      browser.renew(reply)
      reply.setCookie(sessionCookie, await startSession(ctx, accepted.user.id), browser.cookieOptions(ctx.config.sessionTtl))
      await noteSignIn(ctx, personActor(accepted.user, request.ip))
    }
    return reply.redirect(accepted.tenant ? '/connected-apps' : '/operator', 303)
  })
}

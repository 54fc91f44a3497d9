import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { OperationError, acceptInvitation, peekInvitation, personActor, startSession, visitorActor } from '@fieldgate/core'
import { queryOf } from '../plugins/body.js'
import { sessionCookie } from '../plugins/browser.js'
import type { PageKit } from '../plugins/pages.js'
import { html } from '../pages/html.js'
import { invitationPage, spentLinkPage } from '../pages/sign-in.js'

/**
 * Accepting an invitation mailed by an operator or a tenant owner: the page says who invited whom to
 * what (a GET changes nothing); Accept joins, making the account first for an address without one.
 */
export function invitationRoutes(app: FastifyInstance, kit: PageKit): void {
  const { ctx, browser } = kit

  const spent = (request: FastifyRequest, reply: FastifyReply, err: unknown) => {
    if (!(err instanceof OperationError)) throw err
    const again = html`Ask whoever invited you for a new invitation.`
    return kit.render(reply, err.code === 'invalid' ? 400 : 403, spentLinkPage({ csrf: kit.csrf(request, reply), message: err.message, again }))
  }

  app.get('/invitations/accept', async (request, reply) => {
    const token = queryOf(request).token
    let invitation: Awaited<ReturnType<typeof peekInvitation>>
    try {
      invitation = await peekInvitation(ctx, { token })
    } catch (err) {
      return spent(request, reply, err)
    }
    const user = await browser.user(request)
    return kit.render(reply, 200, invitationPage({ csrf: kit.csrf(request, reply), token: token ?? '', invitation, signedInAs: user?.email }))
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
      return spent(request, reply, err)
    }
    if (accepted.created) {
      browser.renew(reply)
      reply.setCookie(sessionCookie, await startSession(ctx, accepted.user.id), browser.cookieOptions(ctx.config.sessionTtl))
    }
    return reply.redirect(accepted.user.operator && !signedIn?.operator ? '/operator' : '/connected-apps', 303)
  })
}

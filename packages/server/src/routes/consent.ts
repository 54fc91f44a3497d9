import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import {
  AuthorizationPageError, approveAuthorization, authorizationParameters, consentableTenants, denyAuthorization,
  validateAuthorizationRequest, type AuthorizationRequest, type Params, type User,
} from '@fieldgate/core'
import { queryOf } from '../plugins/body.js'
import { signInLocation, type PageKit } from '../plugins/pages.js'
import { consentPage } from '../pages/consent.js'

/** The authorization endpoint (fieldmargin's `/authorize`, RFC 6749's `/oauth/authorize`) and the decision. */
export function consentRoutes(app: FastifyInstance, kit: PageKit): void {
  const { ctx } = kit
  const carried = (params: Params) => Object.fromEntries(authorizationParameters.filter((n) => params[n] !== undefined).map((n) => [n, params[n]!]))

  const authorize = async (request: FastifyRequest, reply: FastifyReply) => {
    const params = queryOf(request)
    // The request is checked before sign-in: a bad one is refused without asking anyone to sign in.
    const user = await kit.browser.user(request)
    const req = await validateAuthorizationRequest(ctx, params, user !== undefined)
    if (!user) return reply.redirect(signInLocation(request.url), 303)
    return showConsent(request, reply, user, req, params)
  }
  app.get('/authorize', authorize)
  app.get('/oauth/authorize', authorize)

  const showConsent = async (request: FastifyRequest, reply: FastifyReply, user: User, req: AuthorizationRequest, params: Params) => {
    const tenants = await consentableTenants(ctx, user.id, req.app)
    if (tenants.length === 0) {
      return kit.error(request, reply, 403, 'No farm to connect', `You are not an owner or admin of any ${req.app.environment} farm that ${req.app.name} can connect to.`)
    }
    const body = consentPage({ csrf: kit.csrf(request, reply), user, app: req.app, scopes: req.scopes, tenants, request: carried(params) })
    // Chrome applies form-action to the redirect after the form: the client's origin must be allowed.
    return kit.render(reply, 200, body, [new URL(req.redirectUri).origin])
  }

  app.post('/consent', async (request, reply) => {
    const form = kit.form(request)
    const params = carried(form)
    const user = await kit.browser.user(request)
    const req = await validateAuthorizationRequest(ctx, params, user !== undefined)
    if (!user) return reply.redirect(signInLocation(`/oauth/authorize?${new URLSearchParams(params)}`), 303)
    if (form.decision === 'deny') return reply.redirect(denyAuthorization(ctx, req), 303)
    if (form.decision !== 'allow') throw new AuthorizationPageError('Choose Allow or Deny.')
    return reply.redirect(await approveAuthorization(ctx, req, user.id, form.tenant_id ?? ''), 303)
  })
}

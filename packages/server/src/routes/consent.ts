import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import {
  AuthorizationPageError,
  ConsentOutdated,
  approveAuthorization,
  authorizationParameters,
  consentableTenants,
  denyAuthorization,
  grantedScopes,
  formatScope,
  parseScope,
  validateAuthorizationRequest,
  type App,
  type AuthorizationRequest,
  type Params,
  type User,
} from '@fieldgate/core'
import { queryOf } from '../plugins/body.js'
import { signInLocation, type PageKit } from '../plugins/pages.js'
import { consentPage, noFarmPage } from '../pages/consent.js'

/** What a consent page's scope list is bound to: who saw it, for which app (never the farm: that is chosen on the page). */
const shownTo = (user: User, app: App, scope: string): string[] => [user.id, app.clientId, scope]

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

  const showConsent = async (request: FastifyRequest, reply: FastifyReply, user: User, req: AuthorizationRequest, params: Params, note?: string) => {
    const tenants = await consentableTenants(ctx, user.id, req.app)
    // Chrome applies form-action to the redirect after the form: the client's origin must be allowed.
    const formTargets = [new URL(req.redirectUri).origin]
    if (tenants.length === 0) {
      const page = noFarmPage({ csrf: kit.csrf(request, reply), user, app: req.app, request: carried(params) })
      return kit.render(reply, 403, page, formTargets)
    }
    // The list shown goes back with the form, signed: Allow grants exactly it, or nothing (see shownScopes).
    const scope = formatScope(req.scopes)
    const shown = { scope, mac: kit.browser.bind(request, reply, 'consent', shownTo(user, req.app, scope)) }
    const granted = await grantedScopes(ctx, req.app, tenants)
    const body = consentPage({
      csrf: kit.csrf(request, reply),
      user,
      app: req.app,
      scopes: req.scopes,
      shown,
      tenants,
      granted,
      request: carried(params),
      redirectUri: req.redirectUri,
      resource: req.resource,
      note,
    })
    return kit.render(reply, note ? 409 : 200, body, formTargets)
  }

  /** The scope list the consent page showed this person, exactly as it was shown; a changed one is refused. */
  const shownScopes = (request: FastifyRequest, user: User, req: AuthorizationRequest, form: Params): string[] => {
    const scope = form.shown_scope ?? ''
    if (!kit.browser.checkBinding(request, form.shown_scope_mac, 'consent', shownTo(user, req.app, scope))) {
      throw new AuthorizationPageError('The permissions on this form are not the ones this page showed you. Nothing was allowed: go back to the app and start again.', 403)
    }
    return parseScope(scope)
  }

  app.post('/consent', async (request, reply) => {
    const form = kit.form(request)
    const params = carried(form)
    const user = await kit.browser.user(request)
    const req = await validateAuthorizationRequest(ctx, params, user !== undefined)
    if (!user) return reply.redirect(signInLocation(`/oauth/authorize?${new URLSearchParams(params)}`), 303)
    if (form.decision === 'deny') return reply.redirect(denyAuthorization(ctx, req, kit.actor(request, user)), 303)
    if (form.decision !== 'allow') throw new AuthorizationPageError('Choose Allow or Deny.')
    const consent = { userId: user.id, tenantId: form.tenant_id ?? '', shownScopes: shownScopes(request, user, req, form), actor: kit.actor(request, user) }
    try {
      return reply.redirect(await approveAuthorization(ctx, req, consent), 303)
    } catch (err) {
      if (!(err instanceof ConsentOutdated)) throw err
      return showConsent(
        request,
        reply,
        user,
        req,
        params,
        `${req.app.name} changed the permissions it asks for after this page was shown to you. Nothing was allowed: check the list below and choose again.`,
      )
    }
  })
}

import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import {
  AttemptLimiter, AuthorizationPageError, AuthorizationRedirectError, OAuthError, approveAuthorization, authorizationParameters,
  checkPassword, consentableTenants, denyAuthorization, endSession, startSession, validateAuthorizationRequest,
  type AuthorizationRequest, type CoreContext, type Params, type User,
} from '@fieldgate/core'
import { parseForm, readParams } from '../plugins/body.js'
import { Browser, pageHeaders, sessionCookie } from '../plugins/browser.js'
import { consentPage } from '../pages/consent.js'
import { connectedAppsPage, type Connection } from '../pages/connected-apps.js'
import { errorPage } from '../pages/error.js'
import { stylesheet } from '../pages/layout.js'
import { signInPage } from '../pages/sign-in.js'

const home = '/connected-apps'

/**
 * The pages a person uses: sign-in, the consent screen behind `/authorize` (fieldmargin) and
 * `/oauth/authorize` (RFC 6749 §4.1), and Connected apps. Server-rendered HTML without script; every
 * form carries a CSRF token; errors are pages, never JSON or a stack trace.
 */
export async function pageRoutes(app: FastifyInstance, { ctx, csrfKey }: { ctx: CoreContext; csrfKey: Buffer }): Promise<void> {
  const browser = new Browser(ctx, csrfKey)
  const { windowSeconds, perAccount, perAddress } = ctx.config.signInLimits
  const accountLimiter = new AttemptLimiter(perAccount, windowSeconds * 1000)
  const addressLimiter = new AttemptLimiter(perAddress, windowSeconds * 1000)

  const page = (request: FastifyRequest, reply: FastifyReply, status: number, body: string, formTargets?: string[]) =>
    pageHeaders(reply, formTargets).code(status).send(body)

  const showError = async (request: FastifyRequest, reply: FastifyReply, status: number, title: string, message: string) =>
    page(request, reply, status, errorPage({ csrf: browser.csrf(request, reply), title, message, user: await browser.user(request).catch(() => undefined) }))

  app.setErrorHandler(async (err, request, reply) => {
    if (err instanceof AuthorizationRedirectError) return reply.redirect(err.location, 303)
    if (err instanceof AuthorizationPageError) return showError(request, reply, err.status, 'This link cannot be used', err.message)
    if (err instanceof OAuthError) return showError(request, reply, 400, 'Bad request', err.description)
    const status = (err as { statusCode?: number }).statusCode
    if (status !== undefined && status >= 400 && status < 500) return showError(request, reply, status, 'Bad request', 'The form could not be read.')
    request.log.error({ err }, 'page failed')
    return showError(request, reply, 500, 'Something went wrong', 'Fieldgate could not complete this page. Please try again.')
  })

  /** A form post from one of our pages: the CSRF token must be this browser's. */
  const formOf = (request: FastifyRequest): Params => {
    const form = readParams(request.body)
    if (!browser.checkCsrf(request, form.csrf)) throw new CsrfError()
    return form
  }

  app.get('/assets/fieldgate.css', async (_request, reply) =>
    reply.headers({ 'content-type': 'text/css; charset=utf-8', 'cache-control': 'public, max-age=3600', 'x-content-type-options': 'nosniff' }).send(stylesheet))

  app.get('/', async (_request, reply) => reply.redirect(home, 303))

  // ---- sign-in ----

  app.get('/login', async (request, reply) => {
    const returnTo = safeReturnTo(queryOf(request).return_to)
    if (await browser.user(request)) return reply.redirect(returnTo, 303)
    return page(request, reply, 200, signInPage({ csrf: browser.csrf(request, reply), returnTo }))
  })

  app.post('/login', async (request, reply) => {
    let form: Params
    try {
      form = formOf(request)
    } catch (err) {
      if (!(err instanceof CsrfError)) throw err
      // An expired or missing token on the sign-in form: show the form again with a fresh one.
      return page(request, reply, 403, signInPage({ csrf: browser.csrf(request, reply), returnTo: home, error: 'The form expired. Please sign in again.' }))
    }
    const returnTo = safeReturnTo(form.return_to)
    const email = (form.email ?? '').trim().toLowerCase()
    const now = ctx.now()
    const account = `account ${email}`
    const address = `address ${request.ip}`
    const again = (status: number, error: string) =>
      page(request, reply, status, signInPage({ csrf: browser.csrf(request, reply), returnTo, email, error }))
    if (accountLimiter.blocked(account, now) || addressLimiter.blocked(address, now)) {
      const wait = Math.max(accountLimiter.retryAfter(account, now), addressLimiter.retryAfter(address, now))
      reply.header('retry-after', String(wait))
      return again(429, `Too many sign-in attempts. Try again in ${Math.ceil(wait / 60)} minutes.`)
    }
    addressLimiter.record(address, now)
    const user = await checkPassword(ctx, email, form.password ?? '')
    if (!user) {
      accountLimiter.record(account, now)
      return again(401, 'That email and password do not match an account.')
    }
    accountLimiter.reset(account)
    reply.setCookie(sessionCookie, await startSession(ctx, user.id), browser.cookieOptions(ctx.config.sessionTtl))
    return reply.redirect(returnTo, 303)
  })

  app.post('/logout', async (request, reply) => {
    formOf(request)
    await endSession(ctx, request.cookies[sessionCookie])
    reply.clearCookie(sessionCookie, browser.cookieOptions())
    return reply.redirect('/login', 303)
  })

  // ---- authorization and consent ----

  const authorize = async (request: FastifyRequest, reply: FastifyReply) => {
    const params = queryOf(request)
    const req = await validateAuthorizationRequest(ctx, params)
    const user = await browser.user(request)
    if (!user) return reply.redirect(`/login?${new URLSearchParams({ return_to: request.url })}`, 303)
    return showConsent(request, reply, user, req, params)
  }
  app.get('/authorize', authorize)
  app.get('/oauth/authorize', authorize)

  const showConsent = async (request: FastifyRequest, reply: FastifyReply, user: User, req: AuthorizationRequest, params: Params) => {
    const tenants = await consentableTenants(ctx, user.id, req.app)
    if (tenants.length === 0) {
      return showError(request, reply, 403, 'No farm to connect', `You are not an owner or admin of any ${req.app.environment} farm that ${req.app.name} can connect to.`)
    }
    const carried = Object.fromEntries(authorizationParameters.filter((n) => params[n] !== undefined).map((n) => [n, params[n]!]))
    const body = consentPage({ csrf: browser.csrf(request, reply), user, app: req.app, scopes: req.scopes, tenants, request: carried })
    return page(request, reply, 200, body, [new URL(req.redirectUri).origin])
  }

  app.post('/consent', async (request, reply) => {
    const form = formOf(request)
    const params = Object.fromEntries(authorizationParameters.filter((n) => form[n] !== undefined).map((n) => [n, form[n]!]))
    const req = await validateAuthorizationRequest(ctx, params)
    const user = await browser.user(request)
    if (!user) return reply.redirect(`/login?${new URLSearchParams({ return_to: `/oauth/authorize?${new URLSearchParams(params)}` })}`, 303)
    if (form.decision === 'deny') return reply.redirect(denyAuthorization(ctx, req), 303)
    if (form.decision !== 'allow') throw new AuthorizationPageError('Choose Allow or Deny.')
    return reply.redirect(await approveAuthorization(ctx, req, user.id, form.tenant_id ?? ''), 303)
  })

  // ---- connected apps ----

  app.get('/connected-apps', async (request, reply) => {
    const user = await browser.user(request)
    if (!user) return reply.redirect(`/login?${new URLSearchParams({ return_to: home })}`, 303)
    const body = connectedAppsPage({ csrf: browser.csrf(request, reply), user, connections: await connections(ctx, user) })
    return page(request, reply, 200, body)
  })

  app.post('/connected-apps/disconnect', async (request, reply) => {
    const form = formOf(request)
    const user = await browser.user(request)
    if (!user) return reply.redirect(`/login?${new URLSearchParams({ return_to: home })}`, 303)
    const connection = (await connections(ctx, user)).find((c) => c.grant.id === form.grant_id)
    if (!connection?.canDisconnect) return showError(request, reply, 403, 'Not allowed', 'Only an owner or admin of the farm can disconnect this app.')
    if (await ctx.storage.revokeGrant(connection.grant.id, ctx.now())) ctx.cache.apply({ kind: 'grant', ref: connection.grant.id })
    return reply.redirect(home, 303)
  })
}

class CsrfError extends AuthorizationPageError {
  constructor() {
    super('This form has expired or did not come from Fieldgate. Go back, reload the page and try again.', 403)
  }
}

/** The query string with repeated parameters refused (RFC 6749 §3.1), as single strings. */
const queryOf = (request: FastifyRequest): Params => {
  const at = request.url.indexOf('?')
  return at === -1 ? {} : readParams(parseForm(request.url.slice(at + 1)))
}

/** Only a path on this server: no scheme, no `//host`, no backslash tricks. Anything else goes home. */
function safeReturnTo(value: string | undefined): string {
  if (!value || !value.startsWith('/') || value.startsWith('//') || /[\\\u0000-\u001f]/.test(value) || value.length > 4096) return home
  return value
}

/** The active connections on every farm the person belongs to. */
async function connections(ctx: CoreContext, user: User): Promise<Connection[]> {
  const list: Connection[] = []
  for (const m of await ctx.storage.listMemberships(user.id)) {
    const tenant = await ctx.storage.getTenant(m.tenantId)
    if (!tenant) continue
    for (const grant of await ctx.storage.listGrants({ tenantId: tenant.id })) {
      if (grant.status !== 'active') continue
      const app = await ctx.storage.getApp(grant.appId)
      if (app) list.push({ grant, app, tenant, canDisconnect: m.role !== 'member' })
    }
  }
  return list
}

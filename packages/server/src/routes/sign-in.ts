import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { OperationError, checkPassword, createUser, endSession, visitorActor, startSession, type Params, type SignInWait } from '@fieldgate/core'
import { queryOf } from '../plugins/body.js'
import { SignInGuard } from '../plugins/attempts.js'
import { sessionCookie } from '../plugins/browser.js'
import { CsrfError, isReturnPath, type PageKit } from '../plugins/pages.js'
import { signInPage, signUpPage } from '../pages/sign-in.js'

const home = '/connected-apps'

/**
 * Sign in, sign up (partners and farm users alike), sign out. Failed attempts are limited per account
 * and address, per address and (softly) per account, never by locking the account (SignInGuard),
 * counted in Redis across the deployment when it has one.
 */
export function signInRoutes(app: FastifyInstance, kit: PageKit): void {
  const { ctx, browser } = kit
  const guard = new SignInGuard(app, ctx, kit.masterKey)

  /** The form, or undefined when its CSRF token is stale: then the form is shown again with a fresh one. */
  const freshForm = (request: FastifyRequest): Params | undefined => {
    try {
      return kit.form(request)
    } catch (err) {
      if (err instanceof CsrfError) return undefined
      throw err
    }
  }

  app.get('/login', async (request, reply) => {
    const returnTo = safeReturnTo(queryOf(request).return_to)
    if (await browser.user(request)) return reply.redirect(returnTo, 303)
    return kit.render(reply, 200, signInPage({ csrf: kit.csrf(request, reply), returnTo }))
  })

  app.post('/login', async (request, reply) => {
    const form = freshForm(request)
    if (!form) return kit.render(reply, 403, signInPage({ csrf: kit.csrf(request, reply), returnTo: home, error: 'The form expired. Please sign in again.' }))
    const returnTo = safeReturnTo(form.return_to)
    const email = (form.email ?? '').trim().toLowerCase()
    const again = (status: number, error: string) => kit.render(reply, status, signInPage({ csrf: kit.csrf(request, reply), returnTo, email, error }))
    const attempt = guard.attempt(request, email)
    const wait = await guard.throttled(attempt)
    if (wait) return again(429, tooMany(reply, wait))
    await guard.slowDown(attempt)
    const user = await checkPassword(ctx, email, form.password ?? '')
    if (!user) {
      await guard.failed(attempt)
      return again(401, 'That email and password do not match an account.')
    }
    await guard.succeeded(attempt, user.id)
    browser.renew(reply)
    reply.setCookie(sessionCookie, await startSession(ctx, user.id), browser.cookieOptions(ctx.config.sessionTtl))
    return reply.redirect(returnTo, 303)
  })

  app.get('/signup', async (request, reply) => {
    const returnTo = safeReturnTo(queryOf(request).return_to ?? '/developer')
    return kit.render(reply, 200, signUpPage({ csrf: kit.csrf(request, reply), returnTo }))
  })

  app.post('/signup', async (request, reply) => {
    const form = freshForm(request)
    const returnTo = safeReturnTo(form?.return_to ?? '/developer')
    const email = (form?.email ?? '').trim()
    const again = (status: number, error: string) => kit.render(reply, status, signUpPage({ csrf: kit.csrf(request, reply), returnTo, email, error }))
    if (!form) return again(403, 'The form expired. Please try again.')
    const attempt = guard.attempt(request, email.toLowerCase())
    const wait = await guard.throttled(attempt, 'sign-up')
    if (wait) return again(429, tooMany(reply, wait))
    await guard.signedUp(attempt)
    let userId: string
    try {
      userId = (await createUser(ctx, visitorActor(request.ip), { email, password: form.password ?? '' })).id
    } catch (err) {
      if (err instanceof OperationError) return again(400, err.code === 'conflict' ? 'An account with that email exists: sign in instead.' : err.message)
      throw err
    }
    // Signing up signs in: renew the browser id as sign-in does, so one planted before (session fixation) forges nothing after.
    browser.renew(reply)
    reply.setCookie(sessionCookie, await startSession(ctx, userId), browser.cookieOptions(ctx.config.sessionTtl))
    return reply.redirect(returnTo, 303)
  })

  app.post('/logout', async (request, reply) => {
    kit.form(request)
    await endSession(ctx, request.cookies[sessionCookie])
    reply.clearCookie(sessionCookie, browser.cookieOptions())
    return reply.redirect('/login', 303)
  })
}

/** Only a path on this server (see isReturnPath). Anything else goes home. */
export const safeReturnTo = (value: string | undefined): string => (isReturnPath(value) ? value : home)

/** The 429's Retry-After (RFC 9110 §10.2.3) and what the page says. */
function tooMany(reply: FastifyReply, wait: SignInWait): string {
  reply.header('retry-after', String(wait.seconds))
  const when = wait.seconds < 90 ? `${wait.seconds} seconds` : `${Math.ceil(wait.seconds / 60)} minutes`
  return wait.limit === 'address'
    ? `Too many failed attempts from your address. Try again in ${when}.`
    : `Too many failed sign-ins to this account from your address. Try again in ${when}.`
}

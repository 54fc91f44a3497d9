import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import {
  OperationError,
  checkPassword,
  endSession,
  hashSecret,
  noteSignIn,
  peekEmailLink,
  personActor,
  requestPasswordReset,
  resetPassword,
  signUp,
  signsInUpstream,
  startSession,
  verifyEmail,
  visitorActor,
  type Params,
  type SignInWait,
  type User,
} from '@fieldgate/core'
import { queryOf } from '../plugins/body.js'
import { SignInGuard } from '../plugins/attempts.js'
import { sessionCookie } from '../plugins/browser.js'
import { CsrfError, isReturnPath, type PageKit } from '../plugins/pages.js'
import { checkEmailPage, forgotPasswordPage, resetPasswordPage, signInPage, signUpPage, spentLinkPage, verifyEmailPage, type ToApp } from '../pages/sign-in.js'
import { html } from '../pages/html.js'
import type { FieldError } from '../pages/form.js'
import { Upstreams } from '../oidc/upstream.js'
import { upstreamRoutes } from './upstream.js'

const home = '/connected-apps'

/**
 * Sign in, sign up (partners and farm users alike), sign out. Failed attempts are limited per account
 * and address, per address and (softly) per account, never by locking the account (SignInGuard),
 * counted in Redis across the deployment when it has one.
 */
export function signInRoutes(app: FastifyInstance, kit: PageKit): void {
  const { ctx, browser } = kit
  const guard = new SignInGuard(app, ctx, kit.masterKey)
  const upstreams = new Upstreams(ctx.config.upstream.providers, ctx.config.issuer, kit.masterKey)
  const passwords = ctx.config.upstream.passwordSignIn
  // Sign-in and logout forms end at the providers (Chrome applies form-action to the redirect after a POST).
  kit.formTargets = () => upstreams.formTargets()
  // Without a provider there is nothing under /login/oidc: those paths answer 404.
  if (upstreams.providers.length) upstreamRoutes(app, kit, upstreams)
  const offered = upstreams.providers.map((p) => ({ id: p.id, name: p.name }))
  const signInWith = (p: Parameters<typeof signInPage>[0]) => signInPage({ ...p, upstreams: offered, passwords })
  const noPasswords = 'Sign-in with a password is off here. Use the button above.'

  /** The form, or undefined when its CSRF token is stale: then the form is shown again with a fresh one. */
  const freshForm = (request: FastifyRequest): Params | undefined => {
    try {
      return kit.form(request)
    } catch (err) {
      if (err instanceof CsrfError) return undefined
      throw err
    }
  }

  /**
   * The app an authorization link leads to, when the person is signing in on the way there: its name
   * and the host it sends them back to (the link's redirect_uri if it is one the app registered).
   */
  const appAhead = async (returnTo: string): Promise<ToApp | undefined> => {
    const url = new URL(returnTo, 'http://return')
    const clientId = url.searchParams.get('client_id')
    if (!['/authorize', '/oauth/authorize'].includes(url.pathname) || !clientId || clientId.length > 200) return undefined
    const found = await ctx.storage.getAppByClientId(clientId)
    if (!found || found.suspendedAt !== null) return undefined
    const asked = url.searchParams.get('redirect_uri')
    const redirectUri = asked !== null ? found.redirectUris.find((u) => u === asked) : found.redirectUris.length === 1 ? found.redirectUris[0] : undefined
    return { app: found, redirectUri }
  }

  app.get('/login', async (request, reply) => {
    const returnTo = safeReturnTo(queryOf(request).return_to)
    if (await browser.user(request)) return reply.redirect(returnTo, 303)
    const notice = signInNotices.find((n) => n.name === queryOf(request).notice)?.text
    return kit.render(reply, 200, signInWith({ csrf: kit.csrf(request, reply), returnTo, toApp: await appAhead(returnTo), ...(notice ? { notice } : {}) }))
  })

  app.post('/login', async (request, reply) => {
    const form = freshForm(request)
    if (!form) return kit.render(reply, 403, signInWith({ csrf: kit.csrf(request, reply), returnTo: home, error: 'The form expired. Please sign in again.' }))
    const returnTo = safeReturnTo(form.return_to)
    const email = (form.email ?? '').trim().toLowerCase()
    const again = async (status: number, error: string) =>
      kit.render(reply, status, signInWith({ csrf: kit.csrf(request, reply), returnTo, email, error, toApp: await appAhead(returnTo) }))
    if (!passwords) return again(403, noPasswords)
    const attempt = guard.attempt(request, email)
    const wait = await guard.throttled(attempt)
    if (wait) return again(429, tooMany(reply, wait))
    await guard.slowDown(attempt)
    const user = await checkPassword(ctx, email, form.password ?? '')
    if (!user) {
      await guard.failed(attempt)
      return again(401, 'That email and password do not match an account.')
    }
    // Only once the password is right, so a suspension tells nothing to someone who does not know it.
    if (user.suspendedAt !== null) {
      ctx.security.record({ kind: 'sign_in.failed', userId: user.id, email, address: request.ip, details: { reason: 'suspended' } })
      return again(403, 'This account is suspended. Write to the people who run this site to ask why.')
    }
    // Linked to a provider, the account signs in there: its memberships are the provider's to give.
    if (await signsInUpstream(ctx, user.id))
      return again(403, `This account signs in with ${upstreams.providers.map((p) => p.name).join(' or ') || 'its provider'}. Use the button above.`)
    await guard.succeeded(attempt, user.id)
    await signIn(request, reply, user)
    return reply.redirect(returnTo, 303)
  })

  /** A new session for `user`, with a new browser id (no fixation), and the sign-in noted (new address?). */
  const signIn = async (request: FastifyRequest, reply: FastifyReply, user: User): Promise<void> => {
    browser.renew(reply)
    reply.setCookie(sessionCookie, await startSession(ctx, user.id), browser.cookieOptions(ctx.config.sessionTtl))
    await noteSignIn(ctx, personActor(user, request.ip))
  }

  app.get('/signup', async (request, reply) => {
    const returnTo = safeReturnTo(queryOf(request).return_to ?? '/developer')
    return kit.render(reply, 200, signUpPage({ csrf: kit.csrf(request, reply), returnTo, policy: ctx.config.signup, toApp: await appAhead(returnTo) }))
  })

  /**
   * Under `verified` (the default) the answer is "check your email" whether or not the address had an
   * account: its owner learns which in the message. Under `open` signing up signs in at once.
   */
  app.post('/signup', async (request, reply) => {
    const form = freshForm(request)
    const returnTo = safeReturnTo(form?.return_to ?? '/developer')
    const email = (form?.email ?? '').trim()
    const again = async (status: number, error: FieldError) =>
      kit.render(reply, status, signUpPage({ csrf: kit.csrf(request, reply), returnTo, policy: ctx.config.signup, email, error, toApp: await appAhead(returnTo) }))
    if (!form) return again(403, { message: 'The form expired. Please try again.' })
    if (!passwords) return again(403, { message: 'Accounts here are made by signing in with the button on the sign-in page.' })
    const attempt = guard.attempt(request, email.toLowerCase())
    const wait = await guard.throttled(attempt, 'sign-up')
    if (wait) return again(429, { message: tooMany(reply, wait) })
    await guard.signedUp(attempt)
    try {
      const outcome = await signUp(ctx, visitorActor(request.ip), { email, password: form.password ?? '' })
      // The way back (to the app a farm user came from, say) waits on the page, for after the link.
      if ('mailed' in outcome) return reply.redirect(`/signup/sent?${new URLSearchParams({ return_to: returnTo })}`, 303)
      // Signing up signs in: renew the browser id as sign-in does, so one planted before (session fixation) forges nothing after.
      await signIn(request, reply, outcome.signedIn)
      return reply.redirect(returnTo, 303)
    } catch (err) {
      if (!(err instanceof OperationError)) throw err
      const message = err.code === 'conflict' ? 'An account with that email exists: sign in instead.' : err.message
      return again(err.code === 'forbidden' ? 403 : 400, { message, ...(err.field ? { field: err.field } : {}) })
    }
  })

  app.get('/signup/sent', async (request, reply) =>
    kit.render(
      reply,
      200,
      checkEmailPage({
        csrf: kit.csrf(request, reply),
        returnTo: safeReturnTo(queryOf(request).return_to ?? '/developer'),
        title: 'Check your email',
        message: 'We sent a message to the address you gave. Follow its link to confirm the address; then sign in and create your apps.',
      }),
    ),
  )

  // ---- the links mailed to people: a page that says what the link does, and a button that does it ----

  const spent = (request: FastifyRequest, reply: FastifyReply, err: unknown, again: 'verify' | 'reset') => {
    if (!(err instanceof OperationError)) throw err
    const where =
      again === 'verify' ? html`Sign in, and ask for a new link from the <a href="/developer">developer portal</a>.` : html`<a href="/forgot-password">Ask for a new link</a>.`
    return kit.render(reply, err.code === 'invalid' ? 400 : 403, spentLinkPage({ csrf: kit.csrf(request, reply), message: err.message, again: where }))
  }

  app.get('/verify-email', async (request, reply) => {
    const token = queryOf(request).token
    try {
      const { email } = await peekEmailLink(ctx, { token, purpose: 'verify' })
      return kit.render(reply, 200, verifyEmailPage({ csrf: kit.csrf(request, reply), token: token ?? '', email }))
    } catch (err) {
      return spent(request, reply, err, 'verify')
    }
  })

  app.post('/verify-email', async (request, reply) => {
    const form = kit.form(request)
    let user: User
    try {
      user = await verifyEmail(ctx, visitorActor(request.ip), { token: form.token })
    } catch (err) {
      return spent(request, reply, err, 'verify')
    }
    const signedIn = await browser.user(request)
    return reply.redirect(signedIn?.id === user.id ? '/developer?notice=verified' : '/login?notice=verified&return_to=%2Fdeveloper', 303)
  })

  app.get('/forgot-password', async (request, reply) => kit.render(reply, 200, forgotPasswordPage({ csrf: kit.csrf(request, reply) })))

  /** The same answer whether or not the address has an account; the address's budget is spent as by a sign-up. */
  app.post('/forgot-password', async (request, reply) => {
    const form = freshForm(request)
    const email = (form?.email ?? '').trim()
    const again = (status: number, error: FieldError) => kit.render(reply, status, forgotPasswordPage({ csrf: kit.csrf(request, reply), email, error }))
    if (!form) return again(403, { message: 'The form expired. Please try again.' })
    if (!passwords) return again(403, { message: noPasswords })
    const attempt = guard.attempt(request, email.toLowerCase())
    const wait = await guard.throttled(attempt, 'sign-up')
    if (wait) return again(429, { message: tooMany(reply, wait) })
    await guard.signedUp(attempt)
    try {
      await requestPasswordReset(ctx, visitorActor(request.ip), { email })
    } catch (err) {
      if (!(err instanceof OperationError)) throw err
      return again(400, { message: err.message, ...(err.field ? { field: err.field } : {}) })
    }
    return reply.redirect('/forgot-password/sent', 303)
  })

  app.get('/forgot-password/sent', async (request, reply) =>
    kit.render(
      reply,
      200,
      checkEmailPage({
        csrf: kit.csrf(request, reply),
        returnTo: home,
        title: 'Check your email',
        message: 'If an account has that address, we sent it a link to choose a new password. The link works for an hour, once.',
      }),
    ),
  )

  app.get('/reset-password', async (request, reply) => {
    const token = queryOf(request).token
    try {
      const { email } = await peekEmailLink(ctx, { token, purpose: 'reset' })
      return kit.render(reply, 200, resetPasswordPage({ csrf: kit.csrf(request, reply), token: token ?? '', email }))
    } catch (err) {
      return spent(request, reply, err, 'reset')
    }
  })

  /** A new password ends every session of the account; this browser gets a new one. */
  app.post('/reset-password', async (request, reply) => {
    const form = kit.form(request)
    let user: User
    try {
      user = await resetPassword(ctx, visitorActor(request.ip), { token: form.token, password: form.password })
    } catch (err) {
      if (err instanceof OperationError && err.field === 'password') {
        const { email } = await peekEmailLink(ctx, { token: form.token, purpose: 'reset' })
        return kit.render(reply, 400, resetPasswordPage({ csrf: kit.csrf(request, reply), token: form.token ?? '', email, error: { message: err.message, field: 'password' } }))
      }
      return spent(request, reply, err, 'reset')
    }
    await signIn(request, reply, user)
    return reply.redirect(home, 303)
  })

  /**
   * Ends the session here; one begun upstream goes on to the provider's end_session_endpoint with the
   * ID token as id_token_hint (RP-initiated logout), which comes back to /login/oidc/signed-out.
   */
  app.post('/logout', async (request, reply) => {
    kit.form(request)
    const cookie = request.cookies[sessionCookie]
    const upstream = cookie && cookie.length <= 100 ? await ctx.storage.getUpstreamSession(hashSecret(cookie)) : undefined
    await endSession(ctx, cookie)
    reply.clearCookie(sessionCookie, browser.cookieOptions())
    const provider = upstream && upstreams.providers.find((p) => p.issuer.replace(/\/+$/, '') === upstream.issuer.replace(/\/+$/, ''))
    const endSessionUrl = provider && upstream ? await upstreams.endSessionUrl(provider, upstream.idToken) : undefined
    return reply.redirect(endSessionUrl?.href ?? '/login?notice=signed-out', 303)
  })
}

/** What the sign-in page may say after a redirect, by name: the page never echoes text from its URL. */
const signInNotices = [
  { name: 'verified', text: 'Your email address is confirmed. Sign in to go on.' },
  { name: 'signed-out', text: 'You are signed out.' },
] as const

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

import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import * as client from 'openid-client'
import { endUpstreamSessions, signInUpstream, UpstreamSignInRefused, type UpstreamProvider } from '@fieldgate/core'
import { queryOf, readParams } from '../plugins/body.js'
import { browserCookie, sessionCookie } from '../plugins/browser.js'
import { CsrfError, isReturnPath, type PageKit } from '../plugins/pages.js'
import { transactionCookie, transactionTtlSeconds, UpstreamUnavailable, type Transaction, type Upstreams } from '../oidc/upstream.js'
import { noTenantPage } from '../pages/sign-in.js'

const home = '/connected-apps'

/** What a provider's `error` on the callback means to the person (RFC 6749 §4.1.2.1); any other code reads as a failure there. */
const providerErrors: Record<string, string> = {
  access_denied: 'You did not allow signing in here. Nothing was shared.',
  login_required: 'You are not signed in there.',
  consent_required: 'Signing in here needs your consent there.',
  interaction_required: 'Signing in there needs you to do something first.',
  temporarily_unavailable: 'It is busy right now. Please try again in a moment.',
}

/**
 * Sign-in through upstream OpenID Connect providers (docs/upstream-sign-in.md): start (a POST with
 * CSRF), the callback, the page for someone with no tenant, RP-initiated logout's way back, and
 * back-channel logout. Every failure is a page that says what happened, never a 500.
 */
export function upstreamRoutes(app: FastifyInstance, kit: PageKit, upstreams: Upstreams): void {
  const { ctx, browser } = kit
  const cookieOptions = { ...browser.cookieOptions(transactionTtlSeconds), path: '/login/oidc' }

  const unavailable = (request: FastifyRequest, reply: FastifyReply, provider: UpstreamProvider, err: UpstreamUnavailable | undefined) => {
    request.log.warn({ provider: provider.id, reason: err?.reason ?? 'unreachable' }, 'upstream provider unavailable')
    reply.header('retry-after', '30')
    const why = err?.reason === 'wrong_issuer' ? `${provider.name} answered as another issuer than the one configured here.` : `${provider.name} cannot be reached right now.`
    return kit.error(request, reply, 503, `${provider.name} is not available`, `${why} Please try again in a few minutes, or tell the people who run this site.`)
  }

  app.post('/login/oidc/start', async (request, reply) => {
    let form: ReturnType<typeof kit.form>
    try {
      form = kit.form(request)
    } catch (err) {
      if (err instanceof CsrfError) return reply.redirect('/login', 303)
      throw err
    }
    const provider = upstreams.find(form.provider)
    if (!provider) return kit.error(request, reply, 400, 'Unknown sign-in', 'That way of signing in is not offered here. Go back to the sign-in page and choose again.')
    const returnTo = isReturnPath(form.return_to) ? form.return_to : home
    let started: Awaited<ReturnType<Upstreams['start']>>
    try {
      started = await upstreams.start(provider, returnTo, ctx.now())
    } catch (err) {
      if (err instanceof UpstreamUnavailable) return unavailable(request, reply, provider, err)
      throw err
    }
    reply.setCookie(transactionCookie, upstreams.seal(started.transaction, browser.id(request, reply)), cookieOptions)
    return reply.redirect(started.url.href, 303)
  })

  const callback = async (request: FastifyRequest, reply: FastifyReply, provider: UpstreamProvider | undefined) => {
    if (!provider) return kit.error(request, reply, 404, 'Unknown sign-in', 'That way of signing in is not offered here.')
    const transaction = upstreams.open(request.cookies[transactionCookie], request.cookies[browserCookie], ctx.now())
    // Spent whatever happens: a callback URL replayed finds no transaction.
    reply.clearCookie(transactionCookie, { ...cookieOptions, maxAge: undefined })
    const query = queryOf(request)
    if (!transaction || transaction.provider !== provider.id || query.state !== transaction.state) {
      return kit.error(
        request,
        reply,
        400,
        'This sign-in cannot go on',
        `This sign-in took too long, was started in another browser, or did not start here. Go back to the sign-in page and choose Continue with ${provider.name} again.`,
      )
    }
    if (query.error !== undefined) {
      const said = providerErrors[query.error] ?? 'It could not sign you in.'
      return kit.error(
        request,
        reply,
        query.error === 'access_denied' ? 403 : 400,
        `Not signed in with ${provider.name}`,
        `${provider.name}: ${said} Go back to the sign-in page to try again.`,
      )
    }
    return finish(request, reply, provider, transaction)
  }

  const finish = async (request: FastifyRequest, reply: FastifyReply, provider: UpstreamProvider, transaction: Transaction) => {
    let answer: Awaited<ReturnType<Upstreams['finish']>>
    try {
      answer = await upstreams.finish(provider, transaction, new URL(request.url, ctx.config.issuer))
    } catch (err) {
      if (err instanceof UpstreamUnavailable || isNetworkError(err)) return unavailable(request, reply, provider, err instanceof UpstreamUnavailable ? err : undefined)
      // A code refused, an ID token for another audience or issuer, a nonce that is not ours: openid-client says which.
      request.log.warn({ provider: provider.id, code: errorCode(err), message: err instanceof Error ? err.message : String(err) }, 'upstream sign-in response refused')
      return kit.error(
        request,
        reply,
        400,
        `Not signed in with ${provider.name}`,
        `The answer from ${provider.name} could not be checked, so you are not signed in. Go back to the sign-in page to try again; if it happens again, tell the people who run this site.`,
      )
    }
    try {
      const signedIn = await signInUpstream(ctx, { provider, issuer: answer.issuer, claims: answer.claims, idToken: answer.idToken, address: request.ip })
      if (signedIn.ignored) request.log.warn({ provider: provider.id, ignored: signedIn.ignored }, 'upstream tenants claim entries ignored (unknown tenant or role)')
      browser.renew(reply)
      reply.setCookie(sessionCookie, signedIn.session, browser.cookieOptions(ctx.config.sessionTtl))
      // The developer portal needs no tenant; everything else does.
      const next =
        signedIn.tenantIds.length === 0 && !transaction.returnTo.startsWith('/developer')
          ? `/login/oidc/no-tenant?${new URLSearchParams({ return_to: transaction.returnTo })}`
          : transaction.returnTo
      return reply.redirect(next, 303)
    } catch (err) {
      if (!(err instanceof UpstreamSignInRefused)) throw err
      ctx.security.record({ kind: 'sign_in.failed', address: request.ip, details: { reason: err.reason, upstream: provider.id } })
      return kit.error(request, reply, 403, `Not signed in with ${provider.name}`, err.message)
    }
  }

  app.get('/login/oidc/callback', (request, reply) => callback(request, reply, upstreams.find('default')))
  app.get<{ Params: { id: string } }>('/login/oidc/:id/callback', (request, reply) =>
    callback(request, reply, request.params.id === 'default' ? undefined : upstreams.find(request.params.id)),
  )

  app.get('/login/oidc/no-tenant', async (request, reply) => {
    const user = await kit.user(request, reply)
    if (!user) return reply
    const returnTo = isReturnPath(queryOf(request).return_to) ? queryOf(request).return_to! : home
    const provider = upstreams.providers.length === 1 ? upstreams.providers[0]!.name : 'your sign-in provider'
    return kit.render(reply, 200, noTenantPage({ csrf: kit.csrf(request, reply), user, provider, tenantWord: ctx.config.brand.tenantWord.one, returnTo }))
  })

  // The post_logout_redirect_uri of RP-initiated logout: the provider's session ended too.
  app.get('/login/oidc/signed-out', async (_request, reply) => reply.redirect('/login?notice=signed-out', 303))

  /**
   * Back-channel logout (OpenID Connect Back-Channel Logout 1.0 §2.5, §2.8): the provider posts a
   * logout token; the sessions it names end. 200 when it was valid, 400 otherwise; never cached.
   */
  app.post('/login/oidc/backchannel-logout', async (request, reply) => {
    reply.header('cache-control', 'no-store')
    const token = readParams(request.body).logout_token
    if (!token || token.length > 16_384) return reply.code(400).send({ error: 'invalid_request', error_description: 'logout_token is missing' })
    let named: Awaited<ReturnType<Upstreams['verifyLogoutToken']>>
    try {
      named = await upstreams.verifyLogoutToken(token)
    } catch (err) {
      request.log.warn({ message: err instanceof Error ? err.message : String(err) }, 'back-channel logout token refused')
      return reply.code(400).send({ error: 'invalid_request', error_description: 'the logout token is not valid' })
    }
    const ended = await endUpstreamSessions(ctx, named)
    request.log.info({ ended }, 'back-channel logout')
    return reply.code(200).send()
  })
}

function errorCode(err: unknown): string | undefined {
  return err instanceof Error && 'code' in err && typeof err.code === 'string' ? err.code : undefined
}

/** fetch failing to connect or timing out (the provider is down), as opposed to an answer we refused. */
function isNetworkError(err: unknown): boolean {
  if (err instanceof client.ClientError || err instanceof client.ResponseBodyError || err instanceof client.AuthorizationResponseError) return false
  return err instanceof Error && (err.name === 'TypeError' || err.name === 'AbortError' || err.name === 'TimeoutError')
}

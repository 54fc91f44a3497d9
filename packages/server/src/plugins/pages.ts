import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import {
  OperationError,
  AuthorizationPageError,
  AuthorizationRedirectError,
  OAuthError,
  operationStatus,
  personActor,
  type CoreContext,
  type Params,
  type Person,
  type User,
} from '@fieldgate/core'
import { isStoreUnavailable } from '@fieldgate/storage'
import type { Brand } from '../pages/brand.js'
import { errorPage } from '../pages/error.js'
import { renderPage, type Page } from '../pages/layout.js'
import { readParams } from './body.js'
import { Browser, pageHeaders } from './browser.js'

/** What every page route needs: the browser (cookies, CSRF, who is signed in) and how to answer. */
export class PageKit {
  readonly browser: Browser
  /** Origins every page's forms may end at besides ours: the upstream sign-in providers (routes/sign-in.ts sets it). */
  formTargets: () => string[] = () => []

  constructor(
    readonly ctx: CoreContext,
    csrfKey: Buffer,
    readonly masterKey: Buffer,
    readonly brand: Brand,
  ) {
    this.browser = new Browser(ctx, csrfKey)
  }

  /** A page in the deployment's brand; the path tells the navigation where the person is. */
  render(reply: FastifyReply, status: number, page: Page, formTargets?: string[]): FastifyReply {
    const path = reply.request.url.split('?')[0] ?? '/'
    return pageHeaders(reply, [...(formTargets ?? []), ...this.formTargets()])
      .code(status)
      .send(renderPage(this.brand, page, path))
  }

  async error(request: FastifyRequest, reply: FastifyReply, status: number, title: string, message: string): Promise<FastifyReply> {
    const user = await this.browser.user(request).catch(() => undefined)
    return this.render(reply, status, errorPage({ csrf: this.browser.csrf(request, reply), title, message, user }))
  }

  /** A form post from one of our pages: the CSRF token must be this browser's. */
  form(request: FastifyRequest): Params {
    const form = readParams(request.body)
    if (!this.browser.checkCsrf(request, form.csrf)) throw new CsrfError()
    return form
  }

  /** The signed-in person, or a redirect to sign in that comes back to `returnTo` (undefined then). */
  async user(request: FastifyRequest, reply: FastifyReply, returnTo?: string): Promise<User | undefined> {
    const user = await this.browser.user(request)
    if (!user) void reply.redirect(signInLocation(returnTo ?? (request.method === 'GET' ? request.url : '/')), 303)
    return user
  }

  /** The origin an install form ends at (its install URL): Chrome applies form-action to the redirect. */
  installTarget(app: { installUrl: string | null }): string[] {
    return app.installUrl ? [new URL(app.installUrl).origin] : []
  }

  /** The signed-in person as the actor of an operation, from the address they came from. */
  actor(request: FastifyRequest, user: User): Person {
    return personActor(user, request.ip)
  }

  csrf(request: FastifyRequest, reply: FastifyReply): string {
    return this.browser.csrf(request, reply)
  }
}

/**
 * Where a page may send a person back to after sign-in: a path on this server (no scheme, no `//host`,
 * no backslash), printable ASCII (it goes into a Location header), and not too long to carry.
 */
export const isReturnPath = (value: string | undefined): value is string => value !== undefined && value.length <= 4096 && /^\/(?!\/)[\x21-\x5b\x5d-\x7e]*$/.test(value)

/**
 * The sign-in page, coming back to `back`. A URL sign-in would not return to (a query too long to carry
 * twice in a header, odd characters) comes back to its page without the query, or to the default.
 */
export function signInLocation(back: string): string {
  const returnTo = [back, back.split('?')[0]].find(isReturnPath)
  return returnTo ? `/login?${new URLSearchParams({ return_to: returnTo })}` : '/login'
}

export class CsrfError extends AuthorizationPageError {
  constructor() {
    super('This form has expired or did not come from this site. Go back, reload the page and try again.', 403)
  }
}

/** Errors on pages are pages: a person never sees JSON or a stack trace. */
export function registerPageErrors(app: FastifyInstance, kit: PageKit): void {
  app.setErrorHandler(async (err, request, reply) => {
    if (err instanceof AuthorizationRedirectError) return reply.redirect(err.location, 303)
    if (err instanceof AuthorizationPageError) return kit.error(request, reply, err.status, 'This cannot be done', err.message)
    if (err instanceof OperationError)
      return kit.error(request, reply, operationStatus[err.code], err.code === 'invalid' ? 'Please check the form' : 'This cannot be done', err.message)
    if (err instanceof OAuthError) return kit.error(request, reply, 400, 'Bad request', err.description)
    const status = err instanceof Error && 'statusCode' in err && typeof err.statusCode === 'number' ? err.statusCode : undefined
    if (status !== undefined && status >= 400 && status < 500) return kit.error(request, reply, status, 'Bad request', 'The form could not be read.')
    if (isStoreUnavailable(err)) {
      reply.header('retry-after', '1')
      return kit.error(request, reply, 503, 'Temporarily unavailable', 'The service cannot reach its store right now. Please try again in a moment.')
    }
    request.log.error({ err }, 'page failed')
    return kit.error(request, reply, 500, 'Something went wrong', 'This page could not be completed. Please try again.')
  })
}

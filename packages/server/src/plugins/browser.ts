import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { sessionUser, type CoreContext, type User } from '@fieldgate/core'

/**
 * What pages need from a browser: a per-browser id that CSRF tokens are bound to, the signed-in
 * person, and cookies that are HttpOnly, SameSite=Lax, and Secure when the issuer is https.
 */
export const browserCookie = 'fg_browser'
export const sessionCookie = 'fg_session'

export class Browser {
  /** Its own key, derived from the CSRF key: a binding is never a valid CSRF token, nor the other way round. */
  private readonly bindingKey: Buffer

  constructor(
    private readonly ctx: CoreContext,
    private readonly csrfKey: Buffer,
  ) {
    this.bindingKey = createHmac('sha256', csrfKey).update('fieldgate form binding v1').digest()
  }

  private get secure(): boolean {
    return this.ctx.config.issuer.startsWith('https:')
  }

  cookieOptions(maxAge?: number) {
    return { path: '/', httpOnly: true, sameSite: 'lax' as const, secure: this.secure, ...(maxAge ? { maxAge } : {}) }
  }

  /** The browser's id, set as a cookie on first sight; every form's CSRF token is derived from it. */
  id(request: FastifyRequest, reply: FastifyReply): string {
    const existing = request.cookies[browserCookie]
    if (existing && /^[A-Za-z0-9_-]{32}$/.test(existing)) return existing
    const id = randomBytes(24).toString('base64url')
    request.cookies[browserCookie] = id
    reply.setCookie(browserCookie, id, this.cookieOptions())
    return id
  }

  /** A new browser id at sign-in: an id planted before (a sibling subdomain, plain http) forges nothing after. */
  renew(reply: FastifyReply): void {
    reply.setCookie(browserCookie, randomBytes(24).toString('base64url'), this.cookieOptions())
  }

  /** The synchronizer token for this browser: an HMAC of its id, so nothing needs storing. */
  csrf(request: FastifyRequest, reply: FastifyReply): string {
    return createHmac('sha256', this.csrfKey).update(this.id(request, reply)).digest('base64url')
  }

  /** A form post is genuine only with this browser's token (compared in constant time). */
  checkCsrf(request: FastifyRequest, sent: string | undefined): boolean {
    const id = request.cookies[browserCookie]
    if (!id || !sent) return false
    const expected = Buffer.from(createHmac('sha256', this.csrfKey).update(id).digest('base64url'))
    const given = Buffer.from(sent)
    return given.length === expected.length && timingSafeEqual(given, expected)
  }

  /**
   * A MAC over what a page showed (`fields`, for `purpose`), bound to this browser's CSRF token: sent
   * back in a hidden field, it proves the form posts exactly what this browser was shown.
   */
  bind(request: FastifyRequest, reply: FastifyReply, purpose: string, fields: readonly string[]): string {
    return this.bindingOf(this.csrf(request, reply), purpose, fields)
  }

  /** Whether `sent` is this browser's binding of `fields` (compared in constant time). */
  checkBinding(request: FastifyRequest, sent: string | undefined, purpose: string, fields: readonly string[]): boolean {
    const id = request.cookies[browserCookie]
    if (!id || !sent) return false
    const token = createHmac('sha256', this.csrfKey).update(id).digest('base64url')
    const expected = Buffer.from(this.bindingOf(token, purpose, fields))
    const given = Buffer.from(sent)
    return given.length === expected.length && timingSafeEqual(given, expected)
  }

  // JSON keeps the parts apart: ["a b", "c"] and ["a", "b c"] are different messages.
  private bindingOf(csrf: string, purpose: string, fields: readonly string[]): string {
    return createHmac('sha256', this.bindingKey)
      .update(JSON.stringify([purpose, csrf, ...fields]))
      .digest('base64url')
  }

  user(request: FastifyRequest): Promise<User | undefined> {
    return sessionUser(this.ctx, request.cookies[sessionCookie])
  }
}

/**
 * Pages never render in frames, load nothing from elsewhere but https images (marketplace logos, which
 * review covers), run no script but our own, and leak no URL (which
 * may carry a state or code) in the Referer. `formTargets` adds origins a form may end up at: Chrome
 * applies form-action to the redirect that follows a consent decision.
 */
export function pageHeaders(reply: FastifyReply, formTargets: string[] = []): FastifyReply {
  return reply.headers({
    'content-type': 'text/html; charset=utf-8',
    'content-security-policy': `default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' https:; form-action 'self'${formTargets.map((t) => ` ${t}`).join('')}; frame-ancestors 'none'; base-uri 'none'`,
    'x-frame-options': 'DENY',
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
    'cache-control': 'no-store',
  })
}

import fastifyCookie from '@fastify/cookie'
import type { FastifyInstance } from 'fastify'
import type { CoreContext } from '@fieldgate/core'
import { PageKit, registerPageErrors } from '../plugins/pages.js'
import { loadBrand } from '../pages/brand.js'
import { copyScript, pagesScript, stylesheetFor } from '../pages/layout.js'
import { consentRoutes } from './consent.js'
import { developerRoutes } from './developer.js'
import { installedRoutes } from './installed.js'
import { marketplaceRoutes } from './marketplace.js'
import { memberRoutes } from './members.js'
import { operatorRoutes } from './operator.js'
import { signInRoutes } from './sign-in.js'

/**
 * The pages people use, server-rendered HTML that works without script: sign-in, consent,
 * Connected apps, the developer portal and the marketplace. Every form carries a CSRF token; every
 * error is a page.
 */
export async function pageRoutes(app: FastifyInstance, opts: { ctx: CoreContext; csrfKey: Buffer; masterKey: Buffer }): Promise<void> {
  // Only pages read or set cookies: registered here, its two hooks run for no API or token request.
  await app.register(fastifyCookie)
  const brand = loadBrand(opts.ctx.config)
  const kit = new PageKit(opts.ctx, opts.csrfKey, opts.masterKey, brand)
  registerPageErrors(app, kit)

  const asset = (type: string, body: string | Buffer) => async (_r: unknown, reply: import('fastify').FastifyReply) =>
    reply
      .headers({
        'content-type': type,
        'cache-control': 'public, max-age=3600',
        'x-content-type-options': 'nosniff',
        'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'",
      })
      .send(body)
  app.get('/assets/fieldgate.css', asset('text/css; charset=utf-8', brand.stylesheet ?? stylesheetFor(brand)))
  app.get('/assets/pages.js', asset('text/javascript; charset=utf-8', pagesScript))
  app.get('/assets/copy.js', asset('text/javascript; charset=utf-8', copyScript))
  // An SVG logo is an image here: the CSP above keeps any script inside it from running if opened directly.
  if (brand.logoFile) app.get('/assets/brand-logo', asset(brand.logoFile.type, brand.logoFile.body))
  app.get('/', async (_request, reply) => reply.redirect('/connected-apps', 303))

  signInRoutes(app, kit)
  consentRoutes(app, kit)
  installedRoutes(app, kit)
  developerRoutes(app, kit)
  marketplaceRoutes(app, kit)
  operatorRoutes(app, kit)
  memberRoutes(app, kit)
}

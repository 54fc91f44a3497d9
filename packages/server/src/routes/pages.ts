import type { FastifyInstance } from 'fastify'
import type { CoreContext } from '@fieldgate/core'
import { PageKit, registerPageErrors } from '../plugins/pages.js'
import { stylesheet, copyScript } from '../pages/layout.js'
import { consentRoutes } from './consent.js'
import { developerRoutes } from './developer.js'
import { installedRoutes } from './installed.js'
import { marketplaceRoutes } from './marketplace.js'
import { invitationRoutes } from './invitations.js'
import { memberRoutes } from './members.js'
import { operatorRoutes } from './operator.js'
import { signInRoutes } from './sign-in.js'

/**
 * The pages people use, server-rendered HTML that works without script: sign-in, consent,
 * Connected apps, the developer portal and the marketplace. Every form carries a CSRF token; every
 * error is a page.
 */
export async function pageRoutes(app: FastifyInstance, opts: { ctx: CoreContext; csrfKey: Buffer; masterKey: Buffer }): Promise<void> {
  const kit = new PageKit(opts.ctx, opts.csrfKey, opts.masterKey)
  registerPageErrors(app, kit)

  const asset = (type: string, body: string) => async (_r: unknown, reply: import('fastify').FastifyReply) =>
    reply.headers({ 'content-type': `${type}; charset=utf-8`, 'cache-control': 'public, max-age=3600', 'x-content-type-options': 'nosniff' }).send(body)
  app.get('/assets/fieldgate.css', asset('text/css', stylesheet))
  app.get('/assets/copy.js', asset('text/javascript', copyScript))
  app.get('/', async (_request, reply) => reply.redirect('/connected-apps', 303))

  signInRoutes(app, kit)
  consentRoutes(app, kit)
  installedRoutes(app, kit)
  developerRoutes(app, kit)
  marketplaceRoutes(app, kit)
  operatorRoutes(app, kit)
  invitationRoutes(app, kit)
  memberRoutes(app, kit)
}

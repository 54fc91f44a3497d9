import fastifyCookie from '@fastify/cookie'
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify'
import type { Logger } from 'pino'
import { registerBodyParsers } from './plugins/body.js'
import { registerErrorHandling } from './plugins/errors.js'
import { apiRoutes } from './routes/api.js'
import { fieldNationRoutes } from './routes/fieldnation.js'
import { fieldmarginRoutes } from './routes/fieldmargin.js'
import { oauthRoutes } from './routes/oauth.js'
import { pageRoutes } from './routes/pages.js'
import { wellKnownRoutes } from './routes/well-known.js'
import type { Runtime } from './runtime.js'

/** The HTTP application for one process. Never listens: main.ts and tests decide where. */
export async function buildApp(runtime: Runtime, logger: Logger): Promise<FastifyInstance> {
  const { ctx } = runtime
  const app = Fastify({
    loggerInstance: logger as FastifyBaseLogger,
    // Per-request logs would cost a tenth of the token endpoint's time; errors are still logged.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: ctx.config.bodyLimit,
    trustProxy: false,
    return503OnClosing: true,
    ajv: { customOptions: { coerceTypes: 'array', removeAdditional: false } },
  })
  registerBodyParsers(app)
  registerErrorHandling(app)
  await app.register(fastifyCookie)
  await app.register(wellKnownRoutes, { ctx })
  await app.register(oauthRoutes, { ctx })
  await app.register(fieldNationRoutes, { ctx })
  await app.register(fieldmarginRoutes, { ctx })
  await app.register(pageRoutes, { ctx, csrfKey: runtime.csrfKey, masterKey: runtime.masterKey })
  await app.register(apiRoutes, { ctx })
  return app
}

import fastifySwagger from '@fastify/swagger'
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyReply } from 'fastify'
import type { Logger } from 'pino'
import { loadGateway, type Config } from '@fieldgate/core'
import { RequestLogger } from './logger.js'
import { documentRoute } from './openapi.js'
import { registerBodyParsers } from './plugins/body.js'
import { clientErrorHandler } from './plugins/client-errors.js'
import { metadataUrlOf, registerErrorHandling } from './plugins/errors.js'
import { registerOperations, requestId } from './plugins/operations.js'
import { registerRateLimits } from './plugins/rate-limit.js'
import { adminApiRoutes } from './routes/admin-api.js'
import { apiRoutes } from './routes/api.js'
import { fieldmarginRoutes } from './routes/fieldmargin.js'
import { forwardAuthRoutes } from './routes/forward-auth.js'
import { oauthRoutes } from './routes/oauth.js'
import { pageRoutes } from './routes/pages.js'
import { registrationRoutes } from './routes/registration.js'
import { resourceApiRoutes } from './routes/resources.js'
import { tokenRoutes } from './routes/token.js'
import { wellKnownRoutes } from './routes/well-known.js'
import type { Runtime } from './runtime.js'

/**
 * Fastify's trustProxy for config.trustProxy. A hop count becomes "trust the first n hops" (proxy-addr's
 * hop index: 0 is the socket's peer); Fastify itself now treats a bare number as trusting nobody.
 */
function trustProxyOption(t: Config['trustProxy']): boolean | string[] | ((address: string, hop: number) => boolean) {
  if (typeof t === 'number') return (_address, hop) => hop < t
  return t === false ? false : [...t]
}

/** The HTTP application for one process. Never listens: main.ts and tests decide where. */
export async function buildApp(runtime: Runtime, logger: Logger): Promise<FastifyInstance> {
  const { ctx } = runtime
  const app = Fastify({
    loggerInstance: logger as FastifyBaseLogger,
    // Fastify's two lines per request are off: plugins/request-log.ts writes one, without the URL.
    logController: new LogController({ disableRequestLogging: true }),
    childLoggerFactory: (logger, bindings, options) => new RequestLogger(logger, bindings, options),
    bodyLimit: ctx.config.bodyLimit,
    // Off, or the proxies config.ts was told to trust: request.ip is then the client's address for
    // audit entries, sign-in limits and rate limits alike; X-Forwarded-For from anyone else is ignored.
    trustProxy: trustProxyOption(ctx.config.trustProxy),
    // plugins/operations.ts answers requests that arrive during a drain, in the protocol's own shape.
    return503OnClosing: false,
    // Every response and log line carries the request id; a caller's own X-Request-Id is kept if plain.
    requestIdHeader: false,
    genReqId: (req) => requestId(req.headers['x-request-id']),
    ajv: { customOptions: { coerceTypes: 'array', removeAdditional: false } },
    // What Node refuses before routing (headers over 16 KiB, bad syntax): OAuth-shaped, none to HEAD.
    clientErrorHandler,
    // A path that cannot be routed (bad percent-encoding, a parameter over 100 characters): OAuth-shaped
    // and with its request id (no hook runs), not Fastify's default that echoes the whole path back.
    frameworkErrors: (err, request, reply) => {
      void (reply as FastifyReply)
        .code(err.statusCode ?? 400)
        .header('x-request-id', request.id)
        .send({ error: 'invalid_request', error_description: 'the request path is malformed' })
    },
  })
  // Documents the tagged routes at /openapi.json: the resource and admin APIs from the schemas that validate
  // them, the OAuth, dialect, well-known and probe endpoints from openapi.ts. First, as it sees only later routes.
  await app.register(fastifySwagger, {
    hideUntagged: true,
    transform: documentRoute,
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Fieldgate API',
        version: '1',
        description:
          'The token endpoints of every dialect, introspection and revocation, the resource API (Bearer access tokens from Fieldgate), the well-known documents, the probes, and the admin API, the fieldgate CLI over HTTP (Bearer FIELDGATE_ADMIN_TOKEN).',
      },
      servers: [{ url: ctx.config.issuer }],
      components: { securitySchemes: { adminToken: { type: 'http', scheme: 'bearer' }, accessToken: { type: 'http', scheme: 'bearer' } } },
    },
  })
  registerBodyParsers(app)
  registerErrorHandling(app, metadataUrlOf(ctx.config.audience))
  registerOperations(app, ctx)
  await registerRateLimits(app, ctx.config)
  const gateway = ctx.gateway ?? loadGateway(ctx.config)
  await app.register(wellKnownRoutes, { ctx, gateway })
  await app.register(tokenRoutes, { ctx })
  await app.register(oauthRoutes, { ctx })
  await app.register(registrationRoutes, { ctx })
  await app.register(fieldmarginRoutes, { ctx })
  await app.register(pageRoutes, { ctx, csrfKey: runtime.csrfKey, masterKey: runtime.masterKey })
  await app.register(apiRoutes, { ctx })
  await app.register(resourceApiRoutes, { ctx })
  await app.register(adminApiRoutes, { ctx })
  await app.register(forwardAuthRoutes, { ctx, gateway })
  app.get('/openapi.json', async () => app.swagger())
  return app
}

import type { FastifyInstance } from 'fastify'
import { supportedGrantTypes, type CoreContext } from '@fieldgate/core'

/** RFC 8414 metadata and the JWKS that resource servers verify access tokens with. */
export async function wellKnownRoutes(app: FastifyInstance, { ctx }: { ctx: CoreContext }): Promise<void> {
  const { issuer } = ctx.config
  app.get('/.well-known/oauth-authorization-server', async (_request, reply) => {
    return reply.header('cache-control', 'public, max-age=300').send({
      issuer,
      token_endpoint: `${issuer}/oauth/token`,
      introspection_endpoint: `${issuer}/oauth/introspect`,
      jwks_uri: `${issuer}/.well-known/jwks.json`,
      grant_types_supported: supportedGrantTypes(),
      response_types_supported: [],
      token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post'],
      introspection_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post'],
      scopes_supported: ['api', 'fields:read:all', 'maps:write', 'vehicles:write', 'sensors:write', 'alerts:write'],
    })
  })
  app.get('/.well-known/jwks.json', async (_request, reply) => {
    // Short cache: a key published as `next` must reach resource servers before it signs.
    return reply.header('cache-control', 'public, max-age=60').send(ctx.keys.jwks())
  })
}

import type { FastifyInstance } from 'fastify'
import { scopeDescriptions, type CoreContext } from '@fieldgate/core'

/** RFC 8414 metadata and the JWKS that resource servers verify access tokens with. */
export async function wellKnownRoutes(app: FastifyInstance, { ctx }: { ctx: CoreContext }): Promise<void> {
  const { issuer } = ctx.config
  app.get('/.well-known/oauth-authorization-server', async (_request, reply) => {
    return reply.header('cache-control', 'public, max-age=300').send({
      issuer,
      authorization_endpoint: `${issuer}/oauth/authorize`,
      token_endpoint: `${issuer}/oauth/token`,
      introspection_endpoint: `${issuer}/oauth/introspect`,
      revocation_endpoint: `${issuer}/oauth/revoke`,
      jwks_uri: `${issuer}/.well-known/jwks.json`,
      grant_types_supported: [...ctx.grants.keys()],
      response_types_supported: ['code'],
      response_modes_supported: ['query'],
      code_challenge_methods_supported: ['S256'],
      authorization_response_iss_parameter_supported: true,
      token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post'],
      introspection_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post'],
      revocation_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post'],
      scopes_supported: Object.keys(scopeDescriptions),
    })
  })
  app.get('/.well-known/jwks.json', async (_request, reply) => {
    // Short cache: a key published as `next` must reach resource servers before it signs.
    return reply.header('cache-control', 'public, max-age=60').send(ctx.keys.jwks())
  })
}

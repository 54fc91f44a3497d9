import type { FastifyInstance, FastifyRequest } from 'fastify'
import { apiForHost, scopeDescriptions, type CoreContext, type Gateway } from '@fieldgate/core'
import { metadataUrlOf } from '../plugins/errors.js'
import { resourceMetadata } from './forward-auth.js'

const clientAuthMethods = ['client_secret_basic', 'client_secret_post', 'none']

/** RFC 8414 metadata, the JWKS that resource servers verify access tokens with, and RFC 9728 resource metadata. */
export async function wellKnownRoutes(app: FastifyInstance, { ctx, gateway }: { ctx: CoreContext; gateway: Gateway }): Promise<void> {
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
      // `none`: public clients (OAuth 2.1 §2.4), with PKCE.
      token_endpoint_auth_methods_supported: clientAuthMethods,
      introspection_endpoint_auth_methods_supported: clientAuthMethods,
      revocation_endpoint_auth_methods_supported: clientAuthMethods,
      pushed_authorization_request_endpoint: `${issuer}/oauth/par`,
      // RFC 9126 §5: per app, not for the whole server.
      require_pushed_authorization_requests: false,
      scopes_supported: Object.keys(scopeDescriptions),
    })
  })
  app.get('/.well-known/jwks.json', async (_request, reply) => {
    // Short cache: a key published as `next` must reach resource servers before it signs.
    return reply.header('cache-control', 'public, max-age=60').send(ctx.keys.jwks())
  })

  // RFC 9728: Fieldgate's own API (the tokens' audience), and each API declared for the gateway, which a
  // gateway serves by passing /.well-known/oauth-protected-resource on to Fieldgate with X-Forwarded-Host.
  const ownScopes = Object.keys(scopeDescriptions)
  const own = resourceMetadata(issuer, { resource: ctx.config.audience, name: 'Fieldgate resource API', scopes: ownScopes }, ['header', 'query'])
  const ownPath = new URL(metadataUrlOf(ctx.config.audience)).pathname
  const declared = (request: FastifyRequest) => {
    const forwarded = request.headers['x-forwarded-host']
    return apiForHost(gateway, typeof forwarded === 'string' && forwarded ? forwarded : request.headers.host)
  }
  const metadata = async (request: FastifyRequest, reply: import('fastify').FastifyReply) => {
    const api = declared(request)
    const path = request.url.split('?')[0]
    // An API's own host asks for it at its RFC 9728 path; Fieldgate's own API at its audience's path, or the bare one.
    if (api) return reply.header('cache-control', 'public, max-age=300').send(resourceMetadata(issuer, api, ['header', 'query']))
    if (path !== '/.well-known/oauth-protected-resource' && path !== ownPath)
      return reply.code(404).send({ error: 'not_found', error_description: 'no protected resource is described here' })
    return reply.header('cache-control', 'public, max-age=300').send(own)
  }
  app.get('/.well-known/oauth-protected-resource', metadata)
  app.get('/.well-known/oauth-protected-resource/*', metadata)
}

import type { FastifySchema } from 'fastify'
import { scopeDescriptions, standardGrantTypes } from '@fieldgate/core'

/**
 * What /openapi.json says about the endpoints every client calls: the token endpoints of each dialect,
 * introspection, revocation, the fieldmargin methods, the work orders, the well-known documents and the
 * probes. These schemas document only: they are merged into the route's schema by @fastify/swagger's
 * `transform`, never compiled by Fastify. A response schema there would serialize with
 * fast-json-stringify (dropping fields the dialects' bodies carry) and a body schema would validate
 * and coerce input, answering Fastify's errors where the protocols demand OAuth's (RFC 6749 §5.2).
 * openapi.test.ts checks real answers against the 200 schemas, so the documents cannot drift from the wire.
 */
type Schema = Record<string, unknown>

export interface OperationDoc {
  tags: string[]
  summary: string
  description?: string
  security?: Array<Record<string, string[]>>
  consumes?: string[]
  body?: Schema
  querystring?: Schema
  headers?: Schema
  response: Record<string, Schema>
}

const str = (description: string): Schema => ({ type: 'string', description })

/** RFC 6749 §5.2, RFC 6750 §3 and RFC 7009 §2.2.1: every error of these endpoints has this shape. */
const oauthError = (description: string): Schema => ({
  description,
  type: 'object',
  required: ['error'],
  additionalProperties: true,
  properties: {
    error: str('the error code, e.g. invalid_request, invalid_client, invalid_grant, unsupported_grant_type, invalid_scope, rate_limited, temporarily_unavailable'),
    error_description: str('for a developer, not for display'),
  },
})

const badRequest = oauthError('The request is malformed or the grant is refused (invalid_request, invalid_grant, unsupported_grant_type, invalid_scope)')
const badClient = oauthError('Client authentication failed (invalid_client); with HTTP Basic, WWW-Authenticate names the realm')
const badToken = oauthError('No usable access token (invalid_token, RFC 6750 §3.1); WWW-Authenticate says why')
const forbidden = oauthError('The token lacks the scope this needs (insufficient_scope or missing_scope)')
const limited = oauthError('Too many requests (rate_limited); Retry-After says when to try again')
const unavailable = oauthError('The store cannot answer, the process is draining or shedding load (temporarily_unavailable); Retry-After says when to try again')
const errors = { 400: badRequest, 401: badClient, 429: limited, 503: unavailable }
const bearerErrors = { 401: badToken, 403: forbidden, 429: limited, 503: unavailable }

/** Form-encoded (RFC 6749 §4.1.3) or JSON (FieldEdge's documents); a parameter may appear once. */
const both = ['application/x-www-form-urlencoded', 'application/json']

const clientAuth = {
  client_id: str("the app's client_id (or HTTP Basic, RFC 6749 §2.3.1)"),
  client_secret: str("the app's client secret (or HTTP Basic)"),
}

const tokenBody: Schema = {
  type: 'object',
  required: ['grant_type'],
  // Each dialect sends its own extra fields; unknown parameters are ignored (RFC 6749 §3.2).
  additionalProperties: true,
  properties: {
    grant_type: { type: 'string', enum: [...standardGrantTypes.keys()] },
    ...clientAuth,
    scope: str("space-separated scopes; omitted, the app's or grant's scopes"),
    target_id: str('FieldEdge: the tenant (customer) the token is for'),
    code: str('authorization_code: the code from /oauth/authorize'),
    redirect_uri: str('authorization_code: the redirect URI the code was issued to'),
    code_verifier: str('authorization_code: the PKCE verifier (RFC 7636)'),
  },
}

const tokenFields = {
  access_token: str('a JWT access token'),
  token_type: { type: 'string', enum: ['Bearer'] },
  expires_in: { type: 'integer', description: 'seconds until the token expires' },
}

const tokenResponse = (withScope: boolean, description: string): Schema => ({
  description,
  type: 'object',
  required: Object.keys(tokenFields).concat(withScope ? ['scope'] : []),
  additionalProperties: false,
  properties: { ...tokenFields, ...(withScope ? { scope: str('the granted scopes, space-separated') } : {}) },
})

const tokenEndpoint: OperationDoc = {
  tags: ['oauth'],
  summary: "Token endpoint (RFC 6749 §3.2), also FieldEdge's POST /oauth/token",
  description: "A JSON body with target_id and no scope (FieldEdge's shape) answers exactly access_token, token_type and expires_in; every other request also gets scope.",
  consumes: both,
  body: tokenBody,
  response: {
    200: {
      description: 'The token (Cache-Control: no-store)',
      oneOf: [tokenResponse(true, 'RFC 6749 §5.1'), tokenResponse(false, "FieldEdge's shape")],
    },
    ...errors,
  },
}

const fieldNationToken: OperationDoc = {
  tags: ['field-nation'],
  summary: 'Field Nation REST API v2 token endpoint',
  consumes: both,
  body: tokenBody,
  response: { 200: tokenResponse(false, "Exactly Field Nation's three fields (Cache-Control: no-store)"), ...errors },
}

const exchangeParams = {
  ...clientAuth,
  code: str('the code from the redirect'),
  redirect_uri: str('the redirect URI the code was issued to'),
  code_verifier: str('the PKCE verifier, when the authorization request had a challenge'),
  grant_type: { type: 'string', enum: ['authorization_code'], description: 'optional' },
}

const tokenExchange: OperationDoc = {
  tags: ['fieldmargin'],
  summary: 'fieldmargin token.exchange: a code for an access token',
  description: 'Parameters in the query string or the form body (not both for one parameter).',
  consumes: both,
  body: { type: 'object', additionalProperties: true, properties: exchangeParams },
  querystring: { type: 'object', properties: exchangeParams },
  response: {
    200: {
      description: 'The token and the farm it is for (Cache-Control: no-store)',
      type: 'object',
      required: ['access_token', 'farm_id'],
      additionalProperties: false,
      properties: { access_token: str('a JWT access token'), farm_id: str('the connected farm (tenant)') },
    },
    ...errors,
  },
}

const tokenToRevoke: Schema = {
  type: 'object',
  required: ['token'],
  additionalProperties: true,
  properties: { token: str('an access token'), token_type_hint: { type: 'string', enum: ['access_token'] }, ...clientAuth },
}

const introspection: OperationDoc = {
  tags: ['oauth'],
  summary: 'Token introspection (RFC 7662)',
  description: 'A client learns about its own tokens; one holding introspect:all, about any of its tenant.',
  consumes: both,
  body: tokenToRevoke,
  response: {
    200: {
      description: 'RFC 7662 §2.2: active, and for an active token its claims (Cache-Control: no-store)',
      type: 'object',
      required: ['active'],
      additionalProperties: true,
      properties: {
        active: { type: 'boolean' },
        scope: { type: 'string' },
        client_id: { type: 'string' },
        token_type: { type: 'string' },
        exp: { type: 'integer' },
        iat: { type: 'integer' },
        sub: { type: 'string' },
        iss: { type: 'string' },
      },
    },
    ...errors,
  },
}

const revocation: OperationDoc = {
  tags: ['oauth'],
  summary: 'Token revocation (RFC 7009)',
  consumes: both,
  body: tokenToRevoke,
  response: {
    200: { description: 'Revoked, or nothing to revoke (RFC 7009 §2.2); an empty body', type: 'null' },
    ...errors,
    400: oauthError(
      'Malformed (invalid_request), or a token that cannot be revoked alone (unsupported_token_type, RFC 7009 §2.2.1): a JWT access token ends with its grant or its expiry',
    ),
  },
}

const fieldmarginRevoke: OperationDoc = {
  tags: ['fieldmargin'],
  summary: 'fieldmargin token.revoke: disconnect the integration holding this token',
  description: 'Needs no client authentication: holding the token is enough.',
  consumes: both,
  body: { type: 'object', required: ['access_token'], additionalProperties: true, properties: { access_token: str('the access token to disconnect') } },
  response: {
    200: { description: 'Whether a connection ended', type: 'object', required: ['revoked'], additionalProperties: false, properties: { revoked: { type: 'boolean' } } },
    400: badRequest,
    429: limited,
    503: unavailable,
  },
}

const bearer = [{ accessToken: [] }]
const accessTokenQuery: Schema = { type: 'object', properties: { access_token: str('the access token, if not in the Authorization header (RFC 6750 §2.3)') } }

const permissions: OperationDoc = {
  tags: ['fieldmargin'],
  summary: 'fieldmargin permissions: the scopes of the calling token',
  security: bearer,
  querystring: accessTokenQuery,
  response: {
    200: {
      description: "The token's scopes",
      type: 'object',
      required: ['scopes'],
      additionalProperties: false,
      properties: { scopes: { type: 'array', items: { type: 'string' } } },
    },
    ...bearerErrors,
  },
}

const workOrder: Schema = {
  type: 'object',
  required: ['id', 'title', 'status', 'created_by', 'created_at'],
  additionalProperties: false,
  properties: {
    id: { type: 'string' },
    title: { type: 'string' },
    status: { type: 'string', enum: ['draft', 'published', 'assigned', 'work_done', 'approved'] },
    created_by: str('the client_id of the app that created it'),
    created_at: { type: 'string', format: 'date-time' },
  },
}

const listWorkOrders: OperationDoc = {
  tags: ['field-nation'],
  summary: "List the tenant's work orders, newest first (scope api)",
  security: bearer,
  response: {
    200: {
      description: 'A page of work orders; next_cursor fetches the next',
      type: 'object',
      required: ['results', 'next_cursor'],
      additionalProperties: false,
      properties: { results: { type: 'array', items: workOrder }, next_cursor: { type: ['string', 'null'] } },
    },
    400: oauthError('A malformed query (invalid_request)'),
    ...bearerErrors,
  },
}

const createWorkOrder: OperationDoc = {
  tags: ['field-nation'],
  summary: 'Create a work order (scope api)',
  security: bearer,
  response: { 201: { ...workOrder, description: 'The new work order' }, 400: oauthError('A malformed body (invalid_request)'), ...bearerErrors },
}

const metadata: OperationDoc = {
  tags: ['well-known'],
  summary: 'Authorization server metadata (RFC 8414)',
  response: {
    200: {
      description: 'The metadata (cacheable for 5 minutes)',
      type: 'object',
      additionalProperties: true,
      required: ['issuer', 'token_endpoint', 'jwks_uri', 'grant_types_supported', 'response_types_supported'],
      properties: {
        issuer: { type: 'string', format: 'uri' },
        authorization_endpoint: { type: 'string', format: 'uri' },
        token_endpoint: { type: 'string', format: 'uri' },
        introspection_endpoint: { type: 'string', format: 'uri' },
        revocation_endpoint: { type: 'string', format: 'uri' },
        jwks_uri: { type: 'string', format: 'uri' },
        grant_types_supported: { type: 'array', items: { type: 'string' } },
        response_types_supported: { type: 'array', items: { type: 'string' } },
        scopes_supported: { type: 'array', items: { type: 'string', enum: Object.keys(scopeDescriptions) } },
      },
    },
    503: unavailable,
  },
}

const jwks: OperationDoc = {
  tags: ['well-known'],
  summary: 'The keys access tokens are signed with (RFC 7517 JWK Set)',
  response: {
    200: {
      description: 'The JWK Set (cacheable for a minute: a next key appears before it signs)',
      type: 'object',
      required: ['keys'],
      additionalProperties: false,
      properties: {
        keys: {
          type: 'array',
          items: {
            type: 'object',
            required: ['kty', 'kid'],
            additionalProperties: true,
            properties: { kty: { type: 'string' }, kid: { type: 'string' }, use: { type: 'string' }, alg: { type: 'string' } },
          },
        },
      },
    },
    503: unavailable,
  },
}

const healthz: OperationDoc = {
  tags: ['probes'],
  summary: 'Liveness: the process answers',
  response: {
    200: { description: 'Alive', type: 'object', required: ['status'], additionalProperties: false, properties: { status: { type: 'string', enum: ['ok'] } } },
    503: unavailable,
  },
}

const readiness = (status: string[]): Schema => ({
  type: 'object',
  required: ['status'],
  additionalProperties: false,
  properties: {
    status: { type: 'string', enum: status },
    checks: { type: 'object', additionalProperties: false, properties: { store: { type: 'boolean' }, keys: { type: 'boolean' } } },
    overloaded: { type: 'boolean' },
  },
})

const readyz: OperationDoc = {
  tags: ['probes'],
  summary: 'Readiness: the store answers, a signing key is loaded, and the process is not shedding load',
  response: {
    200: { description: 'Ready for traffic', ...readiness(['ready']) },
    503: { description: 'Send traffic elsewhere (Cache-Control: no-store; Retry-After when overloaded)', ...readiness(['unavailable']) },
  },
}

const protectedResource: OperationDoc = {
  tags: ['well-known'],
  summary: "Protected resource metadata (RFC 9728): Fieldgate's API, or the declared API whose host (X-Forwarded-Host) asks",
  response: {
    200: {
      description: 'The metadata (cacheable for 5 minutes)',
      type: 'object',
      additionalProperties: true,
      required: ['resource', 'authorization_servers'],
      properties: {
        resource: { type: 'string', format: 'uri' },
        resource_name: { type: 'string' },
        authorization_servers: { type: 'array', items: { type: 'string', format: 'uri' } },
        scopes_supported: { type: 'array', items: { type: 'string' } },
        bearer_methods_supported: { type: 'array', items: { type: 'string', enum: ['header', 'query'] } },
        dpop_signing_alg_values_supported: { type: 'array', items: { type: 'string' } },
        dpop_bound_access_tokens_required: { type: 'boolean' },
      },
    },
    404: oauthError('No protected resource is described at this path (not_found)'),
  },
}

const forwardAuth: OperationDoc = {
  tags: ['gateway'],
  summary: 'The check a gateway makes before passing a request to an API (nginx auth_request, Caddy forward_auth, Traefik ForwardAuth); see docs/gateways.md',
  security: bearer,
  headers: {
    type: 'object',
    properties: {
      'x-forwarded-method': str("the original request's method"),
      'x-forwarded-uri': str('its path and query (the token may be its access_token parameter)'),
      'x-forwarded-host': str('its host: which declared API it is'),
    },
  },
  response: {
    200: { description: 'Allowed: the caller in X-Fieldgate-Tenant-Id, -Client-Id, -Scope, -Subject and -Grant-Id', type: 'null' },
    401: { ...badToken, description: 'No token, or a bad, expired or revoked one (a malformed request too): the RFC 6750 challenge with resource_metadata' },
    403: oauthError('A scope the route needs is missing (insufficient_scope, with the challenge), or no rule opens the route (access_denied)'),
  },
}

/** Keyed by method and route pattern, as Fastify registers them. */
export const operationDocs: Readonly<Record<string, OperationDoc>> = {
  'POST /oauth/token': tokenEndpoint,
  'POST /authentication/api/oauth/token': fieldNationToken,
  'POST /v1/token.exchange': tokenExchange,
  'POST /oauth/introspect': introspection,
  'POST /oauth/revoke': revocation,
  'POST /v1/token.revoke': fieldmarginRevoke,
  'GET /v1/permissions': permissions,
  'GET /api/rest/v2/workorders': listWorkOrders,
  'POST /api/rest/v2/workorders': createWorkOrder,
  'GET /.well-known/oauth-authorization-server': metadata,
  'GET /.well-known/jwks.json': jwks,
  'GET /.well-known/oauth-protected-resource': protectedResource,
  'GET /forward-auth': forwardAuth,
  'GET /healthz': healthz,
  'GET /readyz': readyz,
}

interface TransformInput {
  schema: FastifySchema | undefined
  url: string
  route: { method: string | string[] }
}

/**
 * @fastify/swagger's `transform`: adds the documentation above to a route's own schema. The route's
 * validating schemas (querystring and body of the work orders) win over the documented ones.
 */
export function documentRoute({ schema, url, route }: TransformInput): { schema: FastifySchema; url: string } {
  const method = Array.isArray(route.method) ? route.method[0] : route.method
  const doc = operationDocs[`${method} ${url}`]
  if (!doc) return { schema: schema ?? {}, url }
  const { body, querystring, response, ...rest } = doc
  const own = schema ?? {}
  return {
    url,
    schema: {
      ...rest,
      ...(body ? { body } : {}),
      ...(querystring ? { querystring } : {}),
      ...own,
      response: { ...response, ...(isRecord(own.response) ? own.response : {}) },
    },
  }
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)

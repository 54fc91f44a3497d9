/**
 * Fuzzing the OAuth token, introspection and revocation endpoints, Field Nation's token endpoint,
 * fieldmargin's token exchange and revocation, and the permissions read. Issue 7, the security sweep:
 * no 5xx, errors keep their shape, no request changes the store. The generators, the server with its
 * fixtures and the checks are in support/fuzz.ts.
 */
import { randomBytes } from 'node:crypto'
import fc from 'fast-check'
import { ALL_SCOPES, bearerAuth, bodies, CALLBACK, clientAuth, fieldsOf, fuzzFile, getRoute, noAuth, paramsOf, queryOf, req, type Fixture, type Spec } from './support/fuzz.js'

const OAUTH_FIELDS = [
  'grant_type',
  'client_id',
  'client_secret',
  'scope',
  'target_id',
  'code',
  'redirect_uri',
  'code_verifier',
  'token',
  'token_type_hint',
  'refresh_token',
  'resource',
  'audience',
  'response_type',
  'state',
  'code_challenge',
  'code_challenge_method',
  'request_uri',
  'dpop_jkt',
]
const GRANT_TYPES = [
  'client_credentials',
  'authorization_code',
  'refresh_token',
  'password',
  'urn:ietf:params:oauth:grant-type:jwt-bearer',
  'CLIENT_CREDENTIALS',
  'client_credentials ',
]

/** Token endpoint parameters, real client credentials mixed in (a client-credentials token may be issued: that stores nothing). */
const tokenParams = (f: Fixture, extraReal: Record<string, readonly string[]> = {}) =>
  paramsOf(
    fieldsOf(OAUTH_FIELDS, {
      grant_type: GRANT_TYPES,
      client_id: [f.priv.clientId, f.pub.clientId],
      client_secret: [f.priv.clientSecret, f.pub.clientSecret, f.pub.clientSecret + 'x'],
      target_id: f.tenantIds,
      scope: ALL_SCOPES.split(' ').concat([ALL_SCOPES, 'openid', '']),
      redirect_uri: [CALLBACK, CALLBACK + '/', 'https://evil.example/'],
      code: ['0'.repeat(64), randomBytes(32).toString('hex')],
      ...extraReal,
    }),
  )

const tokenEndpoint = (route: string, extraReal: (f: Fixture) => Record<string, readonly string[]> = () => ({})): Spec => ({
  method: 'POST',
  route,
  kind: 'api',
  build: (f) =>
    req({
      method: 'POST',
      path: route,
      auth: clientAuth(f),
      query: queryOf(OAUTH_FIELDS),
      body: bodies(tokenParams(f, extraReal(f)), f.limit, { hints: OAUTH_FIELDS, allowEmpty: true, padKeys: OAUTH_FIELDS }),
    }),
})

const specs: Spec[] = [
  // ---- OAuth, Field Nation, fieldmargin ----
  tokenEndpoint('/oauth/token'),
  tokenEndpoint('/authentication/api/oauth/token'),
  // Introspection only reads: the real tokens may be sent.
  tokenEndpoint('/oauth/introspect', (f) => ({ token: [f.privToken, f.pubToken, f.opaque, f.opaque.toUpperCase()] })),
  // Revocation would end the opaque token: it is never sent (JWTs are, they cannot be revoked alone).
  tokenEndpoint('/oauth/revoke', (f) => ({ token: [f.privToken, f.pubToken, f.opaque.slice(1), f.opaque + '0'] })),
  // A pushed request is kept ten minutes and grants nothing until a person allows it.
  tokenEndpoint('/oauth/par', () => ({
    response_type: ['code', 'token', ''],
    state: ['s', 'é"<>'],
    code_challenge: ['E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', 'short'],
    code_challenge_method: ['S256', 'plain'],
    request_uri: ['urn:ietf:params:oauth:request_uri:x'],
    resource: ['https://api.elsewhere.example/', 'not a uri', `${CALLBACK}#f`],
  })),
  {
    method: 'POST',
    route: '/v1/token.exchange',
    kind: 'api',
    note: 'no valid code exists',
    build: (f) =>
      req({
        method: 'POST',
        path: '/v1/token.exchange',
        auth: clientAuth(f),
        query: queryOf(OAUTH_FIELDS, [f.pub.clientId, f.pub.clientSecret, 'authorization_code']),
        body: bodies(tokenParams(f), f.limit, { hints: OAUTH_FIELDS, allowEmpty: true, padKeys: OAUTH_FIELDS }),
      }),
  },
  {
    method: 'POST',
    route: '/v1/token.revoke',
    kind: 'api',
    note: 'the opaque token itself is never sent',
    build: (f) =>
      req({
        method: 'POST',
        path: '/v1/token.revoke',
        auth: fc.oneof(noAuth, bearerAuth(f, [f.privToken, f.pubToken])),
        query: queryOf(['access_token']),
        body: bodies(paramsOf(fieldsOf(['access_token', 'token'], { access_token: [f.privToken, f.opaque.slice(0, -1), f.opaque.toUpperCase(), '0'.repeat(64)] })), f.limit, {
          hints: ['access_token'],
          allowEmpty: true,
          padKeys: ['access_token'],
        }),
      }),
  },
  getRoute('/v1/permissions', 'api', { auth: (f) => bearerAuth(f), names: ['access_token'], real: (f) => [f.opaque, f.privToken] }),
]

fuzzFile('token', 'fuzzing the token endpoints', specs)

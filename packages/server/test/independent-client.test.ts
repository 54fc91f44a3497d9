import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import * as oauth from 'oauth4webapi'
import { cliActor, revokeGrant } from '@fieldgate/core'
import { privateApp, publicSandboxApp, request, startServer, waitUntil, type PrivateFixture, type TestServer } from './helpers.js'

/**
 * An independent, standards-strict OAuth 2.0 client (oauth4webapi) against the server: discovery,
 * client credentials with both client authentication methods, the protected API, introspection, and
 * RFC 9068 validation of the access token as a third-party resource server would do it.
 */
describe('independent client: oauth4webapi', () => {
  let server: TestServer
  let f: PrivateFixture
  let as: oauth.AuthorizationServer
  const insecure = { [oauth.allowInsecureRequests]: true } as const

  before(async () => {
    server = await startServer()
    f = await privateApp(server.storage, { scopes: 'api maps:write' })
    const issuer = new URL(server.issuer)
    as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, { algorithm: 'oauth2', ...insecure }))
  })
  after(() => server.close())

  const client = () => ({ client_id: f.clientId })

  it('discovers the RFC 8414 metadata', () => {
    assert.equal(as.issuer, server.issuer)
    assert.equal(as.token_endpoint, `${server.issuer}/oauth/token`)
    assert.equal(as.introspection_endpoint, `${server.issuer}/oauth/introspect`)
    assert.equal(as.jwks_uri, `${server.issuer}/.well-known/jwks.json`)
  })

  it('gets a client-credentials token with client_secret_basic and calls the API with it', async () => {
    const res = await oauth.clientCredentialsGrantRequest(as, client(), oauth.ClientSecretBasic(f.clientSecret), new URLSearchParams({ scope: 'api' }), insecure)
    const token = await oauth.processClientCredentialsResponse(as, client(), res)
    assert.equal(token.token_type, 'bearer')
    assert.equal(token.expires_in, 3600)
    assert.equal(token.scope, 'api')
    const api = await oauth.protectedResourceRequest(token.access_token, 'GET', new URL(`${server.issuer}/api/rest/v2/workorders`), undefined, undefined, insecure)
    assert.equal(api.status, 200)
    const body = (await api.json()) as { results: unknown[]; next_cursor: unknown }
    assert.ok(Array.isArray(body.results))
  })

  it('gets a token with client_secret_post for every granted scope', async () => {
    const res = await oauth.clientCredentialsGrantRequest(as, client(), oauth.ClientSecretPost(f.clientSecret), new URLSearchParams(), insecure)
    const token = await oauth.processClientCredentialsResponse(as, client(), res)
    assert.equal(token.scope, 'api maps:write')
  })

  it('a public app passes target_id as an extra parameter', async () => {
    const pub = await publicSandboxApp(server.storage)
    const res = await oauth.clientCredentialsGrantRequest(
      as,
      { client_id: pub.clientId },
      oauth.ClientSecretBasic(pub.clientSecret),
      new URLSearchParams({ target_id: pub.sandboxTenant.id }),
      insecure,
    )
    const token = await oauth.processClientCredentialsResponse(as, { client_id: pub.clientId }, res)
    assert.equal(token.expires_in, 28000)
  })

  it('sees an OAuth error for a wrong secret', async () => {
    const res = await oauth.clientCredentialsGrantRequest(as, client(), oauth.ClientSecretBasic('wrong'), new URLSearchParams(), insecure)
    await assert.rejects(oauth.processClientCredentialsResponse(as, client(), res), (err: unknown) => {
      if (err instanceof oauth.ResponseBodyError) {
        assert.equal(err.error, 'invalid_client')
        assert.equal(err.status, 401)
        return true
      }
      if (err instanceof oauth.WWWAuthenticateChallengeError) {
        assert.equal(err.response.status, 401)
        assert.equal(err.cause[0]?.scheme, 'basic')
        return true
      }
      return false
    })
    const scope = await oauth.clientCredentialsGrantRequest(as, client(), oauth.ClientSecretPost(f.clientSecret), new URLSearchParams({ scope: 'fields:read:all' }), insecure)
    await assert.rejects(
      oauth.processClientCredentialsResponse(as, client(), scope),
      (err: unknown) => err instanceof oauth.ResponseBodyError && err.error === 'invalid_scope' && err.status === 400,
    )
  })

  it('introspects its token, and sees it inactive once the grant is revoked', async () => {
    const other = await privateApp(server.storage)
    const c = { client_id: other.clientId }
    const auth = oauth.ClientSecretBasic(other.clientSecret)
    const token = await oauth.processClientCredentialsResponse(as, c, await oauth.clientCredentialsGrantRequest(as, c, auth, new URLSearchParams(), insecure))
    const active = await oauth.processIntrospectionResponse(as, c, await oauth.introspectionRequest(as, c, auth, token.access_token, insecure))
    assert.equal(active.active, true)
    assert.equal(active.client_id, other.clientId)
    assert.equal(active.scope, 'api')
    assert.equal(typeof active.exp, 'number')
    assert.equal(active.tenant_id, other.tenant.id)

    await revokeGrant(server.runtime.ctx, cliActor, { grantId: other.grant.id })
    await waitUntil(async () => {
      const r = await oauth.processIntrospectionResponse(as, c, await oauth.introspectionRequest(as, c, auth, token.access_token, insecure))
      return r.active === false
    }, 1000)
  })

  it('validates the access token as an RFC 9068 resource server would', async () => {
    const res = await oauth.clientCredentialsGrantRequest(as, client(), oauth.ClientSecretBasic(f.clientSecret), new URLSearchParams({ scope: 'api' }), insecure)
    const token = await oauth.processClientCredentialsResponse(as, client(), res)
    const incoming = new Request(`${server.issuer}/api/rest/v2/workorders`, { headers: { authorization: `Bearer ${token.access_token}` } })
    const claims = await oauth.validateJwtAccessToken(as, incoming, server.config.audience, { ...insecure, signingAlgorithms: ['RS256'] })
    assert.equal(claims.client_id, f.clientId)
    assert.equal(claims.sub, f.clientId)
    assert.equal(claims.iss, server.issuer)
    assert.equal(claims.scope, 'api')
    assert.equal(claims.exp - claims.iat, 3600)
    // And the same request against the real API.
    const real = await request(incoming.url, { headers: { authorization: `Bearer ${token.access_token}` } })
    assert.equal(real.status, 200)
  })
})

import assert from 'node:assert/strict'
import { rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { ConfigError, cliActor, compilePath, parseGateway, revokeGrant } from '@fieldgate/core'
import { injectHttp, privateApp, startServer, tempDir, type PrivateFixture, type TestServer } from './helpers.js'

/**
 * The forward-auth check's answers, through app.inject: who is calling in X-Fieldgate-* on a 200, the
 * RFC 6750 challenge with RFC 9728's resource_metadata on a 401 or 403, the route rules of the gateway
 * file, and the protected resource metadata. Behind a real nginx: gateway-nginx.test.ts.
 */

export const gatewayFile = (apiHost: string) => ({
  apis: [
    {
      id: 'dispatch',
      name: 'Dispatch API',
      resource: `http://${apiHost}`,
      hosts: [apiHost],
      rules: [
        { path: '/health', public: true },
        { methods: ['GET'], path: '/orders', scope: 'api' },
        { methods: ['GET', 'POST'], path: '/orders/:id/**', scope: 'api' },
        { methods: ['GET'], path: '/alerts/*', scope: 'alerts:write' },
      ],
    },
  ],
})

const API = 'api.dispatch.test:8080'

describe('GET /forward-auth', () => {
  let server: TestServer
  let app: PrivateFixture
  let token: string
  const dataDir = tempDir()
  const { getToken } = injectHttp(() => server)

  before(async () => {
    writeFileSync(join(dataDir, 'gateway.json'), JSON.stringify(gatewayFile(API)))
    server = await startServer({ dataDir, listen: false, overrides: { gatewayFile: 'gateway.json' } })
    app = await privateApp(server.storage, { scopes: 'api' })
    token = await getToken(server, app)
  })
  after(async () => {
    await server?.close()
    rmSync(dataDir, { recursive: true, force: true })
  })

  const check = (headers: Record<string, string>, url = '/forward-auth') =>
    server.app.inject({ url, headers: { 'x-forwarded-host': API, 'x-forwarded-method': 'GET', ...headers } })

  it('RFC 8707: takes a token for this API or the platform’s own audience, never one for another resource', async () => {
    const forApi = await getToken(server, app, { resource: `http://${API}` })
    assert.equal(JSON.parse(Buffer.from(forApi.split('.')[1]!, 'base64url').toString()).aud, `http://${API}`, 'a declared API is a resource tokens may be for')
    assert.equal((await check({ 'x-forwarded-uri': '/orders', authorization: `Bearer ${forApi}` })).statusCode, 200)
    const elsewhere = new URL(server.issuer)
    elsewhere.port = '9911'
    elsewhere.pathname = '/mcp'
    const forOther = await getToken(server, app, { resource: elsewhere.href })
    const refused = await check({ 'x-forwarded-uri': '/orders', authorization: `Bearer ${forOther}` })
    assert.equal(refused.statusCode, 401)
    assert.equal(refused.json().error, 'invalid_token')
  })

  it('lets a token with the scope through, saying who calls', async () => {
    const res = await check({ 'x-forwarded-uri': '/orders?status=open', authorization: `Bearer ${token}` })
    assert.equal(res.statusCode, 200, res.body)
    assert.equal(res.headers['x-fieldgate-tenant-id'], app.tenant.id)
    assert.equal(res.headers['x-fieldgate-client-id'], app.clientId)
    assert.equal(res.headers['x-fieldgate-scope'], 'api')
    assert.equal(res.headers['x-fieldgate-grant-id'], app.grant.id)
    assert.equal(res.headers['x-fieldgate-subject'], app.clientId, 'a client-credentials token is about its client')
    assert.equal(res.headers['cache-control'], 'no-store')
    const deeper = await check({ 'x-forwarded-uri': '/orders/42/lines/7', 'x-forwarded-method': 'POST', authorization: `Bearer ${token}` })
    assert.equal(deeper.statusCode, 200, 'a trailing /** matches any rest')
  })

  it('takes the token from the access_token parameter of the original request, never from both places', async () => {
    const res = await check({ 'x-forwarded-uri': `/orders?access_token=${token}` })
    assert.equal(res.statusCode, 200)
    const both = await check({ 'x-forwarded-uri': `/orders?access_token=${token}`, authorization: `Bearer ${token}` })
    assert.equal(both.statusCode, 401, 'a gateway passes 401 on; RFC 6750 would say 400')
    assert.match(String(both.headers['www-authenticate']), /error="invalid_request"/)
  })

  it('401 without a token or with a bad one, with the challenge and the API’s metadata', async () => {
    const metadata = `resource_metadata="http://${API}/.well-known/oauth-protected-resource"`
    const none = await check({ 'x-forwarded-uri': '/orders' })
    assert.equal(none.statusCode, 401)
    assert.equal(none.headers['www-authenticate'], `Bearer realm="fieldgate", ${metadata}, DPoP algs="ES256 RS256 PS256 EdDSA"`)
    const bad = await check({ 'x-forwarded-uri': '/orders', authorization: `Bearer ${token.slice(0, -4)}AAAA` })
    assert.equal(bad.statusCode, 401)
    assert.match(
      String(bad.headers['www-authenticate']),
      new RegExp(`^Bearer realm="fieldgate", error="invalid_token", .*${metadata.replace(/[.?/]/g, '\\$&')}, DPoP algs="[^"]+"$`),
    )
    assert.equal(bad.json().error, 'invalid_token')
  })

  it('403 insufficient_scope when the rule needs a scope the token lacks', async () => {
    const res = await check({ 'x-forwarded-uri': '/alerts/9', authorization: `Bearer ${token}` })
    assert.equal(res.statusCode, 403)
    assert.match(String(res.headers['www-authenticate']), /error="insufficient_scope", scope="alerts:write", resource_metadata=/)
  })

  it('denies what no rule opens, an undeclared host, and paths the API might read as another route', async () => {
    const cases: [Record<string, string>, RegExp][] = [
      [{ 'x-forwarded-uri': '/admin' }, /no rule of dispatch opens GET \/admin/],
      [{ 'x-forwarded-uri': '/orders', 'x-forwarded-method': 'DELETE' }, /no rule of dispatch opens DELETE \/orders/],
      [{ 'x-forwarded-uri': '/orders', 'x-forwarded-host': 'other.test' }, /no API is declared for the host other\.test/],
      [{ 'x-forwarded-uri': '/orders/1/../../admin' }, /not one Fieldgate can check/],
      [{ 'x-forwarded-uri': '/orders/1/%2e%2e/x' }, /not one Fieldgate can check/],
      [{ 'x-forwarded-uri': '/orders%2F1' }, /not one Fieldgate can check/],
      [{ 'x-forwarded-uri': '/orders/%E0%A4%A' }, /not one Fieldgate can check/],
    ]
    for (const [headers, message] of cases) {
      const res = await check({ authorization: `Bearer ${token}`, ...headers })
      assert.equal(res.statusCode, 403, JSON.stringify(headers))
      assert.equal(res.json().error, 'access_denied')
      assert.match(res.json().error_description, message)
    }
    assert.equal((await check({ 'x-forwarded-uri': '/health' })).statusCode, 200, 'a public route needs no token')
  })

  it('takes Envoy’s form: the original method and path after /forward-auth', async () => {
    const res = await server.app.inject({ method: 'POST', url: '/forward-auth/orders/5/notes', headers: { host: API, authorization: `Bearer ${token}` } })
    assert.equal(res.statusCode, 200, res.body)
    const denied = await server.app.inject({ method: 'DELETE', url: '/forward-auth/orders/5', headers: { host: API, authorization: `Bearer ${token}` } })
    assert.equal(denied.statusCode, 403)
  })

  it('refuses a token at once once its grant is revoked, as Fieldgate’s own API does', async () => {
    const other = await privateApp(server.storage, { scopes: 'api' })
    const t = await getToken(server, other)
    assert.equal((await check({ 'x-forwarded-uri': '/orders', authorization: `Bearer ${t}` })).statusCode, 200)
    await revokeGrant(server.runtime.ctx, cliActor, { grantId: other.grant.id })
    const res = await check({ 'x-forwarded-uri': '/orders', authorization: `Bearer ${t}` })
    assert.equal(res.statusCode, 401)
    assert.match(String(res.headers['www-authenticate']), /error="invalid_token"/)
  })

  it('RFC 9728 metadata: the declared API on its own host, Fieldgate’s own API on the issuer, and every own 401 names it', async () => {
    const declared = await server.app.inject({ url: '/.well-known/oauth-protected-resource', headers: { 'x-forwarded-host': API } })
    assert.deepEqual(declared.json(), {
      resource: `http://${API}`,
      resource_name: 'Dispatch API',
      authorization_servers: [server.issuer],
      scopes_supported: ['api', 'alerts:write'],
      bearer_methods_supported: ['header', 'query'],
      dpop_signing_alg_values_supported: ['ES256', 'RS256', 'PS256', 'EdDSA'],
      dpop_bound_access_tokens_required: false,
    })
    const own = await server.app.inject({ url: '/.well-known/oauth-protected-resource/api' })
    assert.equal(own.json().resource, server.config.audience)
    assert.deepEqual(own.json().authorization_servers, [server.issuer])
    assert.equal((await server.app.inject({ url: '/.well-known/oauth-protected-resource/elsewhere' })).statusCode, 404)
    const unauthenticated = await server.app.inject({ url: '/api/rest/v2/workorders' })
    assert.equal(unauthenticated.statusCode, 401)
    assert.equal(
      unauthenticated.headers['www-authenticate'],
      `Bearer realm="fieldgate", resource_metadata="${server.issuer}/.well-known/oauth-protected-resource/api", DPoP algs="ES256 RS256 PS256 EdDSA"`,
    )
  })
})

describe('the gateway file', () => {
  const ok = (apis: unknown) => parseGateway(JSON.stringify({ apis }), 'gateway.json')
  const rule = { path: '/x', scope: 'api' }

  it('compiles path patterns: a segment for :name and *, any rest for a trailing /**, the rest literal', () => {
    const p = compilePath('/orders/:id/lines/*', 'test')
    assert.ok(p.test('/orders/1/lines/2'))
    assert.equal(p.test('/orders/1/lines/2/3'), false)
    assert.equal(p.test('/orders//lines/2'), false)
    const rest = compilePath('/files/**', 'test')
    assert.ok(rest.test('/files') && rest.test('/files/a/b'))
    assert.equal(rest.test('/filesystem'), false)
    assert.equal(compilePath('/a.b', 'test').test('/aXb'), false, 'a dot is a dot')
  })

  it('refuses what it could not enforce, naming the API and rule', () => {
    const refusals: [unknown, RegExp][] = [
      [[], /"apis" must be a list of at least one API/],
      [[{ resource: 'not a url', rules: [rule] }], /api 1: "resource" must be the API's URL/],
      [[{ resource: 'https://a.example', rules: [] }], /"rules" must be a list of at least one rule/],
      [[{ resource: 'https://a.example', rules: [{ path: '/x' }] }], /rule 1: give either "scope" .* or "public": true/],
      [[{ resource: 'https://a.example', rules: [{ path: '/x', scope: 'api', public: true }] }], /give either/],
      [[{ resource: 'https://a.example', rules: [{ path: '/x/**/y', scope: 'api' }] }], /\*\* may only end a path/],
      [[{ resource: 'https://a.example', rules: [{ path: '/x*', scope: 'api' }] }], /mixes a wildcard/],
      [[{ resource: 'https://a.example', rules: [{ path: '/x', scope: 'api', methods: ['FETCH'] }] }], /"methods" must be a list of GET/],
      [
        [
          { resource: 'https://a.example', rules: [rule] },
          { id: 'b', resource: 'https://a.example', rules: [rule] },
        ],
        /the host a\.example is both a-example's and b's/,
      ],
    ]
    for (const [apis, message] of refusals)
      assert.throws(
        () => ok(apis),
        (e) => e instanceof ConfigError && message.test(e.message),
        String(message),
      )
    assert.throws(() => parseGateway('{', 'gateway.json'), /is not JSON/)
    assert.equal(ok([{ resource: 'https://a.example', rules: [rule] }]).apis[0]!.id, 'a-example', 'an id from the host by default')
  })
})

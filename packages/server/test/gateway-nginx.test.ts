import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { cliActor, revokeGrant, signAccessToken } from '@fieldgate/core'
import { boundToken, dpopKey, dpopProof, freePort, getToken, privateApp, startServer, tempDir, type PrivateFixture, type TestServer } from './helpers.js'
import { nginxSite, nginxSkip, startNginx, type Nginx } from './support/nginx.js'

/**
 * An API with no auth code of its own, behind Debian's nginx with `auth_request` to Fieldgate's
 * forward-auth: allowed, a scope missing, a revoked grant, an expired token, the token in the query, no
 * token, a client's forged identity headers, the API's RFC 9728 metadata through the gateway, and a
 * DPoP-bound token whose proof reaches the check in the auth subrequest's headers.
 */

interface Seen {
  path: string
  headers: IncomingHttpHeaders
}

describe('an API behind nginx auth_request and Fieldgate forward-auth', { skip: nginxSkip }, () => {
  let fieldgate: TestServer
  let nginx: Nginx
  let upstream: Server
  let app: PrivateFixture
  let token: string
  const seen: Seen[] = []
  const dir = tempDir()

  before(async () => {
    // The API: answers whatever reaches it, with what it was told about the caller. No auth code.
    upstream = createServer((req, res) => {
      seen.push({ path: req.url ?? '', headers: req.headers })
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ path: req.url, tenant: req.headers['x-fieldgate-tenant-id'] ?? null }))
    })
    await new Promise<void>((ok) => upstream.listen(0, '127.0.0.1', ok))
    const upstreamAt = `127.0.0.1:${(upstream.address() as AddressInfo).port}`
    // Fieldgate must know the API's host before it starts, and the host is nginx's port: start nginx first
    // against Fieldgate's port, picked ahead.
    const fgPort = await freePort()
    nginx = await startNginx(dir, (port) => nginxSite({ port, fieldgate: `127.0.0.1:${fgPort}`, upstream: upstreamAt }))
    const apiHost = new URL(nginx.origin).host
    writeFileSync(
      join(dir, 'gateway.json'),
      JSON.stringify({
        apis: [
          {
            id: 'dispatch',
            name: 'Dispatch API',
            resource: nginx.origin,
            hosts: [apiHost],
            rules: [
              { path: '/health', public: true },
              { methods: ['GET', 'POST'], path: '/orders/**', scope: 'api' },
              { methods: ['GET'], path: '/alerts/**', scope: 'alerts:write' },
            ],
          },
        ],
      }),
    )
    fieldgate = await startServer({ dataDir: dir, overrides: { port: fgPort, gatewayFile: 'gateway.json' } })
    app = await privateApp(fieldgate.storage, { scopes: 'api' })
    token = await getToken(fieldgate, app)
  })
  after(async () => {
    await nginx?.stop()
    await fieldgate?.close()
    await new Promise((r) => upstream?.close(r))
    rmSync(dir, { recursive: true, force: true })
  })

  const call = (path: string, headers: Record<string, string> = {}, method = 'GET') => fetch(nginx.origin + path, { method, headers })
  const lastSeen = () => seen.at(-1)

  it('passes an allowed call to the API with who calls, from the header or the query', async () => {
    const res = await call('/orders/17?expand=lines', { authorization: `Bearer ${token}` })
    assert.equal(res.status, 200)
    assert.deepEqual(await res.json(), { path: '/orders/17?expand=lines', tenant: app.tenant.id })
    const headers = lastSeen()!.headers
    assert.deepEqual(
      [headers['x-fieldgate-client-id'], headers['x-fieldgate-scope'], headers['x-fieldgate-grant-id'], headers['x-fieldgate-subject']],
      [app.clientId, 'api', app.grant.id, app.clientId],
    )
    const viaQuery = await call(`/orders?access_token=${token}`)
    assert.equal(viaQuery.status, 200, 'the token in the query string, as Field Nation documents it')
    assert.equal(lastSeen()!.headers['x-fieldgate-tenant-id'], app.tenant.id)
  })

  it('401 without a token, with the challenge naming the API’s metadata, which the gateway serves', async () => {
    const before = seen.length
    const res = await call('/orders')
    assert.equal(res.status, 401)
    const metadataUrl = `${nginx.origin}/.well-known/oauth-protected-resource`
    assert.equal(res.headers.get('www-authenticate'), `Bearer realm="fieldgate", resource_metadata="${metadataUrl}", DPoP algs="ES256 RS256 PS256 EdDSA"`)
    assert.equal(seen.length, before, 'nothing reached the API')
    const metadata = JSON.parse(await (await fetch(metadataUrl)).text())
    assert.deepEqual([metadata.resource, metadata.authorization_servers], [nginx.origin, [fieldgate.issuer]])
  })

  it('403 with insufficient_scope when the token lacks the route’s scope', async () => {
    const res = await call('/alerts/3', { authorization: `Bearer ${token}` })
    assert.equal(res.status, 403)
    assert.match(res.headers.get('www-authenticate') ?? '', /error="insufficient_scope", scope="alerts:write"/)
    const unlisted = await call('/admin', { authorization: `Bearer ${token}` })
    assert.equal(unlisted.status, 403, 'a route no rule opens is closed')
  })

  it('401 for an expired token and, at once, for a revoked grant', async () => {
    const now = Math.floor(Date.now() / 1000)
    const expired = await signAccessToken(fieldgate.runtime.ctx.keys, {
      iss: fieldgate.issuer,
      sub: app.clientId,
      aud: fieldgate.config.audience,
      iat: now - 4000,
      exp: now - 400,
      jti: randomUUID(),
      client_id: app.clientId,
      scope: 'api',
      tenant_id: app.tenant.id,
      grant_id: app.grant.id,
    })
    const res = await call('/orders', { authorization: `Bearer ${expired}` })
    assert.equal(res.status, 401)
    assert.match(res.headers.get('www-authenticate') ?? '', /error="invalid_token", error_description="The access token expired"/)
    const other = await privateApp(fieldgate.storage, { scopes: 'api' })
    const t = await getToken(fieldgate, other)
    assert.equal((await call('/orders', { authorization: `Bearer ${t}` })).status, 200)
    await revokeGrant(fieldgate.runtime.ctx, cliActor, { grantId: other.grant.id })
    assert.equal((await call('/orders', { authorization: `Bearer ${t}` })).status, 401, 'revoked: refused on the next call')
  })

  it('a client cannot tell the API who it is: its own X-Fieldgate-* are replaced, on public routes dropped', async () => {
    const forged = { 'x-fieldgate-tenant-id': 'someone-else', 'x-fieldgate-scope': 'admin' }
    assert.equal((await call('/orders/1', { ...forged, authorization: `Bearer ${token}` })).status, 200)
    assert.equal(lastSeen()!.headers['x-fieldgate-tenant-id'], app.tenant.id)
    assert.equal(lastSeen()!.headers['x-fieldgate-scope'], 'api')
    assert.equal((await call('/health', forged)).status, 200)
    assert.equal(lastSeen()!.headers['x-fieldgate-tenant-id'], undefined)
    assert.equal(lastSeen()!.headers['x-fieldgate-scope'], undefined)
  })

  it('a DPoP-bound token passes with its proof, which nginx hands the check, and a replayed proof does not', async () => {
    const key = dpopKey()
    const bound = await boundToken(fieldgate, token, key.jkt)
    const proof = dpopProof(key, { htm: 'GET', htu: `${nginx.origin}/orders/9`, accessToken: bound })
    const before = seen.length
    const res = await call('/orders/9?x=1', { authorization: `DPoP ${bound}`, dpop: proof })
    assert.equal(res.status, 200, await res.text())
    assert.equal(lastSeen()!.headers['x-fieldgate-client-id'], app.clientId)
    const replayed = await call('/orders/9?x=1', { authorization: `DPoP ${bound}`, dpop: proof })
    assert.equal(replayed.status, 401)
    assert.match(replayed.headers.get('www-authenticate') ?? '', /DPoP algs="[^"]+", error="invalid_dpop_proof"/)
    const asBearer = await call('/orders/9', { authorization: `Bearer ${bound}` })
    assert.equal(asBearer.status, 401)
    assert.equal(seen.length, before + 1, 'only the first reached the API')
  })
})

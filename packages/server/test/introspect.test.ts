import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { after, before, describe, it } from 'node:test'
import { cliActor, loadConfig, revokeGrant, signAccessToken } from '@fieldgate/core'
import { openRuntime } from '@fieldgate/server'
import {
  basicAuth,
  decodeJwt,
  injectHttp,
  privateApp,
  publicSandboxApp,
  silentLogger,
  startServer,
  waitUntil,
  type PrivateFixture,
  type PublicFixture,
  type Res,
  type TestServer,
} from './helpers.js'

describe('introspection (RFC 7662) on POST /oauth/introspect', () => {
  let server: TestServer
  let a: PrivateFixture
  let b: PublicFixture
  let tokenA: string
  let tokenB: string
  // Answers and error bodies only: through app.inject, no port.
  const { postForm, postJson, getToken } = injectHttp(() => server)

  before(async () => {
    server = await startServer({ listen: false })
    a = await privateApp(server.storage, { scopes: 'api maps:write' })
    b = await publicSandboxApp(server.storage)
    tokenA = await getToken(server, a)
    tokenB = await getToken(server, b, { target_id: b.sandboxTenant.id })
  })
  after(() => server.close())

  const introspect = (token: string, client: { clientId: string; clientSecret: string } = a) =>
    postForm(server.url('/oauth/introspect'), { token }, { authorization: basicAuth(client.clientId, client.clientSecret) })

  const assertInactive = (res: Res) => {
    assert.equal(res.status, 200, res.text)
    assert.deepEqual(res.json, { active: false })
  }

  it("lets a resource server (scope fieldgate:introspect) introspect every app's tokens", async () => {
    const rs = await privateApp(server.storage, { scopes: 'fieldgate:introspect', tenantId: a.tenant.id })
    const res = await introspect(tokenB, rs)
    assert.equal(res.json.active, true)
    assert.equal(res.json.client_id, b.clientId)
    assertInactive(await introspect(tokenB, a))
  })

  it('requires client authentication', async () => {
    const none = await postForm(server.url('/oauth/introspect'), { token: tokenA })
    assert.equal(none.status, 401)
    assert.deepEqual(none.json, { error: 'invalid_client', error_description: 'Client authentication failed' })
    const wrong = await postForm(server.url('/oauth/introspect'), { token: tokenA }, { authorization: basicAuth(a.clientId, 'wrong') })
    assert.equal(wrong.status, 401)
    assert.match(wrong.headers.get('www-authenticate') ?? '', /^Basic /)
    const wrongPost = await postJson(server.url('/oauth/introspect'), { token: tokenA, client_id: a.clientId, client_secret: 'wrong' })
    assert.equal(wrongPost.status, 401)
    assert.equal(JSON.stringify(wrong.json).includes('active'), false, 'an unauthenticated caller learns nothing about the token')
  })

  it('requires the token parameter', async () => {
    const res = await postForm(server.url('/oauth/introspect'), {}, { authorization: basicAuth(a.clientId, a.clientSecret) })
    assert.equal(res.status, 400)
    assert.equal(res.json.error, 'invalid_request')
  })

  it("describes the client's own active token", async () => {
    const res = await introspect(tokenA)
    assert.equal(res.status, 200, res.text)
    assert.equal(res.headers.get('cache-control'), 'no-store')
    const claims = decodeJwt(tokenA).payload
    assert.equal(res.json.active, true)
    assert.equal(res.json.client_id, a.clientId)
    assert.equal(res.json.scope, 'api maps:write')
    assert.equal(res.json.exp, claims.exp)
    assert.equal(typeof res.json.exp, 'number')
    assert.equal(res.json.tenant_id, a.tenant.id)
    assert.equal(res.json.sub, a.clientId)
    assert.equal(res.json.iss, server.issuer)
    assert.equal(res.json.token_type, 'Bearer')
  })

  it('works with client_secret_post in a form and in JSON', async () => {
    const form = await postForm(server.url('/oauth/introspect'), { token: tokenB, client_id: b.clientId, client_secret: b.clientSecret })
    assert.equal(form.json.active, true)
    assert.equal(form.json.tenant_id, b.sandboxTenant.id)
    const json = await postJson(server.url('/oauth/introspect'), { token: tokenB, client_id: b.clientId, client_secret: b.clientSecret })
    assert.equal(json.json.active, true)
    assert.equal(json.json.client_id, b.clientId)
  })

  it("answers exactly {active:false} for another client's token", async () => {
    assertInactive(await introspect(tokenB, a))
    assertInactive(await introspect(tokenA, b))
  })

  it('answers exactly {active:false} for garbage and tampered tokens', async () => {
    const [h, p, s] = tokenA.split('.') as [string, string, string]
    const flipped = s.slice(0, 10) + (s[10] === 'A' ? 'B' : 'A') + s.slice(11)
    const otherPayload = Buffer.from(JSON.stringify({ ...decodeJwt(tokenA).payload, scope: 'fields:read:all' })).toString('base64url')
    for (const token of ['', 'garbage', 'a.b.c', `${h}.${p}.${flipped}`, `${h}.${otherPayload}.${s}`, `${h}.${p}.`, 'x'.repeat(9000), randomUUID()]) {
      if (token === '') continue
      assertInactive(await introspect(token))
    }
  })

  it('answers exactly {active:false} for an expired token', async () => {
    // A validly signed token whose exp is past, signed with the server's own keys from the same data dir.
    const config = loadConfig({}, { dataDir: server.dataDir, issuer: server.issuer, logLevel: 'silent' })
    const signer = await openRuntime(config, silentLogger(), { prepare: false, follow: false })
    try {
      const now = Math.floor(Date.now() / 1000)
      const expired = await signAccessToken(signer.ctx.keys, {
        iss: server.issuer,
        sub: a.clientId,
        aud: server.config.audience,
        iat: now - 7200,
        exp: now - 3600,
        jti: randomUUID(),
        client_id: a.clientId,
        scope: 'api',
        tenant_id: a.tenant.id,
        grant_id: a.grant.id,
      })
      assertInactive(await introspect(expired))
      // The same claims one hour ahead are active: the expiry is what made it inactive.
      const fresh = await signAccessToken(signer.ctx.keys, {
        iss: server.issuer,
        sub: a.clientId,
        aud: server.config.audience,
        iat: now,
        exp: now + 3600,
        jti: randomUUID(),
        client_id: a.clientId,
        scope: 'api',
        tenant_id: a.tenant.id,
        grant_id: a.grant.id,
      })
      assert.equal((await introspect(fresh)).json.active, true)
    } finally {
      await signer.close()
    }
  })

  it('answers exactly {active:false} once the grant is revoked', async () => {
    const c = await privateApp(server.storage)
    const token = await getToken(server, c)
    assert.equal((await introspect(token, c)).json.active, true)
    await revokeGrant(server.runtime.ctx, cliActor, { grantId: c.grant.id })
    const elapsed = await waitUntil(async () => (await introspect(token, c)).json?.active === false, 1000)
    assert.ok(elapsed < 1000)
    assertInactive(await introspect(token, c))
  })
})

import assert from 'node:assert/strict'
import { randomBytes, randomUUID } from 'node:crypto'
import { after, before, describe, it } from 'node:test'
import { createRemoteJWKSet, jwtVerify } from 'jose'
import { cliActor, createGrant, createTenant, rotateSecret } from '@fieldgate/core'
import {
  basicAuth,
  databaseUrl,
  decodeJwt,
  eachEngine,
  postForm,
  postJson,
  privateApp,
  publicSandboxApp,
  request,
  startServer,
  waitUntil,
  type Engine,
  type PrivateFixture,
  type PublicFixture,
  type Res,
  type TestServer,
} from './helpers.js'

const TOKEN_PATHS = ['/oauth/token', '/authentication/api/oauth/token'] as const

const invalidClient = { error: 'invalid_client', error_description: 'Client authentication failed' }

function assertOAuthError(res: Res, status: number, error: string): void {
  assert.equal(res.status, status, `expected ${status} ${error}, got ${res.status} ${res.text}`)
  assert.equal(res.json?.error, error, res.text)
  assert.equal(typeof res.json?.error_description, 'string')
  assert.match(res.headers.get('content-type') ?? '', /^application\/json/)
}

describe('token endpoint: dialect happy paths', () => {
  async function happyPath(engine: Engine): Promise<void> {
    const server = await startServer({ engine })
    try {
      const pub = await publicSandboxApp(server.storage)
      const priv = await privateApp(server.storage)

      // FieldEdge: JSON {client_id, client_secret, target_id, grant_type} for a public sandbox app.
      const fe = await postJson(server.url('/oauth/token'), {
        client_id: pub.clientId,
        client_secret: pub.clientSecret,
        target_id: pub.sandboxTenant.id,
        grant_type: 'client_credentials',
      })
      assert.equal(fe.status, 200, fe.text)
      assert.deepEqual(Object.keys(fe.json).sort(), ['access_token', 'expires_in', 'token_type'])
      assert.equal(fe.json.token_type, 'Bearer')
      assert.equal(fe.json.expires_in, 28000)
      assert.match(fe.json.access_token, /^eyJ[\w-]+\.[\w-]+\.[\w-]+$/)
      assert.equal(fe.headers.get('cache-control'), 'no-store')
      assert.equal(decodeJwt(fe.json.access_token).payload.tenant_id, pub.sandboxTenant.id)

      // Field Nation: JSON {grant_type, client_id, client_secret, scope: "api"} on its own path.
      const fn = await postJson(server.url('/authentication/api/oauth/token'), {
        grant_type: 'client_credentials',
        client_id: priv.clientId,
        client_secret: priv.clientSecret,
        scope: 'api',
      })
      assert.equal(fn.status, 200, fn.text)
      assert.deepEqual(Object.keys(fn.json).sort(), ['access_token', 'expires_in', 'token_type'])
      assert.deepEqual({ ...fn.json, access_token: 'x' }, { access_token: 'x', token_type: 'Bearer', expires_in: 3600 })
      assert.equal(fn.headers.get('cache-control'), 'no-store')

      // Both tokens work on the protected API of the same server.
      for (const token of [fe.json.access_token, fn.json.access_token]) {
        const api = await request(server.url('/api/rest/v2/workorders'), { headers: { authorization: `Bearer ${token}` } })
        assert.equal(api.status, 200, api.text)
      }
    } finally {
      await server.close()
    }
  }
  eachEngine('FieldEdge JSON (public app) and Field Nation JSON (private app) get the documented bodies', happyPath)
})

describe('token endpoint (SQLite)', () => {
  let server: TestServer
  let priv: PrivateFixture
  let pub: PublicFixture

  before(async () => {
    server = await startServer()
    priv = await privateApp(server.storage)
    pub = await publicSandboxApp(server.storage)
  })
  after(() => server.close())

  describe('standard RFC 6749 requests', () => {
    it('form body with client_secret_basic answers with scope, on both paths', async () => {
      for (const path of TOKEN_PATHS) {
        const res = await postForm(server.url(path), { grant_type: 'client_credentials' }, { authorization: basicAuth(priv.clientId, priv.clientSecret) })
        assert.equal(res.status, 200, `${path}: ${res.text}`)
        assert.equal(res.json.token_type, 'Bearer')
        assert.equal(res.json.expires_in, 3600)
        assert.equal(res.headers.get('cache-control'), 'no-store')
        if (path === '/oauth/token') assert.equal(res.json.scope, 'api')
        else assert.equal(res.json.scope, undefined, 'the Field Nation path answers exactly three fields')
      }
    })

    it('form body with client_secret_post answers with scope', async () => {
      const res = await postForm(server.url('/oauth/token'), { grant_type: 'client_credentials', client_id: priv.clientId, client_secret: priv.clientSecret })
      assert.equal(res.status, 200, res.text)
      assert.deepEqual(Object.keys(res.json).sort(), ['access_token', 'expires_in', 'scope', 'token_type'])
      assert.equal(res.json.scope, 'api')
    })

    it('JSON with a scope gets the RFC body (scope included) even with target_id', async () => {
      const res = await postJson(server.url('/oauth/token'), {
        grant_type: 'client_credentials',
        client_id: pub.clientId,
        client_secret: pub.clientSecret,
        target_id: pub.sandboxTenant.id,
        scope: 'api',
      })
      assert.equal(res.status, 200, res.text)
      assert.equal(res.json.scope, 'api')
      assert.equal(res.json.expires_in, 28000)
    })

    it('a public app with a form body and target_id gets a token for the named tenant', async () => {
      const res = await postForm(
        server.url('/oauth/token'),
        { grant_type: 'client_credentials', target_id: pub.sandboxTenant.id },
        { authorization: basicAuth(pub.clientId, pub.clientSecret) },
      )
      assert.equal(res.status, 200, res.text)
      assert.equal(decodeJwt(res.json.access_token).payload.tenant_id, pub.sandboxTenant.id)
    })

    it('a private app may name its own tenant as target_id', async () => {
      const res = await postJson(server.url('/oauth/token'), {
        grant_type: 'client_credentials',
        client_id: priv.clientId,
        client_secret: priv.clientSecret,
        target_id: priv.tenant.id,
      })
      assert.equal(res.status, 200, res.text)
    })

    it('honours a per-app tokenTtl in expires_in and in exp - iat', async () => {
      const short = await privateApp(server.storage, { tokenTtl: 600 })
      const res = await postForm(server.url('/oauth/token'), { grant_type: 'client_credentials' }, { authorization: basicAuth(short.clientId, short.clientSecret) })
      assert.equal(res.status, 200, res.text)
      assert.equal(res.json.expires_in, 600)
      const { payload } = decodeJwt(res.json.access_token)
      assert.equal((payload.exp as number) - (payload.iat as number), 600)
      const longPub = await publicSandboxApp(server.storage, { tokenTtl: 7200 })
      const fe = await postJson(server.url('/oauth/token'), {
        client_id: longPub.clientId,
        client_secret: longPub.clientSecret,
        target_id: longPub.sandboxTenant.id,
        grant_type: 'client_credentials',
      })
      assert.equal(fe.json.expires_in, 7200)
    })

    it('a narrower scope than granted is honoured', async () => {
      const wide = await privateApp(server.storage, { scopes: 'api maps:write' })
      const res = await postForm(
        server.url('/oauth/token'),
        { grant_type: 'client_credentials', scope: 'maps:write' },
        { authorization: basicAuth(wide.clientId, wide.clientSecret) },
      )
      assert.equal(res.status, 200, res.text)
      assert.equal(res.json.scope, 'maps:write')
      const all = await postForm(server.url('/oauth/token'), { grant_type: 'client_credentials' }, { authorization: basicAuth(wide.clientId, wide.clientSecret) })
      assert.equal(all.json.scope, 'api maps:write')
    })
  })

  describe('the JWT (RFC 9068)', () => {
    it('verifies against the published JWKS with the documented header and claims', async () => {
      const jwks = createRemoteJWKSet(new URL(server.issuer + '/.well-known/jwks.json'))
      const tokens: string[] = []
      for (let i = 0; i < 2; i++) {
        const res = await postForm(server.url('/oauth/token'), { grant_type: 'client_credentials' }, { authorization: basicAuth(priv.clientId, priv.clientSecret) })
        assert.equal(res.status, 200, res.text)
        tokens.push(res.json.access_token)
      }
      const jtis = new Set<unknown>()
      for (const token of tokens) {
        const { payload, protectedHeader } = await jwtVerify(token, jwks, {
          issuer: server.issuer,
          audience: `${server.issuer}/api`,
          typ: 'at+jwt',
          algorithms: ['RS256'],
        })
        assert.equal(protectedHeader.typ, 'at+jwt')
        assert.equal(protectedHeader.alg, 'RS256')
        assert.equal(typeof protectedHeader.kid, 'string')
        assert.ok((protectedHeader.kid as string).length > 0)
        assert.equal(payload.iss, server.issuer)
        assert.equal(payload.aud, `${server.issuer}/api`)
        assert.equal(payload.sub, priv.clientId)
        assert.equal(payload.client_id, priv.clientId)
        assert.equal(payload.scope, 'api')
        assert.equal(payload.tenant_id, priv.tenant.id)
        assert.equal(payload.grant_id, priv.grant.id)
        assert.equal(typeof payload.jti, 'string')
        assert.equal(payload.exp! - payload.iat!, 3600)
        assert.ok(Math.abs(payload.iat! - Date.now() / 1000) < 60, 'iat is now')
        jtis.add(payload.jti)
      }
      assert.equal(jtis.size, 2, 'every token has its own jti')
      assert.notEqual(tokens[0], tokens[1])
    })
  })

  describe('errors (RFC 6749 §5.2)', () => {
    it('wrong secret: 401 with exactly the Field Nation body, on both paths and both body types', async () => {
      for (const path of TOKEN_PATHS) {
        const json = await postJson(server.url(path), { grant_type: 'client_credentials', client_id: priv.clientId, client_secret: priv.clientSecret + 'x', scope: 'api' })
        assert.equal(json.status, 401)
        assert.deepEqual(json.json, invalidClient)
        assert.equal(json.headers.get('www-authenticate'), null, 'no Basic challenge when Basic was not used')
        assert.equal(json.headers.get('cache-control'), 'no-store')
        const form = await postForm(server.url(path), { grant_type: 'client_credentials', client_id: priv.clientId, client_secret: 'fgs_sandbox_wrong' })
        assert.equal(form.status, 401)
        assert.deepEqual(form.json, invalidClient)
      }
    })

    it('wrong secret with Basic: 401 with a Basic challenge', async () => {
      for (const path of TOKEN_PATHS) {
        const res = await postForm(server.url(path), { grant_type: 'client_credentials' }, { authorization: basicAuth(priv.clientId, 'nope') })
        assert.equal(res.status, 401)
        assert.deepEqual(res.json, invalidClient)
        assert.match(res.headers.get('www-authenticate') ?? '', /^Basic /)
      }
    })

    it('unknown client: the same 401 body', async () => {
      const res = await postJson(server.url('/oauth/token'), { grant_type: 'client_credentials', client_id: randomBytes(16).toString('hex'), client_secret: 'fgs_sandbox_x' })
      assert.equal(res.status, 401)
      assert.deepEqual(res.json, invalidClient)
      const basic = await postForm(server.url('/oauth/token'), { grant_type: 'client_credentials' }, { authorization: basicAuth('no-such-client', 'secret') })
      assert.equal(basic.status, 401)
      assert.deepEqual(basic.json, invalidClient)
      assert.match(basic.headers.get('www-authenticate') ?? '', /^Basic /)
    })

    it('missing client_secret: 401 invalid_client', async () => {
      const res = await postJson(server.url('/oauth/token'), { grant_type: 'client_credentials', client_id: priv.clientId })
      assert.equal(res.status, 401)
      assert.deepEqual(res.json, invalidClient)
    })

    it('missing grant_type: 400 invalid_request', async () => {
      const res = await postJson(server.url('/oauth/token'), { client_id: priv.clientId, client_secret: priv.clientSecret })
      assertOAuthError(res, 400, 'invalid_request')
    })

    it('unknown grant_type: 400 unsupported_grant_type', async () => {
      for (const grantType of ['password', 'urn:ietf:params:oauth:grant-type:jwt-bearer', 'x'.repeat(5000)]) {
        const res = await postForm(server.url('/oauth/token'), { grant_type: grantType, client_id: priv.clientId, client_secret: priv.clientSecret })
        assertOAuthError(res, 400, 'unsupported_grant_type')
        assert.ok(res.text.length < 1000, 'the error does not echo a huge grant_type')
      }
    })

    it('Basic and a body secret at once: 400 invalid_request', async () => {
      const res = await postForm(
        server.url('/oauth/token'),
        { grant_type: 'client_credentials', client_secret: priv.clientSecret },
        { authorization: basicAuth(priv.clientId, priv.clientSecret) },
      )
      assertOAuthError(res, 400, 'invalid_request')
    })

    it('Basic and a different client_id in the body: 400 invalid_request', async () => {
      const res = await postForm(
        server.url('/oauth/token'),
        { grant_type: 'client_credentials', client_id: pub.clientId },
        { authorization: basicAuth(priv.clientId, priv.clientSecret) },
      )
      assertOAuthError(res, 400, 'invalid_request')
    })

    it('a repeated form parameter: 400 invalid_request', async () => {
      const body = `grant_type=client_credentials&client_id=${priv.clientId}&client_secret=${encodeURIComponent(priv.clientSecret)}&scope=api&scope=api`
      assertOAuthError(await postForm(server.url('/oauth/token'), body), 400, 'invalid_request')
      const twiceGrant = `grant_type=client_credentials&grant_type=client_credentials&client_id=${priv.clientId}&client_secret=${encodeURIComponent(priv.clientSecret)}`
      assertOAuthError(await postForm(server.url('/authentication/api/oauth/token'), twiceGrant), 400, 'invalid_request')
    })

    it('JSON with a duplicate key: 400 invalid_request', async () => {
      const body = `{"grant_type":"client_credentials","client_id":"${priv.clientId}","client_secret":"${priv.clientSecret}","client_id":"${pub.clientId}"}`
      const res = await request(server.url('/oauth/token'), { method: 'POST', headers: { 'content-type': 'application/json' }, body })
      assertOAuthError(res, 400, 'invalid_request')
      // An escaped spelling of the same key is the same key.
      const escaped = `{"grant_type":"client_credentials","client_id":"${priv.clientId}","client_secret":"${priv.clientSecret}","grant\\u005ftype":"client_credentials"}`
      const res2 = await request(server.url('/oauth/token'), { method: 'POST', headers: { 'content-type': 'application/json' }, body: escaped })
      assertOAuthError(res2, 400, 'invalid_request')
    })

    it('malformed JSON: 400 invalid_request', async () => {
      for (const body of ['{"grant_type":', '{grant_type: "client_credentials"}', "{'a':1}", '{"a":1}}']) {
        const res = await request(server.url('/oauth/token'), { method: 'POST', headers: { 'content-type': 'application/json' }, body })
        assertOAuthError(res, 400, 'invalid_request')
      }
    })

    it('a body over 16 KiB: 413 with a JSON error', async () => {
      for (const path of TOKEN_PATHS) {
        const json = JSON.stringify({ grant_type: 'client_credentials', client_id: priv.clientId, client_secret: priv.clientSecret, pad: 'x'.repeat(17 * 1024) })
        const res = await request(server.url(path), { method: 'POST', headers: { 'content-type': 'application/json' }, body: json })
        assert.equal(res.status, 413, res.text)
        assert.equal(typeof res.json?.error, 'string')
        const form = await postForm(server.url(path), { grant_type: 'client_credentials', pad: 'x'.repeat(17 * 1024) })
        assert.equal(form.status, 413, form.text)
        assert.equal(typeof form.json?.error, 'string')
      }
    })

    it('a text/plain body: 4xx with a JSON error', async () => {
      const res = await request(server.url('/oauth/token'), {
        method: 'POST',
        headers: { 'content-type': 'text/plain' },
        body: `grant_type=client_credentials&client_id=${priv.clientId}&client_secret=${priv.clientSecret}`,
      })
      assert.ok(res.status >= 400 && res.status < 500, `${res.status}`)
      assert.equal(typeof res.json?.error, 'string')
    })

    it('a JSON array body or a non-string parameter: 400 invalid_request', async () => {
      const array = await postJson(server.url('/oauth/token'), [{ grant_type: 'client_credentials', client_id: priv.clientId, client_secret: priv.clientSecret }])
      assertOAuthError(array, 400, 'invalid_request')
      const numeric = await postJson(server.url('/authentication/api/oauth/token'), { grant_type: 'client_credentials', client_id: 12345, client_secret: priv.clientSecret })
      assertOAuthError(numeric, 400, 'invalid_request')
      const nested = await postJson(server.url('/oauth/token'), { grant_type: 'client_credentials', client_id: priv.clientId, client_secret: priv.clientSecret, scope: ['api'] })
      assertOAuthError(nested, 400, 'invalid_request')
    })

    it('a public app without target_id: 400 invalid_request', async () => {
      const res = await postJson(server.url('/oauth/token'), { grant_type: 'client_credentials', client_id: pub.clientId, client_secret: pub.clientSecret })
      assertOAuthError(res, 400, 'invalid_request')
    })

    it('a public app naming a tenant it has no grant on (or none at all): 400 invalid_grant', async () => {
      const other = await createTenant(server.runtime.ctx, cliActor, { name: 'Not installed', environment: 'sandbox' })
      for (const targetId of [other.id, randomUUID(), 'not-a-uuid', 'x'.repeat(300)]) {
        const res = await postJson(server.url('/oauth/token'), { grant_type: 'client_credentials', client_id: pub.clientId, client_secret: pub.clientSecret, target_id: targetId })
        assertOAuthError(res, 400, 'invalid_grant')
      }
    })

    it('a public app works for a tenant once granted', async () => {
      const customer = await createTenant(server.runtime.ctx, cliActor, { name: 'Customer', environment: 'sandbox' })
      const before = await postJson(server.url('/oauth/token'), {
        grant_type: 'client_credentials',
        client_id: pub.clientId,
        client_secret: pub.clientSecret,
        target_id: customer.id,
      })
      assertOAuthError(before, 400, 'invalid_grant')
      await createGrant(server.runtime.ctx, cliActor, { clientId: pub.clientId, tenantId: customer.id })
      const res = await postJson(server.url('/oauth/token'), { grant_type: 'client_credentials', client_id: pub.clientId, client_secret: pub.clientSecret, target_id: customer.id })
      assert.equal(res.status, 200, res.text)
      assert.equal(decodeJwt(res.json.access_token).payload.tenant_id, customer.id)
    })

    it('a sandbox public app asking for a live tenant: 400 invalid_grant', async () => {
      const live = await createTenant(server.runtime.ctx, cliActor, { name: 'Live customer', environment: 'live' })
      const res = await postJson(server.url('/oauth/token'), { grant_type: 'client_credentials', client_id: pub.clientId, client_secret: pub.clientSecret, target_id: live.id })
      assertOAuthError(res, 400, 'invalid_grant')
    })

    it("a private app naming someone else's target_id: 400 invalid_grant", async () => {
      const res = await postJson(server.url('/oauth/token'), {
        grant_type: 'client_credentials',
        client_id: priv.clientId,
        client_secret: priv.clientSecret,
        target_id: pub.sandboxTenant.id,
      })
      assertOAuthError(res, 400, 'invalid_grant')
    })

    it('a scope not granted: 400 invalid_scope', async () => {
      for (const scope of ['fields:read:all', 'api fields:read:all', 'a"b']) {
        const res = await postJson(server.url('/authentication/api/oauth/token'), {
          grant_type: 'client_credentials',
          client_id: priv.clientId,
          client_secret: priv.clientSecret,
          scope,
        })
        assertOAuthError(res, 400, 'invalid_scope')
      }
    })

    it('never answers 5xx to garbage: every status is 4xx with a JSON error', async () => {
      const id = priv.clientId
      const secret = priv.clientSecret
      const creds = `client_id=${id}&client_secret=${encodeURIComponent(secret)}`
      const deepArray = '['.repeat(4000) + ']'.repeat(4000)
      let deepObject = '"x"'
      for (let i = 0; i < 1500; i++) deepObject = `{"a":${deepObject}}`
      const cases: { name: string; init: RequestInit }[] = [
        { name: 'random bytes as JSON', init: { headers: { 'content-type': 'application/json' }, body: randomBytes(2048) } },
        { name: 'random bytes as form', init: { headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: randomBytes(2048) } },
        { name: 'random bytes as octet-stream', init: { headers: { 'content-type': 'application/octet-stream' }, body: randomBytes(2048) } },
        { name: 'random bytes, no content type', init: { body: randomBytes(512) } },
        { name: 'no body at all', init: {} },
        { name: 'empty JSON body', init: { headers: { 'content-type': 'application/json' }, body: '' } },
        { name: 'empty form body', init: { headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: '' } },
        { name: 'JSON null', init: { headers: { 'content-type': 'application/json' }, body: 'null' } },
        { name: 'JSON string', init: { headers: { 'content-type': 'application/json' }, body: '"client_credentials"' } },
        { name: 'JSON number', init: { headers: { 'content-type': 'application/json' }, body: '1e999' } },
        { name: 'JSON true', init: { headers: { 'content-type': 'application/json' }, body: 'true' } },
        { name: 'deeply nested array', init: { headers: { 'content-type': 'application/json' }, body: deepArray } },
        { name: 'deeply nested object', init: { headers: { 'content-type': 'application/json' }, body: deepObject } },
        {
          name: '__proto__ object',
          init: { headers: { 'content-type': 'application/json' }, body: `{"__proto__":{"grant_type":"client_credentials","client_id":"${id}","client_secret":"${secret}"}}` },
        },
        {
          name: '__proto__ string beside credentials',
          init: { headers: { 'content-type': 'application/json' }, body: `{"__proto__":"x","grant_type":"client_credentials","client_id":"${id}","client_secret":"wrong"}` },
        },
        { name: 'constructor.prototype', init: { headers: { 'content-type': 'application/json' }, body: '{"constructor":{"prototype":{"grant_type":"client_credentials"}}}' } },
        {
          name: 'toString / hasOwnProperty keys',
          init: { headers: { 'content-type': 'application/json' }, body: '{"toString":"x","hasOwnProperty":"y","valueOf":"z","grant_type":"client_credentials"}' },
        },
        {
          name: '__proto__ in a form',
          init: {
            headers: { 'content-type': 'application/x-www-form-urlencoded' },
            body: `__proto__=x&constructor=y&grant_type=client_credentials&client_id=${id}&client_secret=nope`,
          },
        },
        { name: 'bracket form keys', init: { headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `grant_type[]=client_credentials&${creds}` } },
        { name: 'broken percent escapes', init: { headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `grant_type=%E0%A4%A&client_id=%zz&client_secret=%` } },
        {
          name: 'NUL bytes in JSON strings',
          init: { headers: { 'content-type': 'application/json' }, body: '{"grant_type":"client_credentials","client_id":"\\u0000","client_secret":"\\u0000"}' },
        },
        {
          name: 'NUL in target_id of a real client',
          init: {
            headers: { 'content-type': 'application/json' },
            body: `{"grant_type":"client_credentials","client_id":"${pub.clientId}","client_secret":"${pub.clientSecret}","target_id":"\\u0000"}`,
          },
        },
        {
          name: 'lone surrogate',
          init: { headers: { 'content-type': 'application/json' }, body: '{"grant_type":"client_credentials","client_id":"\\ud800","client_secret":"\\udfff"}' },
        },
        {
          name: 'JSON with UTF-16 charset',
          init: { headers: { 'content-type': 'application/json; charset=utf-16' }, body: `{"grant_type":"client_credentials",${JSON.stringify(creds)}:1}` },
        },
        { name: 'JSON-ish content type', init: { headers: { 'content-type': 'application/jsonx' }, body: '{}' } },
        { name: 'upper-case content type', init: { headers: { 'content-type': 'APPLICATION/JSON' }, body: '{"grant_type":"client_credentials"}' } },
        {
          name: 'multipart',
          init: {
            headers: { 'content-type': 'multipart/form-data; boundary=x' },
            body: '--x\r\nContent-Disposition: form-data; name="grant_type"\r\n\r\nclient_credentials\r\n--x--\r\n',
          },
        },
        { name: 'XML', init: { headers: { 'content-type': 'application/xml' }, body: '<grant_type>client_credentials</grant_type>' } },
        { name: 'a 10 KB header', init: { headers: { 'content-type': 'application/json', 'x-junk': 'j'.repeat(10_000) }, body: '{}' } },
        {
          name: 'a long Basic header',
          init: { headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: 'Basic ' + 'QUFB'.repeat(2000) }, body: 'grant_type=client_credentials' },
        },
        {
          name: 'Basic that is not base64',
          init: { headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: 'Basic !!!***' }, body: 'grant_type=client_credentials' },
        },
        {
          name: 'Basic with no colon',
          init: {
            headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: 'Basic ' + Buffer.from('justanid').toString('base64') },
            body: 'grant_type=client_credentials',
          },
        },
        {
          name: 'Basic with broken escapes',
          init: {
            headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: 'Basic ' + Buffer.from('%zz:%zz').toString('base64') },
            body: 'grant_type=client_credentials',
          },
        },
        {
          name: 'Basic with empty parts',
          init: {
            headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: 'Basic ' + Buffer.from(':').toString('base64') },
            body: 'grant_type=client_credentials',
          },
        },
        {
          name: 'Bearer instead of Basic',
          init: { headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: 'Bearer abc' }, body: 'grant_type=client_credentials' },
        },
        {
          name: 'a huge client_id',
          init: { headers: { 'content-type': 'application/json' }, body: JSON.stringify({ grant_type: 'client_credentials', client_id: 'c'.repeat(12_000), client_secret: 's' }) },
        },
        {
          name: 'a huge target_id of a real client',
          init: {
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ grant_type: 'client_credentials', client_id: pub.clientId, client_secret: pub.clientSecret, target_id: 't'.repeat(12_000) }),
          },
        },
        {
          name: 'a huge scope',
          init: {
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ grant_type: 'client_credentials', client_id: id, client_secret: secret, scope: 'api '.repeat(3000) + 'x' }),
          },
        },
        {
          name: 'control characters in scope',
          init: {
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ grant_type: 'client_credentials', client_id: id, client_secret: secret, scope: 'api\u0000\u0007\u007f' }),
          },
        },
      ]
      const failures: string[] = []
      for (const path of TOKEN_PATHS) {
        for (const c of cases) {
          let res: Res
          try {
            res = await request(server.url(path), { method: 'POST', ...c.init })
          } catch (err) {
            failures.push(`${path} ${c.name}: request failed: ${(err as Error).message}`)
            continue
          }
          if (res.status < 400 || res.status >= 500 || typeof res.json?.error !== 'string') {
            failures.push(`${path} ${c.name}: ${res.status} ${res.text.slice(0, 200)}`)
          }
        }
      }
      // Methods the token endpoint does not serve are 4xx JSON too.
      for (const path of TOKEN_PATHS) {
        const res = await request(server.url(path), { method: 'GET' })
        if (res.status < 400 || res.status >= 500 || typeof res.json?.error !== 'string') failures.push(`GET ${path}: ${res.status} ${res.text}`)
      }
      assert.deepEqual(failures, [])
      // And the server is still fine afterwards.
      const ok = await postForm(server.url('/oauth/token'), { grant_type: 'client_credentials' }, { authorization: basicAuth(id, secret) })
      assert.equal(ok.status, 200)
    })
  })

  describe('secret rotation', () => {
    const tryToken = (client: { clientId: string }, secret: string) =>
      postJson(server.url('/authentication/api/oauth/token'), { grant_type: 'client_credentials', client_id: client.clientId, client_secret: secret, scope: 'api' })
    const works = async (client: { clientId: string }, secret: string) => (await tryToken(client, secret)).status === 200
    const fails = async (client: { clientId: string }, secret: string) => {
      const res = await tryToken(client, secret)
      if (res.status === 200) return false
      assert.equal(res.status, 401, res.text)
      assert.deepEqual(res.json, invalidClient)
      return true
    }

    it('keeps the old secret through the grace period; after a 0 s rotation only the newest works (within one change-feed poll)', async () => {
      const app = await privateApp(server.storage)
      assert.ok(await works(app, app.clientSecret), 'the first secret works (and is now cached by the server)')

      const first = await rotateSecret(server.runtime.ctx, cliActor, { clientId: app.clientId, graceSeconds: 3600 })
      assert.match(first.clientSecret, /^fgs_sandbox_/)
      assert.notEqual(first.clientSecret, app.clientSecret)
      const seen = await waitUntil(() => works(app, first.clientSecret), 1000, 25)
      assert.ok(seen < 1000)
      assert.ok(await works(app, app.clientSecret), 'the original secret works during its grace period')
      assert.ok(await works(app, first.clientSecret))

      const second = await rotateSecret(server.runtime.ctx, cliActor, { clientId: app.clientId, graceSeconds: 0 })
      await waitUntil(() => fails(app, first.clientSecret), 1000, 25)
      assert.ok(await fails(app, app.clientSecret), 'a 0 s rotation also ends the earlier grace period')
      assert.ok(await works(app, second.clientSecret))
      // With Basic too.
      const basic = await postForm(server.url('/oauth/token'), { grant_type: 'client_credentials' }, { authorization: basicAuth(app.clientId, second.clientSecret) })
      assert.equal(basic.status, 200)
      const oldBasic = await postForm(server.url('/oauth/token'), { grant_type: 'client_credentials' }, { authorization: basicAuth(app.clientId, first.clientSecret) })
      assert.equal(oldBasic.status, 401)
      assert.match(oldBasic.headers.get('www-authenticate') ?? '', /^Basic /)
    })

    it('a freshly created client works with a grace-period rotation made before its first use', async () => {
      const app = await privateApp(server.storage)
      const rotated = await rotateSecret(server.runtime.ctx, cliActor, { clientId: app.clientId, graceSeconds: 3600 })
      assert.ok(await works(app, app.clientSecret))
      assert.ok(await works(app, rotated.clientSecret))
    })

    it('the new secret works at once after a rotation', async () => {
      const app = await privateApp(server.storage)
      assert.ok(await works(app, app.clientSecret))
      const rotated = await rotateSecret(server.runtime.ctx, cliActor, { clientId: app.clientId, graceSeconds: 3600 })
      assert.ok(await works(app, rotated.clientSecret), 'the new secret is rejected right after the rotation')
    })

    it('live apps get fgs_live_ secrets', async () => {
      const live = await privateApp(server.storage, { environment: 'live' })
      assert.match(live.clientSecret, /^fgs_live_/)
      const rotated = await rotateSecret(server.runtime.ctx, cliActor, { clientId: live.clientId, graceSeconds: 60 })
      assert.match(rotated.clientSecret, /^fgs_live_/)
      const res = await postForm(server.url('/oauth/token'), { grant_type: 'client_credentials' }, { authorization: basicAuth(live.clientId, rotated.clientSecret) })
      assert.equal(res.status, 200, res.text)
    })
  })
})

describe('token endpoint: strings the store must never choke on', () => {
  // PostgreSQL TEXT cannot hold U+0000; a lookup with it must still be a 4xx, never a 500.
  async function nulBytes(engine: Engine): Promise<void> {
    const server = await startServer({ engine })
    try {
      const pub = await publicSandboxApp(server.storage)
      const cases: [string, Record<string, string>, Record<string, string>?][] = [
        ['NUL in client_id (JSON)', { grant_type: 'client_credentials', client_id: 'a\u0000b', client_secret: 'fgs_sandbox_x' }],
        ['NUL in target_id of a real client (JSON)', { grant_type: 'client_credentials', client_id: pub.clientId, client_secret: pub.clientSecret, target_id: '\u0000' }],
        ['NUL in the Basic client id', { grant_type: 'client_credentials' }, { authorization: basicAuth('\u0000', 'fgs_sandbox_x') }],
      ]
      const failures: string[] = []
      for (const [name, body, headers] of cases) {
        for (const path of TOKEN_PATHS) {
          const res = headers ? await postForm(server.url(path), body, headers) : await postJson(server.url(path), body)
          if (res.status < 400 || res.status >= 500 || typeof res.json?.error !== 'string') failures.push(`${path} ${name}: ${res.status} ${res.text}`)
        }
      }
      const introspect = await postForm(server.url('/oauth/introspect'), { token: 'x', client_id: '\u0000', client_secret: 'y' })
      if (introspect.status < 400 || introspect.status >= 500 || typeof introspect.json?.error !== 'string')
        failures.push(`introspect with NUL client_id: ${introspect.status} ${introspect.text}`)
      assert.deepEqual(failures, [])
    } finally {
      await server.close()
    }
  }
  it('NUL bytes in client_id and target_id are 4xx (SQLite)', () => nulBytes('sqlite'))
  if (databaseUrl) {
    it('NUL bytes in client_id and target_id are 4xx (PostgreSQL)', () => nulBytes('postgres'))
  } else {
    it('NUL bytes in client_id and target_id are 4xx (PostgreSQL)', { skip: 'DATABASE_URL is not set' }, () => {})
  }
})

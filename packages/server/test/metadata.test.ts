import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { createLocalJWKSet, jwtVerify, type JSONWebKeySet } from 'jose'
import { cliActor, rotateSigningKeys } from '@fieldgate/core'
import { bearer, decodeJwt, freePort, injectHttp, privateApp, startServer, waitUntil, type PrivateFixture, type TestServer } from './helpers.js'

const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'k', 'oth']

describe('metadata and keys', () => {
  let server: TestServer
  let f: PrivateFixture
  let custom: TestServer | undefined
  // Documents and keys only: through app.inject, no port.
  const { request, getToken } = injectHttp(
    () => server,
    () => custom,
  )

  before(async () => {
    server = await startServer({ listen: false })
    f = await privateApp(server.storage)
  })
  after(() => server.close())

  const jwks = async () => {
    const res = await request(server.url('/.well-known/jwks.json'))
    assert.equal(res.status, 200)
    return res.json as JSONWebKeySet
  }

  it('serves the RFC 8414 document for the configured issuer', async () => {
    const res = await request(server.url('/.well-known/oauth-authorization-server'))
    assert.equal(res.status, 200)
    assert.match(res.headers.get('content-type') ?? '', /^application\/json/)
    const m = res.json
    assert.equal(m.issuer, server.config.issuer)
    assert.equal(m.issuer, server.origin)
    assert.equal(m.token_endpoint, `${server.issuer}/oauth/token`)
    assert.equal(m.jwks_uri, `${server.issuer}/.well-known/jwks.json`)
    assert.equal(m.introspection_endpoint, `${server.issuer}/oauth/introspect`)
    assert.ok(m.grant_types_supported.includes('client_credentials'))
    assert.ok(m.token_endpoint_auth_methods_supported.includes('client_secret_basic'))
    assert.ok(m.token_endpoint_auth_methods_supported.includes('client_secret_post'))
    assert.ok(Array.isArray(m.response_types_supported), 'response_types_supported is REQUIRED by RFC 8414 §2')
    // Every endpoint it names exists on this server.
    const token = await request(m.token_endpoint, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })
    assert.equal(token.status, 400)
    assert.equal((await request(m.jwks_uri)).status, 200)
  })

  it('uses a configured issuer (with its trailing slash trimmed) everywhere', async () => {
    const port = await freePort()
    custom = await startServer({ listen: false, overrides: { port, issuer: `http://localhost:${port}/auth/` } })
    try {
      const m = (await request(custom.url('/.well-known/oauth-authorization-server'))).json
      assert.equal(m.issuer, `http://localhost:${port}/auth`)
      assert.equal(m.token_endpoint, `http://localhost:${port}/auth/oauth/token`)
      const g = await privateApp(custom.storage)
      const token = await getToken(custom, g)
      assert.equal(decodeJwt(token).payload.iss, `http://localhost:${port}/auth`)
      assert.equal(decodeJwt(token).payload.aud, `http://localhost:${port}/auth/api`)
      assert.equal((await request(custom.url('/api/rest/v2/workorders'), { headers: bearer(token) })).status, 200)
    } finally {
      await custom.close()
    }
  })

  it('publishes the active and the next key on a fresh store, public parts only', async () => {
    const set = await jwks()
    assert.equal(set.keys.length, 2)
    const kids = set.keys.map((k) => k.kid)
    assert.equal(new Set(kids).size, 2)
    for (const k of set.keys) {
      assert.equal(k.kty, 'RSA')
      assert.equal(k.alg, 'RS256')
      assert.equal(k.use, 'sig')
      assert.equal(typeof k.kid, 'string')
      for (const member of PRIVATE_MEMBERS) assert.equal((k as Record<string, unknown>)[member], undefined, `the JWKS leaks "${member}"`)
    }
    const token = await getToken(server, f)
    assert.ok(kids.includes(decodeJwt(token).header.kid as string), 'tokens are signed with a published key')
    const states = (await server.storage.listSigningKeys()).map((k) => k.state).sort()
    assert.deepEqual(states, ['active', 'next'])
  })

  it('after rotateSigningKeys signs with the previously-next key and keeps the old one published', async () => {
    const before = await jwks()
    const oldToken = await getToken(server, f)
    const oldKid = decodeJwt(oldToken).header.kid as string
    const nextKid = before.keys.map((k) => k.kid).find((k) => k !== oldKid)!
    assert.ok(nextKid)

    await rotateSigningKeys(server.runtime.ctx, cliActor, { alg: server.config.signingAlg, defaultMaxTtl: Math.max(server.config.tokenTtl.public, server.config.tokenTtl.private) })
    let newToken = ''
    const elapsed = await waitUntil(
      async () => {
        newToken = await getToken(server, f)
        return decodeJwt(newToken).header.kid === nextKid
      },
      1000,
      25,
    )
    assert.ok(elapsed <= 1000)

    const after = await jwks()
    const kids = after.keys.map((k) => k.kid)
    assert.equal(after.keys.length, 3, 'retiring, active and a new next key')
    assert.ok(kids.includes(oldKid), 'the retiring key is still published')
    assert.ok(kids.includes(nextKid))
    const states = new Map((await server.storage.listSigningKeys()).map((k) => [k.kid, k.state]))
    assert.equal(states.get(oldKid), 'retiring')
    assert.equal(states.get(nextKid), 'active')

    // Both tokens verify against the published set and on the API.
    const local = createLocalJWKSet(after)
    for (const token of [oldToken, newToken]) {
      await jwtVerify(token, local, { issuer: server.issuer, audience: server.config.audience, typ: 'at+jwt' })
      const api = await request(server.url('/api/rest/v2/workorders'), { headers: bearer(token) })
      assert.equal(api.status, 200, api.text)
    }
  })
})

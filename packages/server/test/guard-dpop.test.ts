/**
 * @fieldgate/guard's DPoP check and introspectAll against a real Fieldgate on loopback: the guard
 * accepts a DPoP-bound token as Fieldgate's own API does and refuses what it refuses with the same
 * status, body and challenge; and with introspectAll a revoked grant cuts a JWT's caller off at once,
 * where a guard that only verifies JWTs accepts it until its exp.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { cliActor, revokeGrant } from '@fieldgate/core'
import { GuardError, createGuard, type GuardOptions } from '@fieldgate/guard'
import { boundToken, dpopKey, dpopProof, getToken, privateApp, request, startServer, type PrivateFixture, type TestServer } from './helpers.js'

const WORKORDERS = '/api/rest/v2/workorders'

describe('@fieldgate/guard and Fieldgate agree on DPoP', () => {
  let server: TestServer
  let resourceServer: PrivateFixture
  before(async () => {
    server = await startServer()
    resourceServer = await privateApp(server.storage, { scopes: 'fieldgate:introspect' })
  })
  after(() => server?.close())

  const guardFor = (over: Partial<GuardOptions> = {}) => createGuard({ issuer: server.issuer, audience: server.config.audience, ...over })
  const metadata = () => `${server.issuer}/.well-known/oauth-protected-resource/api`

  async function refusal(p: Promise<unknown>): Promise<GuardError> {
    const err = await p.then(
      () => assert.fail('the guard accepted it'),
      (e: unknown) => e,
    )
    assert.ok(err instanceof GuardError, String(err))
    return err
  }

  it('accepts a bound token with its proof, and refuses a replay, another htu, or Bearer, with the server’s exact answer', async () => {
    const f = await privateApp(server.storage, { scopes: 'api' })
    const key = dpopKey('ES256')
    const token = await boundToken(server, await getToken(server, f), key.jkt)
    const url = server.url(WORKORDERS)
    const guard = guardFor()
    const headersWith = (proof: string) => ({ authorization: `DPoP ${token}`, dpop: proof })

    const good = dpopProof(key, { htm: 'GET', htu: url, accessToken: token })
    const principal = await guard.authenticateRequest({ headers: headersWith(good), method: 'GET', url })
    assert.equal(principal.jkt, key.jkt)
    assert.equal(principal.clientId, f.clientId)

    const cases: Array<[string, Record<string, string>]> = [
      ['a proof for another URL', headersWith(dpopProof(key, { htm: 'GET', htu: server.url('/elsewhere'), accessToken: token }))],
      ['a proof by another key', headersWith(dpopProof(dpopKey(), { htm: 'GET', htu: url, accessToken: token }))],
      ['no proof', { authorization: `DPoP ${token}` }],
      ['the bound token as Bearer', { authorization: `Bearer ${token}` }],
    ]
    for (const [what, headers] of cases) {
      const err = await refusal(guard.authenticateRequest({ headers, method: 'GET', url }))
      const res = await request(url, { headers })
      assert.equal(err.status, res.status, `${what}: ${res.text}`)
      assert.deepEqual(err.toJSON(), res.json, what)
      assert.equal(err.challenge(metadata()), res.headers.get('www-authenticate'), what)
    }

    // A replay: each side remembers what it accepted, so each refuses its own second use alike.
    const once = dpopProof(key, { htm: 'GET', htu: url, accessToken: token })
    assert.equal((await request(url, { headers: headersWith(once) })).status, 200)
    const replayed = await request(url, { headers: headersWith(once) })
    await guard.authenticateRequest({ headers: headersWith(once), method: 'GET', url })
    const err = await refusal(guard.authenticateRequest({ headers: headersWith(once), method: 'GET', url }))
    assert.deepEqual([err.status, err.toJSON(), err.challenge(metadata())], [replayed.status, replayed.json, replayed.headers.get('www-authenticate')])
  })

  it('introspectAll: a JWT of a revoked grant is refused at once, where a JWT-only guard accepts it until it expires', async () => {
    const f = await privateApp(server.storage, { scopes: 'api' })
    const token = await getToken(server, f)
    const introspection = { clientId: resourceServer.clientId, clientSecret: resourceServer.clientSecret }
    const everyToken = guardFor({ introspection, introspectAll: true, opaqueCacheMs: 0 })
    const jwtOnly = guardFor({ introspection })
    assert.equal((await everyToken.authenticate(token)).grantId, f.grant.id)
    await revokeGrant(server.runtime.ctx, cliActor, { grantId: f.grant.id })
    const err = await refusal(everyToken.authenticate(token))
    assert.equal(err.error, 'invalid_token')
    assert.equal(err.description, 'The access token was revoked')
    assert.equal((await request(server.url(WORKORDERS), { headers: { authorization: `Bearer ${token}` } })).status, 401, 'as Fieldgate’s own API')
    assert.equal((await jwtOnly.authenticate(token)).grantId, f.grant.id, 'verified locally, the JWT still looks good')
  })

  it('introspectAll also holds a bound JWT to its key: introspection says what it is, the proof who holds it', async () => {
    const f = await privateApp(server.storage, { scopes: 'api' })
    const key = dpopKey('EdDSA')
    const token = await boundToken(server, await getToken(server, f), key.jkt)
    const url = 'https://sensors.example/readings'
    const guard = guardFor({ introspection: { clientId: resourceServer.clientId, clientSecret: resourceServer.clientSecret }, introspectAll: true })
    const p = await guard.authenticateRequest({
      headers: { authorization: `DPoP ${token}`, dpop: dpopProof(key, { htm: 'GET', htu: url, accessToken: token }) },
      method: 'GET',
      url,
    })
    assert.equal(p.jkt, key.jkt)
    assert.equal((await refusal(guard.authenticate(token))).error, 'invalid_token')
  })
})

/**
 * FIELDGATE_SIGNING_ALG=EdDSA (RFC 8037, Ed25519) on a real server: the JWKS publishes OKP keys, tokens
 * say alg EdDSA and verify with jose against that JWKS, and every consumer takes them: Fieldgate's own
 * API, introspection, forward-auth and @fieldgate/guard over real HTTP. Then a deployment moving from
 * RS256 to EdDSA: a restart with the new setting, two rotations, tokens of both algorithms valid throughout.
 */
import assert from 'node:assert/strict'
import { generateKeyPairSync, sign } from 'node:crypto'
import { rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { createLocalJWKSet, jwtVerify, type JSONWebKeySet } from 'jose'
import { cliActor, rotateSigningKeys } from '@fieldgate/core'
import { GuardError, createGuard, type FetchLike, type Guard } from '@fieldgate/guard'
import {
  basicAuth,
  bearer,
  decodeJwt,
  freePort,
  getToken,
  postForm,
  privateApp,
  request,
  startServer,
  tempDir,
  waitUntil,
  type PrivateFixture,
  type TestServer,
} from './helpers.js'

const WORKORDERS = '/api/rest/v2/workorders'
const JWKS = '/.well-known/jwks.json'
const API = 'api.dispatch.test:8080'
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'k', 'oth']
/** One API behind forward-auth (forward-auth.test.ts has the rules in full). */
const gateway = { apis: [{ id: 'dispatch', name: 'Dispatch API', resource: `http://${API}`, hosts: [API], rules: [{ methods: ['GET'], path: '/orders', scope: 'api' }] }] }

const jwksOf = async (server: TestServer): Promise<JSONWebKeySet> => {
  const res = await request(server.url(JWKS))
  assert.equal(res.status, 200)
  return res.json as JSONWebKeySet
}

/** jose's own verification against the JWKS as published, pinned to `alg`: what any resource server does. */
const joseVerifies = async (server: TestServer, token: string, alg: string) =>
  (await jwtVerify(token, createLocalJWKSet(await jwksOf(server)), { issuer: server.issuer, audience: server.config.audience, typ: 'at+jwt', algorithms: [alg] })).payload

const introspect = (server: TestServer, token: string, client: PrivateFixture) =>
  postForm(server.url('/oauth/introspect'), { token }, { authorization: basicAuth(client.clientId, client.clientSecret) })

/** What the guard threw, asserting it is invalid_token. */
async function guardRefuses(guard: Guard, token: string): Promise<void> {
  const err: unknown = await guard.authenticate(token).then(
    () => undefined,
    (e: unknown) => e,
  )
  assert.ok(err instanceof GuardError, `expected invalid_token, got ${String(err)}`)
  assert.equal(err.error, 'invalid_token')
}

/** A compact JWS with this header and payload, signed as `signWith` does (for forgeries Fieldgate never signs). */
function forged(header: Record<string, unknown>, payload: Record<string, unknown>, signWith: (input: Buffer) => Buffer): string {
  const input = `${Buffer.from(JSON.stringify(header)).toString('base64url')}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}`
  return `${input}.${signWith(Buffer.from(input)).toString('base64url')}`
}

describe('EdDSA access tokens', () => {
  let server: TestServer
  let f: PrivateFixture
  let guard: Guard
  const dataDir = tempDir()

  before(async () => {
    writeFileSync(join(dataDir, 'gateway.json'), JSON.stringify(gateway))
    server = await startServer({ dataDir, overrides: { signingAlg: 'EdDSA', gatewayFile: 'gateway.json' } })
    f = await privateApp(server.storage, { scopes: 'api' })
    guard = createGuard({ issuer: server.issuer, audience: server.config.audience })
  })
  after(async () => {
    await server?.close()
    rmSync(dataDir, { recursive: true, force: true })
  })

  it('publishes Ed25519 keys as RFC 8037 OKP JWKs, public parts only', async () => {
    const { keys } = await jwksOf(server)
    assert.equal(keys.length, 2, 'active and next')
    for (const k of keys) {
      assert.deepEqual(Object.keys(k).sort(), ['alg', 'crv', 'kid', 'kty', 'use', 'x'])
      assert.deepEqual([k.kty, k.crv, k.alg, k.use], ['OKP', 'Ed25519', 'EdDSA', 'sig'])
      // RFC 8037 §2: x is the 32-byte public key.
      assert.equal(Buffer.from(k.x!, 'base64url').length, 32)
      for (const member of PRIVATE_MEMBERS) assert.equal((k as Record<string, unknown>)[member], undefined, `the JWKS leaks "${member}"`)
    }
    assert.deepEqual(
      (await server.storage.listSigningKeys()).map((k) => k.alg),
      ['EdDSA', 'EdDSA'],
    )
  })

  it('signs with alg EdDSA under a published kid; jose verifies the token against the JWKS', async () => {
    const token = await getToken(server, f)
    const { header } = decodeJwt(token)
    assert.equal(header.alg, 'EdDSA')
    assert.equal(header.typ, 'at+jwt')
    const active = (await server.storage.listSigningKeys()).find((k) => k.state === 'active')!
    assert.equal(header.kid, active.kid)
    const claims = await joseVerifies(server, token, 'EdDSA')
    assert.equal(claims.client_id, f.clientId)
    assert.equal(Buffer.from(token.split('.')[2]!, 'base64url').length, 64, 'an Ed25519 signature is 64 bytes')
  })

  it("is taken by Fieldgate's API, introspection, forward-auth and @fieldgate/guard", async () => {
    const token = await getToken(server, f)
    const api = await request(server.url(WORKORDERS), { headers: bearer(token) })
    assert.equal(api.status, 200, api.text)
    const inspected = await introspect(server, token, f)
    assert.equal(inspected.status, 200)
    assert.equal(inspected.json.active, true)
    assert.equal(inspected.json.client_id, f.clientId)
    const gate = await server.app.inject({
      url: '/forward-auth',
      headers: { 'x-forwarded-host': API, 'x-forwarded-method': 'GET', 'x-forwarded-uri': '/orders', ...bearer(token) },
    })
    assert.equal(gate.statusCode, 200, gate.body)
    assert.equal(gate.headers['x-fieldgate-client-id'], f.clientId)
    const principal = await guard.authenticate(`Bearer ${token}`)
    assert.equal(principal.kind, 'jwt')
    assert.equal(principal.clientId, f.clientId)
    assert.deepEqual(principal.scopes, ['api'])
  })

  it('refuses a tampered token, a stranger’s Ed25519 signature and an algorithm the kid is not pinned to, everywhere', async () => {
    const token = await getToken(server, f)
    const [h, p, s] = token.split('.') as [string, string, string]
    const { header, payload } = decodeJwt(token)
    const widened = Buffer.from(JSON.stringify({ ...payload, scope: 'api fieldgate:introspect' })).toString('base64url')
    const sig = Buffer.from(s, 'base64url')
    sig[10]! ^= 1
    const stranger = generateKeyPairSync('ed25519')
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 })
    const refused = {
      'payload changed': `${h}.${widened}.${s}`,
      'one signature bit flipped': `${h}.${p}.${sig.toString('base64url')}`,
      'signed by another Ed25519 key': forged(header, payload, (input) => sign(null, input, stranger.privateKey)),
      'RS256 under the Ed25519 kid': forged({ ...header, alg: 'RS256' }, payload, (input) => sign('sha256', input, rsa.privateKey)),
    }
    for (const [what, bad] of Object.entries(refused)) {
      const api = await request(server.url(WORKORDERS), { headers: bearer(bad) })
      assert.equal(api.status, 401, `${what}: API`)
      assert.equal((await introspect(server, bad, f)).json.active, false, `${what}: introspection`)
      await guardRefuses(guard, bad)
    }
    assert.equal((await request(server.url(WORKORDERS), { headers: bearer(token) })).status, 200, 'the untouched token still passes')
  })
})

/** The real fetch, counting the JWKS fetches. */
function countingFetch(): { fetch: FetchLike; jwksFetches: () => number } {
  let n = 0
  return {
    fetch: (input, init) => {
      if (input.endsWith(JWKS)) n++
      return fetch(input, init)
    },
    jwksFetches: () => n,
  }
}

describe('moving a deployment from RS256 to EdDSA', () => {
  const dataDir = tempDir()
  const servers: TestServer[] = []
  after(async () => {
    for (const s of servers) await s.close()
    rmSync(dataDir, { recursive: true, force: true })
  })

  it('a restart with EdDSA changes nothing; two rotations later EdDSA signs, and RS256 tokens verify throughout', async () => {
    // The same data dir (store and master key) and the same port, so the issuer stays the same.
    const port = await freePort()
    const rs = await startServer({ dataDir, overrides: { port } })
    servers.push(rs)
    assert.equal(rs.config.signingAlg, 'RS256', 'the default')
    const f = await privateApp(rs.storage, { scopes: 'api' })
    const t0 = await getToken(rs, f)
    assert.equal(decodeJwt(t0).header.alg, 'RS256')
    await rs.close()
    servers.pop()

    const ed = await startServer({ dataDir, overrides: { port, signingAlg: 'EdDSA' } })
    servers.push(ed)
    assert.equal(ed.issuer, rs.issuer)
    assert.deepEqual(
      (await ed.storage.listSigningKeys()).map((k) => k.alg),
      ['RS256', 'RS256'],
      'the setting makes no key by itself',
    )
    assert.equal(decodeJwt(await getToken(ed, f)).header.alg, 'RS256')

    const rotate = async () => {
      const keys = await rotateSigningKeys(ed.runtime.ctx, cliActor, { alg: ed.config.signingAlg, defaultMaxTtl: 3600 })
      const active = keys.find((k) => k.state === 'active')!
      // The server picks the rotation up from its change feed.
      await waitUntil(async () => decodeJwt(await getToken(ed, f)).header.kid === active.kid, 5000)
      return keys
    }

    // First rotation: the RS256 key published as next signs, and an Ed25519 next key is published beside it.
    const first = await rotate()
    assert.deepEqual(first.map((k) => `${k.state} ${k.alg}`).sort(), ['active RS256', 'next EdDSA', 'retiring RS256'])
    const t1 = await getToken(ed, f)
    assert.equal(decodeJwt(t1).header.alg, 'RS256')
    const mixed = await jwksOf(ed)
    assert.deepEqual(mixed.keys.map((k) => `${k.kty} ${k.alg}`).sort(), ['OKP EdDSA', 'RSA RS256', 'RSA RS256'])

    // A resource server that fetched the mixed set now already holds the key that signs next.
    const counted = countingFetch()
    const guard = createGuard({ issuer: ed.issuer, audience: ed.config.audience, fetch: counted.fetch })
    assert.equal((await guard.authenticate(t1)).clientId, f.clientId)
    assert.equal(counted.jwksFetches(), 1)

    // Second rotation: EdDSA signs; both RS256 keys verify until the tokens they signed expire.
    const second = await rotate()
    assert.deepEqual(second.map((k) => `${k.state} ${k.alg}`).sort(), ['active EdDSA', 'next EdDSA', 'retiring RS256', 'retiring RS256'])
    const t2 = await getToken(ed, f)
    assert.equal(decodeJwt(t2).header.alg, 'EdDSA')

    for (const [token, alg] of [
      [t0, 'RS256'],
      [t1, 'RS256'],
      [t2, 'EdDSA'],
    ] as const) {
      assert.equal((await joseVerifies(ed, token, alg)).client_id, f.clientId, `jose, ${alg}`)
      const api = await request(ed.url(WORKORDERS), { headers: bearer(token) })
      assert.equal(api.status, 200, `API, ${alg}: ${api.text}`)
      assert.equal((await introspect(ed, token, f)).json.active, true, `introspection, ${alg}`)
      assert.equal((await guard.authenticate(token)).clientId, f.clientId, `guard, ${alg}`)
    }
    assert.equal(counted.jwksFetches(), 1, 'the EdDSA key was published before it signed: no refetch')

    // Algorithms stay pinned per kid in the mixed set: EdDSA under an RSA kid is refused.
    const rsaKid = decodeJwt(t0).header.kid
    const confused = forged({ ...decodeJwt(t2).header, kid: rsaKid }, decodeJwt(t2).payload, (input) => sign(null, input, generateKeyPairSync('ed25519').privateKey))
    assert.equal((await request(ed.url(WORKORDERS), { headers: bearer(confused) })).status, 401)
    await guardRefuses(guard, confused)
  })
})

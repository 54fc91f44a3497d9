import assert from 'node:assert/strict'
import { randomBytes, randomUUID } from 'node:crypto'
import { after, before, describe, it } from 'node:test'
import { SignJWT } from 'jose'
import { cliActor, loadConfig, revokeGrant, signAccessToken, type AccessTokenClaims } from '@fieldgate/core'
import { openRuntime, type Runtime } from '@fieldgate/server'
import {
  bearer,
  eachEngine,
  injectHttp,
  privateApp,
  publicSandboxApp,
  silentLogger,
  startServer,
  waitUntil,
  type Engine,
  type PrivateFixture,
  type Res,
  type TestServer,
} from './helpers.js'

const WORKORDERS = '/api/rest/v2/workorders'

function assertInvalidToken(res: Res, description?: string): void {
  assert.equal(res.status, 401, res.text)
  assert.equal(res.json?.error, 'invalid_token', res.text)
  if (description !== undefined) assert.equal(res.json.error_description, description)
  assert.match(res.headers.get('www-authenticate') ?? '', /^Bearer /)
}

describe('resource-server guard on /api/rest/v2/workorders', () => {
  let server: TestServer
  let other: TestServer
  let signer: Runtime
  let t1: PrivateFixture
  let t2: PrivateFixture
  let token1: string
  let token2: string
  // Answers and challenges only: through app.inject, no port.
  const { request, postJson, getToken } = injectHttp(
    () => server,
    () => other,
  )

  before(async () => {
    server = await startServer({ listen: false })
    other = await startServer({ listen: false, overrides: { masterKey: randomBytes(32).toString('hex') } })
    // Signs with the server's own keys: a second runtime on the same data dir, as another process would.
    signer = await openRuntime(loadConfig({}, { dataDir: server.dataDir, issuer: server.issuer, logLevel: 'silent' }), silentLogger(), { prepare: false, follow: false })
    t1 = await privateApp(server.storage)
    t2 = await privateApp(server.storage)
    token1 = await getToken(server, t1)
    token2 = await getToken(server, t2)
  })
  after(async () => {
    await signer?.close()
    await other?.close()
    await server?.close()
  })

  const list = (token: string, query = '') => request(server.url(WORKORDERS + query), { headers: bearer(token) })
  const create = (token: string, title: string) => postJson(server.url(WORKORDERS), { title }, bearer(token))

  const claimsFor = (f: PrivateFixture, overrides: Partial<AccessTokenClaims> = {}): AccessTokenClaims => {
    const now = Math.floor(Date.now() / 1000)
    return {
      iss: server.issuer,
      sub: f.clientId,
      aud: server.config.audience,
      iat: now,
      exp: now + 600,
      jti: randomUUID(),
      client_id: f.clientId,
      scope: 'api',
      tenant_id: f.tenant.id,
      grant_id: f.grant.id,
      ...overrides,
    }
  }

  /** Signs with the server's active key, but with a header and claims of our choosing. */
  const forge = (header: Record<string, unknown>, payload: Record<string, unknown>) => {
    const { kid, alg, key } = signer.ctx.keys.signing
    return new SignJWT(payload).setProtectedHeader({ alg, kid, ...header } as never).sign(key as never)
  }

  it('keeps each tenant to its own work orders', async () => {
    const a = await create(token1, 'Replace the compressor')
    assert.equal(a.status, 201, a.text)
    assert.equal(a.json.title, 'Replace the compressor')
    assert.equal(a.json.status, 'draft')
    assert.equal(a.json.created_by, t1.clientId)
    const b = await create(token2, 'Inspect the roof')
    assert.equal(b.status, 201, b.text)
    const l1 = await list(token1)
    assert.equal(l1.status, 200, l1.text)
    assert.deepEqual(
      l1.json.results.map((w: { id: string }) => w.id),
      [a.json.id],
    )
    const l2 = await list(token2)
    assert.deepEqual(
      l2.json.results.map((w: { id: string }) => w.id),
      [b.json.id],
    )
    assert.deepEqual(l1.json.results[0], a.json)
  })

  it('accepts the token in the Authorization header and in ?access_token=', async () => {
    const viaHeader = await list(token1)
    assert.equal(viaHeader.status, 200)
    const viaQuery = await request(server.url(`${WORKORDERS}?access_token=${encodeURIComponent(token1)}`))
    assert.equal(viaQuery.status, 200, viaQuery.text)
    assert.deepEqual(viaQuery.json, viaHeader.json)
    const postViaQuery = await postJson(server.url(`${WORKORDERS}?access_token=${token2}`), { title: 'via query' })
    assert.equal(postViaQuery.status, 201, postViaQuery.text)
    const lowerCase = await request(server.url(WORKORDERS), { headers: { authorization: `bearer ${token1}` } })
    assert.equal(lowerCase.status, 200, 'the auth scheme is case-insensitive (RFC 7235)')
  })

  it('rejects a token sent both ways, or twice in the query: 400 invalid_request', async () => {
    const both = await request(server.url(`${WORKORDERS}?access_token=${token1}`), { headers: bearer(token1) })
    assert.equal(both.status, 400, both.text)
    assert.equal(both.json.error, 'invalid_request')
    // RFC 6750 §3: the 400 carries a Bearer challenge too.
    assert.match(both.headers.get('www-authenticate') ?? '', /^Bearer .*error="invalid_request"/)
    const twice = await request(server.url(`${WORKORDERS}?access_token=${token1}&access_token=${token1}`))
    assert.equal(twice.status, 400, twice.text)
    assert.equal(twice.json.error, 'invalid_request')
  })

  it('without a token: 401 with a bare Bearer challenge', async () => {
    for (const headers of [{} as Record<string, string>, { authorization: 'Basic ' + Buffer.from('a:b').toString('base64') }, { authorization: 'Bearer ' }]) {
      const res = await request(server.url(WORKORDERS), { headers })
      assert.equal(res.status, 401, res.text)
      assert.equal(res.json.error, 'invalid_token')
      assert.match(res.headers.get('www-authenticate') ?? '', /^Bearer /)
    }
    const post = await postJson(server.url(WORKORDERS), { title: 'no token' })
    assert.equal(post.status, 401)
    const empty = await request(server.url(`${WORKORDERS}?access_token=`))
    assert.equal(empty.status, 401)
  })

  it('a tampered token: 401 invalid_token', async () => {
    const [h, p, s] = token1.split('.') as [string, string, string]
    const flipped = s.slice(0, 20) + (s[20] === 'A' ? 'B' : 'A') + s.slice(21)
    assertInvalidToken(await list(`${h}.${p}.${flipped}`))
    // Claims swapped for another tenant's, signature kept.
    const claims = JSON.parse(Buffer.from(p, 'base64url').toString()) as Record<string, unknown>
    const moved = Buffer.from(JSON.stringify({ ...claims, tenant_id: t2.tenant.id })).toString('base64url')
    assertInvalidToken(await list(`${h}.${moved}.${s}`))
    // Unsigned (alg none), and a random string.
    const none = Buffer.from(JSON.stringify({ alg: 'none', typ: 'at+jwt' })).toString('base64url')
    assertInvalidToken(await list(`${none}.${p}.`))
    assertInvalidToken(await list('not-a-jwt'))
    // The same signature in a non-canonical base64url spelling (unused trailing bits set) is refused.
    const last = s[s.length - 1]!
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
    const respelled = s.slice(0, -1) + alphabet[alphabet.indexOf(last) ^ 1]
    assert.deepEqual(Buffer.from(respelled, 'base64url'), Buffer.from(s, 'base64url'), 'same signature bytes')
    assertInvalidToken(await list(`${h}.${p}.${respelled}`))
    assertInvalidToken(await list('x'.repeat(9000)))
  })

  it("another server's token (other keys, other issuer): 401 invalid_token", async () => {
    const foreign = await privateApp(other.storage)
    const token = await getToken(other, foreign)
    const onOther = await request(other.url(WORKORDERS), { headers: bearer(token) })
    assert.equal(onOther.status, 200, 'the token is good where it was issued')
    assertInvalidToken(await list(token))
  })

  it('a token signed with the right key but for another issuer or audience: 401 invalid_token', async () => {
    const good = await signAccessToken(signer.ctx.keys, claimsFor(t1))
    assert.equal((await list(good)).status, 200, 'the signer makes tokens the server accepts')
    assertInvalidToken(await list(await signAccessToken(signer.ctx.keys, claimsFor(t1, { iss: other.issuer }))))
    assertInvalidToken(await list(await signAccessToken(signer.ctx.keys, claimsFor(t1, { aud: other.config.audience }))))
    assertInvalidToken(await list(await signAccessToken(signer.ctx.keys, claimsFor(t1, { iss: `${server.issuer}/` }))))
  })

  it('a token without the RFC 9068 typ, or missing the claims the guard relies on: 401 invalid_token', async () => {
    const claims = claimsFor(t1) as unknown as Record<string, unknown>
    assert.equal((await list(await forge({ typ: 'at+jwt' }, claims))).status, 200, 'forged tokens are otherwise good')
    assertInvalidToken(await list(await forge({ typ: 'JWT' }, claims)))
    assertInvalidToken(await list(await forge({ typ: undefined }, claims)))
    for (const name of ['grant_id', 'tenant_id', 'client_id', 'exp']) {
      const { [name]: _dropped, ...rest } = claims
      assertInvalidToken(await list(await forge({ typ: 'at+jwt' }, rest)))
    }
    assertInvalidToken(await list(await forge({ typ: 'at+jwt' }, { ...claims, nbf: Math.floor(Date.now() / 1000) + 3600 })))
    assertInvalidToken(await list(await forge({ typ: 'at+jwt', kid: 'unknown-kid' }, claims)))
  })

  it('an expired token: 401 with exactly the Field Nation body', async () => {
    const now = Math.floor(Date.now() / 1000)
    const expired = await signAccessToken(signer.ctx.keys, claimsFor(t1, { iat: now - 4000, exp: now - 400 }))
    for (const res of [await list(expired), await request(server.url(`${WORKORDERS}?access_token=${expired}`))]) {
      assert.equal(res.status, 401)
      assert.deepEqual(res.json, { error: 'invalid_token', error_description: 'The access token expired' })
      assert.match(res.headers.get('www-authenticate') ?? '', /^Bearer .*error="invalid_token"/)
    }
    // Expiry is only reported for a token whose signature holds.
    const [h, p, s] = expired.split('.') as [string, string, string]
    const forged = await list(`${h}.${p}.${s.slice(0, 20)}${s[20] === 'A' ? 'B' : 'A'}${s.slice(21)}`)
    assertInvalidToken(forged, 'The access token is invalid')
  })

  it('a token without the scope api: 403 missing_scope naming it', async () => {
    const maps = await privateApp(server.storage, { scopes: 'maps:write' })
    const token = await getToken(server, maps)
    for (const res of [await request(server.url(WORKORDERS), { headers: bearer(token) }), await postJson(server.url(WORKORDERS), { title: 'x' }, bearer(token))]) {
      assert.equal(res.status, 403, res.text)
      assert.equal(res.json.error, 'missing_scope')
      assert.match(res.json.error_description, /api/)
      assert.match(res.headers.get('www-authenticate') ?? '', /insufficient_scope/)
    }
  })

  it('a public app acts on the tenant its token names', async () => {
    const pub = await publicSandboxApp(server.storage)
    const token = await getToken(server, pub, { target_id: pub.sandboxTenant.id })
    const created = await postJson(server.url(WORKORDERS), { title: 'from the marketplace app' }, bearer(token))
    assert.equal(created.status, 201)
    const listed = await request(server.url(WORKORDERS), { headers: bearer(token) })
    assert.deepEqual(
      listed.json.results.map((w: { id: string }) => w.id),
      [created.json.id],
    )
  })

  it('pages with a cursor: limit=2 over 5 orders returns all 5 exactly once, newest first', async () => {
    const f = await privateApp(server.storage)
    const token = await getToken(server, f)
    const made: string[] = []
    for (let i = 0; i < 5; i++) made.push((await postJson(server.url(WORKORDERS), { title: `order ${i}` }, bearer(token))).json.id)
    const seen: string[] = []
    const times: string[] = []
    let cursor: string | null = null
    let pages = 0
    do {
      const res = await request(server.url(`${WORKORDERS}?limit=2${cursor ? `&cursor=${cursor}` : ''}`), { headers: bearer(token) })
      assert.equal(res.status, 200, res.text)
      assert.ok(res.json.results.length <= 2)
      for (const w of res.json.results) {
        seen.push(w.id)
        times.push(w.created_at)
      }
      cursor = res.json.next_cursor
      assert.ok(++pages <= 5, 'pagination ends')
    } while (cursor)
    assert.equal(seen.length, 5)
    assert.deepEqual([...seen].sort(), [...made].sort())
    assert.deepEqual(times, [...times].sort().reverse(), 'newest first')
    // Same-millisecond orders still page correctly (ties broken by id), so the order is stable.
    const all = await request(server.url(`${WORKORDERS}?limit=100`), { headers: bearer(token) })
    assert.deepEqual(
      all.json.results.map((w: { id: string }) => w.id),
      seen,
    )
    assert.equal(all.json.next_cursor, null)
  })

  it('rejects bad paging and bodies with 400, never 5xx', async () => {
    const nulCursor = Buffer.from('1.\u0000').toString('base64url')
    for (const q of ['?limit=0', '?limit=101', '?limit=abc', '?cursor=' + 'x'.repeat(300), '?cursor=%%%', '?cursor=bm90LWEtY3Vyc29y', `?cursor=${nulCursor}`]) {
      const res = await list(token1, q)
      assert.equal(res.status, 400, `${q}: ${res.status} ${res.text}`)
      assert.equal(typeof res.json.error, 'string')
    }
    for (const body of [{}, { title: '' }, { title: 'x', extra: 1 }, { title: 'x', status: 'bogus' }, { title: { x: 1 } }, [], 'title', { title: 'a\u0000b' }]) {
      const res = await postJson(server.url(WORKORDERS), body, bearer(token1))
      assert.equal(res.status, 400, `${JSON.stringify(body)}: ${res.status} ${res.text}`)
    }
  })
})

describe('revocation on the API', () => {
  async function revokes(engine: Engine): Promise<void> {
    const server = await startServer({ engine, listen: false })
    const { request, postJson, getToken } = injectHttp(() => server)
    try {
      const f = await privateApp(server.storage)
      const token = await getToken(server, f)
      const ok = await request(server.url(WORKORDERS), { headers: bearer(token) })
      assert.equal(ok.status, 200, ok.text)
      await revokeGrant(server.runtime.ctx, cliActor, { grantId: f.grant.id })
      const elapsed = await waitUntil(async () => (await request(server.url(WORKORDERS), { headers: bearer(token) })).status === 401, 1000)
      assert.ok(elapsed < 1000, `revoked after ${elapsed} ms`)
      const res = await request(server.url(`${WORKORDERS}?access_token=${token}`))
      assertInvalidToken(res)
      // And no new token stands on the revoked grant.
      await waitUntil(
        async () => (await postJson(server.url('/oauth/token'), { grant_type: 'client_credentials', client_id: f.clientId, client_secret: f.clientSecret })).status === 400,
        1000,
      )
      const again = await postJson(server.url('/oauth/token'), { grant_type: 'client_credentials', client_id: f.clientId, client_secret: f.clientSecret })
      assert.equal(again.json.error, 'invalid_grant')
    } finally {
      await server.close()
    }
  }
  eachEngine('revokeGrant stops a JWT within 1 s', revokes)
})

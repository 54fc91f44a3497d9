/**
 * @fieldgate/guard as another Node service uses it: pointed at a real Fieldgate (started here), with
 * real fetch, real keys, real introspection. Where a test needs a fault or a field Fieldgate does not send,
 * it wraps the real fetch and says so.
 */
import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes, randomUUID } from 'node:crypto'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { SignJWT } from 'jose'
import { cliActor, createApp, createTenant, createUser, loadConfig, rotateSigningKeys, signAccessToken, type AccessTokenClaims, type Tenant } from '@fieldgate/core'
import { openRuntime, type Runtime } from '@fieldgate/server'
import { GuardError, GuardUpstreamError, bearerToken, createGuard, requireScope, type FetchLike, type Guard, type GuardOptions } from '@fieldgate/guard'
import {
  bearer,
  childEnv,
  decodeJwt,
  eachEngine,
  freePort,
  getToken,
  postForm,
  postJson,
  privateApp,
  repoRoot,
  request,
  silentLogger,
  sleep,
  startServer,
  waitUntil,
  type Engine,
  type PrivateFixture,
  type Res,
  type TestServer,
} from './helpers.js'
import { Person } from './person.js'

const WORKORDERS = '/api/rest/v2/workorders'
const CALLBACK = 'https://partner.example/callback'
const exampleServer = join(repoRoot, 'examples/guarded-service/server.mjs')

/** The real fetch, with every URL it was asked for recorded. */
function recordingFetch(): { fetch: FetchLike; calls: string[]; count(suffix: string): number } {
  const calls: string[] = []
  return {
    calls,
    fetch: (input, init) => {
      calls.push(input)
      return fetch(input, init)
    },
    count: (suffix) => calls.filter((u) => u.endsWith(suffix)).length,
  }
}

const JWKS = '/.well-known/jwks.json'
const METADATA = '/.well-known/oauth-authorization-server'
const INTROSPECT = '/oauth/introspect'

/** What the guard threw, asserting it is a GuardError. */
async function guardError(promise: Promise<unknown>): Promise<GuardError> {
  try {
    await promise
  } catch (err) {
    assert.ok(err instanceof GuardError, `expected a GuardError, got ${String(err)}`)
    return err
  }
  assert.fail('the guard accepted the token')
}

/** What `fn` threw, asserting it is a GuardError. */
function thrownBy(fn: () => unknown): GuardError {
  try {
    fn()
  } catch (err) {
    assert.ok(err instanceof GuardError, `expected a GuardError, got ${String(err)}`)
    return err
  }
  assert.fail('nothing was thrown')
}

/**
 * The guard's refusal is the server's own answer for the same token: status, body and challenge, the
 * challenge naming the server's RFC 9728 metadata as the server's does.
 */
function assertSameAsServer(err: GuardError, res: Res, server: TestServer): void {
  assert.equal(err.status, res.status, res.text)
  assert.deepEqual(err.toJSON(), res.json)
  assert.equal(err.challenge(`${server.issuer}/.well-known/oauth-protected-resource/api`), res.headers.get('www-authenticate'))
}

interface Farm {
  tenant: Tenant
  userId: string
  person: Person
  clientId: string
  clientSecret: string
}

/** A farm with a signed-in owner, and a partner integration registered for `scopes`. */
async function farm(server: TestServer, scopes = 'fields:read:all sensors:write'): Promise<Farm> {
  const tenant = await createTenant(server.runtime.ctx, cliActor, { name: `Farm ${randomBytes(3).toString('hex')}`, environment: 'sandbox' })
  const email = `owner-${randomBytes(4).toString('hex')}@farm.example`
  const user = await createUser(server.runtime.ctx, cliActor, { email, password: Person.password, tenantId: tenant.id, role: 'owner' })
  const created = await createApp(server.runtime.ctx, cliActor, {
    name: 'Sensor bridge',
    kind: 'public',
    environment: 'sandbox',
    scopes,
    redirectUris: [CALLBACK],
    contactEmail: 'dev@partner.example',
  })
  const person = new Person(server, email)
  assert.equal((await person.signIn()).status, 303)
  return { tenant, userId: user.id, person, clientId: created.app.clientId, clientSecret: created.clientSecret }
}

/** The owner consents to `scope`; the integration exchanges the code for an opaque connection token. */
async function connect(server: TestServer, f: Farm, scope = 'sensors:write'): Promise<string> {
  const location = await f.person.decide({ client_id: f.clientId, scope, state: 's' }, 'allow')
  const code = location.searchParams.get('code') ?? assert.fail(`no code in ${location}`)
  const res = await postForm(server.url('/v1/token.exchange'), { code, client_id: f.clientId, client_secret: f.clientSecret })
  assert.equal(res.status, 200, res.text)
  assert.match(res.json.access_token, /^[0-9a-f]{64}$/)
  return res.json.access_token as string
}

const revokeByToken = async (server: TestServer, token: string) =>
  assert.deepEqual((await postJson(server.url('/v1/token.revoke'), { access_token: token })).json, { revoked: true })

const guardFor = (server: TestServer, extra: Partial<GuardOptions> = {}): Guard => createGuard({ issuer: server.issuer, audience: server.config.audience, ...extra })

describe('@fieldgate/guard: JWT access tokens', () => {
  let server: TestServer
  let signer: Runtime
  let app: PrivateFixture
  let token: string

  before(async () => {
    server = await startServer()
    // The server's own keys, from a second runtime on its data dir, to sign tokens with chosen claims.
    signer = await openRuntime(loadConfig({}, { dataDir: server.dataDir, issuer: server.issuer, logLevel: 'silent' }), silentLogger(), { prepare: false, follow: false })
    app = await privateApp(server.storage, { scopes: 'api sensors:write' })
    token = await getToken(server, app)
  })
  after(async () => {
    await signer?.close()
    await server?.close()
  })

  const claimsFor = (overrides: Partial<AccessTokenClaims> = {}): AccessTokenClaims => {
    const now = Math.floor(Date.now() / 1000)
    return {
      iss: server.issuer,
      sub: app.clientId,
      aud: server.config.audience,
      iat: now,
      exp: now + 600,
      jti: randomUUID(),
      client_id: app.clientId,
      scope: 'api',
      tenant_id: app.tenant.id,
      grant_id: app.grant.id,
      ...overrides,
    }
  }

  /** Signed with the server's active key, with a header and claims of our choosing. */
  const forge = (header: Record<string, unknown>, payload: Record<string, unknown>) => {
    const { kid, alg, key } = signer.ctx.keys.signing
    return new SignJWT(payload).setProtectedHeader({ alg, kid, ...header } as never).sign(key as never)
  }

  it('accepts a client-credentials JWT, maps its claims, and reads metadata and keys once', async () => {
    const rec = recordingFetch()
    const guard = guardFor(server, { fetch: rec.fetch })
    const principal = await guard.authenticate(token)
    const claims = decodeJwt(token).payload
    assert.deepEqual(
      { ...principal, claims: undefined },
      {
        kind: 'jwt',
        clientId: app.clientId,
        tenantId: app.tenant.id,
        grantId: app.grant.id,
        scopes: ['api', 'sensors:write'],
        subject: app.clientId,
        expiresAt: (claims.exp as number) * 1000,
        claims: undefined,
      },
    )
    assert.equal(principal.claims.jti, claims.jti)
    // The whole header, any case of the scheme, gives the same principal.
    assert.equal((await guard.authenticate(`Bearer ${token}`)).grantId, app.grant.id)
    assert.equal((await guard.authenticate(`bearer ${token}`)).grantId, app.grant.id)
    assert.deepEqual(rec.calls, [server.url(METADATA), server.url(JWKS)], 'discovery once, the key set once, then from memory')
  })

  it('uses configured endpoints without discovery', async () => {
    const rec = recordingFetch()
    const guard = guardFor(server, { fetch: rec.fetch, jwksUri: server.url(JWKS) })
    assert.equal((await guard.authenticate(token)).clientId, app.clientId)
    assert.deepEqual(rec.calls, [server.url(JWKS)])
  })

  it("refuses tampered, expired, foreign and malformed JWTs with the server's exact answer", async () => {
    const rec = recordingFetch()
    const guard = guardFor(server, { fetch: rec.fetch })
    const claims = claimsFor() as unknown as Record<string, unknown>
    const good = await forge({ typ: 'at+jwt' }, claims)
    assert.equal((await guard.authenticate(good)).tenantId, app.tenant.id, 'forged tokens are otherwise good')
    assert.equal((await request(server.url(WORKORDERS), { headers: bearer(good) })).status, 200)

    const now = Math.floor(Date.now() / 1000)
    const expired = await signAccessToken(signer.ctx.keys, claimsFor({ iat: now - 4000, exp: now - 400 }))
    const [h, p, s] = token.split('.') as [string, string, string]
    const flip = (sig: string) => sig.slice(0, 20) + (sig[20] === 'A' ? 'B' : 'A') + sig.slice(21)
    const [eh, ep, es] = expired.split('.') as [string, string, string]
    const moved = Buffer.from(JSON.stringify({ ...decodeJwt(token).payload, tenant_id: randomUUID() })).toString('base64url')
    const none = Buffer.from(JSON.stringify({ alg: 'none', typ: 'at+jwt' })).toString('base64url')
    const { grant_id: _g, ...noGrant } = claims
    const cases: [string, string, string][] = [
      ['expired', expired, 'The access token expired'],
      ['expired, signature forged', `${eh}.${ep}.${flip(es)}`, 'The access token is invalid'],
      ['signature flipped', `${h}.${p}.${flip(s)}`, 'The access token is invalid'],
      ['claims moved to another tenant', `${h}.${moved}.${s}`, 'The access token is invalid'],
      ['wrong audience', await signAccessToken(signer.ctx.keys, claimsFor({ aud: 'https://elsewhere.example/api' })), 'The access token is invalid'],
      ['wrong issuer', await signAccessToken(signer.ctx.keys, claimsFor({ iss: `${server.issuer}/` })), 'The access token is invalid'],
      ['typ JWT', await forge({ typ: 'JWT' }, claims), 'The access token is invalid'],
      ['no typ', await forge({ typ: undefined }, claims), 'The access token is invalid'],
      ['no grant_id', await forge({ typ: 'at+jwt' }, noGrant), 'The access token is invalid'],
      ['not yet valid', await forge({ typ: 'at+jwt' }, { ...claims, nbf: now + 3600 }), 'The access token is invalid'],
      ['unknown kid', await forge({ typ: 'at+jwt', kid: 'unknown-kid' }, claims), 'The access token is invalid'],
      ['alg none', `${none}.${p}.`, 'The access token is invalid'],
      ['not a JWT', 'not-a-jwt', 'The access token is invalid'],
      ['too long', 'x'.repeat(9000), 'The access token is invalid'],
    ]
    for (const [name, bad, description] of cases) {
      const err = await guardError(guard.authenticate(bad))
      assert.deepEqual(err.toJSON(), { error: 'invalid_token', error_description: description }, name)
      assert.equal(err.status, 401, name)
      assert.equal(err.wwwAuthenticate, `Bearer realm="fieldgate", error="invalid_token", error_description="${description}", DPoP algs="ES256 RS256 PS256 EdDSA"`, name)
      assertSameAsServer(err, await request(server.url(WORKORDERS), { headers: bearer(bad) }), server)
    }
    // The unknown kid came within the cooldown of the first fetch: it made no second one.
    assert.equal(rec.count(JWKS), 1)
  })

  it('missing_scope: 403 with the body and challenge the server sends', async () => {
    const guard = guardFor(server)
    const principal = await guard.authenticate(token)
    guard.requireScope(principal, 'sensors:write')
    requireScope(principal, 'api')
    const err = thrownBy(() => guard.requireScope(principal, 'alerts:write'))
    assert.equal(err.status, 403)
    assert.deepEqual(err.toJSON(), { error: 'missing_scope', error_description: 'This call needs the scope alerts:write', needed: 'alerts:write' })
    assert.equal(err.wwwAuthenticate, 'Bearer realm="fieldgate", error="insufficient_scope", scope="alerts:write", DPoP algs="ES256 RS256 PS256 EdDSA"')
    // The server's own answer for a token without `api` on its work orders, next to the guard's.
    const maps = await privateApp(server.storage, { scopes: 'maps:write' })
    const mapsToken = await getToken(server, maps)
    const mapsPrincipal = await guard.authenticate(mapsToken)
    assertSameAsServer(
      thrownBy(() => requireScope(mapsPrincipal, 'api')),
      await request(server.url(WORKORDERS), { headers: bearer(mapsToken) }),
      server,
    )
  })

  it('reads the token from the header or the query as the server does', async () => {
    const url = `${WORKORDERS}?access_token=${token}`
    assert.equal(bearerToken({ authorization: `Bearer ${token}` }, WORKORDERS), token)
    assert.equal(bearerToken(new Headers({ authorization: `BEARER ${token}` }), WORKORDERS), token)
    assert.equal(bearerToken({}, url), token)
    const cases: [string, Record<string, string>, string][] = [
      ['both', { authorization: `Bearer ${token}` }, url],
      ['twice in the query', {}, `${url}&access_token=${token}`],
      ['none', {}, WORKORDERS],
      ['Basic', { authorization: 'Basic ' + Buffer.from('a:b').toString('base64') }, WORKORDERS],
      ['empty Bearer', { authorization: 'Bearer ' }, WORKORDERS],
    ]
    for (const [name, headers, path] of cases) {
      // /v1/permissions reads the token with nothing in front (the work orders route validates its query first).
      const res = await request(server.url(path.replace(WORKORDERS, '/v1/permissions')), { headers })
      assert.ok(res.status === 400 || res.status === 401, `${name}: ${res.status}`)
      assertSameAsServer(
        thrownBy(() => bearerToken(headers, path)),
        res,
        server,
      )
    }
    assert.equal((await guardError(guardFor(server).authenticate(undefined))).toJSON().error_description, 'An access token is required')
    assert.equal((await guardError(guardFor(server).authenticate('Basic YTpi'))).status, 401)
  })

  it('follows a key rotation: a token from a key it never fetched is accepted after one refetch', async () => {
    const rotating = await startServer()
    try {
      const f = await privateApp(rotating.storage)
      const rec = recordingFetch()
      const cooldownMs = 100
      const guard = guardFor(rotating, { fetch: rec.fetch, jwksCooldownMs: cooldownMs })
      const first = await getToken(rotating, f)
      await guard.authenticate(first)
      assert.equal(rec.count(JWKS), 1)
      const cachedKids = ((await request(rotating.url(JWKS))).json.keys as { kid: string }[]).map((k) => k.kid)

      const rotate = async () => {
        const keys = await rotateSigningKeys(rotating.runtime.ctx, cliActor, { alg: rotating.config.signingAlg, defaultMaxTtl: 3600 })
        const active = keys.find((k) => k.state === 'active')!.kid
        // The server picks the rotation up from its change feed.
        await waitUntil(async () => decodeJwt(await getToken(rotating, f)).header.kid === active, 5000)
        return active
      }
      // First rotation: the key that starts signing was published as `next`, so the guard already has it.
      const second = await rotate()
      assert.ok(cachedKids.includes(second))
      const t2 = await getToken(rotating, f)
      assert.equal((await guard.authenticate(t2)).clientId, f.clientId)
      assert.equal(rec.count(JWKS), 1, 'no fetch for a key published before it signed')
      // Second rotation: a key the guard has never seen.
      const third = await rotate()
      assert.ok(!cachedKids.includes(third))
      await sleep(cooldownMs + 20)
      const t3 = await getToken(rotating, f)
      assert.equal(decodeJwt(t3).header.kid, third)
      assert.equal((await guard.authenticate(t3)).clientId, f.clientId)
      assert.equal(rec.count(JWKS), 2, 'one refetch for the unknown kid')
      assert.equal((await guard.authenticate(await getToken(rotating, f))).clientId, f.clientId)
      // Tokens of the retiring keys stay good until they expire.
      assert.equal((await guard.authenticate(first)).clientId, f.clientId)
      assert.equal((await guard.authenticate(t2)).clientId, f.clientId)
      assert.equal(rec.count(JWKS), 2)
    } finally {
      await rotating.close()
    }
  })

  it('an unreachable Fieldgate or metadata for another issuer is a GuardUpstreamError, and discovery is tried again after a failure', async () => {
    const port = await freePort()
    const down = createGuard({ issuer: `http://127.0.0.1:${port}`, audience: 'x', timeoutMs: 2000 })
    await assert.rejects(down.authenticate(token), (err: unknown) => {
      assert.ok(err instanceof GuardUpstreamError, String(err))
      assert.match(err.message, /oauth-authorization-server could not be fetched/)
      assert.equal(err.status, 503)
      assert.deepEqual(err.toJSON(), { error: 'server_error', error_description: 'The access token could not be checked' })
      return true
    })
    // RFC 8414 §3.3: metadata that names another issuer is not used.
    await assert.rejects(guardFor(server, { issuer: `${server.issuer}/` }).authenticate(token), (err: unknown) => {
      assert.ok(err instanceof GuardUpstreamError, String(err))
      assert.match(err.message, /is for issuer http:\/\/127\.0\.0\.1:\d+, not http:\/\/127\.0\.0\.1:\d+\//)
      return true
    })
    // The first discovery fails (a fault injected in front of the real fetch); the second call tries again.
    let failures = 1
    const flaky: FetchLike = (input, init) => (failures-- > 0 ? Promise.reject(new TypeError('fetch failed')) : fetch(input, init))
    const guard = guardFor(server, { fetch: flaky })
    await assert.rejects(guard.authenticate(token), GuardUpstreamError)
    assert.equal((await guard.authenticate(token)).clientId, app.clientId)
  })
})

describe('@fieldgate/guard: opaque tokens by introspection', () => {
  let server: TestServer
  before(async () => {
    server = await startServer()
  })
  after(() => server.close())

  const introspecting = (f: Farm, extra: Partial<GuardOptions> = {}) => guardFor(server, { introspection: { clientId: f.clientId, clientSecret: f.clientSecret }, ...extra })

  it('accepts an opaque token from the code flow, caches the answer for opaqueCacheMs, and shares one request', async () => {
    const f = await farm(server)
    const token = await connect(server, f)
    const rec = recordingFetch()
    const guard = introspecting(f, { fetch: rec.fetch, opaqueCacheMs: 200 })
    const [grant] = await server.storage.listGrants({ tenantId: f.tenant.id })
    const principal = await guard.authenticate(token)
    assert.deepEqual(
      { ...principal, claims: undefined },
      {
        kind: 'opaque',
        clientId: f.clientId,
        tenantId: f.tenant.id,
        grantId: grant!.id,
        scopes: ['sensors:write'],
        subject: f.userId,
        claims: undefined,
      },
    )
    assert.equal(principal.expiresAt, undefined, 'connection tokens do not expire')
    assert.equal(principal.claims.active, true)
    assert.equal(rec.count(INTROSPECT), 1)
    assert.equal((await guard.authenticate(`Bearer ${token}`)).grantId, grant!.id)
    assert.equal(rec.count(INTROSPECT), 1, 'the second check within opaqueCacheMs is answered from the cache')
    await sleep(250)
    await guard.authenticate(token)
    assert.equal(rec.count(INTROSPECT), 2, 'past opaqueCacheMs the guard asks again')

    const fresh = recordingFetch()
    const burst = introspecting(f, { fetch: fresh.fetch })
    const all = await Promise.all(Array.from({ length: 5 }, () => burst.authenticate(token)))
    assert.ok(all.every((p) => p.grantId === grant!.id))
    assert.equal(fresh.count(INTROSPECT), 1, 'concurrent checks of one token share one introspection')
  })

  it('refuses the token within opaqueCacheMs of /v1/token.revoke, as the server does', async () => {
    const f = await farm(server)
    const token = await connect(server, f)
    const cacheMs = 200
    const guard = introspecting(f, { opaqueCacheMs: cacheMs })
    await guard.authenticate(token)
    await revokeByToken(server, token)
    const elapsed = await waitUntil(
      async () => {
        try {
          await guard.authenticate(token)
          return false
        } catch (err) {
          if (err instanceof GuardError) return true
          throw err
        }
      },
      2000,
      10,
    )
    assert.ok(elapsed <= cacheMs + 100, `refused ${Math.round(elapsed)} ms after the revocation`)
    const err = await guardError(guard.authenticate(token))
    assert.deepEqual(err.toJSON(), { error: 'invalid_token', error_description: 'The access token was revoked' })
    assertSameAsServer(err, await request(server.url('/v1/permissions'), { headers: bearer(token) }), server)
  })

  it('forget(token) makes a revocation effective at once, whatever opaqueCacheMs is', async () => {
    const f = await farm(server)
    const token = await connect(server, f)
    const guard = introspecting(f, { opaqueCacheMs: 60_000 })
    await guard.authenticate(token)
    await revokeByToken(server, token)
    assert.equal((await guard.authenticate(token)).clientId, f.clientId, 'still the cached answer: the cache would hide the revocation')
    guard.forget(token)
    const err = await guardError(guard.authenticate(token))
    assert.equal(err.toJSON().error_description, 'The access token was revoked')
  })

  it('never caches past the exp introspection reports, and never caches a refusal', async () => {
    const f = await farm(server)
    const token = await connect(server, f)
    // Fieldgate's connection tokens have no exp: this wrapper adds one, 1 s ahead, to the real response.
    let exp = 0
    let introspections = 0
    const withExp: FetchLike = async (input, init) => {
      const res = await fetch(input, init)
      if (!input.endsWith(INTROSPECT)) return res
      introspections++
      const body = (await res.json()) as Record<string, unknown>
      return Response.json(body.active === true ? { ...body, exp } : body, { status: res.status })
    }
    exp = Math.floor(Date.now() / 1000) + 1
    const guard = introspecting(f, { fetch: withExp, opaqueCacheMs: 60_000 })
    assert.equal((await guard.authenticate(token)).expiresAt, exp * 1000)
    await guard.authenticate(token)
    assert.equal(introspections, 1)
    await sleep(exp * 1000 - Date.now() + 20)
    exp = Math.floor(Date.now() / 1000) + 60
    await guard.authenticate(token)
    assert.equal(introspections, 2, 'the entry ended at the first exp, not after opaqueCacheMs')

    const unknown = randomBytes(32).toString('hex')
    for (let i = 0; i < 2; i++) assert.equal((await guardError(guard.authenticate(unknown))).error, 'invalid_token')
    assert.equal(introspections, 4, 'inactive answers are asked again every time')
  })

  it('a JWT-only guard refuses opaque tokens without asking anyone', async () => {
    const f = await farm(server)
    const token = await connect(server, f)
    const rec = recordingFetch()
    const err = await guardError(guardFor(server, { fetch: rec.fetch }).authenticate(token))
    assert.equal(err.error, 'invalid_token')
    assert.deepEqual(rec.calls, [])
  })

  it('wrong introspection credentials: a GuardUpstreamError that says so, never invalid_token', async () => {
    const f = await farm(server)
    const token = await connect(server, f)
    const rec = recordingFetch()
    const wrong = guardFor(server, { fetch: rec.fetch, introspection: { clientId: f.clientId, clientSecret: `${f.clientSecret}x` } })
    for (let i = 0; i < 2; i++) {
      await assert.rejects(wrong.authenticate(token), (err: unknown) => {
        assert.ok(err instanceof GuardUpstreamError, String(err))
        assert.match(err.message, /refused the guard's client credentials \(401 invalid_client\)/)
        assert.equal(err.status, 503)
        return true
      })
    }
    assert.equal(rec.count(INTROSPECT), 2, 'a failure is not cached')
    // The token itself is fine: with the right credentials it is accepted.
    assert.equal((await introspecting(f).authenticate(token)).clientId, f.clientId)
  })
})

describe('@fieldgate/guard on each store', () => {
  async function both(engine: Engine): Promise<void> {
    const server = await startServer({ engine })
    try {
      const f = await farm(server)
      const opaque = await connect(server, f)
      const app = await privateApp(server.storage, { scopes: 'sensors:write' })
      const guard = createGuard({
        issuer: server.issuer,
        audience: server.config.audience,
        opaqueCacheMs: 100,
        introspection: { clientId: f.clientId, clientSecret: f.clientSecret },
      })
      assert.equal((await guard.authenticate(await getToken(server, app))).kind, 'jwt')
      assert.equal((await guard.authenticate(opaque)).kind, 'opaque')
      await revokeByToken(server, opaque)
      await sleep(120)
      assert.equal((await guardError(guard.authenticate(opaque))).error, 'invalid_token')
    } finally {
      await server.close()
    }
  }
  eachEngine('accepts a JWT and an opaque token, and refuses the opaque token once revoked', both)
})

interface Example {
  child: ChildProcess
  origin: string
  output(): string
  /** Sends `signal`; resolves with the exit code, or 'timeout' after 5 s. */
  stop(signal: NodeJS.Signals): Promise<number | null | 'timeout'>
}

/** Every example process a test started, killed at the end whatever happened. */
const examples = new Set<ChildProcess>()

/** `node examples/guarded-service/server.mjs` on a port of its choosing; resolves once it printed its URL. */
async function startExample(env: Record<string, string>): Promise<Example> {
  const child = spawn(process.execPath, [exampleServer], { cwd: repoRoot, env: childEnv({ PORT: '0', ...env }), stdio: ['ignore', 'pipe', 'pipe'] })
  examples.add(child)
  let out = ''
  child.stdout!.setEncoding('utf8').on('data', (d: string) => {
    out += d
  })
  child.stderr!.setEncoding('utf8').on('data', (d: string) => {
    out += d
  })
  const exited = new Promise<number | null>((r) =>
    child.once('exit', (code) => {
      examples.delete(child)
      r(code)
    }),
  )
  await waitUntil(
    async () => {
      if (child.exitCode !== null) throw new Error(`the example exited:\n${out}`)
      return /listening on http:\/\/\S+/.test(out)
    },
    10_000,
    20,
  )
  return {
    child,
    origin: /listening on (http:\/\/\S+)/.exec(out)![1]!,
    output: () => out,
    stop: (signal) => {
      child.kill(signal)
      return Promise.race([exited, sleep(5000).then(() => 'timeout' as const)])
    },
  }
}

describe('examples/guarded-service', () => {
  let server: TestServer
  let example: Example
  let origin: string
  let f: Farm

  before(async () => {
    server = await startServer()
    f = await farm(server)
    example = await startExample({ FIELDGATE_ISSUER: server.issuer, CLIENT_ID: f.clientId, CLIENT_SECRET: f.clientSecret })
    origin = example.origin
  })
  after(async () => {
    for (const child of examples) {
      const exited = new Promise((r) => child.once('exit', r))
      child.kill('SIGKILL')
      await exited
    }
    await server?.close()
  })

  it('prints its URL and answers 200 with a valid token, 401 JSON without one, 403 without the scope', async () => {
    assert.match(origin, /^http:\/\/127\.0\.0\.1:\d+$/)
    const app = await privateApp(server.storage, { scopes: 'api sensors:write' })
    const jwt = await getToken(server, app)
    const posted = await postJson(`${origin}/readings`, { sensor: 'soil-moisture-north', value: 31.5 }, bearer(jwt))
    assert.equal(posted.status, 201, posted.text)
    const listed = await request(`${origin}/readings`, { headers: bearer(jwt) })
    assert.equal(listed.status, 200, listed.text)
    assert.equal(listed.json.tenant_id, app.tenant.id)
    assert.deepEqual(
      listed.json.results.map((r: { sensor: string; value: number }) => [r.sensor, r.value]),
      [['soil-moisture-north', 31.5]],
    )
    const viaQuery = await request(`${origin}/readings?access_token=${jwt}`)
    assert.deepEqual(viaQuery.json, listed.json)

    const none = await request(`${origin}/readings`)
    assert.equal(none.status, 401)
    assert.match(none.headers.get('content-type') ?? '', /^application\/json/)
    assert.deepEqual(none.json, { error: 'invalid_token', error_description: 'An access token is required' })
    assert.equal(none.headers.get('www-authenticate'), 'Bearer realm="fieldgate", DPoP algs="ES256 RS256 PS256 EdDSA"')

    const bad = await request(`${origin}/readings`, { headers: bearer(`${jwt.slice(0, -4)}AAAA`) })
    assert.equal(bad.status, 401)
    assert.deepEqual(bad.json, { error: 'invalid_token', error_description: 'The access token is invalid' })

    const both = await request(`${origin}/readings?access_token=${jwt}`, { headers: bearer(jwt) })
    assert.equal(both.status, 400)
    assert.equal(both.json.error, 'invalid_request')

    const noScope = await getToken(server, await privateApp(server.storage, { scopes: 'api' }))
    const forbidden = await request(`${origin}/readings`, { headers: bearer(noScope) })
    assert.equal(forbidden.status, 403)
    assert.deepEqual(forbidden.json, { error: 'missing_scope', error_description: 'This call needs the scope sensors:write', needed: 'sensors:write' })
    assert.equal(forbidden.headers.get('www-authenticate'), 'Bearer realm="fieldgate", error="insufficient_scope", scope="sensors:write", DPoP algs="ES256 RS256 PS256 EdDSA"')
  })

  it('accepts an opaque connection token by introspection, and refuses it once revoked', async () => {
    const token = await connect(server, f)
    const ok = await request(`${origin}/readings`, { headers: bearer(token) })
    assert.equal(ok.status, 200, ok.text)
    assert.equal(ok.json.tenant_id, f.tenant.id)
    await revokeByToken(server, token)
    const elapsed = await waitUntil(async () => (await request(`${origin}/readings`, { headers: bearer(token) })).status === 401, 3000, 50)
    assert.ok(elapsed <= 1000 + 500, `refused ${Math.round(elapsed)} ms after the revocation (default opaqueCacheMs 1000)`)
  })

  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    it(`stops on ${signal}`, async () => {
      const own = await startExample({ FIELDGATE_ISSUER: server.issuer })
      assert.equal((await request(`${own.origin}/readings`)).status, 401, 'it was serving')
      assert.equal(await own.stop(signal), 0, own.output())
      assert.match(own.output(), new RegExp(`${signal}, stopping`))
      await assert.rejects(fetch(`${own.origin}/readings`), 'nothing listens any more')
    })
  }
})

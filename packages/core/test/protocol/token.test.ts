/**
 * The token, introspection and revocation endpoints' steps, called directly on a real SQLite store:
 * grant_type and client authentication, client credentials (tenant, scope narrowing, target_id), the
 * code exchange (single use, PKCE, redirect URI, expiry, replay), the token's audience whatever
 * resource a client names, introspection's visibility rules and revocation.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import {
  cliActor,
  personActor,
  type Person,
  InvalidClient,
  OAuthError,
  approveAuthorization,
  authenticateAccessToken,
  createGrant,
  disconnectByToken,
  introspectAllScope,
  introspectionEndpoint,
  revocationEndpoint,
  tokenEndpoint,
  updateApp,
  validateAuthorizationRequest,
  type App,
  type CoreContext,
  type Params,
} from '@fieldgate/core'
import { CALLBACK, ISSUER, basic, openContext, person, pkcePair, privateApp, publicApp, tenant, type TestContext } from './context.js'

let t: TestContext
let ctx: CoreContext
before(async () => {
  t = await openContext()
  ctx = t.ctx
})
after(() => t.close())

const token = (params: Params, authorization?: string) => tokenEndpoint(ctx, { params, authorization })

async function oauthError(p: Promise<unknown>, error: string): Promise<OAuthError> {
  const err = await p.then(
    () => assert.fail('accepted'),
    (e: unknown) => e,
  )
  assert.ok(err instanceof OAuthError, `not an OAuthError: ${String(err)}`)
  assert.equal(err.error, error, err.description)
  return err
}

const claimsOf = (jwt: string) => JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>

describe('the token endpoint: grant type and client authentication', () => {
  it('needs a grant_type it knows, and echoes an unknown one only in safe characters', async () => {
    const { app, secret } = await privateApp(ctx)
    await oauthError(token({ client_id: app.clientId, client_secret: secret }), 'invalid_request')
    const err = await oauthError(token({ grant_type: 'pass"word\\\u00e9', client_id: app.clientId, client_secret: secret }), 'unsupported_grant_type')
    assert.equal(err.description, 'grant_type pass?word?? is not supported')
  })

  it('refuses a wrong secret, an unknown client, both methods at once; a Basic failure carries a challenge', async () => {
    const { app, secret } = await privateApp(ctx)
    const post = await oauthError(token({ grant_type: 'client_credentials', client_id: app.clientId, client_secret: `${secret}x` }), 'invalid_client')
    assert.equal(post.status, 401)
    assert.equal(post.headers['www-authenticate'], undefined)
    const viaBasic = await oauthError(token({ grant_type: 'client_credentials' }, basic(app.clientId, 'wrong')), 'invalid_client')
    assert.ok(viaBasic instanceof InvalidClient && /^Basic /.test(viaBasic.headers['www-authenticate'] ?? ''))
    await oauthError(token({ grant_type: 'client_credentials', client_id: 'nobody', client_secret: secret }), 'invalid_client')
    await oauthError(token({ grant_type: 'client_credentials', client_secret: secret }, basic(app.clientId, secret)), 'invalid_request')
    assert.equal((await token({ grant_type: 'client_credentials' }, basic(app.clientId, secret))).tokenType, 'Bearer')
  })
})

describe('client credentials (RFC 6749 §4.4)', () => {
  it("issues an RFC 9068 JWT on the app's own tenant with every granted scope, for the app's lifetime", async () => {
    const { app, secret, tenant: own } = await privateApp(ctx)
    const res = await token({ grant_type: 'client_credentials', client_id: app.clientId, client_secret: secret })
    assert.deepEqual([res.tokenType, res.scope, res.tenantId, res.expiresIn], ['Bearer', 'api sensors:write', own.id, ctx.config.tokenTtl.private])
    const [header] = res.accessToken.split('.')
    assert.equal(JSON.parse(Buffer.from(header!, 'base64url').toString()).typ, 'at+jwt')
    const c = claimsOf(res.accessToken)
    assert.deepEqual([c.iss, c.aud, c.sub, c.client_id, c.tenant_id, c.scope], [ISSUER, `${ISSUER}/api`, app.clientId, app.clientId, own.id, 'api sensors:write'])
    assert.equal((c.exp as number) - (c.iat as number), ctx.config.tokenTtl.private)
    const principal = await authenticateAccessToken(ctx, res.accessToken)
    assert.deepEqual([principal.clientId, principal.tenantId, principal.scopes], [app.clientId, own.id, ['api', 'sensors:write']])
  })

  it('narrows to a requested scope and refuses one not granted', async () => {
    const { app, secret } = await privateApp(ctx)
    const narrow = await token({ grant_type: 'client_credentials', client_id: app.clientId, client_secret: secret, scope: 'sensors:write' })
    assert.equal(narrow.scope, 'sensors:write')
    const err = await oauthError(token({ grant_type: 'client_credentials', client_id: app.clientId, client_secret: secret, scope: 'api maps:write' }), 'invalid_scope')
    assert.match(err.description, /maps:write/)
  })

  it('audience is this server’s API unless an allowed RFC 8707 resource is named; a foreign one is invalid_target', async () => {
    const { app, secret } = await privateApp(ctx)
    const base = { grant_type: 'client_credentials', client_id: app.clientId, client_secret: secret }
    // `audience` is no parameter of this server's: it is dropped like any other unknown one.
    assert.equal(claimsOf((await token({ ...base, audience: 'https://other-api.example' })).accessToken).aud, `${ISSUER}/api`)
    const onHost = new URL(ISSUER)
    onHost.port = '8443'
    onHost.pathname = '/mcp'
    assert.equal(claimsOf((await token({ ...base, resource: onHost.href })).accessToken).aud, onHost.href)
    for (const resource of ['https://other-api.example', 'not a uri', `${ISSUER}/mcp#frag`]) {
      await oauthError(token({ ...base, resource }), 'invalid_target')
    }
  })

  it('a private app acts on its own tenant only; target_id may name it and nothing else', async () => {
    const { app, secret, tenant: own } = await privateApp(ctx)
    assert.equal((await token({ grant_type: 'client_credentials', client_id: app.clientId, client_secret: secret, target_id: own.id })).tenantId, own.id)
    const other = await tenant(ctx)
    await oauthError(token({ grant_type: 'client_credentials', client_id: app.clientId, client_secret: secret, target_id: other.id }), 'invalid_grant')
  })

  it('a public app needs a target_id that installed it, of its environment', async () => {
    const { app, secret } = await publicApp(ctx)
    const base = { grant_type: 'client_credentials', client_id: app.clientId, client_secret: secret }
    await oauthError(token(base), 'invalid_request')
    const farm = await tenant(ctx, 'live')
    await oauthError(token({ ...base, target_id: farm.id }), 'invalid_grant')
    await oauthError(token({ ...base, target_id: 'not-a-tenant' }), 'invalid_grant')
    const sandbox = await tenant(ctx, 'sandbox')
    await oauthError(token({ ...base, target_id: sandbox.id }), 'invalid_grant')
    await createGrant(ctx, cliActor, { clientId: app.clientId, tenantId: farm.id })
    assert.equal((await token({ ...base, target_id: farm.id })).tenantId, farm.id)
  })

  it("narrowing the app's scopes narrows new tokens at once; widening them widens nothing", async () => {
    const { app, secret } = await privateApp(ctx)
    await updateApp(ctx, cliActor, { clientId: app.clientId, fields: { scopes: 'api' } })
    ctx.cache.apply({ kind: 'app', ref: app.id })
    assert.equal((await token({ grant_type: 'client_credentials', client_id: app.clientId, client_secret: secret })).scope, 'api')
    await updateApp(ctx, cliActor, { clientId: app.clientId, fields: { scopes: 'api sensors:write alerts:write' } })
    ctx.cache.apply({ kind: 'app', ref: app.id })
    assert.equal((await token({ grant_type: 'client_credentials', client_id: app.clientId, client_secret: secret })).scope, 'api sensors:write')
  })
})

describe('the code exchange (RFC 6749 §4.1.3, RFC 7636 §4.6)', () => {
  let app: App
  let secret: string
  let tenantId: string
  let userId: string
  let consenter: Person
  before(async () => {
    ;({ app, secret } = await publicApp(ctx))
    const p = await person(ctx)
    tenantId = p.tenant.id
    userId = p.user.id
    consenter = personActor(p.user, '127.0.0.1')
  })

  /** A code through the real authorization steps; `params` as the authorization request had them. */
  async function codeFor(params: Record<string, string>): Promise<string> {
    const req = await validateAuthorizationRequest(ctx, { client_id: app.clientId, ...params }, true)
    const location = await approveAuthorization(ctx, req, { userId, tenantId, shownScopes: req.scopes, actor: consenter })
    return new URL(location).searchParams.get('code')!
  }
  const exchange = (code: string, extra: Params = {}) => token({ grant_type: 'authorization_code', code, client_id: app.clientId, client_secret: secret, ...extra })

  it('redeems a code with its verifier once, for an opaque token without expiry on the consented tenant', async () => {
    const { verifier, challenge } = pkcePair()
    const code = await codeFor({ redirect_uri: CALLBACK, scope: 'maps:write', code_challenge: challenge, code_challenge_method: 'S256' })
    const res = await exchange(code, { redirect_uri: CALLBACK, code_verifier: verifier })
    assert.match(res.accessToken, /^[0-9a-f]{64}$/)
    assert.equal(res.expiresIn, undefined)
    assert.equal(res.tenantId, tenantId)
    const principal = await authenticateAccessToken(ctx, res.accessToken)
    assert.deepEqual([principal.clientId, principal.tenantId], [app.clientId, tenantId])
    assert.equal(principal.introspection.sub, userId)
  })

  it('a replayed code is refused and revokes the token it gave (RFC 6749 §4.1.2)', async () => {
    const code = await codeFor({})
    const first = await exchange(code)
    const err = await oauthError(exchange(code), 'invalid_grant')
    await oauthError(authenticateAccessToken(ctx, first.accessToken), 'invalid_token')
    const other = await oauthError(exchange('0'.repeat(43)), 'invalid_grant')
    assert.equal(other.description, err.description, 'one description for every bad code')
  })

  it('PKCE: the verifier must match, must be sent when a challenge was, and must not be when none was', async () => {
    const { verifier, challenge } = pkcePair()
    const withChallenge = { code_challenge: challenge, code_challenge_method: 'S256' }
    await oauthError(exchange(await codeFor(withChallenge)), 'invalid_grant')
    await oauthError(exchange(await codeFor(withChallenge), { code_verifier: pkcePair().verifier }), 'invalid_grant')
    await oauthError(exchange(await codeFor(withChallenge), { code_verifier: `${verifier}!` }), 'invalid_grant')
    const tooShort = verifier.slice(0, 42)
    await oauthError(exchange(await codeFor(withChallenge), { code_verifier: tooShort }), 'invalid_grant')
    const err = await oauthError(exchange(await codeFor({}), { code_verifier: verifier }), 'invalid_grant')
    assert.match(err.description, /no code_challenge/)
    assert.match((await exchange(await codeFor(withChallenge), { code_verifier: verifier })).accessToken, /^[0-9a-f]{64}$/)
  })

  it('redirect_uri: repeated exactly when the request named one; when it did not, only a registered one may be sent', async () => {
    await oauthError(exchange(await codeFor({ redirect_uri: CALLBACK })), 'invalid_grant')
    await oauthError(exchange(await codeFor({ redirect_uri: CALLBACK }), { redirect_uri: `${CALLBACK}/` }), 'invalid_grant')
    assert.ok((await exchange(await codeFor({}))).accessToken, 'a code whose request named no redirect_uri needs none back')
    await oauthError(exchange(await codeFor({}), { redirect_uri: 'https://evil.example/' }), 'invalid_grant')
    assert.ok((await exchange(await codeFor({}), { redirect_uri: CALLBACK })).accessToken, 'a registered one is fine')

    const two = await publicApp(ctx, { redirectUris: [CALLBACK, 'https://partner.example/second'] })
    const req = await validateAuthorizationRequest(ctx, { client_id: two.app.clientId, redirect_uri: 'https://partner.example/second' }, true)
    const code = new URL(await approveAuthorization(ctx, req, { userId, tenantId, shownScopes: req.scopes, actor: consenter })).searchParams.get('code')!
    const swap = { grant_type: 'authorization_code', code, client_id: two.app.clientId, client_secret: two.secret }
    await oauthError(token({ ...swap, redirect_uri: CALLBACK }), 'invalid_grant')
    assert.ok((await token({ ...swap, redirect_uri: 'https://partner.example/second' })).accessToken, 'a mismatch does not spend the code')
  })

  it("a code is the issuing client's only, and expires after codeTtl", async () => {
    const code = await codeFor({})
    const stranger = await publicApp(ctx)
    await oauthError(token({ grant_type: 'authorization_code', code, client_id: stranger.app.clientId, client_secret: stranger.secret }), 'invalid_grant')
    assert.ok((await exchange(code)).accessToken, 'a foreign attempt does not spend the code')
    const late = await codeFor({})
    t.advance(ctx.config.codeTtl * 1000)
    await oauthError(exchange(late), 'invalid_grant')
    t.advance(-ctx.config.codeTtl * 1000)
  })

  it('only the parameters of the grant reach it: a stray target_id cannot change the tenant', async () => {
    const other = await tenant(ctx)
    const res = await exchange(await codeFor({}), { target_id: other.id, scope: 'everything' })
    assert.equal(res.tenantId, tenantId)
  })
})

describe('introspection (RFC 7662) and revocation (RFC 7009)', () => {
  it('a client sees its own tokens; another client sees them inactive; a resource server sees all', async () => {
    const owner = await privateApp(ctx)
    const other = await privateApp(ctx)
    const rs = await privateApp(ctx, { scopes: `api ${introspectAllScope}` })
    const jwt = (await token({ grant_type: 'client_credentials', client_id: owner.app.clientId, client_secret: owner.secret })).accessToken
    const ask = (c: { app: App; secret: string }, tok: string) => introspectionEndpoint(ctx, { params: { token: tok }, authorization: basic(c.app.clientId, c.secret) })
    const mine = await ask(owner, jwt)
    assert.equal(mine.active, true)
    assert.equal((mine as Record<string, unknown>).client_id, owner.app.clientId)
    assert.equal((mine as Record<string, unknown>).token_type, 'Bearer')
    assert.deepEqual(await ask(other, jwt), { active: false })
    assert.equal((await ask(rs, jwt)).active, true)
    for (const junk of ['junk', 'a.b.c', '0'.repeat(64), `${jwt}x`]) assert.deepEqual(await ask(owner, junk), { active: false }, junk)
    await oauthError(introspectionEndpoint(ctx, { params: {}, authorization: basic(owner.app.clientId, owner.secret) }), 'invalid_request')
    await oauthError(introspectionEndpoint(ctx, { params: { token: jwt }, authorization: basic(owner.app.clientId, 'wrong') }), 'invalid_client')
  })

  it("revokes a client's own opaque token, ignores others' and unknown ones, and refuses to revoke a JWT alone", async () => {
    const { app, secret } = await publicApp(ctx)
    const p = await person(ctx)
    const req = await validateAuthorizationRequest(ctx, { client_id: app.clientId }, true)
    const issue = async () => {
      const code = new URL(
        await approveAuthorization(ctx, req, { userId: p.user.id, tenantId: p.tenant.id, shownScopes: req.scopes, actor: personActor(p.user, '127.0.0.1') }),
      ).searchParams.get('code')!
      return (await token({ grant_type: 'authorization_code', code, client_id: app.clientId, client_secret: secret })).accessToken
    }
    const opaque = await issue()
    const stranger = await publicApp(ctx)
    await revocationEndpoint(ctx, { params: { token: opaque }, authorization: basic(stranger.app.clientId, stranger.secret) })
    assert.ok(await authenticateAccessToken(ctx, opaque), "another client's revocation does nothing")
    await revocationEndpoint(ctx, { params: { token: 'f'.repeat(64) }, authorization: basic(app.clientId, secret) })
    await revocationEndpoint(ctx, { params: { token: opaque }, authorization: basic(app.clientId, secret) })
    await oauthError(authenticateAccessToken(ctx, opaque), 'invalid_token')
    const priv = await privateApp(ctx)
    const jwt = (await token({ grant_type: 'client_credentials', client_id: priv.app.clientId, client_secret: priv.secret })).accessToken
    await oauthError(revocationEndpoint(ctx, { params: { token: jwt }, authorization: basic(priv.app.clientId, priv.secret) }), 'unsupported_token_type')
    await oauthError(revocationEndpoint(ctx, { params: {}, authorization: basic(app.clientId, secret) }), 'invalid_request')

    const connection = await issue()
    const sibling = await issue()
    assert.equal(await disconnectByToken(ctx, connection), true)
    assert.equal(await disconnectByToken(ctx, connection), false, 'only the call that did it says so')
    await oauthError(authenticateAccessToken(ctx, sibling), 'invalid_token')
    assert.equal(await ctx.storage.findActiveGrant(app.id, p.tenant.id), undefined, 'the connection is gone')
    assert.equal(await disconnectByToken(ctx, 'not-hex'), false)
    await oauthError(disconnectByToken(ctx, undefined), 'invalid_request')
  })
})

/**
 * The authorization endpoint's steps (RFC 6749 §4.1, RFC 7636, RFC 9207, RFC 9700), called directly on
 * a real SQLite store: the client and exact redirect-URI matching, state, response_type, scope and
 * PKCE checks, where errors go (a page or the redirect URI), consentable tenants, approval and denial.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import {
  cliActor,
  personActor,
  AuthorizationPageError,
  AuthorizationRedirectError,
  ConsentOutdated,
  approveAuthorization,
  authorizationResponse,
  consentableTenants,
  createApp,
  createUser,
  denyAuthorization,
  validateAuthorizationRequest,
  type App,
  type CoreContext,
  type User,
} from '@fieldgate/core'
import { CALLBACK, ISSUER, PASSWORD, openContext, person, pkcePair, privateApp, publicApp, tenant, type TestContext } from './context.js'

let t: TestContext
let ctx: CoreContext
let app: App
before(async () => {
  t = await openContext()
  ctx = t.ctx
  app = (await publicApp(ctx, { redirectUris: [CALLBACK, 'https://partner.example/other?keep=1'] })).app
})
after(() => t.close())

const validate = (params: Record<string, string>, signedIn = true) => validateAuthorizationRequest(ctx, params, signedIn)

async function pageError(p: Promise<unknown>): Promise<AuthorizationPageError> {
  const err = await p.then(
    () => assert.fail('accepted'),
    (e: unknown) => e,
  )
  assert.ok(err instanceof AuthorizationPageError, `not a page error: ${String(err)}`)
  return err
}
async function redirectError(p: Promise<unknown>): Promise<{ url: URL; err: AuthorizationRedirectError }> {
  const err = await p.then(
    () => assert.fail('accepted'),
    (e: unknown) => e,
  )
  assert.ok(err instanceof AuthorizationRedirectError, `not a redirect error: ${String(err)}`)
  return { url: new URL(err.location), err }
}

describe('the client and its redirect URI (errors are a page, never a redirect)', () => {
  it('refuses a missing, unknown or absurd client_id', async () => {
    for (const clientId of [undefined, '', 'no-such-client', 'x'.repeat(300), 'a\u0000b']) {
      await pageError(validate(clientId === undefined ? {} : { client_id: clientId }))
    }
  })

  it('matches redirect_uri exactly: no normalisation, no prefixes, no patterns', async () => {
    assert.equal((await validate({ client_id: app.clientId, redirect_uri: CALLBACK })).redirectUri, CALLBACK)
    assert.equal((await validate({ client_id: app.clientId, redirect_uri: 'https://partner.example/other?keep=1' })).redirectUri, 'https://partner.example/other?keep=1')
    for (const near of [
      `${CALLBACK}/`,
      `${CALLBACK}?x=1`,
      `${CALLBACK}#frag`,
      'https://PARTNER.example/callback',
      'http://partner.example/callback',
      'https://partner.example:443/callback',
      'https://partner.example/callback/../callback',
      'https://partner.example/CALLBACK',
      'https://partner.example.evil.example/callback',
      'https://partner.example/other',
      ` ${CALLBACK}`,
    ]) {
      const err = await pageError(validate({ client_id: app.clientId, redirect_uri: near }))
      assert.match(err.message, /not registered/, near)
    }
  })

  it('uses the only registered URI when none is named, and asks for one when there are several or none', async () => {
    const single = (await publicApp(ctx)).app
    const req = await validate({ client_id: single.clientId })
    assert.equal(req.redirectUri, CALLBACK)
    assert.equal(req.requestedRedirectUri, null, 'the code remembers that none was named')
    assert.match((await pageError(validate({ client_id: app.clientId }))).message, /which of its redirect URIs/)
    const none = (await createApp(ctx, cliActor, { name: 'Install only', kind: 'public', environment: 'live', installUrl: 'https://partner.example/install' })).app
    assert.match((await pageError(validate({ client_id: none.clientId }))).message, /no redirect URI/)
  })

  it('refuses a state over 2048 characters as a page, and keeps one at the limit', async () => {
    await pageError(validate({ client_id: app.clientId, redirect_uri: CALLBACK, state: 's'.repeat(2049) }))
    assert.equal((await validate({ client_id: app.clientId, redirect_uri: CALLBACK, state: 's'.repeat(2048) })).state?.length, 2048)
  })
})

describe('the rest of the request (errors go to the client once someone is signed in)', () => {
  const base = () => ({ client_id: app.clientId, redirect_uri: CALLBACK, state: 'st&ate=1' })

  it('response_type defaults to code; anything else is unsupported_response_type, with state and iss', async () => {
    assert.equal((await validate(base())).app.id, app.id)
    const { url, err } = await redirectError(validate({ ...base(), response_type: 'token' }))
    assert.equal(err.error.error, 'unsupported_response_type')
    assert.equal(url.origin + url.pathname, CALLBACK)
    assert.equal(url.searchParams.get('error'), 'unsupported_response_type')
    assert.equal(url.searchParams.get('state'), 'st&ate=1')
    assert.equal(url.searchParams.get('iss'), ISSUER)
  })

  it('shows the error as a page instead while nobody is signed in (RFC 9700 §4.11.2)', async () => {
    const err = await pageError(validate({ ...base(), response_type: 'token' }, false))
    assert.match(err.message, /cannot answer/)
  })

  it('scope: none asks for every registered scope; duplicates go; unknown or malformed is invalid_scope', async () => {
    assert.deepEqual((await validate(base())).scopes, app.scopes)
    assert.deepEqual((await validate({ ...base(), scope: 'maps:write  maps:write' })).scopes, ['maps:write'])
    for (const scope of ['maps:write vehicles:write', 'api', 'maps:write "x"']) {
      const { url } = await redirectError(validate({ ...base(), scope }))
      assert.equal(url.searchParams.get('error'), 'invalid_scope', scope)
    }
  })

  it('PKCE: S256 only, 43 base64url characters; plain, no method, or a method alone are refused', async () => {
    const { challenge } = pkcePair()
    assert.equal((await validate({ ...base(), code_challenge: challenge, code_challenge_method: 'S256' })).codeChallenge, challenge)
    assert.equal((await validate(base())).codeChallenge, null)
    const refused: Record<string, string>[] = [
      { code_challenge: challenge },
      { code_challenge: challenge, code_challenge_method: 'plain' },
      { code_challenge: challenge, code_challenge_method: 's256' },
      { code_challenge: challenge.slice(1), code_challenge_method: 'S256' },
      { code_challenge: `${challenge}A`, code_challenge_method: 'S256' },
      { code_challenge: `${challenge.slice(1)}+`, code_challenge_method: 'S256' },
      { code_challenge_method: 'S256' },
    ]
    for (const extra of refused) {
      const { url } = await redirectError(validate({ ...base(), ...extra }))
      assert.equal(url.searchParams.get('error'), 'invalid_request', JSON.stringify(extra))
    }
  })
})

describe('authorizationResponse (RFC 9207)', () => {
  it("adds the parameters, state as sent and iss, keeping the redirect URI's own query", () => {
    const url = new URL(authorizationResponse(ctx, { redirectUri: 'https://partner.example/other?keep=1', state: 'a b' }, { code: 'c0de' }))
    assert.deepEqual(
      [...url.searchParams],
      [
        ['keep', '1'],
        ['code', 'c0de'],
        ['state', 'a b'],
        ['iss', ISSUER],
      ],
    )
    const stateless = new URL(authorizationResponse(ctx, { redirectUri: CALLBACK, state: undefined }, { error: 'access_denied' }))
    assert.equal(stateless.searchParams.has('state'), false)
  })
})

describe('consent', () => {
  let owner: { user: User; tenantId: string }
  before(async () => {
    const p = await person(ctx, 'owner')
    owner = { user: p.user, tenantId: p.tenant.id }
  })
  const consent = (scopes: readonly string[], tenantId = owner.tenantId) => ({ userId: owner.user.id, tenantId, shownScopes: scopes, actor: personActor(owner.user, '127.0.0.1') })

  it('offers the tenants where the person is owner or admin, of the app’s environment; a private app only its own', async () => {
    const member = await person(ctx, 'member')
    const admin = await person(ctx, 'admin')
    const sandbox = await tenant(ctx, 'sandbox')
    await ctx.storage.addMembership({ userId: admin.user.id, tenantId: sandbox.id, role: 'owner' })
    assert.deepEqual(
      (await consentableTenants(ctx, owner.user.id, app)).map((x) => x.id),
      [owner.tenantId],
    )
    assert.deepEqual(await consentableTenants(ctx, member.user.id, app), [], 'a member may not connect apps')
    assert.deepEqual(
      (await consentableTenants(ctx, admin.user.id, app)).map((x) => x.id),
      [admin.tenant.id],
      'no sandbox tenant for a live app',
    )
    const priv = await privateApp(ctx)
    assert.deepEqual(await consentableTenants(ctx, owner.user.id, priv.app), [], "another tenant's private app")
    const colleague = await createUser(ctx, cliActor, { email: `c-${Date.now()}@farm.example`, password: PASSWORD, tenantId: priv.tenant.id, role: 'admin' })
    assert.deepEqual(
      (await consentableTenants(ctx, colleague.id, priv.app)).map((x) => x.id),
      [priv.tenant.id],
    )
  })

  it('approval makes the grant with exactly the scopes shown and a single-use code bound to the request', async () => {
    const { challenge } = pkcePair()
    const req = await validate({ client_id: app.clientId, redirect_uri: CALLBACK, scope: 'maps:write', state: 's1', code_challenge: challenge, code_challenge_method: 'S256' })
    const location = new URL(await approveAuthorization(ctx, req, consent(['maps:write'])))
    assert.equal(location.origin + location.pathname, CALLBACK)
    assert.equal(location.searchParams.get('state'), 's1')
    assert.equal(location.searchParams.get('iss'), ISSUER)
    const code = location.searchParams.get('code')!
    assert.match(code, /^[A-Za-z0-9_-]{40,}$/)
    const grant = await ctx.storage.findActiveGrant(app.id, owner.tenantId)
    assert.deepEqual(grant?.scopes, ['maps:write'])
    const audit = await ctx.storage.listAudit({ limit: 50 })
    assert.ok(
      audit.some((e) => e.action === 'consent.granted' && e.objectId === grant!.id),
      'the consent is in the audit log',
    )
  })

  it('a later consent widens the same grant', async () => {
    const req = await validate({ client_id: app.clientId, redirect_uri: CALLBACK, scope: 'fields:read:all' })
    await approveAuthorization(ctx, req, consent(['fields:read:all']))
    const grants = (await ctx.storage.listGrants({ tenantId: owner.tenantId })).filter((g) => g.appId === app.id && g.status === 'active')
    assert.equal(grants.length, 1)
    assert.deepEqual([...grants[0]!.scopes].sort(), ['fields:read:all', 'maps:write'])
  })

  it('refuses scopes other than those shown (ConsentOutdated) and a tenant the person cannot connect (403)', async () => {
    const req = await validate({ client_id: app.clientId, redirect_uri: CALLBACK })
    await assert.rejects(approveAuthorization(ctx, req, consent(['maps:write'])), ConsentOutdated)
    const elsewhere = await tenant(ctx, 'live')
    const err = await pageError(approveAuthorization(ctx, req, consent(req.scopes, elsewhere.id)))
    assert.equal(err.status, 403)
    assert.equal(await ctx.storage.findActiveGrant(app.id, elsewhere.id), undefined)
  })

  it('denial answers access_denied and stores nothing', async () => {
    const fresh = (await publicApp(ctx)).app
    const req = await validate({ client_id: fresh.clientId, state: 'd' })
    const url = new URL(denyAuthorization(ctx, req, personActor(owner.user, '127.0.0.1')))
    assert.equal(url.searchParams.get('error'), 'access_denied')
    assert.equal(url.searchParams.get('state'), 'd')
    assert.equal(url.searchParams.get('iss'), ISSUER)
    assert.deepEqual(
      (await ctx.storage.listGrants()).filter((g) => g.appId === fresh.id),
      [],
    )
  })
})

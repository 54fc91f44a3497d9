/**
 * Refresh tokens' lifetimes on a clock the test moves (OAuth 2.1 §4.3, RFC 9700 §4.14.2): the short
 * access token beside each, the sliding idle lifetime, the absolute one, and a replayed code ending the
 * family it began. The HTTP journey is server/test/oauth21.test.ts.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { OAuthError, authenticateAccessToken, cliActor, createApp, tokenEndpoint, type App, type CoreContext, type Params, type User } from '@fieldgate/core'
import { connectPublicClient, openContext, person, type TestContext } from './context.js'

const REDIRECT = 'http://127.0.0.1/cb'
let t: TestContext
let ctx: CoreContext
let app: App
let owner: User
let tenantId: string
before(async () => {
  t = await openContext()
  ctx = t.ctx
  const p = await person(ctx)
  owner = p.user
  tenantId = p.tenant.id
  app = (await createApp(ctx, cliActor, { name: 'Agent', kind: 'public', environment: 'live', scopes: 'api', redirectUris: [REDIRECT], publicClient: true })).app
})
after(() => t.close())

const token = (params: Params) => tokenEndpoint(ctx, { params: { client_id: app.clientId, ...params }, authorization: undefined })

const connect = () => connectPublicClient(ctx, app, owner, tenantId, REDIRECT)

async function refused(promise: Promise<unknown>, error: string): Promise<void> {
  const err = await promise.then(
    () => assert.fail('accepted'),
    (e: unknown) => e,
  )
  assert.ok(err instanceof OAuthError && err.error === error, String(err))
}

const { accessTokenSeconds, idleSeconds, maxSeconds } = { accessTokenSeconds: 900, idleSeconds: 14 * 86400, maxSeconds: 90 * 86400 }

describe('refresh-token lifetimes', () => {
  it('uses the defaults the settings table documents', () => {
    assert.deepEqual(ctx.config.refresh, { accessTokenSeconds, idleSeconds, maxSeconds })
  })

  it('the access token beside a refresh token lives 15 minutes, then a refresh gives another', async () => {
    const { result } = await connect()
    assert.equal(result.expiresIn, accessTokenSeconds)
    await authenticateAccessToken(ctx, result.accessToken)
    t.advance(accessTokenSeconds * 1000)
    await assert.rejects(authenticateAccessToken(ctx, result.accessToken), /expired/)
    const next = await token({ grant_type: 'refresh_token', refresh_token: result.refreshToken! })
    await authenticateAccessToken(ctx, next.accessToken)
  })

  it('a refresh token unused for the idle lifetime is refused; each use slides it', async () => {
    const { result } = await connect()
    t.advance((idleSeconds - 60) * 1000)
    const slid = await token({ grant_type: 'refresh_token', refresh_token: result.refreshToken! })
    t.advance((idleSeconds - 60) * 1000)
    const again = await token({ grant_type: 'refresh_token', refresh_token: slid.refreshToken! })
    t.advance(idleSeconds * 1000)
    await refused(token({ grant_type: 'refresh_token', refresh_token: again.refreshToken! }), 'invalid_grant')
  })

  it('no family outlives the absolute lifetime, however often refreshed', async () => {
    let { result } = await connect()
    for (let elapsed = 0; elapsed + 10 * 86400 < maxSeconds; elapsed += 10 * 86400) {
      t.advance(10 * 86400 * 1000)
      result = await token({ grant_type: 'refresh_token', refresh_token: result.refreshToken! })
    }
    t.advance(10 * 86400 * 1000)
    await refused(token({ grant_type: 'refresh_token', refresh_token: result.refreshToken! }), 'invalid_grant')
  })

  it('a replayed code ends the refresh family it began (RFC 6749 §4.1.2)', async () => {
    const { result, code, verifier } = await connect()
    await refused(token({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier }), 'invalid_grant')
    await refused(token({ grant_type: 'refresh_token', refresh_token: result.refreshToken! }), 'invalid_grant')
  })

  it('a malformed, unknown or foreign refresh token is the same invalid_grant', async () => {
    const other = (await createApp(ctx, cliActor, { name: 'Other', kind: 'public', environment: 'live', scopes: 'api', redirectUris: [REDIRECT], publicClient: true })).app
    const { result } = await connect()
    for (const value of ['', 'x', `fgrt_${'A'.repeat(43)}`, 'a\u0000b']) {
      await refused(token({ grant_type: 'refresh_token', refresh_token: value }), value === '' ? 'invalid_request' : 'invalid_grant')
    }
    await refused(
      tokenEndpoint(ctx, { params: { client_id: other.clientId, grant_type: 'refresh_token', refresh_token: result.refreshToken! }, authorization: undefined }),
      'invalid_grant',
    )
  })
})

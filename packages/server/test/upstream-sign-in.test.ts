import assert from 'node:assert/strict'
import { after, afterEach, before, describe, it } from 'node:test'
import type { Browser, BrowserContext, Page } from 'playwright-core'
import { cliActor, createApp, createTenant, createUser, hashSecret, setMembership, type App, type Tenant, type UpstreamProvider } from '@fieldgate/core'
import { freePort, postForm, startServer, type TestServer } from './helpers.js'
import { browserSkip, launchBrowser, startPartner, type Partner } from './browser.js'
import { startIdp, type Idp } from './support/idp.js'
import { Upstreams, transactionCookie } from '../src/oidc/upstream.js'
import { browserCookie, sessionCookie } from '../src/plugins/browser.js'

/**
 * Sign-in with the platform's own identity provider: a real oidc-provider on loopback as the upstream,
 * the whole fieldmargin consent flow through it in chromium, and each way it can fail as a page.
 */

const NAME = 'Acme Farms ID'
const STATE = 'xyz 1'

const providerFor = (idp: Idp, over: Partial<UpstreamProvider> = {}): UpstreamProvider => ({
  id: 'default',
  name: NAME,
  issuer: idp.issuer,
  clientId: idp.clientId,
  clientSecret: idp.clientSecret,
  scopes: ['openid', 'email', 'profile'],
  tenantsClaim: 'tenants',
  ...over,
})

/** The cookies a response set, as one Cookie header with those sent before. */
function cookies(prev: string, setCookie: string[]): string {
  const jar = new Map(
    prev
      .split('; ')
      .filter(Boolean)
      .map((c) => [c.split('=')[0]!, c] as const),
  )
  for (const c of setCookie) {
    const pair = c.split(';')[0]!
    jar.set(pair.split('=')[0]!, pair)
  }
  return [...jar.values()].join('; ')
}

describe('upstream sign-in: the platform identity provider', () => {
  let server: TestServer
  let idp: Idp
  let partner: Partner
  let browser: Browser | undefined
  let app: App
  let clientSecret: string
  let farmA: Tenant
  let farmB: Tenant
  const contexts: BrowserContext[] = []

  before(
    async () => {
      partner = await startPartner('/callback', 'Field Mapper', 'Field Mapper got your answer')
      const port = await freePort()
      const origin = `http://127.0.0.1:${port}`
      idp = await startIdp({
        redirectUris: [`${origin}/login/oidc/callback`],
        postLogoutRedirectUris: [`${origin}/login/oidc/signed-out`],
        backchannelLogoutUri: `${origin}/login/oidc/backchannel-logout`,
      })
      server = await startServer({ overrides: { port, upstream: { providers: [providerFor(idp)] } } })
      const created = await createApp(server.runtime.ctx, cliActor, {
        name: 'Field Mapper',
        kind: 'public',
        environment: 'sandbox',
        scopes: 'fields:read:all maps:write',
        redirectUris: [partner.url],
        contactEmail: 'dev@partner.example',
      })
      app = created.app
      clientSecret = created.clientSecret
      farmA = await createTenant(server.runtime.ctx, cliActor, { name: 'North farm', environment: 'sandbox' })
      farmB = await createTenant(server.runtime.ctx, cliActor, { name: 'South farm', environment: 'sandbox' })
      if (!browserSkip) browser = await launchBrowser()
    },
    { timeout: 30_000 },
  )

  afterEach(async () => {
    for (const c of contexts.splice(0)) await c.close().catch(() => {})
  })

  after(async () => {
    await browser?.close().catch(() => {})
    await server?.close()
    await idp?.close()
    await partner?.close()
  })

  async function newPage(): Promise<Page> {
    if (!browser) throw new Error('no browser')
    const context = await browser.newContext()
    contexts.push(context)
    context.setDefaultTimeout(8_000)
    return context.newPage()
  }

  const authorizePath = () =>
    `/authorize?client_id=${encodeURIComponent(app.clientId)}&scope=${encodeURIComponent('fields:read:all maps:write')}&state=${encodeURIComponent(STATE)}`

  /** On Fieldgate's sign-in page: Continue with the provider, sign in there as `login`, consent there, and be back here. */
  async function signInUpstream(page: Page, login: string): Promise<void> {
    assert.equal(new URL(page.url()).pathname, '/login', `expected the sign-in page, got ${page.url()}`)
    await page.getByRole('button', { name: `Continue with ${NAME}` }).click()
    await page.waitForURL((u) => u.origin === idp.issuer)
    await page.locator('input[name=login]').fill(login)
    await page.locator('input[name=password]').fill('any password')
    await page.getByRole('button', { name: 'Sign-in' }).click()
    await page.waitForURL((u) => u.origin === server.origin || u.pathname.includes('/interaction/'))
    const consent = page.getByRole('button', { name: 'Continue' })
    if (new URL(page.url()).origin === idp.issuer && (await consent.count()) > 0) await consent.click()
    await page.waitForURL((u) => u.origin === server.origin)
  }

  const roles = async (userId: string) => Object.fromEntries((await server.storage.listMemberships(userId)).map((m) => [m.tenantId, m.role]))

  it('the fieldmargin journey through the upstream: sign in there, choose the farm, Allow, exchange the code', { skip: browserSkip, timeout: 60_000 }, async () => {
    idp.accounts.set('alice', {
      email: 'alice@acme.example',
      email_verified: true,
      tenants: [
        { tenant_id: farmA.id, role: 'owner' },
        // Members may not connect apps: the farm chooser lists the farms the person owns or administers.
        { tenant_id: farmB.id, role: 'admin' },
        { tenant_id: 'no-such-farm', role: 'owner' },
        { tenant_id: farmB.id, role: 'emperor' },
      ],
    })
    const page = await newPage()
    await page.goto(server.url(authorizePath()))
    assert.equal(new URL(page.url()).pathname, '/login')
    const body = await page.locator('body').innerText()
    assert.match(body, /Signing in to continue to/)
    assert.match(body, /Field Mapper/)
    await signInUpstream(page, 'alice')
    assert.equal(new URL(page.url()).pathname, '/authorize', `back on the consent page, got ${page.url()}`)
    await page.getByLabel('Farm', { exact: true }).selectOption(farmB.id)
    await page.getByRole('button', { name: 'Allow' }).click()
    await page.waitForURL((u) => u.origin === partner.origin)
    const params = new URL(page.url()).searchParams
    assert.equal(params.get('state'), STATE)
    const code = params.get('code')
    assert.ok(code, `a code: ${page.url()}`)
    const res = await postForm(server.url('/v1/token.exchange'), { code, client_id: app.clientId, client_secret: clientSecret })
    assert.equal(res.status, 200, res.text)
    assert.equal(res.json.farm_id, farmB.id)

    const user = await server.storage.getUserByEmail('alice@acme.example')
    assert.ok(user, 'the first sign-in created the account')
    assert.notEqual(user.emailVerifiedAt, null, 'the provider verified the address')
    assert.equal((await server.storage.getUpstreamIdentity(idp.issuer, 'alice'))?.userId, user.id, 'linked by issuer and sub')
    assert.deepEqual(await roles(user.id), { [farmA.id]: 'owner', [farmB.id]: 'admin' }, 'the unknown farm and the unknown role were left out')
  })

  it('applies the tenants claim at every sign-in: roles change, memberships gone upstream go, local ones stay', { skip: browserSkip, timeout: 60_000 }, async () => {
    const local = await createTenant(server.runtime.ctx, cliActor, { name: 'Local farm', environment: 'sandbox' })
    idp.accounts.set('bob', {
      email: 'bob@acme.example',
      email_verified: true,
      tenants: [
        { tenant_id: farmA.id, role: 'member' },
        { tenant_id: farmB.id, role: 'admin' },
      ],
    })
    let page = await newPage()
    await page.goto(server.url('/login'))
    await signInUpstream(page, 'bob')
    const bob = (await server.storage.getUserByEmail('bob@acme.example'))!
    assert.deepEqual(await roles(bob.id), { [farmA.id]: 'member', [farmB.id]: 'admin' })
    await setMembership(server.runtime.ctx, cliActor, { tenantId: local.id, email: bob.email, role: 'member' })

    idp.accounts.set('bob', { email: 'bob@acme.example', email_verified: true, tenants: [{ tenant_id: farmA.id, role: 'admin' }] })
    page = await newPage()
    await page.goto(server.url('/login'))
    await signInUpstream(page, 'bob')
    assert.deepEqual(await roles(bob.id), { [farmA.id]: 'admin', [local.id]: 'member' }, 'B removed upstream is removed here; the local farm stays')
    const audit = await server.storage.listAudit({ tenantIds: [farmA.id, farmB.id], limit: 50 })
    assert.ok(audit.some((e) => e.action === 'membership.removed' && e.tenantId === farmB.id && e.objectId === bob.id && e.details.upstream === idp.issuer))
    assert.ok(audit.some((e) => e.action === 'membership.changed' && e.tenantId === farmA.id && e.details.role === 'admin' && e.details.from === 'member'))

    // Nothing left upstream: a clear page, signed in still (the developer portal needs no farm).
    idp.accounts.set('bob', { email: 'bob@acme.example', email_verified: true, tenants: [] })
    await server.storage.removeMembership(bob.id, local.id)
    page = await newPage()
    await page.goto(server.url('/login'))
    await signInUpstream(page, 'bob')
    assert.equal(new URL(page.url()).pathname, '/login/oidc/no-tenant')
    assert.match(await page.locator('body').innerText(), /gives your account no farm here/)
    assert.deepEqual(await roles(bob.id), {})
  })

  it('refuses an unverified email, and a same-address account never confirmed here, with a clear page', { skip: browserSkip, timeout: 60_000 }, async () => {
    idp.accounts.set('carol', { email: 'carol@acme.example', email_verified: false })
    let page = await newPage()
    await page.goto(server.url('/login'))
    await signInUpstream(page, 'carol')
    assert.match(await page.locator('body').innerText(), /has not verified your email address carol@acme\.example/)
    assert.equal(await server.storage.getUserByEmail('carol@acme.example'), undefined)

    // Someone made an account with dave's address here and never confirmed it: no link (pre-hijacking).
    await server.storage.createUser(
      {
        id: crypto.randomUUID(),
        email: 'dave@acme.example',
        passwordHash: 'x',
        createdAt: Date.now(),
        sandboxTenantId: null,
        emailVerifiedAt: null,
        operator: false,
        suspendedAt: null,
        suspendedReason: null,
      },
      [],
    )
    idp.accounts.set('dave', { email: 'dave@acme.example', email_verified: true })
    page = await newPage()
    await page.goto(server.url('/login'))
    await signInUpstream(page, 'dave')
    assert.match(await page.locator('body').innerText(), /never confirmed/)
    assert.equal(await server.storage.getUpstreamIdentity(idp.issuer, 'dave'), undefined)
  })

  it('signs out at the provider too (RP-initiated logout), and a back-channel logout token ends the session', { skip: browserSkip, timeout: 60_000 }, async () => {
    idp.accounts.set('erin', { email: 'erin@acme.example', email_verified: true, tenants: [{ tenant_id: farmA.id, role: 'member' }] })
    let page = await newPage()
    await page.goto(server.url('/connected-apps'))
    await signInUpstream(page, 'erin')
    assert.equal(new URL(page.url()).pathname, '/connected-apps')
    await page.getByRole('button', { name: 'Sign out' }).click()
    await page.waitForURL((u) => u.origin === idp.issuer)
    await page.getByRole('button', { name: 'Yes, sign me out' }).click()
    await page.waitForURL((u) => u.origin === server.origin && u.pathname === '/login')
    assert.match(await page.locator('body').innerText(), /You are signed out/)

    // Back-channel: signed in again, then the provider says the session ended.
    page = await newPage()
    await page.goto(server.url('/connected-apps'))
    await signInUpstream(page, 'erin')
    const cookie = (await page.context().cookies()).find((c) => c.name === 'fg_session')!
    const upstream = await server.storage.getUpstreamSession(hashSecret(cookie.value))
    assert.ok(upstream?.sid, 'the provider gave a sid')
    const now = Math.floor(Date.now() / 1000)
    const token = (over: Record<string, unknown> = {}) =>
      idp.sign({
        iss: idp.issuer,
        aud: idp.clientId,
        iat: now,
        jti: crypto.randomUUID(),
        events: { 'http://schemas.openid.net/event/backchannel-logout': {} },
        sid: upstream.sid!,
        ...over,
      })
    const logout = (logout_token: string) => postForm(server.url('/login/oidc/backchannel-logout'), { logout_token })
    for (const bad of [await token({ aud: 'someone-else' }), await token({ nonce: 'n' }), await token({ events: {} }), `${await token()}x`]) {
      const res = await logout(bad)
      assert.equal(res.status, 400, res.text)
      assert.equal(res.json.error, 'invalid_request')
    }
    assert.ok(await server.storage.getSession(hashSecret(cookie.value), Date.now()), 'refused tokens end nothing')
    const res = await logout(await token())
    assert.equal(res.status, 200, res.text)
    assert.equal(res.headers.get('cache-control'), 'no-store')
    assert.equal(await server.storage.getSession(hashSecret(cookie.value), Date.now()), undefined)
    await page.goto(server.url('/connected-apps'))
    assert.equal(new URL(page.url()).pathname, '/login')
  })

  // ---- over HTTP: a transaction started for real, then a callback the provider could send ----

  async function started(target: TestServer): Promise<{ cookie: string; state: string; location: string; status: number; text: string }> {
    const login = await target.app.inject({ method: 'GET', url: '/login' })
    const csrf = /name="csrf" value="([^"]+)"/.exec(login.body)?.[1] ?? ''
    let cookie = cookies('', [login.headers['set-cookie'] ?? []].flat())
    const res = await target.app.inject({
      method: 'POST',
      url: '/login/oidc/start',
      headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' },
      payload: new URLSearchParams({ csrf, provider: 'default', return_to: '/connected-apps' }).toString(),
    })
    cookie = cookies(cookie, [res.headers['set-cookie'] ?? []].flat())
    const location = String(res.headers.location ?? '')
    return { cookie, state: location ? (new URL(location).searchParams.get('state') ?? '') : '', location, status: res.statusCode, text: res.body }
  }

  it('starts with a POST carrying CSRF: PKCE S256, state and nonce to the provider, the transaction sealed in a cookie', async () => {
    const s = await started(server)
    assert.equal(s.status, 303, s.text)
    const url = new URL(s.location)
    assert.equal(url.origin, idp.issuer)
    assert.equal(url.searchParams.get('code_challenge_method'), 'S256')
    assert.equal(url.searchParams.get('redirect_uri'), `${server.origin}/login/oidc/callback`)
    assert.ok((url.searchParams.get('nonce') ?? '').length >= 32)
    assert.ok(s.state.length >= 32)
    assert.match(s.cookie, /fg_upstream=v1\./)
    const noCsrf = await server.app.inject({
      method: 'POST',
      url: '/login/oidc/start',
      payload: 'provider=default',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    })
    assert.equal(noCsrf.statusCode, 303)
    assert.equal(noCsrf.headers.location, '/login')
  })

  it('a nonce that is not the one sent: the ID token is refused with a clear page and nobody is signed in', { skip: browserSkip, timeout: 60_000 }, async () => {
    idp.accounts.set('nell', { email: 'nell@acme.example', email_verified: true })
    const page = await newPage()
    await page.goto(server.url('/login'))
    await page.getByRole('button', { name: `Continue with ${NAME}` }).click()
    await page.waitForURL((u) => u.origin === idp.issuer)
    // The browser's transaction, opened and sealed again with another nonce than the one the provider got.
    // Every cookie of the context: the transaction's is scoped to the callback's path.
    const cookies = await page.context().cookies()
    const sealed = cookies.find((c) => c.name === transactionCookie)
    const browserId = cookies.find((c) => c.name === browserCookie)?.value
    const upstreams = new Upstreams(server.config.upstream.providers, server.issuer, server.runtime.masterKey)
    const transaction = upstreams.open(sealed?.value, browserId, Date.now())
    assert.ok(transaction && browserId && sealed, 'the sign-in left its sealed transaction in the browser')
    await page.context().addCookies([{ ...sealed, value: upstreams.seal({ ...transaction, nonce: `${transaction.nonce}x` }, browserId) }])
    await page.locator('input[name=login]').fill('nell')
    await page.locator('input[name=password]').fill('any password')
    await page.getByRole('button', { name: 'Sign-in' }).click()
    await page.waitForURL((u) => u.origin === server.origin || u.pathname.includes('/interaction/'))
    const consent = page.getByRole('button', { name: 'Continue' })
    if (new URL(page.url()).origin === idp.issuer && (await consent.count()) > 0) await consent.click()
    await page.waitForURL((u) => u.origin === server.origin)
    assert.match(await page.locator('main').innerText(), /could not be checked/)
    assert.equal(
      (await page.context().cookies(server.origin)).some((c) => c.name === sessionCookie),
      false,
      'no session',
    )
    assert.equal(await server.storage.getUpstreamIdentity(idp.issuer, 'nell'), undefined)
    assert.equal(await server.storage.getUserByEmail('nell@acme.example'), undefined)
  })

  it('access_denied at the provider, a bad state, and no transaction each get a clear page, never a 500', async () => {
    const s = await started(server)
    const callback = (query: string, cookie = s.cookie) => server.app.inject({ method: 'GET', url: `/login/oidc/callback?${query}`, headers: { cookie } })
    const denied = await callback(`error=access_denied&state=${encodeURIComponent(s.state)}`)
    assert.equal(denied.statusCode, 403)
    assert.match(denied.body, /You did not allow signing in here/)
    const again = await started(server)
    const badState = await callback('code=abc&state=not-the-state', again.cookie)
    assert.equal(badState.statusCode, 400)
    assert.match(badState.body, /did not start here/)
    const none = await callback(`code=abc&state=${encodeURIComponent(again.state)}`, '')
    assert.equal(none.statusCode, 400)
    assert.match(none.body, /This sign-in cannot go on/)
    // A code the provider never issued, with the right state: refused by the provider, a page here.
    const third = await started(server)
    const forged = await callback(`code=forged&state=${encodeURIComponent(third.state)}&iss=${encodeURIComponent(idp.issuer)}`, third.cookie)
    assert.equal(forged.statusCode, 400, forged.body)
    assert.match(forged.body, /could not be checked/)
  })

  it('a provider that is down, and one answering as another issuer, get a 503 page on start', async () => {
    const closed = await freePort()
    const down = await startServer({ listen: false, overrides: { upstream: { providers: [providerFor(idp, { issuer: `http://127.0.0.1:${closed}` })] } } })
    const wrong = await startServer({ listen: false, overrides: { upstream: { providers: [providerFor(idp, { issuer: idp.issuer.replace('127.0.0.1', 'localhost') })] } } })
    try {
      const d = await started(down)
      assert.equal(d.status, 503, d.text)
      assert.match(d.text, /cannot be reached right now/)
      const w = await started(wrong)
      assert.equal(w.status, 503, w.text)
      assert.match(w.text, /another issuer/)
    } finally {
      await down.close()
      await wrong.close()
    }
  })

  it('with password sign-in off, the page offers only the provider and POST /login refuses; a linked account never signs in by password', async () => {
    const off = await startServer({ listen: false, overrides: { upstream: { passwordSignIn: false, providers: [providerFor(idp)] } } })
    try {
      const page = await off.app.inject({ method: 'GET', url: '/login' })
      assert.equal(page.statusCode, 200)
      assert.match(page.body, new RegExp(`Continue with ${NAME}`))
      assert.doesNotMatch(page.body, /name="password"/)
      const csrf = /name="csrf" value="([^"]+)"/.exec(page.body)?.[1] ?? ''
      const cookie = cookies('', [page.headers['set-cookie'] ?? []].flat())
      await createUser(off.runtime.ctx, cliActor, { email: 'pw@acme.example', password: 'a long enough password' })
      const res = await off.app.inject({
        method: 'POST',
        url: '/login',
        headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' },
        payload: new URLSearchParams({ csrf, email: 'pw@acme.example', password: 'a long enough password', return_to: '/connected-apps' }).toString(),
      })
      assert.equal(res.statusCode, 403)
      assert.match(res.body, /Sign-in with a password is off here/)
      assert.equal(String(res.headers['set-cookie'] ?? '').includes('fg_session='), false)
    } finally {
      await off.close()
    }
    const u = await createUser(server.runtime.ctx, cliActor, { email: 'linked@acme.example', password: 'a long enough password' })
    await server.storage.saveUpstreamIdentity({ issuer: idp.issuer, subject: 'linked', userId: u.id, createdAt: Date.now(), lastSignInAt: Date.now() })
    const login = await server.app.inject({ method: 'GET', url: '/login' })
    const csrf = /name="csrf" value="([^"]+)"/.exec(login.body)?.[1] ?? ''
    const res = await server.app.inject({
      method: 'POST',
      url: '/login',
      headers: { cookie: cookies('', [login.headers['set-cookie'] ?? []].flat()), 'content-type': 'application/x-www-form-urlencoded' },
      payload: new URLSearchParams({ csrf, email: 'linked@acme.example', password: 'a long enough password', return_to: '/connected-apps' }).toString(),
    })
    assert.equal(res.statusCode, 403)
    assert.match(res.body, new RegExp(`This account signs in with ${NAME}`))
  })
})

import assert from 'node:assert/strict'
import { existsSync, mkdirSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { after, afterEach, before, describe, it } from 'node:test'
import type { Browser, BrowserContext, Page } from 'playwright-core'
import { cliActor, createApp, createTenant, createUser, updateApp, type App, type Tenant } from '@fieldgate/core'
import { bearer, postForm, postJson, repoRoot, request, startServer, type Res, type TestServer } from './helpers.js'
import { linkIn, SmtpReceiver } from './support/smtp.js'
import { browserSkip, launchBrowser, startPartner, type Partner } from './browser.js'

/**
 * The journey a farm user does, in a real browser (Debian's chromium) against a real server: sign in,
 * consent, the partner's redirect URI receiving the code, the fieldmargin-style Web API (token.exchange,
 * permissions, token.revoke), incremental consent, deny and disconnect. The partner is a small node:http
 * server on loopback that records what reaches its redirect URI.
 */

/** A state with characters that need encoding; it must come back byte for byte. */
const STATE = 'a b+c/é=&x'
const PASSWORD = 'correct horse battery staple'
const APP_NAME = 'Field Mapper'
const CONTACT = 'dev@partner.example'
const FIRST_SCOPES = ['fields:read:all', 'maps:write']

interface FarmUser {
  userId: string
  email: string
  tenant: Tenant
}

const sorted = (xs: readonly string[]) => [...xs].sort()

/** Path and parameters of a same-origin path-and-query, to compare requests whatever their encoding. */
function parts(pathAndQuery: string): [string, string[][]] {
  const url = new URL(pathAndQuery, 'http://127.0.0.1')
  return [url.pathname, [...url.searchParams].sort()]
}

describe('authorization in a browser: the fieldmargin journey', () => {
  let server: TestServer
  let partner: Partner
  let smtp: SmtpReceiver
  let browser: Browser | undefined
  let app: App
  let clientSecret: string
  const contexts: BrowserContext[] = []

  before(
    async () => {
      partner = await startPartner('/callback', 'Field Mapper', 'Field Mapper got your answer')
      smtp = await SmtpReceiver.start()
      server = await startServer({ overrides: { smtpUrl: smtp.smtpUrl } })
      const created = await createApp(server.runtime.ctx, cliActor, {
        name: APP_NAME,
        kind: 'public',
        environment: 'sandbox',
        scopes: 'fields:read:all maps:write vehicles:write',
        redirectUris: [partner.url],
        contactEmail: CONTACT,
      })
      app = created.app
      clientSecret = created.clientSecret
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
    await partner?.close()
    await smtp?.close()
  })

  // ---- fixtures and steps ----

  /** A person who owns one farm (tenant). */
  async function farmUser(label: string, farmName = `${label} farm`): Promise<FarmUser> {
    const tenant = await createTenant(server.runtime.ctx, cliActor, { name: farmName, environment: 'sandbox' })
    const email = `${label}@farm.example`
    const user = await createUser(server.runtime.ctx, cliActor, { email, password: PASSWORD, tenantId: tenant.id, role: 'owner' })
    return { userId: user.id, email, tenant }
  }

  async function newPage(): Promise<Page> {
    if (!browser) throw new Error('no browser')
    const context = await browser.newContext({ viewport: { width: 1000, height: 800 } })
    contexts.push(context)
    context.setDefaultTimeout(5_000)
    context.setDefaultNavigationTimeout(5_000)
    return context.newPage()
  }

  /** The path and query of an authorization request (scope joined with %20, state percent-encoded). */
  function authorizePath(scopes: readonly string[], state = STATE, path = '/authorize'): string {
    return `${path}?client_id=${encodeURIComponent(app.clientId)}&scope=${encodeURIComponent(scopes.join(' '))}&state=${encodeURIComponent(state)}`
  }

  async function signIn(page: Page, email: string, password = PASSWORD): Promise<void> {
    assert.equal(new URL(page.url()).pathname, '/login', `expected the sign-in page, got ${page.url()}`)
    await page.getByLabel('Email').fill(email)
    await page.getByLabel('Password').fill(password)
    await page.getByRole('button', { name: 'Sign in' }).click()
    await page.waitForURL((u) => u.pathname !== '/login')
  }

  /** Signed out (a fresh context): the authorization request goes through sign-in to the consent page. */
  async function openConsent(page: Page, user: FarmUser, scopes: readonly string[], state = STATE): Promise<void> {
    const path = authorizePath(scopes, state)
    const res = await page.goto(server.url(path))
    assert.equal(new URL(page.url()).pathname, '/login', `signed out, ${path} should lead to /login; got ${res?.status()} at ${page.url()}`)
    await signIn(page, user.email)
    await expectConsentFor(page, path)
  }

  /** The page is the consent page of the authorization request `path` (back on the authorize URL). */
  async function expectConsentFor(page: Page, path: string): Promise<void> {
    const here = new URL(page.url())
    assert.equal(here.origin, server.origin)
    assert.equal(here.pathname, parts(path)[0], `expected the consent page, got ${page.url()}`)
    assert.deepEqual(parts(here.pathname + here.search), parts(path))
    await page.getByRole('button', { name: 'Allow' }).waitFor()
  }

  /** Clicks Allow or Deny; returns what the partner's redirect URI received. */
  async function decide(page: Page, button: 'Allow' | 'Deny'): Promise<URLSearchParams> {
    const seen = partner.hits.length
    await page.getByRole('button', { name: button }).click()
    await page.waitForURL((u) => u.origin === partner.origin && u.pathname === '/callback')
    assert.equal(partner.hits.length, seen + 1, 'the partner got exactly one redirect')
    const hit = partner.hits[seen]!
    assert.equal(new URL(page.url()).search.slice(1), hit.query)
    return hit.params
  }

  /** Allow, and check the redirect is a success: a code, the state byte for byte, and iss. */
  async function allow(page: Page, state = STATE): Promise<string> {
    const params = await decide(page, 'Allow')
    assert.equal(params.get('error'), null, `the partner got an error: ${params.toString()}`)
    assert.equal(params.get('state'), state)
    assert.equal(params.get('iss'), server.issuer)
    const code = params.get('code')
    assert.ok(code, 'the partner got a code')
    return code
  }

  async function connect(page: Page, user: FarmUser, scopes: readonly string[]): Promise<string> {
    await openConsent(page, user, scopes)
    return allow(page)
  }

  function exchange(code: string, where: 'body' | 'query' = 'body', secret = clientSecret): Promise<Res> {
    const fields = { code, client_id: app.clientId, client_secret: secret }
    if (where === 'body') return postForm(server.url('/v1/token.exchange'), fields)
    return request(server.url(`/v1/token.exchange?${new URLSearchParams(fields)}`), { method: 'POST' })
  }

  /** token.exchange must answer 200 {access_token, farm_id}; returns the token. */
  async function tokenFor(code: string, tenant: Tenant, where: 'body' | 'query' = 'body'): Promise<string> {
    const res = await exchange(code, where)
    assert.equal(res.status, 200, res.text)
    assert.equal(typeof res.json?.access_token, 'string', res.text)
    assert.ok(res.json.access_token.length >= 32, 'a high-entropy token')
    assert.equal(res.json.farm_id, tenant.id)
    return res.json.access_token as string
  }

  const permissions = (token: string) => request(server.url('/v1/permissions'), { headers: bearer(token) })

  async function scopesOf(token: string): Promise<string[]> {
    const res = await permissions(token)
    assert.equal(res.status, 200, res.text)
    assert.ok(Array.isArray(res.json?.scopes), res.text)
    return sorted(res.json.scopes as string[])
  }

  async function expectInvalidToken(token: string): Promise<void> {
    const res = await permissions(token)
    assert.equal(res.status, 401, res.text)
    assert.equal(res.json?.error, 'invalid_token')
  }

  // ---- without a browser ----

  it('signed out, /authorize and /oauth/authorize answer 303 to /login with the request as return_to', { timeout: 30_000 }, async () => {
    for (const base of ['/authorize', '/oauth/authorize']) {
      const path = authorizePath(FIRST_SCOPES, STATE, base)
      const res = await request(server.url(path), { redirect: 'manual' })
      assert.equal(res.status, 303, `${base}: ${res.status} ${res.text.slice(0, 200)}`)
      const location = new URL(res.headers.get('location') ?? '', server.origin)
      assert.equal(location.origin, server.origin)
      assert.equal(location.pathname, '/login')
      assert.deepEqual(parts(location.searchParams.get('return_to') ?? ''), parts(path))
    }
    assert.equal(partner.hits.length, 0, 'nothing reached the partner')
  })

  // ---- in the browser ----

  it('the browser reaches the server (metadata document) and the partner (callback page)', { skip: browserSkip, timeout: 30_000 }, async () => {
    const page = await newPage()
    const res = await page.goto(server.url('/.well-known/oauth-authorization-server'))
    assert.equal(res?.status(), 200)
    assert.equal(JSON.parse(await res!.text()).issuer, server.issuer)
    const seen = partner.hits.length
    await page.goto(`${partner.url}?probe=1`)
    await page.getByRole('heading', { name: /Field Mapper/ }).waitFor()
    assert.equal(partner.hits.length, seen + 1)
    partner.hits.splice(seen)
  })

  it('signs in (a wrong password stays on /login), consents, and the partner receives code, state and iss', { skip: browserSkip, timeout: 30_000 }, async () => {
    const user = await farmUser('journey')
    const page = await newPage()
    const path = authorizePath(FIRST_SCOPES)
    await page.goto(server.url(path))
    assert.equal(new URL(page.url()).pathname, '/login')
    assert.deepEqual(parts(new URL(page.url()).searchParams.get('return_to') ?? ''), parts(path))
    const fresh = await page.locator('body').innerText()

    // A wrong password: 401, still the sign-in page, now with an error on it.
    await page.getByLabel('Email').fill(user.email)
    await page.getByLabel('Password').fill('not the password')
    const [failed] = await Promise.all([
      page.waitForResponse((r) => r.request().method() === 'POST' && new URL(r.url()).pathname === '/login'),
      page.getByRole('button', { name: 'Sign in' }).click(),
    ])
    assert.equal(failed.status(), 401)
    await page.waitForLoadState()
    assert.equal(new URL(page.url()).pathname, '/login')
    const afterFailure = await page.locator('body').innerText()
    assert.ok(
      afterFailure.split('\n').some((line) => line.trim() !== '' && !fresh.includes(line.trim())),
      `no error shown:\n${afterFailure}`,
    )
    await page.getByLabel('Password').waitFor()

    // The right one: back on the authorize URL, which shows the consent page.
    await signIn(page, user.email)
    await expectConsentFor(page, path)
    const code = await allow(page)
    assert.match(code, /\S{16,}/)
  })

  it('exchanges codes at /v1/token.exchange, in the body and in the query string, for a token and the farm id', { skip: browserSkip, timeout: 30_000 }, async () => {
    const user = await farmUser('exchange')
    const page = await newPage()
    const first = await connect(page, user, FIRST_SCOPES)
    const bodyToken = await tokenFor(first, user.tenant, 'body')

    // Signed in now: the next authorization request shows the consent page at once.
    const path = authorizePath(FIRST_SCOPES)
    await page.goto(server.url(path))
    await expectConsentFor(page, path)
    const second = await allow(page)
    assert.notEqual(second, first)
    const queryToken = await tokenFor(second, user.tenant, 'query')
    assert.ok(queryToken.length >= 32)

    assert.deepEqual(await scopesOf(bodyToken), sorted(FIRST_SCOPES))
    assert.deepEqual(await scopesOf(queryToken), sorted(FIRST_SCOPES))

    // A code is single-use; using it again revokes what it gave (RFC 6749 §4.1.2), and only that.
    const again = await exchange(first, 'body')
    assert.ok(again.status >= 400 && again.status < 500, `reused code: ${again.status} ${again.text}`)
    assert.equal(again.json?.access_token, undefined)
    await expectInvalidToken(bodyToken)
    assert.deepEqual(await scopesOf(queryToken), sorted(FIRST_SCOPES))
  })

  it('/v1/permissions lists the consented scopes until /v1/token.revoke', { skip: browserSkip, timeout: 30_000 }, async () => {
    const user = await farmUser('permissions')
    const page = await newPage()
    const token = await tokenFor(await connect(page, user, FIRST_SCOPES), user.tenant)
    const res = await permissions(token)
    assert.equal(res.status, 200, res.text)
    assert.deepEqual(Object.keys(res.json), ['scopes'])
    assert.deepEqual(sorted(res.json.scopes), sorted(FIRST_SCOPES))

    const revoked = await postJson(server.url('/v1/token.revoke'), { access_token: token })
    assert.equal(revoked.status, 200, revoked.text)
    assert.deepEqual(revoked.json, { revoked: true })
    await expectInvalidToken(token)
    assert.deepEqual((await postJson(server.url('/v1/token.revoke'), { access_token: token })).json, { revoked: false })
    await expectInvalidToken('an-unknown-token-0123456789abcdef0123456789')
  })

  it('incremental consent: a second Allow for the same app and farm adds scopes to the token already issued', { skip: browserSkip, timeout: 30_000 }, async () => {
    const user = await farmUser('incremental')
    const page = await newPage()
    const firstToken = await tokenFor(await connect(page, user, FIRST_SCOPES), user.tenant)
    assert.deepEqual(await scopesOf(firstToken), sorted(FIRST_SCOPES))

    const more = ['maps:write', 'vehicles:write']
    const path = authorizePath(more)
    await page.goto(server.url(path))
    await expectConsentFor(page, path)
    await page.getByRole('listitem').filter({ hasText: 'vehicles:write' }).first().waitFor()
    // What is new is told apart from what the farm already allowed.
    const fresh = page.getByRole('list', { name: /will also be able to/ })
    const held = page.getByRole('list', { name: /Already allowed/ })
    assert.deepEqual(await fresh.getByRole('listitem').locator('code').allInnerTexts(), ['vehicles:write'])
    assert.deepEqual(await held.getByRole('listitem').locator('code').allInnerTexts(), ['maps:write'])
    const secondToken = await tokenFor(await allow(page), user.tenant)

    const union = sorted(['fields:read:all', 'maps:write', 'vehicles:write'])
    assert.deepEqual(await scopesOf(firstToken), union)
    assert.deepEqual(await scopesOf(secondToken), union)
  })

  it('a partner who widens the app between the page and Allow gets nothing: the page is shown again with the new list', { skip: browserSkip, timeout: 30_000 }, async () => {
    const user = await farmUser('widened')
    const own = await createApp(server.runtime.ctx, cliActor, {
      name: 'Widening App',
      kind: 'public',
      environment: 'sandbox',
      scopes: 'fields:read:all',
      redirectUris: [partner.url],
    })
    const page = await newPage()
    const path = `/authorize?client_id=${encodeURIComponent(own.app.clientId)}&state=${encodeURIComponent(STATE)}`
    await page.goto(server.url(path))
    await signIn(page, user.email)
    await page.getByRole('button', { name: 'Allow' }).waitFor()
    assert.equal(await page.getByText('maps:write').count(), 0)

    await updateApp(server.runtime.ctx, cliActor, { clientId: own.app.clientId, fields: { scopes: 'fields:read:all maps:write' } })
    server.runtime.ctx.cache.apply({ kind: 'app', ref: own.app.id })
    const seen = partner.hits.length
    const [again] = await Promise.all([
      page.waitForResponse((r) => r.request().method() === 'POST' && new URL(r.url()).pathname === '/consent'),
      page.getByRole('button', { name: 'Allow' }).click(),
    ])
    assert.equal(again.status(), 409)
    await page.getByRole('alert').filter({ hasText: 'changed the permissions' }).waitFor()
    await page.getByRole('listitem').filter({ hasText: 'maps:write' }).waitFor()
    assert.equal(partner.hits.length, seen, 'nothing reached the partner')
    assert.equal(await server.storage.findActiveGrant(own.app.id, user.tenant.id), undefined, 'nothing granted')

    // Allow on the page as shown now grants what it lists.
    await page.getByRole('button', { name: 'Allow' }).click()
    await page.waitForURL((u) => u.origin === partner.origin)
    assert.ok(partner.hits.at(-1)!.params.get('code'))
    assert.deepEqual((await server.storage.findActiveGrant(own.app.id, user.tenant.id))?.scopes, ['fields:read:all', 'maps:write'])
  })

  it('a person who signs up from the link and has no farm is told what to do, and Back goes to the app with access_denied', { skip: browserSkip, timeout: 30_000 }, async () => {
    const page = await newPage()
    await page.goto(server.url(authorizePath(FIRST_SCOPES)))
    await page.getByRole('link', { name: 'Create an account' }).click()
    await page.getByLabel('Email').fill('farmless@farm.example')
    await page.getByLabel('Password').fill(PASSWORD)
    await page.getByRole('button', { name: /Create|Sign up/ }).click()
    // The address is confirmed from the mail, in another tab as a mail client opens it; then the first
    // tab's Sign in goes back to the app's link.
    await page.getByRole('heading', { name: 'Check your email' }).waitFor()
    const mailTab = await page.context().newPage()
    await mailTab.goto(linkIn(await smtp.next('farmless@farm.example', /Confirm your email address/), '/verify-email').href)
    await mailTab.getByRole('button', { name: 'Confirm my address' }).click()
    await mailTab.getByRole('status').filter({ hasText: 'Your email address is confirmed' }).waitFor()
    await page.getByRole('link', { name: 'Sign in' }).click()
    await page.getByLabel('Email').fill('farmless@farm.example')
    await page.getByLabel('Password').fill(PASSWORD)
    await page.getByRole('button', { name: 'Sign in' }).click()
    await page.getByRole('heading', { name: 'No farm to connect' }).waitFor()
    await page.getByText(/ask an owner or admin of your farm/).waitFor()
    const seen = partner.hits.length
    await page.getByRole('button', { name: `Back to ${APP_NAME}` }).click()
    await page.waitForURL((u) => u.origin === partner.origin && u.pathname === '/callback')
    assert.equal(partner.hits.length, seen + 1)
    const params = partner.hits[seen]!.params
    assert.equal(params.get('error'), 'access_denied')
    assert.equal(params.get('state'), STATE)
    assert.equal(params.get('code'), null)
  })

  it('Deny sends error=access_denied and the state back, with no code, and connects nothing', { skip: browserSkip, timeout: 30_000 }, async () => {
    const user = await farmUser('deny')
    const page = await newPage()
    await openConsent(page, user, FIRST_SCOPES)
    const params = await decide(page, 'Deny')
    assert.equal(params.get('error'), 'access_denied')
    assert.equal(params.get('state'), STATE)
    assert.equal(params.get('iss'), server.issuer)
    assert.equal(params.get('code'), null)
    assert.equal(await server.storage.findActiveGrant(app.id, user.tenant.id), undefined)
  })

  it('Disconnect on the Connected apps page revokes the connection and its token at once; Sign out signs out', { skip: browserSkip, timeout: 30_000 }, async () => {
    const user = await farmUser('disconnect')
    const page = await newPage()
    const token = await tokenFor(await connect(page, user, FIRST_SCOPES), user.tenant)
    assert.deepEqual(await scopesOf(token), sorted(FIRST_SCOPES))

    const listed = await page.goto(server.url('/connected-apps'))
    assert.equal(listed?.status(), 200)
    await page.getByText(APP_NAME).first().waitFor()
    for (const scope of FIRST_SCOPES) await page.getByText(scope).first().waitFor()
    const disconnect = page.getByRole('button', { name: /Disconnect/ })
    assert.equal(await disconnect.count(), 1)
    await Promise.all([page.waitForResponse((r) => r.request().method() === 'POST' && new URL(r.url()).origin === server.origin), disconnect.click()])
    await page.waitForLoadState()

    await expectInvalidToken(token)
    assert.equal(await server.storage.findActiveGrant(app.id, user.tenant.id), undefined)
    await page.goto(server.url('/connected-apps'))
    assert.equal(await page.getByRole('button', { name: /Disconnect/ }).count(), 0)

    // Sign out: the next authorization request asks to sign in again.
    await page.getByRole('button', { name: 'Sign out' }).click()
    await page.waitForLoadState()
    await page.goto(server.url(authorizePath(FIRST_SCOPES)))
    assert.equal(new URL(page.url()).pathname, '/login')
  })

  it('the consent page names the app, its contact and each requested scope; no Farm chooser with one farm to consent for', { skip: browserSkip, timeout: 30_000 }, async () => {
    const user = await farmUser('hillside', 'Hillside Farm')
    // A member (not owner or admin) of another farm: that farm is not theirs to connect.
    const other = await createTenant(server.runtime.ctx, cliActor, { name: 'Neighbour Farm', environment: 'sandbox' })
    await server.storage.addMembership({ userId: user.userId, tenantId: other.id, role: 'member' })

    const page = await newPage()
    await openConsent(page, user, FIRST_SCOPES)
    await page.getByText(APP_NAME).first().waitFor()
    await page.getByText(CONTACT).first().waitFor()
    for (const scope of FIRST_SCOPES) {
      const item = page.getByRole('listitem').filter({ hasText: scope })
      assert.equal(await item.count(), 1, `one list item for ${scope}`)
      const text = (await item.innerText()).trim()
      assert.ok(text.includes(scope), `the exact name ${scope} in "${text}"`)
      assert.ok(text.length > scope.length + 3, `a plain-words description with ${scope}: "${text}"`)
    }
    assert.equal(await page.getByText('vehicles:write').count(), 0, 'a scope not requested is not shown')
    assert.equal(await page.getByLabel('Farm', { exact: true }).count(), 0)
    assert.equal(await page.locator('select').count(), 0)
    assert.equal(await page.getByText('Neighbour Farm').count(), 0)
    await page.getByRole('button', { name: 'Deny' }).waitFor()

    const form = page.locator('form').filter({ has: page.getByRole('button', { name: 'Allow' }) })
    assert.equal(await form.count(), 1)
    assert.equal((await form.getAttribute('method'))?.toLowerCase(), 'post')
    assert.equal(new URL((await form.getAttribute('action')) ?? '', page.url()).pathname, '/consent')
    const csrf = form.locator('input[type="hidden"][name="csrf"]')
    assert.equal(await csrf.count(), 1)
    assert.ok((await csrf.inputValue()).length >= 16, 'a CSRF token')

    const shot = join(repoRoot, 'docs/consent.png')
    if (process.env.SAVE_SCREENSHOTS === '1' || !existsSync(shot)) {
      mkdirSync(dirname(shot), { recursive: true })
      await page.screenshot({ path: shot, fullPage: true })
    }

    // Allow connects the one farm they own.
    const token = await tokenFor(await allow(page), user.tenant)
    assert.deepEqual(await scopesOf(token), sorted(FIRST_SCOPES))
  })

  it('the consent page offers a Farm chooser with only the farms the person owns or administers', { skip: browserSkip, timeout: 30_000 }, async () => {
    const user = await farmUser('chooser', 'Owned Farm')
    const administered = await createTenant(server.runtime.ctx, cliActor, { name: 'Administered Farm', environment: 'sandbox' })
    const membered = await createTenant(server.runtime.ctx, cliActor, { name: 'Member Farm', environment: 'sandbox' })
    await server.storage.addMembership({ userId: user.userId, tenantId: administered.id, role: 'admin' })
    await server.storage.addMembership({ userId: user.userId, tenantId: membered.id, role: 'member' })

    const page = await newPage()
    await openConsent(page, user, FIRST_SCOPES)
    const farm = page.getByRole('combobox', { name: 'Farm' })
    assert.equal(await farm.count(), 1)
    assert.equal(await farm.evaluate((el) => (el as { tagName: string }).tagName), 'SELECT')
    const options = farm.locator('option')
    const real: { value: string; text: string }[] = []
    for (let i = 0; i < (await options.count()); i++) {
      const value = (await options.nth(i).getAttribute('value')) ?? ''
      if (value !== '') real.push({ value, text: (await options.nth(i).innerText()).trim() })
    }
    assert.equal(real.length, 2, `two farms to choose from: ${JSON.stringify(real)}`)
    assert.ok(real.some((o) => o.text.includes('Owned Farm')))
    assert.ok(real.some((o) => o.text.includes('Administered Farm')))
    assert.ok(!real.some((o) => o.text.includes('Member Farm')), 'not a farm they are only a member of')

    await farm.selectOption(real.find((o) => o.text.includes('Administered Farm'))!.value)
    const token = await tokenFor(await allow(page), administered)
    assert.deepEqual(await scopesOf(token), sorted(FIRST_SCOPES))
    assert.equal(await server.storage.findActiveGrant(app.id, user.tenant.id), undefined, 'the other farm is not connected')
  })

  it('a consent POST without the CSRF token (or with a wrong one) is refused with 403 and redirects nowhere', { skip: browserSkip, timeout: 30_000 }, async () => {
    const user = await farmUser('csrf')
    const page = await newPage()
    await openConsent(page, user, FIRST_SCOPES)
    const form = page.locator('form').filter({ has: page.getByRole('button', { name: 'Allow' }) })
    const action = new URL((await form.getAttribute('action')) ?? '', page.url()).href
    // What the browser would send on Allow: every hidden field and the Allow button's own name=value.
    const fields: Record<string, string> = {}
    const hidden = form.locator('input[type="hidden"]')
    for (let i = 0; i < (await hidden.count()); i++) {
      const name = await hidden.nth(i).getAttribute('name')
      if (name) fields[name] = await hidden.nth(i).inputValue()
    }
    const button = form.getByRole('button', { name: 'Allow' })
    const buttonName = await button.getAttribute('name')
    if (buttonName) fields[buttonName] = (await button.getAttribute('value')) ?? ''
    assert.ok(fields.csrf, 'the form carries a csrf field')

    // The same session (cookies of this browser context), from the same origin, but no or a wrong token.
    const seen = partner.hits.length
    const { csrf, ...withoutCsrf } = fields
    const post = (form: Record<string, string>) => page.context().request.post(action, { form, maxRedirects: 0, headers: { origin: server.origin, referer: page.url() } })
    const wrong = csrf!.slice(0, -1) + (csrf!.endsWith('A') ? 'B' : 'A')
    for (const attempt of [withoutCsrf, { ...withoutCsrf, csrf: wrong }]) {
      const res = await post(attempt)
      assert.equal(res.status(), 403, await res.text())
      assert.equal(res.headers().location, undefined, 'no redirect')
    }
    assert.equal(partner.hits.length, seen)
    assert.equal(await server.storage.findActiveGrant(app.id, user.tenant.id), undefined)

    // The control: with the token the very same POST is accepted and goes to the partner with a code.
    const ok = await post(fields)
    assert.equal(ok.status(), 303, await ok.text())
    const location = new URL(ok.headers().location ?? '')
    assert.equal(`${location.origin}${location.pathname}`, partner.url)
    assert.ok(location.searchParams.get('code'))
    assert.equal(location.searchParams.get('state'), STATE)
  })
})

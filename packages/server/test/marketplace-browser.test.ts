import assert from 'node:assert/strict'
import { createHmac, randomUUID } from 'node:crypto'
import { existsSync, mkdirSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { after, afterEach, before, describe, it } from 'node:test'
import type { Browser, BrowserContext, Page } from 'playwright-core'
import { approveApp, cliActor, createApp, createTenant, createUser, updateApp, type Tenant } from '@fieldgate/core'
import { completionUrl, verifyInstallRequest, type CompletionStatus } from '@fieldgate/client'
import { bearer, postJson, repoRoot, request, startServer, type Res, type TestServer } from './helpers.js'
import { browserSkip, launchBrowser, startPartner, type Hit, type Partner } from './browser.js'

/**
 * FieldEdge's partner journey (its Partner Authentication Guide) in a real browser (Debian's chromium) against a real server:
 * a partner signs up, creates an app in the developer portal, sees its secret once, installs it on
 * their sandbox; a tenant admin installs and uninstalls a live app from the marketplace. The partner's
 * website is a small node:http server on loopback that records what reaches its install URL and
 * verifies it the way the partner would.
 */

const PASSWORD = 'correct horse battery staple'
const SANDBOX_APP = 'Route Planner Sandbox'
const SANDBOX_DESCRIPTION = 'Plans technician routes from your open work orders.'
const CONTACT = 'dev@routeplanner.example'

/**
 * The partner's own check, written from the documentation and not from the server's code:
 * hex HMAC-SHA256 keyed by the client secret over the other parameters, sorted by name and
 * form-urlencoded.
 */
function independentlyVerified(query: string, clientSecret: string): boolean {
  const params = new URLSearchParams(query)
  const sent = params.get('hmac')
  if (!sent) return false
  const others = [...params].filter(([name]) => name !== 'hmac').sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
  const message = others.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&')
  const expected = createHmac('sha256', clientSecret).update(message).digest('hex')
  return expected === sent
}

/** The partner's check with the SDK they use. */
const sdkVerified = (query: string, clientSecret: string, now = Date.now()) => verifyInstallRequest(query, clientSecret, { now: () => now })

/** The same query with one parameter's value replaced, everything else byte for byte. */
function withParam(query: string, name: string, value: string): string {
  const params = new URLSearchParams(query)
  assert.ok(params.has(name), `${name} is in ${query}`)
  params.set(name, value)
  return params.toString()
}

const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/

describe('the marketplace in a browser: the FieldEdge partner journey', () => {
  let server: TestServer
  let partner: Partner
  let browser: Browser | undefined
  const contexts: BrowserContext[] = []
  const consoleErrors = new WeakMap<Page, string[]>()

  before(
    async () => {
      partner = await startPartner('/install', 'Route Planner', 'Route Planner is setting up your account')
      // Partners sign up and use the portal at once here; verifying by email is in accounts-browser.test.ts.
      server = await startServer({ overrides: { signup: 'open' } })
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
  })

  // ---- fixtures and steps ----

  /** A new browser context (its own cookies: its own person) and a page in it. */
  async function newPage(): Promise<Page> {
    if (!browser) throw new Error('no browser')
    const context = await browser.newContext({ viewport: { width: 1000, height: 900 } })
    contexts.push(context)
    context.setDefaultTimeout(5_000)
    context.setDefaultNavigationTimeout(5_000)
    const page = await context.newPage()
    // What the browser itself complains about (a Content-Security-Policy violation, say), for failure messages.
    const messages: string[] = []
    consoleErrors.set(page, messages)
    page.on('console', (m) => {
      if (m.type() === 'error') messages.push(m.text())
    })
    return page
  }

  /** Signs a new partner up at /signup; they land on the developer portal. */
  async function signUp(page: Page, email: string): Promise<void> {
    const res = await page.goto(server.url('/signup'))
    assert.equal(res?.status(), 200)
    await page.getByLabel('Email').fill(email)
    await page.getByLabel('Password').fill(PASSWORD)
    await page.getByRole('button', { name: 'Create account' }).click()
    await page.waitForURL((u) => u.pathname !== '/signup')
    assert.equal(new URL(page.url()).pathname, '/developer', `after sign-up: ${page.url()}`)
  }

  async function signIn(page: Page, email: string): Promise<void> {
    await page.goto(server.url('/login'))
    await page.getByLabel('Email').fill(email)
    await page.getByLabel('Password').fill(PASSWORD)
    await page.getByRole('button', { name: 'Sign in' }).click()
    await page.waitForURL((u) => u.pathname !== '/login')
  }

  /** A live tenant and its owner, made with the core functions. */
  async function liveOwner(label: string): Promise<{ tenant: Tenant; email: string }> {
    const tenant = await createTenant(server.runtime.ctx, cliActor, { name: `${label} Heating & Air`, environment: 'live' })
    const email = `owner-${label.toLowerCase()}@hvac.example`
    await createUser(server.runtime.ctx, cliActor, { email, password: PASSWORD, tenantId: tenant.id, role: 'owner' })
    return { tenant, email }
  }

  /** An operator approves the live app (or its change): until then no customer sees it (review.test.ts). */
  async function approve(clientId: string): Promise<void> {
    await approveApp(server.runtime.ctx, cliActor, { clientId })
  }

  interface NewApp {
    name: string
    description: string
    environment: 'sandbox' | 'live'
    scopes: string[]
    listed: boolean
    contact: string
  }

  /** From the portal: Create an app, fill the form, Create app; returns what the once-only page shows. */
  async function createAppInPortal(page: Page, input: NewApp): Promise<{ clientId: string; clientSecret: string }> {
    await page.goto(server.url('/developer'))
    await page.getByRole('link', { name: 'Create an app' }).click()
    await page.waitForURL((u) => u.pathname === '/developer/apps/new')
    await page.getByLabel('App name').fill(input.name)
    await page.getByLabel('What it does').fill(input.description)
    await page.getByLabel('Install URL').fill(partner.url)
    await page.getByLabel('Contact email').fill(input.contact)
    const type = page.getByLabel('Type', { exact: true })
    assert.equal(await type.inputValue(), 'public', 'Type is Public by default')
    const environment = page.getByLabel('Environment', { exact: true })
    assert.equal(await environment.inputValue(), 'sandbox', 'Environment is Sandbox by default')
    if (input.environment === 'live') await environment.selectOption('live')
    assert.equal(await environment.inputValue(), input.environment)
    for (const scope of input.scopes) {
      const box = page.getByRole('checkbox', { name: new RegExp(`^${scope.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} `) })
      assert.equal(await box.count(), 1, `one checkbox for the scope ${scope}`)
      await box.check()
      assert.ok(await box.isChecked())
    }
    if (input.listed) await page.getByRole('checkbox', { name: 'List it in the marketplace' }).check()
    const [created] = await Promise.all([
      page.waitForResponse((r) => r.request().method() === 'POST' && new URL(r.url()).pathname === '/developer/apps'),
      page.getByRole('button', { name: 'Create app' }).click(),
    ])
    // POST/redirect/GET: the POST answers 303 and the secret is shown on the page it redirects to.
    assert.equal(created.status(), 303, `Create app: ${created.status()}`)
    await page.waitForLoadState()
    const clientId = await page.getByLabel('Client ID').inputValue()
    const clientSecret = await page.getByLabel('Client secret').inputValue()
    assert.match(clientId, /^\S{16,}$/)
    assert.ok(clientSecret.length >= 32, 'a high-entropy secret')
    assert.ok(clientSecret.startsWith(`fgs_${input.environment}_`), `the secret carries its environment: ${clientSecret.slice(0, 12)}…`)
    await page.getByText(/shown only this once/).waitFor()
    await page.getByRole('button', { name: 'Copy' }).waitFor()
    return { clientId, clientSecret }
  }

  /** Clicks `button` and waits to arrive at the partner's install URL; returns what it received. */
  async function toPartner(page: Page, button: string): Promise<Hit> {
    const seen = partner.hits.length
    await page.getByRole('button', { name: button, exact: true }).click()
    try {
      await page.waitForURL((u) => u.origin === partner.origin && u.pathname === '/install')
    } catch (err) {
      const complaints = (consoleErrors.get(page) ?? []).join('\n  ')
      assert.fail(
        `${button} did not take the browser to the partner's install URL (still at ${page.url()}; the partner got ${partner.hits.length - seen} requests).\nThe browser's console:\n  ${complaints || '(nothing)'}\n${(err as Error).message.split('\n')[0]}`,
      )
    }
    await page.getByRole('heading', { name: /Route Planner is setting up/ }).waitFor()
    assert.equal(partner.hits.length, seen + 1, 'the partner got exactly one request')
    const hit = partner.hits[seen]!
    assert.equal(new URL(page.url()).search.slice(1), hit.query)
    return hit
  }

  /** The install redirect is exactly target, target_id, timestamp and hmac, fresh and signed with `clientSecret`. */
  async function expectSignedInstall(hit: Hit, tenant: Tenant, clientSecret: string): Promise<void> {
    assert.deepEqual([...hit.params.keys()].sort(), ['hmac', 'target', 'target_id', 'timestamp'], hit.query)
    assert.equal(hit.params.get('target'), tenant.marketplaceId)
    assert.equal(hit.params.get('target_id'), tenant.id)
    const timestamp = Number(hit.params.get('timestamp'))
    assert.ok(Number.isSafeInteger(timestamp) && Math.abs(timestamp - Date.now() / 1000) < 60, `a current timestamp in seconds: ${hit.params.get('timestamp')}`)
    assert.match(hit.params.get('hmac') ?? '', /^[0-9a-f]{64}$/)
    assert.equal(await sdkVerified(hit.query, clientSecret), true, 'verifyInstallRequest accepts it')
    assert.equal(independentlyVerified(hit.query, clientSecret), true, 'the hmac recomputed from the documentation matches')
  }

  /** What the partner does with the install metadata: the FieldEdge token request. */
  const partnerToken = (clientId: string, clientSecret: string, targetId: string): Promise<Res> =>
    postJson(server.url('/oauth/token'), { client_id: clientId, client_secret: clientSecret, target_id: targetId, grant_type: 'client_credentials' })

  async function tokenFor(clientId: string, clientSecret: string, targetId: string): Promise<string> {
    const res = await partnerToken(clientId, clientSecret, targetId)
    assert.equal(res.status, 200, res.text)
    assert.deepEqual(Object.keys(res.json).sort(), ['access_token', 'expires_in', 'token_type'], res.text)
    assert.equal(res.json.token_type, 'Bearer')
    assert.equal(res.json.expires_in, 28000)
    assert.equal(typeof res.json.access_token, 'string')
    assert.ok(res.json.access_token.length >= 32)
    return res.json.access_token as string
  }

  const workOrders = (token: string) => request(server.url('/api/rest/v2/workorders'), { headers: bearer(token) })

  async function expectApiWorks(token: string): Promise<void> {
    const res = await workOrders(token)
    assert.equal(res.status, 200, res.text)
    assert.ok(Array.isArray(res.json?.results), res.text)
  }

  async function expectApiRefuses(token: string): Promise<void> {
    const res = await workOrders(token)
    assert.equal(res.status, 401, res.text)
  }

  /** The partner's signed link back to the marketplace, made with the SDK as a partner would. */
  const completion = (clientId: string, clientSecret: string, targetId: string, status: CompletionStatus, errorDescription?: string) =>
    completionUrl({ issuer: server.origin, clientId, clientSecret, targetId, status, ...(errorDescription ? { errorDescription } : {}) })

  /** The scope codes a page lists. */
  const listedScopes = async (page: Page) => (await page.locator('ul.scopes li code').allInnerTexts()).sort()

  async function activeGrants(tenantId: string, appId?: string) {
    return (await server.storage.listGrants({ tenantId })).filter((g) => g.status === 'active' && (appId === undefined || g.appId === appId))
  }

  async function appId(clientId: string): Promise<string> {
    const found = await server.storage.getAppByClientId(clientId)
    assert.ok(found, `the app ${clientId} is stored`)
    return found.id
  }

  function screenshotPath(name: string): string | undefined {
    const shot = join(repoRoot, 'docs', name)
    if (process.env.SAVE_SCREENSHOTS !== '1' && existsSync(shot)) return undefined
    mkdirSync(dirname(shot), { recursive: true })
    return shot
  }

  // ---- the journeys ----

  it('a partner signs up, creates an app, sees the secret once, installs it on the sandbox; the partner verifies the hmac, gets a token and calls the API', {
    skip: browserSkip,
    timeout: 45_000,
  }, async () => {
    const email = 'partner@routeplanner.example'
    const page = await newPage()
    await signUp(page, email)

    // The sandbox target_id, shown on the portal: a sandbox tenant the partner owns.
    const sandboxId = (await page.locator('#sandbox-target-id').innerText()).trim()
    assert.match(sandboxId, uuid)
    const sandbox = await server.storage.getTenant(sandboxId)
    assert.ok(sandbox, 'the target_id names a stored tenant')
    assert.equal(sandbox.environment, 'sandbox')
    const user = await server.storage.getUserByEmail(email)
    assert.ok(user)
    assert.equal(user.sandboxTenantId, sandboxId)
    assert.ok((await server.storage.listMemberships(user.id)).some((m) => m.tenantId === sandboxId && m.role === 'owner'))

    const { clientId, clientSecret } = await createAppInPortal(page, {
      name: SANDBOX_APP,
      description: SANDBOX_DESCRIPTION,
      environment: 'sandbox',
      scopes: ['api'],
      listed: false,
      contact: CONTACT,
    })
    assert.equal((await page.content()).includes(clientSecret), true, 'the control: the creation page has the secret')
    const stored = await server.storage.getAppByClientId(clientId)
    assert.ok(stored)
    assert.equal(stored.name, SANDBOX_APP)
    assert.equal(stored.kind, 'public')
    assert.equal(stored.environment, 'sandbox')
    assert.equal(stored.installUrl, partner.url)
    assert.equal(stored.contactEmail, CONTACT)
    assert.deepEqual(stored.scopes, ['api'])
    assert.equal(stored.listed, false)

    // Never again: not on any page the partner can reach.
    const secretBody = clientSecret.replace(/^fgs_[a-z]+_/, '')
    assert.ok(secretBody.length >= 20)
    for (const path of ['/developer', `/developer/apps/${clientId}`, '/marketplace', '/connected-apps', '/marketplace/installed']) {
      const res = await page.goto(server.url(path))
      assert.equal(res?.status(), 200, path)
      const content = await page.content()
      assert.ok(!content.includes(clientSecret), `${path} shows the secret`)
      assert.ok(!content.includes(secretBody), `${path} shows the secret without its prefix`)
    }
    // The portal lists the app and the app page names it.
    await page.goto(server.url('/developer'))
    await page.getByRole('link', { name: SANDBOX_APP }).waitFor()
    await page.goto(server.url(`/developer/apps/${clientId}`))
    await page.getByRole('heading', { name: SANDBOX_APP, level: 1 }).waitFor()
    const shot = screenshotPath('portal.png')
    if (shot) await page.screenshot({ path: shot, fullPage: true })

    // One click: the person is sent to the partner's install URL with the documented metadata, signed.
    const hit = await toPartner(page, 'Install on my sandbox')
    await expectSignedInstall(hit, sandbox, clientSecret)
    assert.equal(hit.params.get('target_id'), sandboxId)
    const grants = await activeGrants(sandboxId, stored.id)
    assert.equal(grants.length, 1, 'the install made a grant on the sandbox')

    // Tampered or forged: both the core's check and the independent one say no.
    const uninstalled = await createTenant(server.runtime.ctx, cliActor, { name: 'Somebody else', environment: 'sandbox' })
    const tampered: Record<string, string> = {
      target_id: withParam(hit.query, 'target_id', uninstalled.id),
      'target_id (random)': withParam(hit.query, 'target_id', randomUUID()),
      timestamp: withParam(hit.query, 'timestamp', String(Number(hit.params.get('timestamp')) - 1)),
      hmac: withParam(hit.query, 'hmac', createHmac('sha256', 'not the secret').update('target=x').digest('hex')),
      'hmac (one character)': withParam(
        hit.query,
        'hmac',
        hit.params.get('hmac')!.replace(/.$/, (c) => (c === '0' ? '1' : '0')),
      ),
      target: withParam(hit.query, 'target', randomUUID()),
    }
    for (const [what, query] of Object.entries(tampered)) {
      assert.notEqual(query, hit.query)
      assert.equal(await sdkVerified(query, clientSecret), false, `verifyInstallRequest accepts a changed ${what}`)
      assert.equal(independentlyVerified(query, clientSecret), false, `the independent check accepts a changed ${what}`)
    }
    assert.equal(await sdkVerified(hit.query, clientSecret.slice(0, -1) + 'x'), false, 'another secret')
    assert.equal(independentlyVerified(hit.query, clientSecret.slice(0, -1) + 'x'), false, 'another secret')
    assert.equal(await sdkVerified(hit.query, clientSecret, Date.now() + 3600_000), false, 'an hour-old request')

    // The partner gets a token with target_id, and calls the API with it.
    const token = await tokenFor(clientId, clientSecret, sandboxId)
    await expectApiWorks(token)
    const elsewhere = await partnerToken(clientId, clientSecret, uninstalled.id)
    assert.equal(elsewhere.status, 400, `a token for a tenant that did not install it: ${elsewhere.text}`)
    assert.equal(elsewhere.json?.access_token, undefined)

    // And sends the person back with success.
    const done = await page.goto(await completion(clientId, clientSecret, sandboxId, 'success'))
    assert.equal(done?.status(), 200)
    await page.getByRole('heading', { name: `${SANDBOX_APP} is installed` }).waitFor()
    assert.equal((await server.storage.getInstall(grants[0]!.id))?.state, 'complete')
    assert.ok(!(await page.content()).includes(clientSecret))
  })

  it('a tenant admin installs a live app from the marketplace, installing twice keeps one grant, and Uninstall stops the token', {
    skip: browserSkip,
    timeout: 45_000,
  }, async () => {
    const liveName = 'Dispatch Board'
    const scopes = ['api', 'alerts:write']
    const partnerPage = await newPage()
    await signUp(partnerPage, 'partner@dispatchboard.example')
    const { clientId, clientSecret } = await createAppInPortal(partnerPage, {
      name: liveName,
      description: 'Shows every technician and job on one board.',
      environment: 'live',
      scopes,
      listed: true,
      contact: 'hello@dispatchboard.example',
    })
    await approve(clientId)
    const id = await appId(clientId)
    const app = (await server.storage.getApp(id))!
    assert.equal(app.environment, 'live')
    assert.equal(app.listed, true)
    assert.deepEqual([...app.scopes].sort(), [...scopes].sort())
    // A live app has no sandbox install button.
    await partnerPage.goto(server.url(`/developer/apps/${clientId}`))
    await partnerPage.getByRole('heading', { name: liveName, level: 1 }).waitFor()
    assert.equal(await partnerPage.getByRole('button', { name: 'Install on my sandbox' }).count(), 0)

    const { tenant, email } = await liveOwner('Maple')
    const page = await newPage()
    await signIn(page, email)
    const listed = await page.goto(server.url('/marketplace'))
    assert.equal(listed?.status(), 200)
    await page.getByText(`Installing for ${tenant.name} (live)`).waitFor()
    const card = page.getByRole('region', { name: liveName })
    assert.equal(await card.count(), 1, 'the live app is listed')
    // Only listed live apps: not the sandbox app of the first journey, nor any other sandbox app.
    assert.equal(await page.getByText(SANDBOX_APP).count(), 0)
    const cardNames = await page.locator('section.app-card').evaluateAll((els) => els.map((e) => e.getAttribute('aria-label')))
    const allApps = await server.storage.listApps()
    for (const name of cardNames) {
      const shown = allApps.filter((a) => a.name === name)
      assert.ok(shown.length > 0 && shown.every((a) => a.environment === 'live' && a.listed && a.kind === 'public'), `${name} is a listed live public app`)
    }
    const content = await page.content()
    for (const a of allApps.filter((a) => a.environment === 'sandbox')) assert.ok(!content.includes(a.name), `sandbox app ${a.name} is listed for a live tenant`)

    // The app page: what it does, who makes it, the scopes it will get.
    await card.getByRole('link', { name: liveName }).click()
    await page.waitForURL((u) => u.pathname === `/marketplace/apps/${clientId}`)
    await page.getByRole('heading', { name: liveName, level: 1 }).waitFor()
    await page.getByText('Shows every technician and job on one board.').waitFor()
    await page.getByRole('link', { name: 'hello@dispatchboard.example' }).waitFor()
    const items = page.locator('ul.scopes li')
    assert.equal(await items.count(), scopes.length)
    for (const scope of scopes) assert.equal(await page.locator('ul.scopes li code', { hasText: new RegExp(`^${scope}$`) }).count(), 1, `the scope ${scope} is listed`)
    const shot = screenshotPath('marketplace.png')
    if (shot) await page.screenshot({ path: shot, fullPage: true })
    assert.equal((await activeGrants(tenant.id)).length, 0, 'nothing installed before Install')

    // Install: the partner receives target = marketplace id and target_id = tenant id, signed with the live secret.
    const hit = await toPartner(page, 'Install')
    await expectSignedInstall(hit, tenant, clientSecret)
    const grants = await activeGrants(tenant.id)
    assert.equal(grants.length, 1)
    assert.equal(grants[0]!.appId, id)
    assert.deepEqual([...grants[0]!.scopes].sort(), [...scopes].sort())
    const token = await tokenFor(clientId, clientSecret, tenant.id)
    await expectApiWorks(token)
    const done = await page.goto(await completion(clientId, clientSecret, tenant.id, 'success'))
    assert.equal(done?.status(), 200)
    await page.getByRole('heading', { name: `${liveName} is installed` }).waitFor()

    // Installing twice: Install again, the partner is called again, and there is still one grant.
    await page.goto(server.url(`/marketplace/apps/${clientId}?tenant=${tenant.id}`))
    const again = await toPartner(page, 'Install again')
    await expectSignedInstall(again, tenant, clientSecret)
    const afterTwice = await activeGrants(tenant.id)
    assert.equal(afterTwice.length, 1, `one active grant after installing twice: ${JSON.stringify(afterTwice)}`)
    assert.equal(afterTwice[0]!.id, grants[0]!.id, 'the same grant')
    assert.equal((await server.storage.listGrants({ tenantId: tenant.id })).length, 1, 'no second grant, active or not')
    await page.goto(await completion(clientId, clientSecret, tenant.id, 'success'))
    await page.getByRole('heading', { name: `${liveName} is installed` }).waitFor()

    // Installed apps: the app, when and by whom, its scopes; Uninstall ends every token at once.
    const installed = await page.goto(server.url('/marketplace/installed'))
    assert.equal(installed?.status(), 200)
    const entry = page.getByRole('region', { name: `${liveName} on ${tenant.name}` })
    assert.equal(await entry.count(), 1)
    const text = await entry.innerText()
    assert.ok(text.includes(email), `installed by ${email}: ${text}`)
    assert.match(text, /Installed \w{3} \d{1,2}, \d{4}/, "the day in the reader's locale")
    for (const scope of scopes) assert.equal(await entry.locator('code', { hasText: new RegExp(`^${scope}$`) }).count(), 1, `scope ${scope} on the installed page`)
    await Promise.all([
      page.waitForResponse((r) => r.request().method() === 'POST' && new URL(r.url()).origin === server.origin),
      entry.getByRole('button', { name: `Uninstall ${liveName}` }).click(),
    ])
    await page.waitForURL((u) => u.pathname === '/marketplace/installed')
    await expectApiRefuses(token)
    assert.equal((await activeGrants(tenant.id)).length, 0)
    assert.equal(await page.getByRole('button', { name: `Uninstall ${liveName}` }).count(), 0)
    const refused = await partnerToken(clientId, clientSecret, tenant.id)
    assert.equal(refused.status, 400, `a new token after uninstall: ${refused.text}`)
    assert.equal(refused.json?.access_token, undefined)
  })

  it('an error from the partner is shown with Try again and Remove the install; Remove ends the grant and its token', { skip: browserSkip, timeout: 45_000 }, async () => {
    const name = 'Invoice Sync'
    const partnerPage = await newPage()
    await signUp(partnerPage, 'partner@invoicesync.example')
    const { clientId, clientSecret } = await createAppInPortal(partnerPage, {
      name,
      description: 'Sends finished work orders to your accounting.',
      environment: 'live',
      scopes: ['api'],
      listed: true,
      contact: 'hello@invoicesync.example',
    })
    await approve(clientId)
    const id = await appId(clientId)
    const { tenant, email } = await liveOwner('Birch')
    const page = await newPage()
    await signIn(page, email)
    await page.goto(server.url(`/marketplace/apps/${clientId}?tenant=${tenant.id}`))
    await expectSignedInstall(await toPartner(page, 'Install'), tenant, clientSecret)
    const token = await tokenFor(clientId, clientSecret, tenant.id)
    await expectApiWorks(token)
    const [grant] = await activeGrants(tenant.id, id)
    assert.ok(grant)

    // Until the partner answers, the marketplace card says setup is pending, not Installed.
    const card = async () => {
      await page.goto(server.url(`/marketplace?tenant=${tenant.id}`))
      return page.getByRole('region', { name }).locator('.install-status').innerText()
    }
    assert.equal(await card(), 'Setup pending')

    const failure = () => completion(clientId, clientSecret, tenant.id, 'error', 'Setup failed at partner')
    await page.goto(await failure())
    await page.getByRole('alert').filter({ hasText: 'Setup failed at partner' }).waitFor()
    assert.equal(await page.getByRole('heading', { name: `${name} is installed` }).count(), 0, 'not shown as a success')
    const install = await server.storage.getInstall(grant.id)
    assert.equal(install?.state, 'failed')
    assert.equal(install?.error, 'Setup failed at partner')
    await page.getByRole('button', { name: 'Remove the install' }).waitFor()
    // Try again says what it will grant, like the first install.
    await page.getByRole('heading', { name: 'Trying again lets it' }).waitFor()
    assert.deepEqual(await listedScopes(page), ['api'])

    // Try again goes to the partner once more, signed, on the same grant.
    const retry = await toPartner(page, 'Try again')
    await expectSignedInstall(retry, tenant, clientSecret)
    assert.deepEqual(
      (await activeGrants(tenant.id)).map((g) => g.id),
      [grant.id],
    )
    await expectApiWorks(token)

    // Another failure: the card says so.
    await page.goto(await failure())
    await page.getByRole('alert').filter({ hasText: 'Setup failed at partner' }).waitFor()
    const failedCard = await card()
    assert.equal(failedCard, 'Setup failed')
    assert.ok(!(await page.getByRole('region', { name }).innerText()).includes('Installed'), 'a failed install is not shown as Installed')

    // The partner widens the app while the failure page is open: Try again grants nothing and shows the new list.
    await page.goto(await failure())
    await page.getByRole('button', { name: 'Try again' }).waitFor()
    await updateApp(server.runtime.ctx, cliActor, { clientId: clientId, fields: { scopes: 'api alerts:write' } })
    const seen = partner.hits.length
    const [refused] = await Promise.all([
      page.waitForResponse((r) => r.request().method() === 'POST' && new URL(r.url()).pathname === `/marketplace/apps/${clientId}/install`),
      page.getByRole('button', { name: 'Try again' }).click(),
    ])
    assert.equal(refused.status(), 409)
    await page.getByRole('alert').filter({ hasText: 'changed since the page was shown' }).waitFor()
    assert.deepEqual(await listedScopes(page), ['alerts:write', 'api'])
    assert.equal(partner.hits.length, seen, 'nothing reached the partner')
    assert.deepEqual((await server.storage.getGrant(grant.id))?.scopes, ['api'], 'the grant is as it was')

    // This time the admin removes the install.
    await page.goto(await failure())
    await page.getByRole('alert').filter({ hasText: 'Setup failed at partner' }).waitFor()
    await page.getByRole('button', { name: 'Try again' }).waitFor()
    await Promise.all([
      page.waitForResponse((r) => r.request().method() === 'POST' && new URL(r.url()).pathname === '/connected-apps/disconnect'),
      page.getByRole('button', { name: 'Remove the install' }).click(),
    ])
    await page.waitForURL((u) => u.pathname === '/marketplace/installed')
    await expectApiRefuses(token)
    assert.equal((await activeGrants(tenant.id)).length, 0)
    assert.equal(await page.getByRole('region', { name: `${name} on ${tenant.name}` }).count(), 0)
  })

  it('the partner widens the app between display and Install: nothing is granted, the page shows the new list, and Install grants exactly it', {
    skip: browserSkip,
    timeout: 45_000,
  }, async () => {
    const name = 'Crew Timesheets'
    const partnerPage = await newPage()
    await signUp(partnerPage, 'partner@crewtimesheets.example')
    const { clientId, clientSecret } = await createAppInPortal(partnerPage, {
      name,
      description: 'Hours per technician per job.',
      environment: 'live',
      scopes: ['api'],
      listed: true,
      contact: 'hello@crewtimesheets.example',
    })
    await approve(clientId)
    const { tenant, email } = await liveOwner('Aspen')
    const page = await newPage()
    await signIn(page, email)
    await page.goto(server.url(`/marketplace/apps/${clientId}?tenant=${tenant.id}`))
    assert.deepEqual(await listedScopes(page), ['api'])

    // While the admin reads the page, the partner adds a scope in the portal.
    await partnerPage.goto(server.url(`/developer/apps/${clientId}`))
    await partnerPage.getByRole('checkbox', { name: /^alerts:write / }).check()
    const [saved] = await Promise.all([
      partnerPage.waitForResponse((r) => r.request().method() === 'POST' && new URL(r.url()).pathname === `/developer/apps/${clientId}`),
      partnerPage.getByRole('button', { name: 'Save changes' }).click(),
    ])
    assert.equal(saved.status(), 303, 'Save answers with a redirect')
    assert.deepEqual((await server.storage.getAppByClientId(clientId))!.scopes, ['api'], "a live app's change waits for review")
    await approve(clientId)
    assert.deepEqual([...(await server.storage.getAppByClientId(clientId))!.scopes].sort(), ['alerts:write', 'api'])

    const seen = partner.hits.length
    const [refused] = await Promise.all([
      page.waitForResponse((r) => r.request().method() === 'POST' && new URL(r.url()).pathname === `/marketplace/apps/${clientId}/install`),
      page.getByRole('button', { name: 'Install', exact: true }).click(),
    ])
    assert.equal(refused.status(), 409)
    await page.getByRole('alert').filter({ hasText: 'changed since the page was shown. Nothing was installed' }).waitFor()
    assert.deepEqual(await listedScopes(page), ['alerts:write', 'api'], 'the page shows the new list')
    assert.equal(partner.hits.length, seen, 'nothing reached the partner')
    assert.deepEqual(await server.storage.listGrants({ tenantId: tenant.id }), [], 'nothing granted')

    // Installing from the page shown again grants exactly what it shows.
    await expectSignedInstall(await toPartner(page, 'Install'), tenant, clientSecret)
    const grants = await activeGrants(tenant.id)
    assert.equal(grants.length, 1)
    assert.deepEqual([...grants[0]!.scopes].sort(), ['alerts:write', 'api'])
  })

  it('a sandbox app, even listed, cannot be installed on a live tenant: 400, no grant, nothing sent to the partner', { skip: browserSkip, timeout: 45_000 }, async () => {
    const name = 'Sandbox Only Tool'
    const partnerPage = await newPage()
    await signUp(partnerPage, 'partner@sandboxonly.example')
    const { clientId } = await createAppInPortal(partnerPage, {
      name,
      description: 'Still being tested.',
      environment: 'sandbox',
      scopes: ['api'],
      listed: false,
      contact: 'hello@sandboxonly.example',
    })
    const id = await appId(clientId)

    // List it, from its page in the portal.
    await partnerPage.goto(server.url(`/developer/apps/${clientId}`))
    const listedBox = partnerPage.getByRole('checkbox', { name: 'List it in the marketplace' })
    assert.equal(await listedBox.isChecked(), false)
    await listedBox.check()
    const [saved] = await Promise.all([
      partnerPage.waitForResponse((r) => r.request().method() === 'POST' && new URL(r.url()).pathname === `/developer/apps/${clientId}`),
      partnerPage.getByRole('button', { name: 'Save changes' }).click(),
    ])
    assert.equal(saved.status(), 303, 'POST/redirect/GET')
    await partnerPage.getByRole('status').filter({ hasText: 'Saved.' }).waitFor()
    assert.equal((await server.storage.getApp(id))?.listed, true)
    assert.equal((await server.storage.getApp(id))?.environment, 'sandbox')

    const { tenant, email } = await liveOwner('Cedar')
    const page = await newPage()
    await signIn(page, email)
    // Not in the live marketplace's list.
    await page.goto(server.url('/marketplace'))
    await page.getByRole('heading', { name: 'Marketplace', level: 1 }).waitFor()
    assert.equal(await page.getByRole('region', { name }).count(), 0, 'a sandbox app is listed for a live tenant')

    // Its page reached directly says so and offers no Install; a forged install POST is refused with 400.
    const shown = await page.goto(server.url(`/marketplace/apps/${clientId}?tenant=${tenant.id}`))
    assert.equal(shown?.status(), 200)
    await page
      .getByRole('alert')
      .filter({ hasText: /cannot be installed on .*, a live tenant/ })
      .waitFor()
    assert.equal(await page.getByRole('button', { name: /Install/ }).count(), 0)
    const seen = partner.hits.length
    const csrf = await page.locator('input[name=csrf]').first().inputValue()
    const res = await page.request.post(server.url(`/marketplace/apps/${clientId}/install`), { form: { csrf, tenant_id: tenant.id }, maxRedirects: 0 })
    assert.equal(res.status(), 400, (await res.text()).slice(0, 500))
    assert.match(await res.text(), /cannot be installed on a live tenant/)
    assert.equal(partner.hits.length, seen, 'nothing reached the partner')
    assert.equal((await server.storage.listGrants({ tenantId: tenant.id })).length, 0, 'no grant on the live tenant')
    assert.equal((await server.storage.listGrants({ appId: id })).filter((g) => g.tenantId === tenant.id).length, 0)
  })
})

/**
 * Issue 14, the marketplace part, on a phone's width (390 px): search and the category filter by a
 * plain GET form, an app's page with its publisher, links and what it can do, Cancel back to the list
 * (nothing installed), and Install on to the partner's install URL.
 */
describe('the marketplace in a browser: search, filter, an app page, Install and Cancel', () => {
  let server: TestServer
  let partner: Partner
  let browser: Browser | undefined
  let tenant: Tenant
  let email: string
  const word = `Tilth${randomUUID().slice(0, 6)}`

  before(
    async () => {
      partner = await startPartner('/install', 'Crop Planner', 'Crop Planner is setting up your farm')
      server = await startServer({ overrides: { signup: 'open' } })
      if (!browserSkip) browser = await launchBrowser()
      const ctx = server.runtime.ctx
      tenant = await createTenant(ctx, cliActor, { name: 'Hillside Farm', environment: 'live' })
      email = `owner-${randomUUID().slice(0, 8)}@hillside.example`
      await createUser(ctx, cliActor, { email, password: PASSWORD, tenantId: tenant.id, role: 'owner' })
      const app = (name: string, fields: Record<string, unknown>) =>
        createApp(ctx, cliActor, { name, kind: 'public', environment: 'live', installUrl: partner.url, listed: true, contactEmail: 'dev@crop.example', ...fields })
      await app(`${word} Crop Planner`, {
        scopes: 'api fields:read:all',
        shortDescription: 'Plans rotations field by field',
        categories: ['Agronomy', 'Scheduling'],
        publisher: 'Crop Planner Ltd',
        supportUrl: 'https://crop.example/support',
        privacyPolicyUrl: 'https://crop.example/privacy',
      })
      await app(`${word} Ledger`, { shortDescription: 'Books for the farm office', categories: ['Accounting'] })
    },
    { timeout: 30_000 },
  )

  after(async () => {
    await browser?.close().catch(() => {})
    await server?.close()
    await partner?.close()
  })

  /** True when nothing inside `selector` is wider than it: it fits its container at this width. */
  const fits = (page: Page, selector: string) => page.locator(selector).evaluate((el) => el.scrollWidth <= el.clientWidth + 1)

  it('finds apps by search and category, shows one, cancels back to the list and installs', { skip: browserSkip, timeout: 60_000 }, async () => {
    if (!browser) throw new Error('no browser')
    const context = await browser.newContext({ viewport: { width: 390, height: 844 } })
    context.setDefaultTimeout(5_000)
    try {
      const page = await context.newPage()
      await page.goto(server.url('/login'))
      await page.getByLabel('Email').fill(email)
      await page.getByLabel('Password').fill(PASSWORD)
      await page.getByRole('button', { name: 'Sign in' }).click()
      await page.waitForURL((u) => u.pathname !== '/login')
      await page.goto(server.url('/marketplace'))

      await page.getByRole('searchbox', { name: 'Search' }).fill(word.toLowerCase())
      await page.getByRole('button', { name: 'Search' }).click()
      await page.waitForURL((u) => u.searchParams.get('q') === word.toLowerCase())
      assert.equal(await page.locator('section.app-card').count(), 2, 'both match, whatever the case')
      assert.equal(await fits(page, '.app-cards'), true, 'the cards fit at 390 px')
      assert.equal(await fits(page, 'form.market-search'), true, 'the search form wraps at 390 px')

      await page.getByLabel('Category').selectOption('Accounting')
      await page.getByRole('button', { name: 'Search' }).click()
      await page.waitForURL((u) => u.searchParams.get('category') === 'Accounting')
      const cards = page.locator('section.app-card')
      assert.deepEqual(await cards.evaluateAll((els) => els.map((e) => e.getAttribute('aria-label'))), [`${word} Ledger`])
      assert.match(await cards.first().innerText(), /Books for the farm office[\s\S]*Accounting/)
      assert.equal(await page.getByRole('searchbox', { name: 'Search' }).inputValue(), word.toLowerCase(), 'the search is kept')

      await page.getByLabel('Category').selectOption('')
      await page.getByRole('button', { name: 'Search' }).click()
      await page.waitForURL((u) => u.searchParams.get('category') === '')
      const card = page.getByRole('region', { name: `${word} Crop Planner` })
      assert.match(await card.innerText(), /by Crop Planner Ltd[\s\S]*Plans rotations field by field[\s\S]*Scheduling[\s\S]*Agronomy/)
      assert.equal(await card.locator('.initials').innerText(), 'TC', 'no logo: initials')
      await card.getByRole('link', { name: `${word} Crop Planner` }).click()

      await page.getByRole('heading', { name: `${word} Crop Planner`, level: 1 }).waitFor()
      assert.match(await page.locator('.publisher').innerText(), /by Crop Planner Ltd/)
      assert.equal(await page.getByRole('link', { name: 'Support' }).getAttribute('href'), 'https://crop.example/support')
      assert.equal(await page.getByRole('link', { name: 'Privacy policy' }).getAttribute('href'), 'https://crop.example/privacy')
      await page.getByRole('heading', { name: 'It will be able to' }).waitFor()
      assert.match(await page.locator('ul.scopes').innerText(), /fields:read/)
      assert.equal(await fits(page, 'main'), true, 'the app page fits')

      await page.getByRole('link', { name: 'Cancel' }).click()
      await page.waitForURL((u) => u.pathname === '/marketplace' && u.searchParams.get('tenant') === tenant.id)
      assert.deepEqual(await server.storage.listGrants({ tenantId: tenant.id }), [], 'Cancel installs nothing')

      await page.getByRole('link', { name: `${word} Crop Planner` }).click()
      await page.getByRole('button', { name: 'Install' }).click()
      await page.waitForURL((u) => u.href.startsWith(partner.url))
      await page.getByRole('heading', { name: 'Crop Planner is setting up your farm' }).waitFor()
      assert.equal(partner.hits.at(-1)?.params.get('target_id'), tenant.id)
      assert.equal((await server.storage.listGrants({ tenantId: tenant.id })).length, 1, 'installed')
    } finally {
      await context.close().catch(() => {})
    }
  })
})

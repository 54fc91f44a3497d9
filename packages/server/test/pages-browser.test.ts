import assert from 'node:assert/strict'
import { randomBytes, randomUUID } from 'node:crypto'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import type { Browser, Page } from 'playwright-core'
import { cliActor, createApp, createGrant, createTenant, createUser, scopeDescriptions, type App, type Tenant } from '@fieldgate/core'
import { repoRoot, startServer, tempDir, type TestServer } from './helpers.js'
import { Contexts, browserSkip, launchBrowser, signIn, startPartner, type Partner } from './browser.js'
import { contrast } from '../src/pages/brand.js'

/**
 * Every page, as a platform's customers and staff see it under the platform's own brand, on a phone
 * (390 px) and a desktop (1,440 px), in Debian's chromium: no horizontal scrolling, the brand's name,
 * logo, links and word for a tenant ("company") and never ours, and no serious or critical axe-core
 * finding. FIELDGATE_SCREENSHOTS=1 writes each page at both widths to docs/screenshots/.
 */

const PASSWORD = 'correct horse battery staple'
const BRAND = 'Northwind Field Services'
const widths = [390, 1440] as const
const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8')
const logoSvg = `<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64" viewBox="0 0 64 64"><rect width="64" height="64" rx="12" fill="#1a4d8f"/><path d="M14 46V18h8l20 18V18h8v28h-8L22 28v18z" fill="#fff"/></svg>`

/** rgb(r, g, b) as #rrggbb. */
const hex = (rgb: string): string =>
  `#${(rgb.match(/\d+/g) ?? [])
    .slice(0, 3)
    .map((n) => Number(n).toString(16).padStart(2, '0'))
    .join('')}`

interface Layout {
  scroll: number
  inner: number
  title: string
  text: string
  logo: boolean[]
  footer: string[]
  skip: string | undefined
  /** Each form field's border colour, as computed: rgb(r, g, b). */
  borders: string[]
}

interface AxeResult {
  violations: { id: string; impact: string | null; help: string; nodes: { target: unknown[] }[] }[]
}

describe('every page under a brand of its own, at 390 and 1,440 px, in a browser', () => {
  let server: TestServer
  let browser: Browser | undefined
  let partner: Partner
  let company: Tenant
  let planner: App
  let agent: App
  const contexts = new Contexts(() => browser)
  const operator = `ops-${Date.now()}@northwind.example`
  const developer = `dev-${Date.now()}@partner.example`

  before(
    async () => {
      const dataDir = tempDir()
      writeFileSync(join(dataDir, 'logo.svg'), logoSvg)
      partner = await startPartner('/callback', 'Route Planner', 'Back at the partner')
      server = await startServer({
        dataDir,
        overrides: {
          brand: {
            name: BRAND,
            logo: 'logo.svg',
            color: '#1a4d8f',
            supportUrl: 'https://help.northwind.example/',
            termsUrl: 'https://northwind.example/terms',
            privacyUrl: 'https://northwind.example/privacy',
            tenantWord: { one: 'company', many: 'companies' },
          },
        },
      })
      const ctx = server.runtime.ctx
      company = await createTenant(ctx, cliActor, { name: 'Harbor Mechanical', environment: 'live' })
      await createUser(ctx, cliActor, { email: operator, password: PASSWORD, tenantId: company.id, role: 'owner', operator: true })
      const dev = await createUser(ctx, cliActor, { email: developer, password: PASSWORD })
      planner = (
        await createApp(ctx, cliActor, {
          name: 'Route Planner',
          kind: 'public',
          environment: 'live',
          ownerUserId: dev.id,
          scopes: 'api',
          redirectUris: [partner.url],
          contactEmail: 'support@routeplanner.example',
          installUrl: `${partner.origin}/install`,
          listed: true,
          description: 'Plans each crew’s day from the work orders due, and sends the route to their phones.',
          shortDescription: 'Daily routes for every crew, from the work orders due',
          categories: ['Scheduling', 'Telematics'],
          publisher: 'Route Planner Ltd',
          supportUrl: 'https://routeplanner.example/help',
          privacyPolicyUrl: 'https://routeplanner.example/privacy',
        })
      ).app
      // A public client (no secret section, refresh tokens fixed on) with the token settings it can change.
      agent = (
        await createApp(ctx, cliActor, {
          name: 'Field Agent',
          kind: 'public',
          environment: 'sandbox',
          ownerUserId: dev.id,
          publicClient: true,
          redirectUris: ['http://127.0.0.1/callback'],
          requireDpop: true,
        })
      ).app
      if (!browserSkip) browser = await launchBrowser()
    },
    { timeout: 60_000 },
  )
  after(async () => {
    await contexts.close()
    await browser?.close().catch(() => {})
    await server?.close()
    await partner?.close()
  })

  /** A browser at `width`, signed in as `email` when given. axe is injected past the pages' CSP, which allows our own scripts only. */
  async function visitor(width: number, email?: string): Promise<Page> {
    const page = await contexts.page({ width, bypassCSP: true, timeoutMs: 10_000 })
    if (email) await signIn(page, server.origin, email, PASSWORD)
    return page
  }

  /** The checks every page passes, at the width its browser has. */
  async function checkPage(page: Page, name: string, width: number): Promise<void> {
    const where = `${name} at ${width} px`
    // A string, run in the page: this package is compiled without the DOM's types.
    const layout = await page.evaluate<Layout>(`({
      scroll: document.documentElement.scrollWidth,
      inner: window.innerWidth,
      title: document.title,
      text: document.body.innerText,
      logo: [...document.querySelectorAll('header img.logo')].map((img) => img.complete && img.naturalWidth > 0),
      footer: [...document.querySelectorAll('footer a')].map((a) => a.textContent),
      skip: document.querySelector('a.skip')?.getAttribute('href'),
      borders: [...document.querySelectorAll('main input:not([type=hidden]):not([type=checkbox]):not([type=radio]), main select, main textarea')].map((el) => getComputedStyle(el).borderTopColor),
    })`)
    assert.ok(layout.scroll <= layout.inner, `${where}: no horizontal scrolling (content is ${layout.scroll} px wide)`)
    assert.ok(layout.title.endsWith(`· ${BRAND}`), `${where}: the title names the brand: ${layout.title}`)
    assert.ok(layout.text.includes(BRAND), `${where}: the header names the brand`)
    assert.equal(/Fieldgate/.test(layout.text), false, `${where}: our name is nowhere on the page`)
    // fieldmargin's scope table keeps its own words ("Create farm maps"): they name the dialect's resources.
    const ours = Object.values(scopeDescriptions).reduce((text, d) => text.replaceAll(d, ''), layout.text)
    assert.equal(/\bfarms?\b/i.test(ours), false, `${where}: a tenant is a company here: ${/.{0,40}\bfarms?\b.{0,40}/i.exec(ours)?.[0]}`)
    assert.deepEqual(layout.logo, [true], `${where}: the brand's logo is shown`)
    assert.deepEqual(layout.footer, ['Help', 'Terms', 'Privacy'], `${where}: the brand's links`)
    assert.equal(layout.skip, '#main', `${where}: a skip link to the content`)
    for (const border of new Set(layout.borders)) {
      // WCAG 1.4.11: a field's boundary is at 3:1 against the white it sits on.
      assert.ok(contrast(hex(border), '#ffffff') >= 3, `${where}: a field's border ${border} is at 3:1 on white`)
    }
    await page.evaluate(axeSource)
    const axe = await page.evaluate<AxeResult>('axe.run(document, { resultTypes: ["violations"] })')
    const serious = axe.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical')
    assert.deepEqual(
      serious.map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => JSON.stringify(n.target)).join(', ')})`),
      [],
      `${where}: no serious or critical axe finding`,
    )
    if (process.env.FIELDGATE_SCREENSHOTS === '1') {
      const dir = join(repoRoot, 'docs', 'screenshots')
      mkdirSync(dir, { recursive: true })
      await page.screenshot({ path: join(dir, `${name}-${width}.png`), fullPage: true })
    }
  }

  async function visit(page: Page, path: string, name: string, width: number): Promise<void> {
    await page.goto(server.url(path))
    await checkPage(page, name, width)
  }

  /** The path and query of the link mailed to `to` that leads to `path`, from the local mailbox. */
  async function mailedLink(to: string, path: string): Promise<string> {
    const mail = (await server.storage.listMail({ limit: 50 })).find((m) => m.to === to && (m.text ?? '').includes(path))
    const link = new RegExp(`https?://\\S+${path}\\?\\S+`).exec(mail?.text ?? '')?.[0]
    assert.ok(link, `a ${path} link mailed to ${to}`)
    const url = new URL(link)
    return url.pathname + url.search
  }

  const authorizePath = () => `/authorize?${new URLSearchParams({ client_id: planner.clientId, redirect_uri: partner.url, scope: 'api', state: 'st-1' })}`

  for (const width of widths) {
    it(`sign-in, sign-up, password reset and errors at ${width} px`, { skip: browserSkip, timeout: 120_000 }, async () => {
      const page = await visitor(width)
      await visit(page, '/login', 'sign-in', width)
      await visit(page, `/login?return_to=${encodeURIComponent(authorizePath())}`, 'sign-in-to-app', width)
      const main = await page.locator('main').innerText()
      assert.match(main, /Signing in to continue to\s+Route Planner/, 'the app the person is on the way to')
      assert.match(main, new RegExp(`Sends you back to\\s+${new URL(partner.url).host.replace(/[.]/g, '\\.')}`), 'and the host it sends them back to')
      assert.equal(await page.locator('header nav').count(), 0, 'a focused page: no site navigation')
      await visit(page, '/signup', 'sign-up', width)
      // A refused field: the error beside it, named by aria-describedby, and the focus on it.
      await page.getByLabel('Email').fill('not-an-address')
      await page.getByLabel('Password', { exact: true }).fill(PASSWORD)
      await page.getByRole('button', { name: 'Create account' }).click()
      await page.locator('#email-error').waitFor()
      assert.match((await page.locator('#email').getAttribute('aria-describedby')) ?? '', /\bemail-error\b/)
      assert.equal(await page.evaluate<string | undefined>('document.activeElement?.id'), 'email', 'focus moved to the first error')
      await checkPage(page, 'sign-up-error', width)
      const newcomer = `new-${width}-${Date.now()}@partner.example`
      await page.getByLabel('Email').fill(newcomer)
      await page.getByLabel('Password', { exact: true }).fill(PASSWORD)
      await page.getByRole('button', { name: 'Create account' }).click()
      await page.waitForURL((u) => u.pathname === '/signup/sent')
      await checkPage(page, 'sign-up-sent', width)
      await visit(page, await mailedLink(newcomer, '/verify-email'), 'verify-email', width)
      await visit(page, '/forgot-password', 'forgot-password', width)
      await page.getByLabel('Email').fill(operator)
      await page.getByRole('button', { name: 'Send the link' }).click()
      await page.waitForURL((u) => u.pathname === '/forgot-password/sent')
      await checkPage(page, 'forgot-password-sent', width)
      await visit(page, await mailedLink(operator, '/reset-password'), 'reset-password', width)
      await visit(page, '/developer/apps/nope', 'not-signed-in', width)
    })

    it(`a customer's pages: consent, connected apps, marketplace, members at ${width} px`, { skip: browserSkip, timeout: 120_000 }, async () => {
      await createGrant(server.runtime.ctx, cliActor, { clientId: planner.clientId, tenantId: company.id })
      const page = await visitor(width, operator)
      await visit(page, authorizePath(), 'consent', width)
      const main = await page.locator('main').innerText()
      assert.match(main, /Route Planner/)
      assert.match(main, /by Route Planner Ltd/, 'the publisher')
      assert.match(main, /Company: Harbor Mechanical/, 'the tenant word on the consent page')
      assert.equal(await page.locator('header nav').count(), 0, 'a focused page: no site navigation')
      await visit(page, '/connected-apps', 'connected-apps', width)
      assert.equal(await page.locator('header nav a[aria-current=page]').innerText(), 'Connected apps', 'aria-current on the section shown')
      await page.getByRole('button', { name: 'Disconnect Route Planner' }).click()
      await page.getByText('Disconnected').first().waitFor()
      await checkPage(page, 'connected-apps-disconnected', width)
      await visit(page, '/marketplace', 'marketplace', width)
      await visit(page, '/marketplace/installed', 'installed-apps', width)
      await visit(page, `/marketplace/apps/${planner.clientId}`, 'marketplace-app', width)
      await visit(page, `/tenants/${company.id}/members`, 'members', width)
      const invitee = `crew-${width}-${Date.now()}@northwind.example`
      await page.getByLabel('Email address').fill(invitee)
      await page.getByRole('button', { name: 'Send the invitation' }).click()
      await page.getByText('The invitation is on its way').waitFor()
      await checkPage(page, 'members-invited', width)
      const stranger = await visitor(width)
      await visit(stranger, await mailedLink(invitee, '/invitations/accept'), 'invitation', width)
    })

    it(`a partner's portal at ${width} px`, { skip: browserSkip, timeout: 120_000 }, async () => {
      const page = await visitor(width, developer)
      await visit(page, '/developer', 'developer', width)
      await visit(page, '/developer/apps/new', 'developer-new-app', width)
      await visit(page, `/developer/apps/${planner.clientId}`, 'developer-app', width)
      await visit(page, `/developer/apps/${agent.clientId}`, 'developer-public-client', width)
      assert.equal(await page.getByRole('checkbox', { name: 'Refresh tokens' }).isDisabled(), true, 'fixed on for a public client')
      assert.equal(await page.getByRole('button', { name: 'Rotate secret' }).count(), 0, 'no secret to rotate')
      await page.goto(server.url(`/developer/apps/${planner.clientId}`))
      await page.getByRole('button', { name: 'Rotate secret' }).click()
      await page.waitForURL((u) => u.pathname.endsWith('/secret'))
      await checkPage(page, 'developer-secret', width)
      // A partner who is in no company, at an app's authorization link: what to do, and the way back.
      await visit(page, authorizePath(), 'consent-no-company', width)
      assert.match(await page.locator('main').innerText(), /No company to connect/)
    })

    it(`the operator console at ${width} px`, { skip: browserSkip, timeout: 120_000 }, async () => {
      const page = await visitor(width, operator)
      const dev = await server.storage.getUserByEmail(developer)
      // Something in the grants and deliveries listings: the planner installed on the company, and an event it was sent.
      if (!(await server.storage.findActiveGrant(planner.id, company.id)))
        await server.storage.createGrant({
          id: randomUUID(),
          appId: planner.id,
          tenantId: company.id,
          scopes: ['api'],
          status: 'active',
          createdAt: Date.now(),
          updatedAt: Date.now(),
        })
      const [sent] = await server.storage.listEvents({ appId: planner.id, limit: 1 })
      const eventId = sent?.id ?? `evt_${randomBytes(16).toString('hex')}`
      if (!sent)
        await server.storage.queueEvents([
          {
            id: eventId,
            appId: planner.id,
            tenantId: company.id,
            type: 'app.installed',
            body: JSON.stringify({ id: eventId, type: 'app.installed', client_id: planner.clientId, tenant_id: company.id, data: {} }),
            state: 'failed',
            attempts: 8,
            nextAttemptAt: Date.now(),
            lockedUntil: null,
            createdAt: Date.now(),
            deliveredAt: null,
            lastError: 'the receiver answered 503',
          },
        ])
      for (const [path, name] of [
        ['/operator', 'operator-overview'],
        ['/operator/review', 'operator-review'],
        ['/operator/apps', 'operator-apps'],
        [`/operator/apps/${planner.clientId}`, 'operator-app'],
        ['/operator/tenants', 'operator-tenants'],
        [`/operator/tenants/${company.id}`, 'operator-tenant'],
        ['/operator/users', 'operator-users'],
        [`/operator/users/${dev?.id}`, 'operator-user'],
        ['/operator/grants', 'operator-grants'],
        ['/operator/deliveries', 'operator-deliveries'],
        [`/operator/deliveries/${eventId}`, 'operator-delivery'],
        ['/operator/audit', 'operator-audit'],
        ['/operator/security', 'operator-security'],
        ['/operator/mail', 'operator-mail'],
      ] as const) {
        await visit(page, path, name, width)
      }
    })
  }

  it('serves the brand: logo file, colours in the stylesheet, a page drawn in the brand', { skip: browserSkip }, async () => {
    const logo = await fetch(server.url('/assets/brand-logo'))
    assert.equal(logo.headers.get('content-type'), 'image/svg+xml')
    assert.equal(await logo.text(), logoSvg)
    const css = await (await fetch(server.url('/assets/fieldgate.css'))).text()
    assert.match(css, /--accent: #1a4d8f; --accent-ink: #ffffff;/)
  })
})

import assert from 'node:assert/strict'
import { randomBytes, randomUUID } from 'node:crypto'
import { mkdirSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import type { Browser, Page } from 'playwright-core'
import { cliActor, createGrant, createTenant, createUser, type EventType, type OutboxEvent } from '@fieldgate/core'
import { repoRoot, startServer, type TestServer } from './helpers.js'
import { Contexts, browserSkip, launchBrowser, signIn as signInAs } from './browser.js'
import { linkIn, SmtpReceiver } from './support/smtp.js'

/**
 * The operator's side as people live it, in Debian's chromium against a real server that mails
 * through a real SMTP server on loopback: a partner signs up, confirms the address from the message
 * the SMTP server received, creates a live app that no customer sees until an operator approves it in
 * the console, and sees the operator's suspension and its reason in the portal. A person who forgot
 * their password resets it from the mailed link, which ends their other sessions.
 * FIELDGATE_SCREENSHOTS=1 writes the console's screenshots to docs/.
 */

const PASSWORD = 'correct horse battery staple'
const APP = 'Orchard Route Planner'

function screenshotPath(name: string): string | undefined {
  if (process.env.FIELDGATE_SCREENSHOTS !== '1') return undefined
  const shot = join(repoRoot, 'docs', name)
  mkdirSync(dirname(shot), { recursive: true })
  return shot
}

async function seedGrantAndDeliveries(server: TestServer, clientId: string, tenantId: string): Promise<void> {
  const grant = await createGrant(server.runtime.ctx, cliActor, { clientId, tenantId })
  const now = Date.now()
  // Due only in an hour, so the server's own dispatcher leaves them to this function's lease.
  const event = (type: EventType, minutesAgo: number): OutboxEvent => {
    const id = `evt_${randomBytes(16).toString('hex')}`
    const body = { id, type, created_at: new Date(now - minutesAgo * 60_000).toISOString(), client_id: clientId, tenant_id: tenantId, data: {} }
    return {
      id,
      appId: grant.appId,
      tenantId,
      type,
      body: JSON.stringify(body),
      state: 'pending',
      attempts: 0,
      nextAttemptAt: now + 3_600_000,
      lockedUntil: null,
      createdAt: now - minutesAgo * 60_000,
      deliveredAt: null,
      lastError: null,
    }
  }
  const [delivered, retrying] = [event('grant.created', 9), event('record.created', 4)]
  await server.storage.queueEvents([delivered, retrying])
  const leasedUntil = now + 3 * 3_600_000
  const claimed = await server.storage.claimEvents(now + 2 * 3_600_000, leasedUntil, 10)
  assert.equal(claimed.length, 2)
  const attempt = (eventId: string, status: number, minutesAgo: number) => ({
    id: randomUUID(),
    eventId,
    at: now - minutesAgo * 60_000,
    status,
    error: status === 200 ? null : `the receiver answered ${status}`,
    durationMs: 84,
  })
  await server.storage.finishAttempts([
    {
      event: { id: delivered.id, state: 'delivered', attempts: 1, nextAttemptAt: now, deliveredAt: now - 9 * 60_000, lastError: null },
      leasedUntil,
      attempt: attempt(delivered.id, 200, 9),
    },
    {
      event: { id: retrying.id, state: 'pending', attempts: 1, nextAttemptAt: now + 3_600_000, deliveredAt: null, lastError: 'the receiver answered 503' },
      leasedUntil,
      attempt: attempt(retrying.id, 503, 4),
    },
  ])
}

describe('a partner signs up with real email and an operator reviews their app, in a browser', () => {
  let server: TestServer
  let smtp: SmtpReceiver
  let browser: Browser | undefined
  const contexts = new Contexts(() => browser)

  before(
    async () => {
      smtp = await SmtpReceiver.start()
      server = await startServer({ overrides: { smtpUrl: smtp.smtpUrl } })
      if (!browserSkip) browser = await launchBrowser()
    },
    { timeout: 30_000 },
  )
  after(async () => {
    await contexts.close()
    await browser?.close().catch(() => {})
    await server?.close()
    await smtp?.close()
  })

  const newPage = () => contexts.page()
  const signIn = (page: Page, email: string) => signInAs(page, server.origin, email, PASSWORD)

  it('sign up, confirm from the mail, create a live app; hidden until the operator approves it; suspended with a reason the partner sees', {
    skip: browserSkip,
    timeout: 90_000,
  }, async () => {
    const email = 'dev@orchardroutes.example'
    const partner = await newPage()

    // Sign up: the answer is "check your email", and nobody is signed in.
    await partner.goto(server.url('/signup'))
    await partner.getByLabel('Email').fill(email)
    await partner.getByLabel('Password').fill(PASSWORD)
    await partner.getByRole('button', { name: 'Create account' }).click()
    await partner.getByRole('heading', { name: 'Check your email' }).waitFor()

    // The link from the message the SMTP server received: a page, then a button.
    const mail = await smtp.next(email, /Confirm your email address/)
    await partner.goto(linkIn(mail, '/verify-email').href)
    await partner.getByText(`Confirm that ${email} is your address`).waitFor()
    await partner.getByRole('button', { name: 'Confirm my address' }).click()
    await partner.getByRole('status').filter({ hasText: 'Your email address is confirmed' }).waitFor()
    await partner.getByLabel('Email').fill(email)
    await partner.getByLabel('Password').fill(PASSWORD)
    await partner.getByRole('button', { name: 'Sign in' }).click()
    await partner.waitForURL((u) => u.pathname === '/developer')
    assert.equal(await partner.getByRole('region', { name: 'Confirm your email address' }).count(), 0, 'confirmed: no banner')

    // A live, listed app.
    await partner.getByRole('link', { name: 'Create an app' }).click()
    await partner.getByLabel('App name').fill(APP)
    await partner.getByLabel('What it does').fill('Plans picking routes across your orchards.')
    await partner.getByLabel('Install URL').fill('https://orchardroutes.example/install')
    await partner.getByLabel('Contact email').fill(email)
    await partner.getByLabel('Environment', { exact: true }).selectOption('live')
    await partner.getByRole('checkbox', { name: /^api / }).check()
    await partner.getByRole('checkbox', { name: 'List it in the marketplace' }).check()
    await partner.getByRole('button', { name: 'Create app' }).click()
    const clientId = await partner.getByLabel('Client ID').inputValue()
    await partner.goto(server.url(`/developer/apps/${clientId}`))
    await partner.getByText('Waiting for review.').waitFor()

    // A customer does not see it, nor reach it directly.
    const tenant = await createTenant(server.runtime.ctx, cliActor, { name: 'Cedar Orchards', environment: 'live' })
    const ownerEmail = 'owner@cedarorchards.example'
    await createUser(server.runtime.ctx, cliActor, { email: ownerEmail, password: PASSWORD, tenantId: tenant.id, role: 'owner' })
    const customer = await newPage()
    await signIn(customer, ownerEmail)
    await customer.goto(server.url(`/marketplace?tenant=${tenant.id}`))
    assert.equal(await customer.getByRole('region', { name: APP }).count(), 0, 'not listed before review')
    const direct = await customer.goto(server.url(`/marketplace/apps/${clientId}?tenant=${tenant.id}`))
    assert.equal(direct?.status(), 404)

    // The operator finds it in the console's review queue and approves it.
    const operatorEmail = 'ops@platform.example'
    await createUser(server.runtime.ctx, cliActor, { email: operatorEmail, password: PASSWORD, operator: true })
    const operator = await newPage()
    await signIn(operator, operatorEmail)
    await operator.getByRole('link', { name: 'Operator console' }).click()
    await operator.getByRole('heading', { name: 'Operator console', level: 1 }).waitFor()
    await operator.getByRole('link', { name: /waiting for review/ }).click()
    const card = operator.getByRole('region', { name: APP })
    await card.waitFor()
    await card.getByText('In force (not live yet)').waitFor()
    const shot = screenshotPath('operator-review.png')
    if (shot) await operator.screenshot({ path: shot, fullPage: true })
    await card.getByLabel('Note to the partner (optional)').fill('Welcome aboard')
    await card.getByRole('button', { name: 'Approve' }).click()
    await operator.getByRole('status').filter({ hasText: 'Approved' }).waitFor()
    assert.match((await smtp.next(email, new RegExp(`Approved: ${APP}`))).text, /Welcome aboard/)

    // Now the customer sees it.
    await customer.goto(server.url(`/marketplace?tenant=${tenant.id}`))
    await customer.getByRole('region', { name: APP }).waitFor()

    // Something for the Grants and Deliveries pages: the customer's farm connected (as `fieldgate grants
    // create` does it; the consent journey is authorize-browser.test.ts's), and two Data API events the
    // app was sent, one delivered and one retrying after a 503 (the app has no Data API URL to really send them to).
    if (process.env.FIELDGATE_SCREENSHOTS === '1') await seedGrantAndDeliveries(server, clientId, tenant.id)

    // The operator suspends it with a reason; the partner sees the reason in the portal and by mail.
    await operator.goto(server.url('/operator/apps'))
    await operator.getByLabel('Name or client_id').fill(APP)
    await operator.getByRole('button', { name: 'Search' }).click()
    await operator.getByRole('link', { name: APP }).click()
    await operator.getByLabel('Suspend: why (the partner is told)').fill('Customers report wrong routes')
    await operator.getByRole('button', { name: 'Suspend the app' }).click()
    await operator.getByRole('status').filter({ hasText: 'Suspended' }).waitFor()
    const appShot = screenshotPath('operator-app.png')
    if (appShot) await operator.screenshot({ path: appShot, fullPage: true })
    await partner.goto(server.url(`/developer/apps/${clientId}`))
    await partner.getByRole('alert').filter({ hasText: 'Customers report wrong routes' }).waitFor()
    await smtp.next(email, new RegExp(`Suspended: ${APP}`))
    await customer.goto(server.url(`/marketplace?tenant=${tenant.id}`))
    assert.equal(await customer.getByRole('region', { name: APP }).count(), 0, 'a suspended app is not listed')

    for (const [name, path] of [
      ['operator-overview.png', '/operator'],
      ['operator-grants.png', '/operator/grants'],
      ['operator-deliveries.png', '/operator/deliveries'],
      ['operator-security.png', '/operator/security'],
    ] as const) {
      const file = screenshotPath(name)
      if (!file) continue
      await operator.goto(server.url(path))
      await operator.screenshot({ path: file, fullPage: true })
    }
  })

  it('Forgot password: the mailed link, a too-short password refused beside its field, the new one signs in, the old fails, another session ends', {
    skip: browserSkip,
    timeout: 60_000,
  }, async () => {
    const email = 'grower@resetfarm.example'
    await createUser(server.runtime.ctx, cliActor, { email, password: PASSWORD })
    // Signed in elsewhere before the reset: another browser context, its own cookies.
    const elsewhere = await newPage()
    await signIn(elsewhere, email)
    await elsewhere.goto(server.url('/connected-apps'))
    assert.equal(new URL(elsewhere.url()).pathname, '/connected-apps')

    const page = await newPage()
    await page.goto(server.url('/login'))
    await page.getByRole('link', { name: 'Forgot your password?' }).click()
    await page.getByLabel('Email').fill(email)
    await page.getByRole('button', { name: 'Send the link' }).click()
    await page.getByText('If an account has that address').waitFor()

    const mail = await smtp.next(email, /Reset your password/)
    await page.goto(linkIn(mail, '/reset-password').href)
    await page.getByRole('heading', { name: 'Choose a new password' }).waitFor()
    // The form is novalidate: the server's message, beside the field, is what the person reads.
    await page.getByLabel('New password').fill('short')
    await page.getByRole('button', { name: 'Set the password' }).click()
    const error = page.locator('#password-error')
    await error.waitFor()
    assert.match(await error.innerText(), /at least 10 characters/)
    assert.match((await page.getByLabel('New password').getAttribute('aria-describedby')) ?? '', /password-error/, 'the message belongs to the field')

    const fresh = 'a brand new passphrase'
    await page.getByLabel('New password').fill(fresh)
    await page.getByRole('button', { name: 'Set the password' }).click()
    await page.waitForURL((u) => u.pathname === '/connected-apps')

    // The other session ended: its next page is the sign-in form.
    await elsewhere.goto(server.url('/connected-apps'))
    assert.equal(new URL(elsewhere.url()).pathname, '/login', 'the session from before the reset is over')

    // The old password fails; the new one signs in.
    const later = await newPage()
    await later.goto(server.url('/login'))
    await later.getByLabel('Email').fill(email)
    await later.getByLabel('Password').fill(PASSWORD)
    await later.getByRole('button', { name: 'Sign in' }).click()
    await later.getByText('That email and password do not match an account.').waitFor()
    assert.equal(new URL(later.url()).pathname, '/login', 'the old password no longer signs in')
    await later.getByLabel('Email').fill(email)
    await later.getByLabel('Password').fill(fresh)
    await later.getByRole('button', { name: 'Sign in' }).click()
    await later.waitForURL((u) => u.pathname !== '/login')
  })
})

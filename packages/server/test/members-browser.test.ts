import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { after, before, describe, it } from 'node:test'
import type { Browser } from 'playwright-core'
import { cliActor, createTenant, createUser, type Tenant } from '@fieldgate/core'
import { startServer, type TestServer } from './helpers.js'
import { Contexts, browserSkip, launchBrowser, signIn } from './browser.js'
import { linkIn, SmtpReceiver } from './support/smtp.js'

/**
 * A tenant's owner invites someone from the members page in Debian's chromium; the invitation goes
 * through a real SMTP server on loopback; the invitee opens the link from the received message,
 * chooses a password and lands signed in, a member of the tenant.
 */

const PASSWORD = 'correct horse battery staple'

describe('an owner invites someone to their tenant, in a browser', () => {
  let server: TestServer
  let smtp: SmtpReceiver
  let browser: Browser | undefined
  let farm: Tenant
  const owner = `owner-${randomBytes(4).toString('hex')}@hillfarm.example`
  const contexts = new Contexts(() => browser)

  before(
    async () => {
      smtp = await SmtpReceiver.start()
      server = await startServer({ overrides: { smtpUrl: smtp.smtpUrl } })
      farm = await createTenant(server.runtime.ctx, cliActor, { name: 'Hill Farm', environment: 'live' })
      await createUser(server.runtime.ctx, cliActor, { email: owner, password: PASSWORD, tenantId: farm.id, role: 'owner' })
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

  it('owner invites from the members page; the invitee opens the mailed link, sets a password and is signed in as a member', { skip: browserSkip, timeout: 60_000 }, async () => {
    const invitee = `hand-${randomBytes(4).toString('hex')}@hillfarm.example`
    const ownerPage = await newPage()
    await signIn(ownerPage, server.origin, owner, PASSWORD)
    assert.equal(new URL(ownerPage.url()).pathname, '/connected-apps')

    // The Members link an owner sees on Connected apps, under Your farms.
    await ownerPage.getByRole('link', { name: 'Members of Hill Farm' }).click()
    await ownerPage.getByRole('heading', { name: 'Members of Hill Farm' }).waitFor()
    await ownerPage.getByLabel('Email address').fill(invitee)
    await ownerPage.getByLabel('Role', { exact: true }).selectOption('member')
    await ownerPage.getByRole('button', { name: 'Send the invitation' }).click()
    await ownerPage.getByText('The invitation is on its way').waitFor()
    assert.ok(await ownerPage.getByRole('cell', { name: invitee }).isVisible(), 'listed as waiting')

    const mail = await smtp.next(invitee, /You are invited to Hill Farm/)
    const link = linkIn(mail, '/invitations/accept')
    const page = await newPage()
    await page.goto(link.href)
    await page.getByRole('heading', { name: 'You are invited' }).waitFor()
    assert.match(await page.locator('main').innerText(), new RegExp(`${owner} invited ${invitee} to join Hill Farm as a member`))
    await page.getByLabel('Password').fill(PASSWORD)
    await page.getByRole('button', { name: 'Accept the invitation' }).click()
    await page.waitForURL((u) => u.pathname === '/connected-apps')
    assert.equal(await page.locator('header .signout span').innerText(), invitee, 'signed in as the invitee')

    const user = await server.storage.getUserByEmail(invitee)
    assert.ok(user?.emailVerifiedAt, 'confirmed by the click')
    assert.deepEqual(
      (await server.storage.listMemberships(user.id)).map((m) => [m.tenantId, m.role]),
      [[farm.id, 'member']],
    )
    await ownerPage.reload()
    assert.match(await ownerPage.locator('table').first().innerText(), new RegExp(`${invitee}\\s+member`))
  })
})

import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { after, before, describe, it } from 'node:test'
import type { Browser, Page } from 'playwright-core'
import { postJson, startServer, type TestServer } from './helpers.js'
import { browserSkip, launchBrowser } from './browser.js'

const PASSWORD = 'correct horse battery staple'

/**
 * The developer portal in a real browser: reloading the page after Create or Rotate repeats nothing
 * (POST/redirect/GET) and shows the secret no more; the token lifetime is set in the form, and a wrong
 * one is explained beside its field.
 */
describe('the developer portal in a browser: reloads and the token lifetime', () => {
  let server: TestServer
  let browser: Browser | undefined

  before(
    async () => {
      server = await startServer({ overrides: { signup: 'open' } })
      if (!browserSkip) browser = await launchBrowser()
    },
    { timeout: 30_000 },
  )

  after(async () => {
    await browser?.close().catch(() => {})
    await server?.close()
  })

  async function signedUpPartner(): Promise<Page> {
    if (!browser) throw new Error('no browser')
    const context = await browser.newContext()
    context.setDefaultTimeout(5_000)
    const page = await context.newPage()
    await page.goto(server.url('/signup'))
    await page.getByLabel('Email').fill(`partner-${randomUUID().slice(0, 8)}@partner.example`)
    await page.getByLabel('Password').fill(PASSWORD)
    await page.getByRole('button', { name: 'Create account' }).click()
    await page.waitForURL((u) => u.pathname === '/developer')
    return page
  }

  const appCount = async () => (await server.storage.listApps()).length

  it('reloading after Create or Rotate creates or rotates nothing and shows no secret', { skip: browserSkip, timeout: 60_000 }, async () => {
    const page = await signedUpPartner()
    await page.goto(server.url('/developer/apps/new'))
    await page.getByLabel('App name').fill('Reload me')
    await page.getByLabel('Access-token lifetime (seconds)').fill('900')
    const before = await appCount()
    await page.getByRole('button', { name: 'Create app' }).click()
    await page.waitForURL((u) => u.pathname.endsWith('/secret'))
    const clientId = await page.getByLabel('Client ID').inputValue()
    const secret = await page.getByLabel('Client secret').inputValue()
    assert.match(secret, /^fgs_sandbox_/)
    const targetId = /target_id ([0-9a-f-]{36})/.exec(await page.locator('body').innerText())?.[1] ?? assert.fail('no target_id')
    const token = await postJson(server.url('/oauth/token'), { client_id: clientId, client_secret: secret, target_id: targetId, grant_type: 'client_credentials' })
    assert.equal(token.status, 200, token.text)
    assert.equal(token.json.expires_in, 900, 'the lifetime set in the form')

    const reloaded = await page.reload()
    assert.equal(reloaded?.status(), 410)
    await page.getByRole('heading', { name: 'This secret was already shown' }).waitFor()
    assert.equal((await page.content()).includes(secret), false)
    assert.equal(await appCount(), before + 1, 'one app, not two')

    await page.goto(server.url(`/developer/apps/${clientId}`))
    assert.equal(await page.getByLabel('Access-token lifetime (seconds)').inputValue(), '900')
    await page.getByRole('button', { name: 'Rotate secret' }).click()
    await page.waitForURL((u) => u.pathname.endsWith('/secret'))
    const rotated = await page.getByLabel('Client secret').inputValue()
    assert.notEqual(rotated, secret)
    await page.reload()
    await page.getByRole('heading', { name: 'This secret was already shown' }).waitFor()
    const app = await server.storage.getAppByClientId(clientId)
    assert.equal((await server.storage.listLiveSecrets(app!.id, Date.now())).length, 2, 'rotated once, not twice')
  })

  it('explains a wrong token lifetime beside its field, and saving redirects', { skip: browserSkip, timeout: 60_000 }, async () => {
    const page = await signedUpPartner()
    await page.goto(server.url('/developer/apps/new'))
    await page.getByLabel('App name').fill('Lifetimes')
    const before = await appCount()
    // The browser's own min/max check would stop the form first; a script-free form can still send it.
    await page.getByLabel('Access-token lifetime (seconds)').evaluate((el) => el.removeAttribute('min'))
    await page.getByLabel('Access-token lifetime (seconds)').fill('30')
    await page.getByRole('button', { name: 'Create app' }).click()
    await page.waitForLoadState()
    const ttl = page.getByLabel('Access-token lifetime (seconds)')
    assert.equal(await ttl.getAttribute('aria-invalid'), 'true')
    assert.match((await ttl.getAttribute('aria-describedby')) ?? '', /token_ttl-error/)
    assert.match(await page.locator('#token_ttl-error').innerText(), /token lifetime must be a whole number of seconds from 60 to 2592000/)
    assert.equal(await appCount(), before, 'nothing made')

    await ttl.fill('')
    await page.getByRole('button', { name: 'Create app' }).click()
    await page.waitForURL((u) => u.pathname.endsWith('/secret'))
    const clientId = await page.getByLabel('Client ID').inputValue()
    await page.goto(server.url(`/developer/apps/${clientId}`))
    await page.getByLabel('Access-token lifetime (seconds)').fill('7200')
    await page.getByRole('button', { name: 'Save changes' }).click()
    await page.getByRole('status').filter({ hasText: 'Saved.' }).waitFor()
    assert.match(page.url(), /\?notice=saved$/)
    assert.equal((await server.storage.getAppByClientId(clientId))?.tokenTtl, 7200)
    await page.reload()
    assert.equal(await appCount(), before + 1)
  })
})

/**
 * Issue 14, the portal part, on a phone's width (390 px): the app page's sections by in-page links, the
 * listing in the form, and a test event sent to a real receiver on loopback, shown with its body,
 * status and time; the deliveries fit their container.
 */
describe('the developer portal in a browser: sections, the listing and a test event', () => {
  let server: TestServer
  let browser: Browser | undefined
  const received: string[] = []
  let receiver: Server | undefined
  let dataApiUrl = ''

  before(
    async () => {
      receiver = createServer((req, res) => {
        let body = ''
        req.setEncoding('utf8').on('data', (c: string) => {
          body += c
        })
        req.on('end', () => {
          received.push(body)
          res.writeHead(202).end()
        })
      })
      await new Promise<void>((ok) => receiver!.listen(0, '127.0.0.1', ok))
      dataApiUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/fieldgate-events`
      const webhooks = { allowPrivateTargets: true, pollMs: 50, timeoutMs: 1000, leaseMs: 3000, baseDelayMs: 100, maxDelayMs: 400, maxAgeSeconds: 86400, batch: 20 }
      server = await startServer({ overrides: { signup: 'open', webhooks } })
      if (!browserSkip) browser = await launchBrowser()
    },
    { timeout: 30_000 },
  )

  after(async () => {
    await browser?.close().catch(() => {})
    await server?.close()
    receiver?.closeAllConnections()
    await new Promise<void>((ok) => (receiver ? receiver.close(() => ok()) : ok()))
  })

  it('navigates the sections, saves the listing, and shows a test event delivered to the receiver', { skip: browserSkip, timeout: 60_000 }, async () => {
    if (!browser) throw new Error('no browser')
    const context = await browser.newContext({ viewport: { width: 390, height: 844 } })
    context.setDefaultTimeout(5_000)
    try {
      const page = await context.newPage()
      await page.goto(server.url('/signup'))
      await page.getByLabel('Email').fill(`partner-${randomUUID().slice(0, 8)}@partner.example`)
      await page.getByLabel('Password').fill(PASSWORD)
      await page.getByRole('button', { name: 'Create account' }).click()
      await page.waitForURL((u) => u.pathname === '/developer')
      await page.goto(server.url('/developer/apps/new'))
      await page.getByLabel('App name').fill('Spray log')
      await page.getByLabel('Data API URL').fill(dataApiUrl)
      await page.getByLabel('Short description').fill('Every spray, logged')
      await page.getByLabel('Publisher').fill('Spray Log Ltd')
      await page.getByLabel('Compliance').check()
      await page.getByLabel('Support URL').fill('https://spray.example/help')
      await page.getByRole('button', { name: 'Create app' }).click()
      await page.waitForURL((u) => u.pathname.endsWith('/secret'))
      const clientId = await page.getByLabel('Client ID').inputValue()
      const app = (await server.storage.getAppByClientId(clientId))!
      assert.deepEqual(
        [app.shortDescription, app.publisher, app.categories, app.supportUrl],
        ['Every spray, logged', 'Spray Log Ltd', ['Compliance'], 'https://spray.example/help'],
      )

      await page.goto(server.url(`/developer/apps/${clientId}`))
      const nav = page.getByRole('navigation', { name: 'Sections of this app' })
      for (const [name, id] of [
        ['Credentials', 'credentials'],
        ['Activity', 'activity'],
        ['Data API', 'data-api'],
      ] as const) {
        await nav.getByRole('link', { name }).click()
        await page.waitForURL((u) => u.hash === `#${id}`)
        const top = await page.locator(`#${id}`).evaluate((el) => el.getBoundingClientRect().top)
        assert.ok(top >= -1 && top < 844, `${name} is scrolled into view (top ${top})`)
      }
      assert.match(await page.locator('#credentials').innerText(), new RegExp(clientId))

      await page.getByRole('button', { name: 'Send a test event' }).click()
      await page.getByRole('status').filter({ hasText: 'A test event is on its way' }).waitFor()
      assert.equal(new URL(page.url()).hash, '#data-api')
      const start = Date.now()
      while (!received.some((b) => b.includes('"type":"ping"') && b.includes(clientId)) && Date.now() - start < 10_000) await page.waitForTimeout(50)
      const ping = JSON.parse(received.find((b) => b.includes('"type":"ping"') && b.includes(clientId))!) as { id: string }
      // Reload until the dispatcher has recorded the receiver's answer.
      const delivery = page.locator(`#event-${ping.id}`)
      for (let i = 0; i < 50; i++) {
        await page.reload()
        if ((await delivery.count()) && (await delivery.innerText()).includes('Delivered')) break
        await page.waitForTimeout(100)
      }
      const text = await delivery.innerText()
      assert.match(text, /Test event[\s\S]*ping[\s\S]*Delivered/)
      assert.match(text, /Request body[\s\S]*"id": "evt_/, 'the body as sent')
      assert.match(text, /\w{3} \d{1,2}, \d{4}, \d{1,2}:\d\d:\d\d\s[AP]M: status 202 in \d+ ms/, "the answer and its time, in the reader's locale")
      assert.equal(await page.locator('ul.deliveries').evaluate((el) => el.scrollWidth <= el.clientWidth + 1), true, 'the deliveries fit at 390 px')
      assert.equal(await page.locator('#data-api').evaluate((el) => el.scrollWidth <= el.clientWidth + 1), true, 'and so does the section')

      await page.getByLabel('Show').selectOption('failed')
      await page.getByRole('button', { name: 'Filter' }).click()
      await page.waitForURL((u) => u.searchParams.get('state') === 'failed')
      assert.equal(await page.locator('li.delivery').count(), 0, 'nothing failed')
      await page.getByLabel('Show').selectOption('delivered')
      await page.getByRole('button', { name: 'Filter' }).click()
      await page.waitForURL((u) => u.searchParams.get('state') === 'delivered')
      assert.ok((await page.locator('li.delivery').count()) >= 1)
      await page.locator(`#event-${ping.id}`).getByRole('button', { name: 'Redeliver' }).click()
      await page.getByRole('status').filter({ hasText: 'The event will be delivered again.' }).waitFor()
    } finally {
      await context.close().catch(() => {})
    }
  })
})

import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
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

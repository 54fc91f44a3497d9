import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { join } from 'node:path'
import { after, afterEach, before, describe, it } from 'node:test'
import type { Browser, BrowserContext, Locator, Page } from 'playwright-core'
import { signEvent } from '@fieldgate/core'
import { childEnv, freePort, repoRoot, runCli, spawnServe, tempDir, waitUntil, type ServerProcess } from './helpers.js'
import { browserSkip, launchBrowser } from './browser.js'

/**
 * The README's walkthroughs, as a newcomer runs them: `fieldgate serve` on a fresh data dir, the apps made
 * with the CLI, and examples/partner-app as the partner on its own port. Chromium connects a farm (the
 * fieldmargin flow) and installs from the marketplace (FieldEdge); the partner's page must then show the
 * exchanged token, the install's token and each Data API delivery verified, and a forged one refused.
 */

const PASSWORD = 'a long passphrase'
const partnerScript = join(repoRoot, 'examples/partner-app/server.mjs')

interface PartnerProcess {
  origin: string
  output(): string
  stop(): Promise<void>
}

/** `node examples/partner-app/server.mjs` with an app's credentials, waited for until it says it listens. */
async function startPartnerApp(port: number, env: Record<string, string>): Promise<PartnerProcess> {
  const child: ChildProcess = spawn(process.execPath, [partnerScript, '--port', String(port)], { cwd: repoRoot, env: childEnv(env), stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  child.stdout!.setEncoding('utf8').on('data', (d: string) => {
    out += d
  })
  child.stderr!.setEncoding('utf8').on('data', (d: string) => {
    out += d
  })
  const exited = new Promise<void>((r) => child.once('exit', () => r()))
  await waitUntil(async () => {
    if (child.exitCode !== null) throw new Error(`partner-app exited early:\n${out}`)
    return out.includes('partner-app listening on')
  }, 10_000)
  return {
    origin: `http://127.0.0.1:${port}`,
    output: () => out,
    stop: async () => {
      if (child.exitCode !== null) return
      child.kill('SIGTERM')
      await exited
    },
  }
}

/** One entry of a section of the partner's page (newest first), by its verdict line. */
const entries = (page: Page, kind: 'exchange' | 'install' | 'delivery'): Locator => page.locator(`article[data-kind="${kind}"]`)
const field = (entry: Locator, name: string): Promise<string> => entry.locator(`[data-field="${name}"]`).innerText()

/** Reloads the partner's page until a delivery of `type` for `farmId` is listed; returns it. */
async function waitForDelivery(page: Page, origin: string, type: string, farmId: string): Promise<Locator> {
  const entry = page.locator(`article[data-kind="delivery"][data-event="${type}"]`).filter({ hasText: `"farm_id": "${farmId}"` })
  await waitUntil(
    async () => {
      await page.goto(origin)
      return (await entry.count()) > 0
    },
    15_000,
    200,
  )
  return entry.first()
}

describe('examples/partner-app: the README walkthroughs end on the partner page', { skip: browserSkip }, () => {
  const dataDir = tempDir('fg-partner-app-')
  const cliEnv = { FIELDGATE_DATA_DIR: dataDir }
  let fieldgate: ServerProcess
  let browser: Browser
  let tenantId: string
  const partners: PartnerProcess[] = []
  const contexts: BrowserContext[] = []

  const cli = async (...args: string[]) => {
    const r = await runCli([...args, '--json'], cliEnv)
    assert.equal(r.code, 0, `fieldgate ${args.join(' ')}: ${r.stderr}${r.stdout}`)
    return r.json
  }
  const newPage = async (): Promise<Page> => {
    const context = await browser.newContext()
    contexts.push(context)
    return context.newPage()
  }
  const signIn = async (page: Page, email: string) => {
    await page.getByLabel('Email').fill(email)
    await page.getByLabel('Password').fill(PASSWORD)
    await page.getByRole('button', { name: 'Sign in' }).click()
  }
  /** The partner page must never show a secret or a whole token. */
  const assertNothingSecret = async (page: Page, secret: string, ...tokens: string[]) => {
    const content = await page.content()
    assert.ok(!content.includes(secret.replace(/^fgs_[a-z]+_/, '')), 'the page shows the client secret')
    for (const t of tokens) assert.ok(!content.includes(t), 'the page shows a whole token')
  }

  before(
    async () => {
      // As the README says: loopback Data API URLs need FIELDGATE_WEBHOOK_ALLOW_PRIVATE_TARGETS=1.
      fieldgate = await spawnServe(await freePort(), { ...cliEnv, FIELDGATE_WEBHOOK_ALLOW_PRIVATE_TARGETS: '1', FIELDGATE_WEBHOOK_POLL_MS: '100' })
      const tenant = await cli('tenants', 'create', '--name', 'Acme Field Services', '--environment', 'sandbox')
      tenantId = tenant.id
      browser = await launchBrowser()
    },
    { timeout: 40_000 },
  )

  afterEach(async () => {
    for (const c of contexts.splice(0)) await c.close().catch(() => {})
  })

  after(async () => {
    await browser?.close().catch(() => {})
    for (const p of partners) await p.stop()
    await fieldgate?.stop()
  })

  it('fieldmargin: Connect a farm, consent, and the page shows the code exchange, the token, its scopes and grant.created verified', { timeout: 60_000 }, async () => {
    const port = await freePort()
    const origin = `http://127.0.0.1:${port}`
    await cli('users', 'create', '--email', 'owner@farm.example', '--password', PASSWORD, '--tenant', tenantId, '--role', 'owner')
    const app = await cli(
      'apps',
      'create',
      '--name',
      'Field Mapper',
      '--kind',
      'public',
      '--scopes',
      'fields:read:all maps:write',
      '--redirect-uri',
      `${origin}/callback`,
      '--data-api-url',
      `${origin}/data-api`,
      '--contact-email',
      'dev@partner.example',
    )
    const partner = await startPartnerApp(port, { FIELDGATE_URL: fieldgate.origin, CLIENT_ID: app.client_id, CLIENT_SECRET: app.client_secret })
    partners.push(partner)

    const page = await newPage()
    await page.goto(origin)
    assert.equal(await page.locator('[data-field="client_id"]').innerText(), app.client_id)
    await page.getByRole('link', { name: 'Connect a farm' }).click()
    await page.waitForURL(/\/login\?/)
    // To Fieldgate with state and PKCE S256, signed in, then consent.
    const authorize = new URL(new URL(page.url()).searchParams.get('return_to') ?? '', fieldgate.origin)
    assert.equal(authorize.pathname, '/authorize')
    assert.equal(authorize.searchParams.get('code_challenge_method'), 'S256')
    assert.ok((authorize.searchParams.get('state') ?? '').length >= 22, 'an unguessable state')
    await signIn(page, 'owner@farm.example')
    await page.getByRole('button', { name: 'Allow' }).click()
    await page.waitForURL(`${origin}/`)

    const exchange = entries(page, 'exchange').first()
    await exchange.locator('.verdict', { hasText: 'Connected: code exchanged for a token' }).waitFor()
    assert.equal(await exchange.getAttribute('class'), 'ok')
    assert.equal(await field(exchange, 'farm_id'), tenantId)
    assert.equal(await field(exchange, 'scopes'), 'fields:read:all maps:write')
    assert.match(await field(exchange, 'token'), /^[0-9a-f]{6}…[0-9a-f]{4} \(64 characters\)$/)
    const text = await exchange.innerText()
    assert.match(text, /POST http:\/\/127\.0\.0\.1:\d+\/v1\/token\.exchange/)
    assert.match(text, /client_secret=fgs_sandbox_•••• \(hidden\)/)
    assert.match(text, /code_verifier=/)
    assert.match(text, /"scopes":\["fields:read:all","maps:write"\]/)
    await assertNothingSecret(page, app.client_secret)
    // Readable on a phone: nothing wider than 390 px.
    await page.setViewportSize({ width: 390, height: 800 })
    assert.ok(Number(await page.evaluate('document.documentElement.scrollWidth')) <= 390, 'the page scrolls sideways at 390 px')

    // Fieldgate told the partner about the new connection, signed.
    const delivery = await waitForDelivery(page, origin, 'grant.created', tenantId)
    assert.equal(await field(delivery, 'verified'), 'yes')
    assert.equal(await field(delivery, 'event'), 'grant.created')
    assert.match(await field(delivery, 'body'), /"scopes": \[\s+"fields:read:all",\s+"maps:write"\s+\]/)

    // A callback this browser did not start is refused, and said so.
    await page.goto(`${origin}/callback?code=stolen&state=not-ours`)
    const refused = entries(page, 'exchange').first()
    assert.equal(await refused.getAttribute('class'), 'failed')
    assert.match(await refused.innerText(), /state is missing or unknown/)
  })

  it('FieldEdge: a tenant owner installs from the marketplace; the install URL verifies, gets a token for target_id and completes the install', { timeout: 60_000 }, async () => {
    const port = await freePort()
    const origin = `http://127.0.0.1:${port}`
    await cli('users', 'create', '--email', 'owner@acme.example', '--password', PASSWORD, '--tenant', tenantId, '--role', 'owner')
    const app = await cli('apps', 'create', '--name', 'Route planner', '--kind', 'public', '--listed', '--install-url', `${origin}/install`, '--data-api-url', `${origin}/data-api`)
    assert.equal(app.listed, true)
    const partner = await startPartnerApp(port, { FIELDGATE_URL: fieldgate.origin, CLIENT_ID: app.client_id, CLIENT_SECRET: app.client_secret })
    partners.push(partner)

    const page = await newPage()
    await page.goto(`${fieldgate.origin}/marketplace`)
    await signIn(page, 'owner@acme.example')
    await page.getByRole('link', { name: 'Route planner' }).first().click()
    await page.getByRole('button', { name: 'Install' }).click()
    // Through the partner's install URL and back, signed: Fieldgate says the install is complete.
    await page.getByRole('heading', { name: 'Route planner is installed' }).waitFor()
    assert.equal(new URL(page.url()).pathname, '/marketplace/complete')

    await page.goto(origin)
    const install = entries(page, 'install').first()
    assert.equal(await install.getAttribute('class'), 'ok')
    assert.equal(await field(install, 'verified'), 'verified')
    assert.equal(await field(install, 'target_id'), tenantId)
    assert.equal(await field(install, 'scopes'), 'api')
    assert.match(await field(install, 'token'), /^eyJ\S{3}…\S{4} \(\d+ characters\)$/)
    assert.match(await install.innerText(), /"expires_in":28000/)
    await assertNothingSecret(page, app.client_secret)

    const delivery = await waitForDelivery(page, origin, 'app.installed', tenantId)
    assert.equal(await field(delivery, 'verified'), 'yes')

    // An install request Fieldgate did not sign: refused, nothing set up, and shown as such.
    const forged = await page.goto(`${origin}/install?target=x&target_id=${tenantId}&timestamp=${Math.floor(Date.now() / 1000)}&hmac=${'0'.repeat(64)}`)
    assert.equal(forged?.status(), 400)
    await page.getByRole('heading', { name: 'Install refused' }).waitFor()
    await page.goto(origin)
    const refused = entries(page, 'install').first()
    assert.equal(await refused.getAttribute('class'), 'failed')
    assert.equal(await field(refused, 'verified'), 'not verified')
  })

  it('a Data API delivery with a changed body, or signed with another secret, is refused with 401 and shown as not verified', { timeout: 30_000 }, async () => {
    const port = await freePort()
    const origin = `http://127.0.0.1:${port}`
    // No Data API URL on the app: every delivery below comes from the test, none from Fieldgate.
    const app = await cli('apps', 'create', '--name', 'Tamper check', '--kind', 'public', '--install-url', `${origin}/install`)
    const partner = await startPartnerApp(port, { FIELDGATE_URL: fieldgate.origin, CLIENT_ID: app.client_id, CLIENT_SECRET: app.client_secret })
    partners.push(partner)
    const body = JSON.stringify({ id: 'evt_test', type: 'grant.revoked', client_id: app.client_id, farm_id: tenantId, tenant_id: tenantId, data: {} })
    const post = (payload: string, signature: string) =>
      fetch(`${origin}/data-api`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'fieldgate-signature': signature, 'fieldgate-event-id': 'evt_test' },
        body: payload,
      })
    const now = Math.floor(Date.now() / 1000)

    // Signed as Fieldgate signs (core's signEvent), the same bytes: accepted.
    const good = await post(body, signEvent(body, [app.client_secret], now))
    assert.equal(good.status, 204)
    const changed = await post(body.replace('grant.revoked', 'app.uninstalled'), signEvent(body, [app.client_secret], now))
    assert.equal(changed.status, 401)
    assert.deepEqual(await changed.json(), { error: 'invalid_signature', reason: 'mismatch' })
    const otherSecret = await post(body, signEvent(body, ['fgs_sandbox_not-the-secret'], now))
    assert.equal(otherSecret.status, 401)
    const stale = await post(body, signEvent(body, [app.client_secret], now - 3600))
    assert.deepEqual(await stale.json(), { error: 'invalid_signature', reason: 'stale' })
    const unsigned = await fetch(`${origin}/data-api`, { method: 'POST', body })
    assert.equal(unsigned.status, 401)

    const page = await newPage()
    await page.goto(origin)
    const shown = entries(page, 'delivery')
    // Newest first: unsigned, stale, other secret, changed body, then the good one.
    assert.deepEqual(await shown.locator('[data-field="verified"]').allInnerTexts(), ['no', 'no', 'no', 'no', 'yes'])
    assert.match(await shown.nth(3).innerText(), /Not verified \(mismatch\): refused with 401/)
    assert.match(await shown.nth(1).innerText(), /Not verified \(stale\)/)
    assert.match(await shown.nth(0).innerText(), /Not verified \(missing\)/)
    assert.equal(await field(shown.nth(3), 'event'), 'app.uninstalled')
  })
})

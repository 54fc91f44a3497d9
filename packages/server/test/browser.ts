/**
 * Browser tests drive Debian's chromium (installed by `.ci/run` with apt) through playwright-core.
 * Nothing here ever downloads a browser: without /usr/bin/chromium the tests are skipped and say why.
 */
import { existsSync } from 'node:fs'
import { createServer as createHttpServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core'

export const chromiumPath = '/usr/bin/chromium'

/** A reason to skip when chromium is not installed, for `it(name, { skip: browserSkip }, …)`. */
export const browserSkip: string | undefined = existsSync(chromiumPath) ? undefined : `${chromiumPath} is not installed (apt-get install chromium; .ci/run does it)`

export function launchBrowser(): Promise<Browser> {
  if (browserSkip) return Promise.reject(new Error(browserSkip))
  return chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
    timeout: 20_000,
  })
}

/** The browser contexts a test opens, each a person of its own (its own cookies), closed together. */
export class Contexts {
  private readonly open: BrowserContext[] = []

  constructor(private readonly browser: () => Browser | undefined) {}

  /** A page in a new context: 1280 × 900 unless told, 8 s per action. */
  async page(opts: { width?: number; height?: number; bypassCSP?: boolean; timeoutMs?: number } = {}): Promise<Page> {
    const browser = this.browser()
    if (!browser) throw new Error('no browser')
    const context = await browser.newContext({ viewport: { width: opts.width ?? 1280, height: opts.height ?? 900 }, bypassCSP: opts.bypassCSP ?? false })
    this.open.push(context)
    context.setDefaultTimeout(opts.timeoutMs ?? 8_000)
    return context.newPage()
  }

  async close(): Promise<void> {
    for (const c of this.open.splice(0)) await c.close().catch(() => {})
  }
}

/** Signs `email` in on the sign-in page at `origin`, and waits until the page has moved on. */
export async function signIn(page: Page, origin: string, email: string, password: string): Promise<void> {
  await page.goto(`${origin}/login`)
  await page.getByLabel('Email').fill(email)
  await page.getByLabel('Password').fill(password)
  await page.getByRole('button', { name: 'Sign in' }).click()
  await page.waitForURL((u) => u.pathname !== '/login')
}

export interface Hit {
  /** The raw query string, as it arrived. */
  query: string
  params: URLSearchParams
}

/** The partner's website, on loopback: records every GET of `path` and answers a tiny page titled `title`. */
export interface Partner {
  origin: string
  /** origin + path */
  url: string
  hits: Hit[]
  close(): Promise<void>
}

export async function startPartner(path: string, title: string, heading: string): Promise<Partner> {
  const hits: Hit[] = []
  const srv = createHttpServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1')
    if (req.method !== 'GET' || url.pathname !== path) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found')
      return
    }
    hits.push({ query: url.search.slice(1), params: url.searchParams })
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(`<!doctype html><html lang="en"><title>${title}</title><h1>${heading}</h1></html>`)
  })
  await new Promise<void>((ok, fail) => {
    srv.once('error', fail)
    srv.listen(0, '127.0.0.1', () => ok())
  })
  const origin = `http://127.0.0.1:${(srv.address() as AddressInfo).port}`
  return {
    origin,
    url: origin + path,
    hits,
    close: () =>
      new Promise<void>((ok) => {
        srv.closeAllConnections()
        srv.close(() => ok())
      }),
  }
}

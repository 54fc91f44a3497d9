/**
 * Browser tests drive Debian's chromium (installed by `.ci/run` with apt) through playwright-core.
 * Nothing here ever downloads a browser: without /usr/bin/chromium the tests are skipped and say why.
 */
import { existsSync } from 'node:fs'
import { createServer as createHttpServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { chromium, type Browser } from 'playwright-core'

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

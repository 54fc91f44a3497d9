/**
 * Browser tests drive Debian's chromium (installed by `.ci/run` with apt) through playwright-core.
 * Nothing here ever downloads a browser: without /usr/bin/chromium the tests are skipped and say why.
 */
import { existsSync } from 'node:fs'
import { chromium, type Browser } from 'playwright-core'

export const chromiumPath = '/usr/bin/chromium'

/** A reason to skip when chromium is not installed, for `it(name, { skip: browserSkip }, …)`. */
export const browserSkip: string | undefined = existsSync(chromiumPath)
  ? undefined
  : `${chromiumPath} is not installed (apt-get install chromium; .ci/run does it)`

export function launchBrowser(): Promise<Browser> {
  if (browserSkip) return Promise.reject(new Error(browserSkip))
  return chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
    timeout: 20_000,
  })
}

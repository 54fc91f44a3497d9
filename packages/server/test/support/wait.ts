/** Time and place: sleeping, polling, a free loopback port, a temp dir. */
import { mkdtempSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/** A port nobody listens on right now (bound to port 0, then released). */
export function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const srv = createServer()
    srv.unref()
    srv.on('error', fail)
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address()
      if (!address || typeof address === 'string') return fail(new Error('no port'))
      srv.close(() => ok(address.port))
    })
  })
}

export const tempDir = (prefix = 'fg-http-') => mkdtempSync(join(tmpdir(), prefix))

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** Polls `check` every `everyMs` until it returns true; resolves with the elapsed ms, rejects after `withinMs`. */
export async function waitUntil(check: () => Promise<boolean>, withinMs: number, everyMs = 50): Promise<number> {
  const start = performance.now()
  for (;;) {
    if (await check()) return performance.now() - start
    if (performance.now() - start > withinMs) throw new Error(`condition not met within ${withinMs} ms`)
    await sleep(everyMs)
  }
}

import assert from 'node:assert/strict'
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http'

/**
 * HTTP from a chosen loopback address (127.0.0.2, 127.0.0.3, …: Linux routes all of 127/8 to lo),
 * which fetch cannot choose: how tests play several clients on one machine.
 */
export interface Answer {
  status: number
  headers: IncomingHttpHeaders
  text: string
}

export function send(url: string, opts: { localAddress: string; method?: string; headers?: Record<string, string>; body?: string }): Promise<Answer> {
  return new Promise((ok, fail) => {
    const headers = { ...opts.headers, ...(opts.body !== undefined ? { 'content-length': String(Buffer.byteLength(opts.body)) } : {}) }
    const req = httpRequest(url, { method: opts.method ?? 'GET', localAddress: opts.localAddress, headers }, (res) => {
      let text = ''
      res
        .setEncoding('utf8')
        .on('data', (d: string) => {
          text += d
        })
        .on('end', () => ok({ status: res.statusCode ?? 0, headers: res.headers, text }))
    })
    req.on('error', fail)
    req.end(opts.body)
  })
}

/** A sign-in from `localAddress` at `base`: the form first (its cookie and CSRF token), then the post. */
export async function signInFrom(base: string, localAddress: string, email: string, password: string): Promise<Answer> {
  const page = await send(`${base}/login`, { localAddress })
  const cookie = (page.headers['set-cookie'] ?? []).map((c) => c.split(';')[0]).join('; ')
  const csrf = /name="csrf" value="([^"]+)"/.exec(page.text)?.[1] ?? assert.fail('no csrf field')
  return send(`${base}/login`, {
    localAddress,
    method: 'POST',
    body: new URLSearchParams({ csrf, email, password, return_to: '/connected-apps' }).toString(),
    headers: { 'content-type': 'application/x-www-form-urlencoded', cookie },
  })
}

/**
 * The HTTP helpers of http.ts through Fastify's `app.inject`: the same `Res`, the same signatures, but
 * no port and no socket. For tests about response shapes and error bodies, on a server started with
 * `startServer({ listen: false })`; anything about sockets, processes or timing stays on real HTTP.
 */
import type { Res } from './http.js'
import type { TestServer } from './servers.js'

type Headers_ = Record<string, string> | Headers | [string, string][]

export interface InjectHttp {
  /** `url` as `server.url(path)` makes it: it must name this server's origin. */
  request(url: string, init?: { method?: string; headers?: Headers_; body?: string }): Promise<Res>
  postJson(url: string, body: unknown, headers?: Record<string, string>): Promise<Res>
  postForm(url: string, body: Record<string, string> | string, headers?: Record<string, string>): Promise<Res>
  /** A client-credentials token from `/oauth/token` (JSON, secret in the body); throws unless 200. As http.ts's, `server` included. */
  getToken(server: { url(p: string): string }, client: { clientId: string; clientSecret: string }, extra?: Record<string, string>): Promise<string>
}

/**
 * Helpers for the servers the getters return when a request is made (servers are often started in
 * `before`); each request goes to the one whose origin its URL names.
 */
export function injectHttp(...servers: Array<() => TestServer | undefined>): InjectHttp {
  const request: InjectHttp['request'] = async (url, init = {}) => {
    const target = new URL(url)
    const server = servers.map((s) => s()).find((s) => s?.origin === target.origin)
    if (!server) throw new Error(`${url} is on none of the injected servers`)
    const headers = Object.fromEntries(new Headers(init.headers ?? {}))
    const res = await server.app.inject({
      method: (init.method ?? 'GET') as 'GET',
      url: target.pathname + target.search,
      headers,
      ...(init.body !== undefined ? { payload: init.body } : {}),
    })
    const out = new Headers()
    for (const [name, value] of Object.entries(res.headers)) {
      if (value === undefined) continue
      for (const v of [value].flat()) out.append(name, String(v))
    }
    let json: unknown
    try {
      json = res.body === '' ? undefined : JSON.parse(res.body)
    } catch {
      json = undefined
    }
    return { status: res.statusCode, headers: out, text: res.body, json }
  }
  const postJson: InjectHttp['postJson'] = (url, body, headers = {}) =>
    request(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) })
  const postForm: InjectHttp['postForm'] = (url, body, headers = {}) =>
    request(url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
      body: typeof body === 'string' ? body : new URLSearchParams(body).toString(),
    })
  const getToken: InjectHttp['getToken'] = async (server, client, extra = {}) => {
    const res = await postJson(server.url('/oauth/token'), { grant_type: 'client_credentials', client_id: client.clientId, client_secret: client.clientSecret, ...extra })
    if (res.status !== 200) throw new Error(`token request failed: ${res.status} ${res.text}`)
    return res.json.access_token as string
  }
  return { request, postJson, postForm, getToken }
}

/** HTTP through real fetch: requests, bodies, client authentication, tokens, JWT decoding. */

export interface Res {
  status: number
  headers: Headers
  text: string
  /** The parsed JSON body, or undefined when the body is not JSON. */
  // biome-ignore lint/suspicious/noExplicitAny: a test reads whatever JSON the server sent and asserts on it
  json: any
}

export async function request(url: string, init: RequestInit = {}): Promise<Res> {
  const res = await fetch(url, { ...init, signal: init.signal ?? AbortSignal.timeout(10_000) })
  const text = await res.text()
  let json: unknown
  try {
    json = text === '' ? undefined : JSON.parse(text)
  } catch {
    json = undefined
  }
  return { status: res.status, headers: res.headers, text, json }
}

export const postJson = (url: string, body: unknown, headers: Record<string, string> = {}) =>
  request(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) })

export const postForm = (url: string, body: Record<string, string> | string, headers: Record<string, string> = {}) =>
  request(url, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body: typeof body === 'string' ? body : new URLSearchParams(body).toString(),
  })

/** RFC 6749 §2.3.1: id and secret form-urlencoded, then base64. */
export const basicAuth = (id: string, secret: string) => 'Basic ' + Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')

export const bearer = (token: string) => ({ authorization: `Bearer ${token}` })

/** A client-credentials token from `/oauth/token` (JSON, secret in the body); throws unless 200. */
export async function getToken(server: { url(p: string): string }, client: { clientId: string; clientSecret: string }, extra: Record<string, string> = {}): Promise<string> {
  const res = await postJson(server.url('/oauth/token'), { grant_type: 'client_credentials', client_id: client.clientId, client_secret: client.clientSecret, ...extra })
  if (res.status !== 200) throw new Error(`token request failed: ${res.status} ${res.text}`)
  return res.json.access_token as string
}

/** A JWT's parts, decoded without verification (for assertions on header and claims). */
export function decodeJwt(token: string): { header: Record<string, unknown>; payload: Record<string, unknown> } {
  const [h, p] = token.split('.')
  return {
    header: JSON.parse(Buffer.from(h!, 'base64url').toString()) as Record<string, unknown>,
    payload: JSON.parse(Buffer.from(p!, 'base64url').toString()) as Record<string, unknown>,
  }
}

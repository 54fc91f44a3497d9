import { invalidRequest, missingToken } from './errors.js'

/** node:http's `req.headers`, a fetch `Headers`, or any plain object of header values. */
export type HeaderSource = { get(name: string): string | null } | Record<string, string | string[] | undefined>

function authorizationOf(headers: HeaderSource): string | undefined {
  if (typeof headers.get === 'function') return (headers as { get(name: string): string | null }).get('authorization') ?? undefined
  const plain = headers as Record<string, string | string[] | undefined>
  const value = plain.authorization ?? plain.Authorization
  // Two Authorization headers are as malformed as two access_token parameters.
  if (Array.isArray(value)) throw invalidRequest('the Authorization header is repeated')
  return value
}

function queryOf(url: string | URL): URLSearchParams {
  try {
    return new URL(url, 'http://localhost').searchParams
  } catch {
    throw invalidRequest('the request URL is malformed')
  }
}

/**
 * The bearer token of a request, read as Fieldgate reads it: the `Authorization: Bearer` header
 * (RFC 6750 §2.1, scheme case-insensitive) or the `access_token` query parameter (§2.3, which Field
 * Nation documents). Both at once, or the parameter twice, is invalid_request (§2); neither is the
 * bare 401 challenge. `url` may be a path such as node:http's `req.url`.
 */
export function bearerToken(headers: HeaderSource, url?: string | URL): string {
  const header = authorizationOf(headers)
  const fromHeader = header !== undefined && /^bearer /i.test(header) ? header.slice(7).trim() : undefined
  const inQuery = url === undefined ? [] : queryOf(url).getAll('access_token')
  if (inQuery.length > 1) throw invalidRequest('access_token is repeated')
  const fromQuery = inQuery[0]
  if (fromHeader !== undefined && fromQuery !== undefined) throw invalidRequest('send the access token in the header or the query, not both')
  const token = fromHeader ?? fromQuery
  if (!token) throw missingToken()
  return token
}

/**
 * `authenticate` takes either a whole Authorization header or the bare token. A token never contains
 * a space; anything with one that is not `Bearer …` is another scheme (Basic, say), which carries no token.
 */
export function tokenOf(authorizationHeaderOrToken: string | undefined | null): string {
  const value = authorizationHeaderOrToken ?? ''
  if (/^bearer /i.test(value)) {
    const token = value.slice(7).trim()
    if (!token) throw missingToken()
    return token
  }
  if (value === '' || /\s/.test(value)) throw missingToken()
  return value
}

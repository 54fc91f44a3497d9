import { invalidRequest, missingToken, type TokenScheme } from './errors.js'

/** node:http's `req.headers`, a fetch `Headers`, or any plain object of header values. */
export type HeaderSource = { get(name: string): string | null } | Record<string, string | string[] | undefined>

function authorizationOf(headers: HeaderSource): string | undefined {
  const value = headerOf(headers, 'authorization')
  // Two Authorization headers are as malformed as two access_token parameters.
  if (Array.isArray(value)) throw invalidRequest('the Authorization header is repeated')
  return value
}

function headerOf(headers: HeaderSource, name: string): string | string[] | undefined {
  if (typeof headers.get === 'function') return (headers as { get(name: string): string | null }).get(name) ?? undefined
  const plain = headers as Record<string, string | string[] | undefined>
  return plain[name] ?? plain[name.replace(/^./, (c) => c.toUpperCase())] ?? plain[name.toUpperCase()]
}

/**
 * The request's DPoP header (RFC 9449 §4.1). Two of them (an array, or node:http's comma-joined value)
 * make no proof, as §4.3 point 1 asks.
 */
export function dpopHeaderOf(headers: HeaderSource): string | undefined {
  const value = headerOf(headers, 'dpop')
  return Array.isArray(value) ? value.join(', ') : value
}

/** `Bearer <token>` or `DPoP <token>` (RFC 9449 §7.1), the scheme case-insensitive; undefined for another scheme. */
function schemeOf(header: string): { scheme: TokenScheme; token: string } | undefined {
  const scheme: TokenScheme | undefined = /^bearer /i.test(header) ? 'Bearer' : /^dpop /i.test(header) ? 'DPoP' : undefined
  return scheme && { scheme, token: header.slice(scheme.length + 1).trim() }
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
  return presentedToken(headers, url, ['Bearer']).token
}

/**
 * bearerToken with RFC 9449's DPoP scheme too: the token and the scheme it came in. A DPoP token comes
 * in the header only; the query parameter is a bearer token's.
 */
export function presentedToken(headers: HeaderSource, url?: string | URL, schemes: readonly TokenScheme[] = ['Bearer', 'DPoP']): { token: string; scheme: TokenScheme } {
  const header = authorizationOf(headers)
  const fromHeader = header === undefined ? undefined : schemeOf(header)
  const inHeader = fromHeader && schemes.includes(fromHeader.scheme) ? fromHeader : undefined
  const inQuery = url === undefined ? [] : queryOf(url).getAll('access_token')
  if (inQuery.length > 1) throw invalidRequest('access_token is repeated')
  const fromQuery = inQuery[0]
  if (inHeader !== undefined && fromQuery !== undefined) throw invalidRequest('send the access token in the header or the query, not both')
  const token = inHeader?.token ?? fromQuery
  if (!token) throw missingToken()
  return { token, scheme: inHeader?.scheme ?? 'Bearer' }
}

/**
 * `authenticate` takes either a whole Authorization header or the bare token (a bearer token). A token
 * never contains a space; anything with one that is not `Bearer …` or `DPoP …` is another scheme (Basic,
 * say), which carries no token.
 */
export function tokenOf(authorizationHeaderOrToken: string | undefined | null): string {
  return schemeAndTokenOf(authorizationHeaderOrToken).token
}

export function schemeAndTokenOf(authorizationHeaderOrToken: string | undefined | null): { token: string; scheme: TokenScheme } {
  const value = authorizationHeaderOrToken ?? ''
  const given = schemeOf(value)
  if (given) {
    if (!given.token) throw missingToken()
    return given
  }
  if (value === '' || /\s/.test(value)) throw missingToken()
  return { token: value, scheme: 'Bearer' }
}

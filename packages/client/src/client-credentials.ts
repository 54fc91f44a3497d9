/**
 * The client-credentials token request in each dialect Fieldgate speaks. They differ only on the wire;
 * the token that comes back is the same kind, so everything after this file is dialect-free.
 */
import { FieldgateError } from './errors.js'
import type { CachedToken } from './token-cache.js'
import { formBody, formHeaders, joinUrl, jsonHeaders, type HttpRequest } from './transport.js'

interface Secret {
  clientId: string
  clientSecret: string
}

/**
 * FieldEdge partner authentication: `POST /oauth/token` with JSON
 * `{client_id, client_secret, target_id, grant_type}`. `targetId` names the tenant that installed the
 * marketplace app (the sandbox tenant while testing).
 */
export interface FieldEdgeCredentials extends Secret {
  dialect: 'fieldedge'
  targetId: string
}

/**
 * Field Nation REST API v2: `POST /authentication/api/oauth/token` with JSON and
 * `scope: "api"`. `tokenIn: 'query'` sends the token as `?access_token=` exactly as Field Nation's
 * examples do; the default is the `Authorization` header, which the server accepts as well and which
 * keeps tokens out of access logs and proxies' URL caches.
 */
export interface FieldNationCredentials extends Secret {
  dialect: 'fieldnation'
  tokenIn?: 'header' | 'query'
}

/**
 * RFC 6749 §4.4: `POST /oauth/token` with a form body, authenticated by HTTP Basic
 * (`client_secret_basic`, the default: RFC 6749 §2.3.1 says servers must support it) or by the
 * credentials in the body (`client_secret_post`). `scope` narrows the token below the grant;
 * `targetId` is needed only for a marketplace (public) app.
 */
export interface StandardCredentials extends Secret {
  dialect: 'standard'
  auth?: 'client_secret_basic' | 'client_secret_post'
  scope?: string | readonly string[]
  targetId?: string
}

export type ClientCredentials = FieldEdgeCredentials | FieldNationCredentials | StandardCredentials

export const normalizeScope = (scope: string | readonly string[] | undefined): string | undefined => {
  const list = (typeof scope === 'string' ? scope.split(' ') : [...(scope ?? [])]).filter((s) => s !== '')
  return list.length ? [...new Set(list)].join(' ') : undefined
}

/**
 * The cache key: issuer, client, tenant and scope, since a token answers exactly those. Sorted scope,
 * so `"a b"` and `["b", "a"]` share a token. JSON, so no value can forge a separator.
 */
export function cacheKey(baseUrl: string, c: ClientCredentials): string {
  const target = c.dialect === 'fieldnation' ? undefined : c.targetId
  const scope = c.dialect === 'fieldnation' ? 'api' : c.dialect === 'standard' ? normalizeScope(c.scope)?.split(' ').sort().join(' ') : undefined
  return JSON.stringify([baseUrl.replace(/\/+$/, ''), c.clientId, target ?? null, scope ?? null])
}

/** RFC 6749 §2.3.1: each part form-urlencoded before joining with ":" and base64. */
export function basicAuthorization(clientId: string, clientSecret: string): string {
  const enc = (v: string) => new URLSearchParams({ v }).toString().slice(2)
  return `Basic ${btoa(`${enc(clientId)}:${enc(clientSecret)}`)}`
}

/** The HTTP request for a client-credentials token, in `c`'s dialect. Idempotent: a second token does no harm. */
export function tokenRequest(baseUrl: string, c: ClientCredentials, signal?: AbortSignal): HttpRequest {
  switch (c.dialect) {
    case 'fieldedge':
      return {
        method: 'POST',
        url: joinUrl(baseUrl, '/oauth/token'),
        headers: { ...jsonHeaders },
        idempotent: true,
        signal,
        body: JSON.stringify({ client_id: c.clientId, client_secret: c.clientSecret, target_id: c.targetId, grant_type: 'client_credentials' }),
      }
    case 'fieldnation':
      return {
        method: 'POST',
        url: joinUrl(baseUrl, '/authentication/api/oauth/token'),
        headers: { ...jsonHeaders },
        idempotent: true,
        signal,
        body: JSON.stringify({ grant_type: 'client_credentials', client_id: c.clientId, client_secret: c.clientSecret, scope: 'api' }),
      }
    case 'standard': {
      const basic = (c.auth ?? 'client_secret_basic') === 'client_secret_basic'
      const fields = {
        grant_type: 'client_credentials',
        scope: normalizeScope(c.scope),
        target_id: c.targetId,
        ...(basic ? {} : { client_id: c.clientId, client_secret: c.clientSecret }),
      }
      return {
        method: 'POST',
        url: joinUrl(baseUrl, '/oauth/token'),
        idempotent: true,
        signal,
        body: formBody(fields),
        headers: { ...formHeaders, ...(basic ? { authorization: basicAuthorization(c.clientId, c.clientSecret) } : {}) },
      }
    }
    default:
      throw new FieldgateError('invalid_request', `unknown dialect ${(c as { dialect?: unknown }).dialect as string}`)
  }
}

/**
 * Reads a token response (RFC 6749 §5.1). `expires_in` is timed from when the request was sent, not
 * when the answer came, so a slow answer makes the token look older, never younger.
 */
export function readTokenResponse(body: unknown, sentAt: number): CachedToken {
  const fields = typeof body === 'object' && body !== null ? (body as Record<string, unknown>) : {}
  const accessToken = fields.access_token
  if (typeof accessToken !== 'string' || accessToken === '') {
    throw new FieldgateError('invalid_response', 'the token endpoint answered without an access_token', { body })
  }
  // A number per RFC 6749 §5.1; some servers send a numeric string, which is taken too.
  const raw = typeof fields.expires_in === 'string' && /^\d+$/.test(fields.expires_in) ? Number(fields.expires_in) : fields.expires_in
  const expiresIn = typeof raw === 'number' && Number.isFinite(raw) && raw > 0 ? raw : undefined
  return { accessToken, expiresAt: expiresIn === undefined ? undefined : sentAt + expiresIn * 1000, obtainedAt: sentAt }
}

import type { CoreContext, Params } from './context.js'
import { InvalidClient, InvalidRequest } from './errors.js'
import type { App, AppSecret } from './model.js'
import { hashSecret, sameHash } from './secrets.js'

export type ClientCredentials =
  | { clientId: string; clientSecret: string; method: 'client_secret_basic' | 'client_secret_post' }
  /** RFC 6749 §2.1 and OAuth 2.1 §2.4: a public client names itself with client_id and proves nothing. */
  | { clientId: string; method: 'none' }

/**
 * RFC 6749 §2.3.1: HTTP Basic (form-urlencoded id and secret) or both fields in the body; never both.
 * A client_id alone is a public client's (`none`); only an app registered as one is accepted so.
 */
export function readClientCredentials(authorization: string | undefined, params: Params): ClientCredentials {
  const basic = authorization !== undefined && /^basic /i.test(authorization)
  if (basic) {
    if (params.client_secret !== undefined) throw new InvalidRequest('use only one client authentication method')
    const credentials = parseBasic(authorization.slice(6).trim())
    if (!credentials) throw new InvalidClient(true)
    if (params.client_id !== undefined && params.client_id !== credentials.clientId) {
      throw new InvalidRequest('client_id in the body does not match the Authorization header')
    }
    return { ...credentials, method: 'client_secret_basic' }
  }
  const { client_id: clientId, client_secret: clientSecret } = params
  if (!clientId || clientSecret === '') throw new InvalidClient(false)
  return clientSecret === undefined ? { clientId, method: 'none' } : { clientId, clientSecret, method: 'client_secret_post' }
}

function parseBasic(encoded: string): { clientId: string; clientSecret: string } | undefined {
  if (!/^[A-Za-z0-9+/]+=*$/.test(encoded)) return undefined
  const decoded = Buffer.from(encoded, 'base64').toString('utf8')
  const colon = decoded.indexOf(':')
  if (colon < 1) return undefined
  try {
    const clientId = decodeURIComponent(decoded.slice(0, colon).replace(/\+/g, ' '))
    const clientSecret = decodeURIComponent(decoded.slice(colon + 1).replace(/\+/g, ' '))
    return clientSecret ? { clientId, clientSecret } : undefined
  } catch {
    return undefined
  }
}

// Compared against when the client does not exist, so an unknown client_id costs the same as a wrong secret.
const decoyHash = hashSecret('fieldgate-decoy-secret')

/** Checks the secret against every live secret of the app (current and in grace), in constant time. */
export async function authenticateClient(ctx: CoreContext, credentials: ClientCredentials): Promise<App> {
  if (credentials.method === 'none') return publicClient(ctx, credentials.clientId)
  const now = ctx.now()
  const presented = hashSecret(credentials.clientSecret)
  const lookup = (fresh: boolean) => (isLookupKey(credentials.clientId) ? ctx.cache.client(credentials.clientId, now, fresh) : undefined)
  let client = await lookup(false)
  // A secret rotated a moment ago may not have reached this process's cache yet: look once more.
  if (client && !matches(client.secrets, presented, now)) client = await lookup(true)
  if (!client || !matches(client.secrets, presented, now)) throw new InvalidClient(credentials.method === 'client_secret_basic')
  // Said only to the holder of the secret: anyone else learns nothing of the app from its client_id.
  if (client.app.suspendedAt !== null) throw new InvalidClient(credentials.method === 'client_secret_basic', 'The client is suspended')
  return client.app
}

/** A public client has no secret to check: it is who it says, and PKCE, redirect URIs and DPoP do the rest. */
async function publicClient(ctx: CoreContext, clientId: string): Promise<App> {
  const app = isLookupKey(clientId) ? (await ctx.cache.client(clientId, ctx.now()))?.app : undefined
  // A confidential client without its secret is refused exactly as a wrong secret is.
  if (!app?.publicClient) throw new InvalidClient(false)
  if (app.suspendedAt !== null) throw new InvalidClient(false, 'The client is suspended')
  return app
}

function matches(secrets: readonly AppSecret[], presented: string, now: number): boolean {
  const live = secrets.filter((s) => s.expiresAt === null || s.expiresAt > now)
  let matched = false
  for (const s of live.length ? live : [{ secretHash: decoyHash }]) matched = sameHash(s.secretHash, presented) || matched
  return matched && live.length > 0
}

/** Identifiers worth a lookup: bounded, and free of NUL, which PostgreSQL text cannot hold. */
export const isLookupKey = (value: string): boolean => value.length > 0 && value.length <= 256 && !value.includes('\u0000')

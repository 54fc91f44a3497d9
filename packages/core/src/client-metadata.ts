import { auditEntry } from './audit.js'
import { isLookupKey } from './client-auth.js'
import type { Config } from './config.js'
import type { CoreContext } from './context.js'
import { OAuthError } from './errors.js'
import type { App } from './model.js'
import { isLoopbackHost } from './operations/validate.js'
import { checkedMetadata, registeredApp, withMetadata, type ClientMetadata } from './operations/registration.js'

/*
 * OAuth Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document-01): a client whose
 * client_id is an https URL publishes its metadata at that URL. Fieldgate fetches it when the client
 * first comes to /oauth/authorize, keeps it as an App row (registration `metadata_document`, clientId the
 * URL) so codes, grants and tokens stand on it like any app's, and fetches it again once the copy is
 * stale. Core knows no HTTP: the server supplies the fetch (ctx.clientMetadata), with the SSRF rules of
 * Data API deliveries, a size cap, a timeout and no redirects.
 */

/** What the server's fetch of a document gives back: its body (a 200 with a JSON media type) and Cache-Control max-age. */
export interface FetchedMetadataDocument {
  body: string
  maxAgeSeconds: number | undefined
}

/** Fetches the document at a client_id URL; throws ClientMetadataError when it cannot (§4: the request is then refused). */
export interface ClientMetadataFetcher {
  fetch(url: URL): Promise<FetchedMetadataDocument>
}

/** Why a client_id URL's document cannot stand for a client: said on the authorization page, never cached (§4.2). */
export class ClientMetadataError extends Error {
  override readonly name = 'ClientMetadataError'
}

/** §4.2: how long a fetched copy stands, from Cache-Control max-age, held between 5 minutes and a day; 1 hour without one. */
export const metadataLifetime = { minSeconds: 300, maxSeconds: 86_400, defaultSeconds: 3600 } as const

/** §3 and §7.7 (the sizes an AS should read). Longer client_ids are not looked up at all (isLookupKey). */
export const maxMetadataDocumentBytes = 5 * 1024

/**
 * §3: an https URL with a path, without userinfo, fragment or dot segments, exactly as the URL parser
 * writes it (the client SHOULD normalise; this server compares and fetches only the normalised form).
 * `http://` on a loopback host only where private targets are allowed (development and tests), as the
 * draft's §7.6 allows loopback for a server itself on loopback.
 */
export function clientIdUrl(config: Pick<Config, 'webhooks'>, clientId: string): URL | undefined {
  if (!/^https?:\/\//.test(clientId) || !URL.canParse(clientId)) return undefined
  const url = new URL(clientId)
  const loopbackHttp = url.protocol === 'http:' && config.webhooks.allowPrivateTargets && isLoopbackHost(url.hostname)
  if (url.protocol !== 'https:' && !loopbackHttp) return undefined
  if (url.username || url.password || url.hash || url.href !== clientId) return undefined
  const rawPath = clientId.slice(clientId.indexOf('/', url.protocol.length + 2))
  if (!rawPath.startsWith('/') || rawPath.split(/[/?]/).some((segment) => segment === '.' || segment === '..')) return undefined
  return url
}

/**
 * The client a client_id names, as authorize and client authentication look it up. A metadata document's
 * URL resolves through its document: at `authorize` a copy past its lifetime is fetched again; at the
 * `token` endpoint the stored copy stands (the code or refresh token was issued under consent to it) and
 * a document is fetched only when there is none. With metadata documents off, such a client is unknown.
 */
export async function findClient(ctx: CoreContext, clientId: string, at: 'authorize' | 'token'): Promise<App | undefined> {
  if (!isLookupKey(clientId)) return undefined
  const url = ctx.clientMetadata ? clientIdUrl(ctx.config, clientId) : undefined
  const app = (await ctx.cache.client(clientId, ctx.now()))?.app
  if (url === undefined) return app?.registration === 'metadata_document' ? undefined : app
  if (app && app.registration !== 'metadata_document') return app
  if (app && (at === 'token' || (app.metadataExpiresAt ?? 0) > ctx.now())) return app
  return refreshed(ctx, url, app)
}

// One fetch per document at a time in a process: concurrent authorizations of a new client wait for it.
const inFlight = new WeakMap<CoreContext['storage'], Map<string, Promise<App>>>()

function refreshed(ctx: CoreContext, url: URL, stored: App | undefined): Promise<App> {
  const running = inFlight.get(ctx.storage) ?? new Map<string, Promise<App>>()
  inFlight.set(ctx.storage, running)
  const key = url.href
  const pending = running.get(key)
  if (pending) return pending
  const fetching = fetchAndStore(ctx, url, stored).finally(() => running.delete(key))
  running.set(key, fetching)
  return fetching
}

async function fetchAndStore(ctx: CoreContext, url: URL, stored: App | undefined): Promise<App> {
  const fetched = await ctx.clientMetadata!.fetch(url)
  const meta = documentMetadata(url.href, fetched.body)
  const now = ctx.now()
  const metadataExpiresAt = now + lifetimeSeconds(fetched.maxAgeSeconds) * 1000
  const about = (app: App) => ({ objectId: app.id, appId: app.id, clientId: app.clientId })
  // Fetched for whoever's browser or client brought the client_id: nobody in particular.
  const actor = { kind: 'visitor' } as const
  if (!stored) {
    const app: App = { ...registeredApp(ctx, meta, { clientId: url.href, registration: 'metadata_document', now }), metadataExpiresAt }
    const details = { registration: 'metadata_document', name: app.name, environment: app.environment, redirect_uris: app.redirectUris, scopes: app.scopes }
    try {
      await ctx.storage.createApp(app, undefined, undefined, { audit: [auditEntry(actor, now, 'client.registered', about(app), details)] })
    } catch (err) {
      // Another process stored it first (client_id is unique): theirs stands.
      const theirs = await ctx.storage.getAppByClientId(url.href)
      if (theirs) return theirs
      throw err
    }
    return app
  }
  // Suspension, environment and everything else not in the document stay as they are.
  const updated: App = { ...stored, ...withMetadata(meta), metadataExpiresAt }
  const changed = (['name', 'redirectUris', 'scopes', 'supportUrl', 'logoUrl', 'privacyPolicyUrl', 'contactEmail'] as const).filter(
    (k) => JSON.stringify(stored[k]) !== JSON.stringify(updated[k]),
  )
  // §7.4: what changed is on record; a copy that only aged is not worth an entry.
  const audit = changed.length ? [auditEntry(actor, now, 'client.metadata_changed', about(stored), { changed })] : []
  await ctx.storage.updateApp(updated, { audit })
  ctx.cache.apply({ kind: 'app', ref: stored.id })
  return updated
}

const lifetimeSeconds = (maxAge: number | undefined): number =>
  maxAge === undefined ? metadataLifetime.defaultSeconds : Math.min(Math.max(maxAge, metadataLifetime.minSeconds), metadataLifetime.maxSeconds)

/**
 * §4 and §4.1: the document is a JSON object naming exactly this URL as its client_id; a client that
 * publishes its metadata can hold no shared secret, so it is a public client (`none`, also when the
 * document says nothing); `private_key_jwt` is refused, this server having no JWT client authentication.
 */
export function documentMetadata(url: string, body: string): ReturnType<typeof checkedMetadata> {
  let json: unknown
  try {
    json = JSON.parse(body)
  } catch {
    throw new ClientMetadataError('its client metadata document is not JSON')
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new ClientMetadataError('its client metadata document is not a JSON object')
  const doc = new Map(Object.entries(json))
  if (doc.get('client_id') !== url) throw new ClientMetadataError('its client metadata document names another client_id than the URL it is served at')
  if (doc.has('client_secret') || doc.has('client_secret_expires_at'))
    throw new ClientMetadataError('its client metadata document holds a client secret, which a published document must not')
  try {
    return checkedMetadata(metadataFields(doc), { unknownScopes: 'ignore', publicClientOnly: true })
  } catch (err) {
    if (err instanceof OAuthError) throw new ClientMetadataError(`its client metadata document is refused: ${err.description}`)
    throw err
  }
}

/** The RFC 7591 fields this server reads, each of its JSON type; any other field is ignored (RFC 7591 §2). */
function metadataFields(doc: Map<string, unknown>): ClientMetadata {
  const text = (name: string): string | undefined => {
    const value = doc.get(name)
    if (value === undefined) return undefined
    if (typeof value !== 'string') throw new ClientMetadataError(`its client metadata document's ${name} is not a string`)
    return value
  }
  const list = (name: string): string[] | undefined => {
    const value = doc.get(name)
    if (value === undefined) return undefined
    if (!Array.isArray(value) || value.some((v) => typeof v !== 'string')) throw new ClientMetadataError(`its client metadata document's ${name} is not a list of strings`)
    return value
  }
  const fields: ClientMetadata = {}
  const put = <K extends keyof ClientMetadata>(key: K, value: ClientMetadata[K] | undefined) => {
    if (value !== undefined) fields[key] = value
  }
  put('redirect_uris', list('redirect_uris'))
  put('token_endpoint_auth_method', text('token_endpoint_auth_method'))
  put('grant_types', list('grant_types'))
  put('response_types', list('response_types'))
  put('client_name', text('client_name'))
  put('client_uri', text('client_uri'))
  put('logo_uri', text('logo_uri'))
  put('scope', text('scope'))
  put('contacts', list('contacts'))
  put('policy_uri', text('policy_uri'))
  return fields
}

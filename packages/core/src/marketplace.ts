import { createHmac } from 'node:crypto'
import { invalid } from './operation-error.js'
import type { App, Tenant } from './model.js'
import { sameHash, unseal } from './secrets.js'
import type { Storage } from './storage.js'

/**
 * FieldEdge's marketplace, the signing half: the app's install URL receives
 * `?target=<marketplace_id>&target_id=<tenant id>` signed with its client secret, and the partner signs
 * the link that sends the person back. Installing itself is an operation (operations/installs.ts).
 */

/**
 * Where the person goes after Install: the app's install URL (with any query string of its own) plus the
 * documented `target` and `target_id`, `timestamp` and `hmac`. The hmac covers every parameter of this
 * final URL but itself, so a partner verifies exactly what arrives, whatever their install URL carries.
 */
export async function installRedirect(storage: Storage, app: App, tenant: Tenant, masterKey: Buffer, now = Date.now()): Promise<string> {
  if (!app.installUrl) throw invalid('the app has no install URL')
  const secret = await signingSecret(storage, app, masterKey, now)
  const url = new URL(app.installUrl)
  url.searchParams.delete('hmac')
  url.searchParams.set('target', tenant.marketplaceId)
  url.searchParams.set('target_id', tenant.id)
  url.searchParams.set('timestamp', String(Math.floor(now / 1000)))
  url.searchParams.set('hmac', queryHmac(url.searchParams, secret))
  return url.href
}

/** How far a signed query's `timestamp` may be from now, either way: it bounds replays of a captured link. */
export const signedQueryMaxAgeSeconds = 300

/**
 * hex(HMAC-SHA256(key: the client secret, message: every parameter but `hmac`, sorted by name (stably, so
 * a repeated name keeps its order) and form-urlencoded as URLSearchParams does)). Install redirects and
 * `/marketplace/complete` links are signed the same way; @fieldgate/client has the partner's side.
 */
export function queryHmac(params: URLSearchParams | Record<string, string>, clientSecret: string): string {
  return createHmac('sha256', clientSecret).update(signedMessage(params)).digest('hex')
}

function signedMessage(params: URLSearchParams | Record<string, string>): string {
  const pairs = params instanceof URLSearchParams ? [...params] : Object.entries(params)
  const message = new URLSearchParams(pairs.filter(([name]) => name !== 'hmac'))
  message.sort()
  return message.toString()
}

/**
 * Whether a signed query is genuine and recent: `timestamp` is Unix seconds in digits only, within
 * `maxAgeSeconds` of now, and `hmac` matches under one of `clientSecrets` (all live ones, so a rotation's
 * grace period works). Every secret is compared in constant time, with no early exit.
 */
export function verifySignedQuery(
  params: URLSearchParams | Record<string, string>,
  clientSecrets: readonly string[],
  nowSeconds: number,
  maxAgeSeconds = signedQueryMaxAgeSeconds,
): boolean {
  const read = (name: string) => (params instanceof URLSearchParams ? params.get(name) : params[name]) ?? undefined
  const sent = read('hmac')
  const timestamp = read('timestamp')
  if (!sent || !timestamp || !/^\d{1,12}$/.test(timestamp) || Math.abs(nowSeconds - Number(timestamp)) > maxAgeSeconds) return false
  let matched = false
  for (const secret of clientSecrets) matched = sameHash(sent.toLowerCase(), queryHmac(params, secret)) || matched
  return matched
}

/** Every live secret of the app that was kept sealed, newest first: what a partner may have signed with. */
export async function liveSigningSecrets(storage: Storage, app: App, masterKey: Buffer, now: number): Promise<string[]> {
  const sealed = (await storage.listLiveSecrets(app.id, now)).filter((s) => s.secretEnc !== null).sort((a, b) => b.createdAt - a.createdAt)
  const secrets: string[] = []
  for (const s of sealed) {
    try {
      if (s.secretEnc) secrets.push(unseal(s.secretEnc, s.id, masterKey))
    } catch {
      // Sealed under another master key (a restore from elsewhere): it cannot sign, the others still may.
    }
  }
  return secrets
}

/** The newest live secret that was kept sealed; a rotation switches signing to the new secret at once. */
async function signingSecret(storage: Storage, app: App, masterKey: Buffer, now: number): Promise<string> {
  const newest = (await liveSigningSecrets(storage, app, masterKey, now))[0]
  if (!newest) throw invalid('this app has no secret that can sign install requests: rotate its secret')
  return newest
}

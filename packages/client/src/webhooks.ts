/**
 * Checking a Data API delivery (README "Data API"; core's signEvent/verifyEventSignature is the other
 * side). The header is `t=<unix seconds>,v1=<hex>[,v1=<hex>…]`, each v1 being
 * hex(HMAC-SHA256(client secret, t + "." + body)) under one of the app's live secrets, so a receiver
 * that still holds the old secret during a rotation (or already the new one) can verify.
 *
 * Web Crypto only, so it runs in any runtime that can receive an HTTP request.
 */
import { concatBytes, hex, hmacSha256, timingSafeEqual, utf8 } from './encoding.js'
import { FieldgateError } from './errors.js'

export const signatureHeader = 'fieldgate-signature'
/** The same on every attempt and redelivery of an event: deduplicate on it. */
export const eventIdHeader = 'fieldgate-event-id'

export interface VerifyWebhookOptions {
  /**
   * The body exactly as received: the raw bytes, or their UTF-8 text. Never a re-serialized object:
   * one changed space and the signature no longer matches.
   */
  body: string | Uint8Array | ArrayBuffer
  /** The `fieldgate-signature` header. */
  signature: string | null | undefined
  /** Your client secret; during a rotation, every secret you hold (any may match). */
  secret: string | readonly string[]
  /**
   * How far `t` may be from now, either way, in seconds. Default 300, as Fieldgate's own check: it
   * bounds how long a captured delivery can be replayed.
   */
  toleranceSeconds?: number
  /** The clock, in ms. Default `Date.now`. */
  now?: () => number
}

export type WebhookFailure = 'missing' | 'malformed' | 'stale' | 'mismatch'

export type WebhookVerification = { valid: true; timestamp: number } | { valid: false; reason: WebhookFailure }

interface ParsedHeader {
  t: number
  v1: string[]
}

/** Splits the header; unknown schemes (a future v2) are skipped, so adding one breaks no receiver. */
function parseSignature(header: string): ParsedHeader | undefined {
  let t: number | undefined
  const v1: string[] = []
  for (const part of header.split(',')) {
    const at = part.indexOf('=')
    if (at < 1) return undefined
    const key = part.slice(0, at).trim()
    const value = part.slice(at + 1).trim()
    if (key === 't') {
      if (t !== undefined || !/^\d{1,12}$/.test(value)) return undefined
      t = Number(value)
    } else if (key === 'v1') {
      v1.push(value.toLowerCase())
    }
  }
  return t === undefined || v1.length === 0 ? undefined : { t, v1 }
}

const bodyBytes = (body: VerifyWebhookOptions['body']): Uint8Array => (typeof body === 'string' ? utf8(body) : body instanceof Uint8Array ? body : new Uint8Array(body))

/**
 * Whether the delivery is authentic and recent. Every v1 is compared with every secret's HMAC in
 * constant time, and the loop does not stop at the first match, so the timing tells nothing about
 * which one matched.
 */
export async function verifyWebhookSignature(opts: VerifyWebhookOptions): Promise<WebhookVerification> {
  if (!opts.signature) return { valid: false, reason: 'missing' }
  const parsed = parseSignature(opts.signature)
  if (!parsed) return { valid: false, reason: 'malformed' }
  const nowSeconds = Math.floor((opts.now ?? Date.now)() / 1000)
  if (Math.abs(nowSeconds - parsed.t) > (opts.toleranceSeconds ?? 300)) return { valid: false, reason: 'stale' }
  const message = concatBytes(utf8(`${parsed.t}.`), bodyBytes(opts.body))
  const secrets = typeof opts.secret === 'string' ? [opts.secret] : opts.secret
  let matched = false
  for (const secret of secrets) {
    const expected = hex(await hmacSha256(secret, message))
    for (const candidate of parsed.v1) matched = timingSafeEqual(candidate, expected) || matched
  }
  return matched ? { valid: true, timestamp: parsed.t } : { valid: false, reason: 'mismatch' }
}

export type WebhookEventType = 'grant.created' | 'grant.scopes_changed' | 'grant.revoked' | 'app.installed' | 'app.uninstalled' | 'record.created'

/** A Data API event body. `farm_id` and `tenant_id` are the same tenant, under each dialect's name. */
export interface WebhookEvent<D = Record<string, unknown>> {
  id: string
  type: WebhookEventType | (string & {})
  created_at: string
  client_id: string
  farm_id: string | null
  tenant_id: string | null
  data: D
}

export interface ReadWebhookOptions extends VerifyWebhookOptions {
  /** The `fieldgate-event-id` header; when given, it must name the event in the body. */
  eventId?: string | null
}

/**
 * Verifies, then parses: the event, or a FieldgateError with code `invalid_signature` whose
 * `description` is the reason (missing, malformed, stale, mismatch). Answer 2xx only after it returns.
 */
export async function readWebhook<D = Record<string, unknown>>(opts: ReadWebhookOptions): Promise<WebhookEvent<D>> {
  const result = await verifyWebhookSignature(opts)
  if (!result.valid) throw new FieldgateError('invalid_signature', `the Data API delivery failed verification: ${result.reason}`, { description: result.reason })
  const text = typeof opts.body === 'string' ? opts.body : new TextDecoder().decode(bodyBytes(opts.body))
  let event: WebhookEvent<D>
  try {
    event = JSON.parse(text) as WebhookEvent<D>
  } catch (err) {
    throw new FieldgateError('invalid_response', 'the Data API delivery is not JSON', { cause: err })
  }
  if (typeof event !== 'object' || event === null || typeof event.id !== 'string' || typeof event.type !== 'string') {
    throw new FieldgateError('invalid_response', 'the Data API delivery is not an event', { body: event })
  }
  if (opts.eventId != null && opts.eventId !== event.id) {
    throw new FieldgateError('invalid_response', 'the fieldgate-event-id header does not name the event in the body')
  }
  return event
}

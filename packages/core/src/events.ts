import { createHmac, randomBytes } from 'node:crypto'
import type { App, OutboxEvent } from './model.js'
import { sameHash } from './secrets.js'

/** What the Data API announces to an app (fieldmargin: "you will start to receive requests for this newly connected farm"); `ping` is a test the partner asked for. */
export type EventType = 'grant.created' | 'grant.scopes_changed' | 'grant.revoked' | 'app.installed' | 'app.uninstalled' | 'record.created' | 'ping'

/**
 * An outbox row for `app`, or none when the app has no Data API URL to deliver to. The body is built
 * once, here, so every attempt and every redelivery sends the same bytes under the same id.
 */
export function newEvent(app: App, tenantId: string | null, type: EventType, data: Record<string, unknown>, now: number): OutboxEvent[] {
  if (!app.dataApiUrl) return []
  const id = `evt_${randomBytes(16).toString('hex')}`
  const body = JSON.stringify({ id, type, created_at: new Date(now).toISOString(), client_id: app.clientId, farm_id: tenantId, tenant_id: tenantId, data })
  return [
    {
      id,
      appId: app.id,
      tenantId,
      type,
      body,
      state: 'pending',
      attempts: 0,
      nextAttemptAt: now,
      lockedUntil: null,
      createdAt: now,
      deliveredAt: null,
      lastError: null,
    },
  ]
}

export interface RetryPolicy {
  /** First retry after this many ms; each next one waits twice as long, up to `maxDelayMs`. */
  baseDelayMs: number
  maxDelayMs: number
  /** After this long since the event was made, it is parked as failed. */
  maxAgeMs: number
}

/** Exponential backoff with full jitter over the upper half, so retries of many events spread out. */
export function nextAttemptAt(policy: RetryPolicy, event: Pick<OutboxEvent, 'createdAt'>, attempts: number, now: number): number | undefined {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.min(attempts - 1, 30))
  const at = now + Math.round(ceiling / 2 + Math.random() * (ceiling / 2))
  return at - event.createdAt > policy.maxAgeMs ? undefined : at
}

export const signatureHeader = 'fieldgate-signature'
export const eventIdHeader = 'fieldgate-event-id'

/**
 * `t=<unix>,v1=<hex hmac-sha256(secret, t + "." + body)>`, one v1 per live secret of the app, so a
 * receiver still holding the old secret during a rotation can verify.
 */
export function signEvent(body: string, secrets: string[], unixSeconds: number): string {
  return [`t=${unixSeconds}`, ...secrets.map((s) => `v1=${hmac(s, unixSeconds, body)}`)].join(',')
}

/** The receiver's check: a v1 that matches under `secret`, and a timestamp within `toleranceSeconds`. */
export function verifyEventSignature(header: string, body: string, secret: string, nowSeconds: number, toleranceSeconds = 300): boolean {
  const parts = header.split(',').map((p) => p.trim().split('='))
  const t = Number(parts.find(([k]) => k === 't')?.[1])
  if (!Number.isInteger(t) || Math.abs(nowSeconds - t) > toleranceSeconds) return false
  const expected = hmac(secret, t, body)
  return parts.some(([k, v]) => k === 'v1' && v !== undefined && sameHash(v, expected))
}

const hmac = (secret: string, t: number, body: string) => createHmac('sha256', secret).update(`${t}.${body}`).digest('hex')

import { randomUUID } from 'node:crypto'
import type { SecurityEvent } from './model.js'
import type { Storage } from './storage.js'

/** What a caller says about an event; the id and time are added. */
export type SecurityEventInput = Pick<SecurityEvent, 'kind'> & Partial<Omit<SecurityEvent, 'id' | 'at' | 'kind'>>

export function securityEvent(now: number, input: SecurityEventInput): SecurityEvent {
  return { id: randomUUID(), at: now, userId: null, email: null, clientId: null, tenantId: null, address: null, details: {}, ...input }
}

/**
 * Where security events go: stored (the operator console, `fieldgate events security`) and logged.
 * Recording never waits and never fails the request that saw the event: a store that cannot take it
 * is reported to `onError`, and the request goes on.
 */
export interface SecurityLog {
  /**
   * Stores and logs an event. With `once`, only the first event with that key in a minute is kept, so
   * a client hammering with a revoked token leaves one row a minute, not one per request.
   */
  record(input: SecurityEventInput, opts?: { once?: string }): void
  /** Logs events an operation stored with its change (Storage `Alongside`). */
  logged(events: readonly SecurityEvent[]): void
}

export interface SecurityLogOptions {
  now: () => number
  log: (event: SecurityEvent) => void
  onError: (err: unknown, event: SecurityEvent) => void
}

export function securityLog(storage: Storage, { now, log, onError }: SecurityLogOptions): SecurityLog {
  const recent = new Map<string, number>()
  const firstInMinute = (key: string, at: number): boolean => {
    const last = recent.get(key)
    if (last !== undefined && at - last < 60_000) return false
    if (recent.size >= 10_000) recent.clear()
    recent.set(key, at)
    return true
  }
  return {
    record(input, opts = {}) {
      const event = securityEvent(now(), input)
      if (opts.once !== undefined && !firstInMinute(opts.once, event.at)) return
      log(event)
      storage.recordSecurityEvent(event).catch((err: unknown) => onError(err, event))
    },
    logged(events) {
      for (const event of events) log(event)
    },
  }
}

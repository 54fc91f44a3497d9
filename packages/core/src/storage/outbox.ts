import type { DeliveryAttempt, OutboxEvent } from '../model.js'
import type { Alongside } from './alongside.js'

/** One attempt to record, with the event's state after it and the lease it was made under. */
export interface FinishedAttempt {
  event: Pick<OutboxEvent, 'id' | 'state' | 'attempts' | 'nextAttemptAt' | 'deliveredAt' | 'lastError'>
  leasedUntil: number
  attempt: DeliveryAttempt
}

/** The Data API outbox: events written with the change they announce (see Alongside), and their delivery. */
export interface OutboxStore {
  /**
   * Leases up to `limit` pending events due at `now` until `leaseUntil`; an event leased by another
   * process is skipped (FOR UPDATE SKIP LOCKED on PostgreSQL, one writer at a time on SQLite), so no
   * attempt is made twice.
   */
  claimEvents(now: number, leaseUntil: number, limit: number): Promise<OutboxEvent[]>
  /**
   * Records attempts and their events' new states in one transaction (a dispatcher's completions,
   * batched): each only while its `leasedUntil` is still this caller's lease. Answers, in order,
   * whether each was recorded.
   */
  finishAttempts(finished: FinishedAttempt[]): Promise<boolean[]>
  getEvent(id: string): Promise<OutboxEvent | undefined>
  /** Events waiting to be delivered, for the backlog metric. */
  countPendingEvents(): Promise<number>
  /** Newest first. */
  listEvents(filter: { appId?: string; state?: OutboxEvent['state']; limit: number; offset?: number }): Promise<OutboxEvent[]>
  /** Queues events that announce no stored change (a test event), with what they carry along. */
  queueEvents(events: OutboxEvent[], also?: Alongside): Promise<void>
  listAttempts(eventId: string): Promise<DeliveryAttempt[]>
  /** Sends a delivered or failed event again, same id and body; false if it is unknown or pending. `also` commits only when it did. */
  redeliver(id: string, now: number, also?: Alongside): Promise<boolean>
  /** Makes a pending event due at `now`; false if it is unknown, not pending, or leased to a dispatcher right now. `also` commits only when it did. */
  retryNow(id: string, now: number, also?: Alongside): Promise<boolean>
}

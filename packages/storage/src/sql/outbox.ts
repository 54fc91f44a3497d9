import type { Alongside, DeliveryAttempt, FinishedAttempt, OutboxEvent, OutboxStore } from '@fieldgate/core'
import type { Kysely } from 'kysely'
import type { Database } from '../schema.js'
import { toEvent, writeAlongside, type Db, type Engine } from './rows.js'

/** What goes along with a redelivery is written only when the event did change: an audit entry says it happened. */
async function onlyIfUpdated(tx: Db, updated: bigint, also: Alongside): Promise<boolean> {
  if (Number(updated) !== 1) return false
  await writeAlongside(tx, also)
  return true
}

/** The Data API outbox. */
export function sqlOutboxStore(db: Kysely<Database>, engine: Engine): OutboxStore {
  return {
    async claimEvents(now: number, leaseUntil: number, limit: number): Promise<OutboxEvent[]> {
      // Most polls find nothing due: a plain read first, so they take no write lock.
      const due = await db
        .selectFrom('events')
        .select('id')
        .where('state', '=', 'pending')
        .where('nextAttemptAt', '<=', now)
        .where((eb) => eb.or([eb('lockedUntil', 'is', null), eb('lockedUntil', '<', now)]))
        .limit(1)
        .executeTakeFirst()
      if (!due) return []
      return db.transaction().execute(async (tx) => {
        let due = tx
          .selectFrom('events')
          .select('id')
          .where('state', '=', 'pending')
          .where('nextAttemptAt', '<=', now)
          .where((eb) => eb.or([eb('lockedUntil', 'is', null), eb('lockedUntil', '<', now)]))
          .orderBy('nextAttemptAt')
          .limit(limit)
        // SQLite's BEGIN IMMEDIATE lets one process at a time in; PostgreSQL skips rows others hold.
        if (engine === 'postgres') due = due.forUpdate().skipLocked()
        const ids = (await due.execute()).map((r) => r.id)
        if (ids.length === 0) return []
        const rows = await tx.updateTable('events').set({ lockedUntil: leaseUntil }).where('id', 'in', ids).returningAll().execute()
        return rows.map(toEvent).sort((a, b) => a.nextAttemptAt - b.nextAttemptAt)
      })
    },

    async finishAttempts(finished: FinishedAttempt[]): Promise<boolean[]> {
      if (finished.length === 0) return []
      return db.transaction().execute(async (tx) => {
        const saved: boolean[] = []
        for (const { event, leasedUntil } of finished) {
          const { id, ...fields } = event
          const result = await tx
            .updateTable('events')
            .set({ ...fields, lockedUntil: null })
            .where('id', '=', id)
            .where('lockedUntil', '=', leasedUntil)
            .executeTakeFirst()
          saved.push(Number(result.numUpdatedRows) === 1)
        }
        const attempts = finished.filter((_, i) => saved[i]).map((f) => f.attempt)
        if (attempts.length > 0) await tx.insertInto('eventAttempts').values(attempts).execute()
        return saved
      })
    },

    async getEvent(id: string): Promise<OutboxEvent | undefined> {
      const row = await db.selectFrom('events').selectAll().where('id', '=', id).executeTakeFirst()
      return row && toEvent(row)
    },

    async countPendingEvents(): Promise<number> {
      const row = await db
        .selectFrom('events')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .where('state', '=', 'pending')
        .executeTakeFirst()
      return Number(row?.n ?? 0)
    },

    async listEvents(filter: { appId?: string; state?: OutboxEvent['state']; limit: number; offset?: number }): Promise<OutboxEvent[]> {
      let q = db.selectFrom('events').selectAll()
      if (filter.appId) q = q.where('appId', '=', filter.appId)
      if (filter.state) q = q.where('state', '=', filter.state)
      q = q.orderBy('createdAt', 'desc').orderBy('id', 'desc').limit(filter.limit)
      return (await (filter.offset ? q.offset(filter.offset) : q).execute()).map(toEvent)
    },

    async queueEvents(events: OutboxEvent[], also: Alongside = {}): Promise<void> {
      await db.transaction().execute((tx) => writeAlongside(tx, { ...also, events: [...events, ...(also.events ?? [])] }))
    },

    async listAttempts(eventId: string): Promise<DeliveryAttempt[]> {
      return db.selectFrom('eventAttempts').selectAll().where('eventId', '=', eventId).orderBy('at').orderBy('id').execute()
    },

    async redeliver(id: string, now: number, also: Alongside = {}): Promise<boolean> {
      return db.transaction().execute(async (tx) => {
        const result = await tx
          .updateTable('events')
          .set({ state: 'pending', nextAttemptAt: now, lockedUntil: null })
          .where('id', '=', id)
          .where('state', '!=', 'pending')
          .executeTakeFirst()
        return onlyIfUpdated(tx, result.numUpdatedRows, also)
      })
    },

    async retryNow(id: string, now: number, also: Alongside = {}): Promise<boolean> {
      return db.transaction().execute(async (tx) => {
        const result = await tx
          .updateTable('events')
          .set({ nextAttemptAt: now })
          .where('id', '=', id)
          .where('state', '=', 'pending')
          .where((eb) => eb.or([eb('lockedUntil', 'is', null), eb('lockedUntil', '<', now)]))
          .executeTakeFirst()
        return onlyIfUpdated(tx, result.numUpdatedRows, also)
      })
    },
  }
}

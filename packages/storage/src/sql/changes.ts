import type { Change, ChangeStore } from '@fieldgate/core'
import type { Kysely } from 'kysely'
import type { Database } from '../schema.js'
import { toChange } from './rows.js'

/** How an engine signals committed changes (see Storage.watchChanges). */
export type ChangeWatcher = (wake: () => void, onError: (err: unknown) => void) => () => Promise<void>

/** The change feed; `watcher` where the engine can signal commits. */
export function sqlChangeStore(db: Kysely<Database>, watcher?: ChangeWatcher): ChangeStore {
  return {
    async changesSince(seq: number, limit = 500): Promise<Change[]> {
      const rows = await db.selectFrom('changes').selectAll().where('seq', '>', seq).orderBy('seq').limit(limit).execute()
      return rows.map(toChange)
    },

    async changesIn(seqs: number[]): Promise<Change[]> {
      if (seqs.length === 0) return []
      const rows = await db.selectFrom('changes').selectAll().where('seq', 'in', seqs).orderBy('seq').execute()
      return rows.map(toChange)
    },

    async latestChangeSeq(): Promise<number> {
      const row = await db
        .selectFrom('changes')
        .select((eb) => eb.fn.max('seq').as('seq'))
        .executeTakeFirst()
      return Number(row?.seq ?? 0)
    },

    watchChanges(wake: () => void, onError: (err: unknown) => void): () => Promise<void> {
      return watcher ? watcher(wake, onError) : async () => {}
    },
  }
}

import type { SigningKeyRecord, SigningKeyStore } from '@fieldgate/core'
import { sql, type Kysely } from 'kysely'
import type { Database } from '../schema.js'
import { appendChange, type Engine } from './rows.js'

/** Signing keys. */
export function sqlSigningKeyStore(db: Kysely<Database>, engine: Engine): SigningKeyStore {
  return {
    async listSigningKeys(): Promise<SigningKeyRecord[]> {
      const rows = await db.selectFrom('signingKeys').selectAll().orderBy('createdAt').orderBy('kid').execute()
      return rows.map((r) => ({ ...r, state: r.state as SigningKeyRecord['state'] }))
    },

    async saveSigningKeys(
      insert: SigningKeyRecord[],
      update: Pick<SigningKeyRecord, 'kid' | 'state' | 'retireAt'>[],
      basedOn?: Pick<SigningKeyRecord, 'kid' | 'state'>[],
    ): Promise<boolean> {
      return db.transaction().execute(async (tx) => {
        if (basedOn) {
          // SQLite's BEGIN IMMEDIATE already serialises writers; PostgreSQL needs the table locked, since
          // two processes bootstrapping an empty table have no row to lock.
          if (engine === 'postgres') await sql`lock table signing_keys in share row exclusive mode`.execute(tx)
          const current = await tx.selectFrom('signingKeys').select(['kid', 'state']).execute()
          if (keyStates(current) !== keyStates(basedOn)) return false
        }
        for (const key of insert) await tx.insertInto('signingKeys').values(key).execute()
        for (const u of update) await tx.updateTable('signingKeys').set({ state: u.state, retireAt: u.retireAt }).where('kid', '=', u.kid).execute()
        await appendChange(tx, 'keys', insert[0]?.kid ?? update[0]?.kid ?? '', Date.now())
        return true
      })
    },
  }
}

const keyStates = (keys: { kid: string; state: string }[]): string =>
  keys
    .map((k) => `${k.kid}=${k.state}`)
    .sort()
    .join(' ')

import type { ProofStore } from '@fieldgate/core'
import type { Kysely } from 'kysely'
import type { Database } from '../schema.js'
import { precompiler } from './precompiled.js'

/**
 * DPoP proofs already accepted. Every DPoP-bound request inserts one row, so the insert is built once
 * (precompiled); a conflict on the primary key inserts nothing and returns no row: a replay.
 */
export function sqlProofStore(db: Kysely<Database>): ProofStore {
  const precompiled = precompiler(db)
  return {
    async rememberProof(jtiHash: string, expiresAt: number): Promise<boolean> {
      const rows = await precompiled(
        'rememberProof',
        () =>
          db
            .insertInto('dpopProofs')
            .values({ jtiHash, expiresAt })
            .onConflict((oc) => oc.column('jtiHash').doNothing())
            .returning('jtiHash'),
        [jtiHash, expiresAt],
      )
      return rows.length === 1
    },

    async forgetExpiredProofs(now: number): Promise<number> {
      const result = await db.deleteFrom('dpopProofs').where('expiresAt', '<', now).executeTakeFirst()
      return Number(result.numDeletedRows)
    },
  }
}

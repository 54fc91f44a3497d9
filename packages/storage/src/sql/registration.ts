import type { Alongside, InitialAccessToken, RegistrationStore } from '@fieldgate/core'
import type { Kysely } from 'kysely'
import type { Database } from '../schema.js'
import { writeAlongside } from './rows.js'

/** RFC 7591 initial access tokens, found by their hash. */
export function sqlRegistrationStore(db: Kysely<Database>): RegistrationStore {
  return {
    async saveInitialAccessToken(token: InitialAccessToken, also: Alongside = {}): Promise<void> {
      await db.transaction().execute(async (tx) => {
        await tx.insertInto('initialAccessTokens').values(token).execute()
        await writeAlongside(tx, also)
      })
    },

    async findInitialAccessToken(tokenHash: string): Promise<InitialAccessToken | undefined> {
      return db.selectFrom('initialAccessTokens').selectAll().where('tokenHash', '=', tokenHash).executeTakeFirst()
    },

    async listInitialAccessTokens(): Promise<InitialAccessToken[]> {
      return db.selectFrom('initialAccessTokens').selectAll().orderBy('createdAt', 'desc').orderBy('id').execute()
    },

    async revokeInitialAccessToken(id: string, now: number, also: Alongside = {}): Promise<boolean> {
      return db.transaction().execute(async (tx) => {
        const result = await tx.updateTable('initialAccessTokens').set({ revokedAt: now }).where('id', '=', id).where('revokedAt', 'is', null).executeTakeFirst()
        const revoked = Number(result.numUpdatedRows) === 1
        if (revoked) await writeAlongside(tx, also)
        return revoked
      })
    },
  }
}

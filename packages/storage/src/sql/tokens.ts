import type { AuthorizationCode, OpaqueToken, OpaqueTokenRecord, TokenStore } from '@fieldgate/core'
import type { Kysely } from 'kysely'
import type { Database } from '../schema.js'
import { splitScopes, toGrant } from './rows.js'

/** Authorization codes and opaque tokens. */
export function sqlTokenStore(db: Kysely<Database>): TokenStore {
  return {
    async saveCode(code: AuthorizationCode): Promise<void> {
      await db
        .insertInto('authorizationCodes')
        .values({ ...code, scopes: code.scopes.join(' ') })
        .execute()
    },

    async getCode(codeHash: string): Promise<AuthorizationCode | undefined> {
      const row = await db.selectFrom('authorizationCodes').selectAll().where('codeHash', '=', codeHash).executeTakeFirst()
      return row && { ...row, scopes: splitScopes(row.scopes) }
    },

    async redeemCode(codeHash: string, now: number, token: OpaqueToken): Promise<boolean> {
      return db.transaction().execute(async (tx) => {
        // One conditional update: its row count decides the single winner among concurrent redemptions.
        // A loser's update waits for the winner's commit, so it then finds the token it must revoke.
        const result = await tx
          .updateTable('authorizationCodes')
          .set({ consumedAt: now })
          .where('codeHash', '=', codeHash)
          .where('consumedAt', 'is', null)
          .where('expiresAt', '>', now)
          .executeTakeFirst()
        if (Number(result.numUpdatedRows) !== 1) return false
        await tx.insertInto('opaqueTokens').values(token).execute()
        return true
      })
    },

    async revokeTokensFromCode(codeHash: string, now: number): Promise<number> {
      const result = await db.updateTable('opaqueTokens').set({ revokedAt: now }).where('codeHash', '=', codeHash).where('revokedAt', 'is', null).executeTakeFirst()
      return Number(result.numUpdatedRows)
    },

    // opaque tokens

    async findOpaqueToken(tokenHash: string): Promise<OpaqueTokenRecord | undefined> {
      const row = await db
        .selectFrom('opaqueTokens as t')
        .innerJoin('grants as g', 'g.id', 't.grantId')
        .innerJoin('apps as a', 'a.id', 't.appId')
        .selectAll('t')
        .select(['g.scopes as grantScopes', 'g.status as grantStatus', 'g.createdAt as grantCreatedAt', 'g.updatedAt as grantUpdatedAt', 'a.clientId'])
        .where('t.tokenHash', '=', tokenHash)
        .executeTakeFirst()
      if (!row) return undefined
      const { grantScopes, grantStatus, grantCreatedAt, grantUpdatedAt, clientId, ...token } = row
      return {
        token,
        grant: toGrant({
          id: token.grantId,
          appId: token.appId,
          tenantId: token.tenantId,
          scopes: grantScopes,
          status: grantStatus,
          createdAt: grantCreatedAt,
          updatedAt: grantUpdatedAt,
        })!,
        clientId,
      }
    },

    async revokeOpaqueToken(tokenHash: string, now: number): Promise<OpaqueToken | undefined> {
      return db.updateTable('opaqueTokens').set({ revokedAt: now }).where('tokenHash', '=', tokenHash).where('revokedAt', 'is', null).returningAll().executeTakeFirst()
    },
  }
}

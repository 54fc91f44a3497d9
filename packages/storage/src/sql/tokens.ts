import type { AuthorizationCode, IssuedTokens, OpaqueToken, OpaqueTokenRecord, PushedRequest, RefreshToken, Rotation, TokenStore } from '@fieldgate/core'
import type { Kysely } from 'kysely'
import type { Database } from '../schema.js'
import { appendChange, splitScopes, toGrant, type Db, type Row } from './rows.js'

const toRefreshToken = (row: Row<'refreshTokens'>): RefreshToken => ({ ...row, scopes: splitScopes(row.scopes) })
const toOpaqueToken = (row: Row<'opaqueTokens'>): OpaqueToken => ({ ...row, scopes: row.scopes === null ? null : splitScopes(row.scopes) })
const fromOpaqueToken = (token: OpaqueToken): Row<'opaqueTokens'> => ({ ...token, scopes: token.scopes?.join(' ') ?? null })

async function storeIssued(db: Db, issued: IssuedTokens): Promise<void> {
  if (issued.accessToken) await db.insertInto('opaqueTokens').values(fromOpaqueToken(issued.accessToken)).execute()
  if (issued.refreshToken)
    await db
      .insertInto('refreshTokens')
      .values({ ...issued.refreshToken, scopes: issued.refreshToken.scopes.join(' ') })
      .execute()
}

/**
 * Processes cache opaque tokens (core cache.ts): a `grant` change for each grant whose opaque tokens
 * were revoked, in the revoking transaction, drops them from every process's cache.
 */
async function announceRevoked(db: Db, revoked: readonly { grantId: string }[], now: number): Promise<number> {
  for (const grantId of new Set(revoked.map((r) => r.grantId))) await appendChange(db, 'grant', grantId, now)
  return revoked.length
}

/** Ends a refresh-token family and the opaque access tokens refreshed from it. */
async function revokeFamily(db: Db, familyId: string, now: number): Promise<number> {
  const result = await db.updateTable('refreshTokens').set({ revokedAt: now }).where('familyId', '=', familyId).where('revokedAt', 'is', null).executeTakeFirst()
  const opaque = await db.updateTable('opaqueTokens').set({ revokedAt: now }).where('familyId', '=', familyId).where('revokedAt', 'is', null).returning('grantId').execute()
  await announceRevoked(db, opaque, now)
  return Number(result.numUpdatedRows)
}

/** Authorization codes, pushed requests, opaque and refresh tokens. */
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

    async redeemCode(codeHash: string, now: number, issued: IssuedTokens): Promise<boolean> {
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
        await storeIssued(tx, issued)
        return true
      })
    },

    async revokeTokensFromCode(codeHash: string, now: number): Promise<number> {
      return db.transaction().execute(async (tx) => {
        const opaque = await tx.updateTable('opaqueTokens').set({ revokedAt: now }).where('codeHash', '=', codeHash).where('revokedAt', 'is', null).returning('grantId').execute()
        return (await announceRevoked(tx, opaque, now)) + (await revokeFamily(tx, codeHash, now))
      })
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
        token: toOpaqueToken(token),
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
      return db.transaction().execute(async (tx) => {
        const row = await tx.updateTable('opaqueTokens').set({ revokedAt: now }).where('tokenHash', '=', tokenHash).where('revokedAt', 'is', null).returningAll().executeTakeFirst()
        if (row) await announceRevoked(tx, [row], now)
        return row && toOpaqueToken(row)
      })
    },

    // refresh tokens

    async findRefreshToken(tokenHash: string): Promise<RefreshToken | undefined> {
      const row = await db.selectFrom('refreshTokens').selectAll().where('tokenHash', '=', tokenHash).executeTakeFirst()
      return row && toRefreshToken(row)
    },

    async rotateRefreshToken(tokenHash: string, now: number, issued: IssuedTokens): Promise<Rotation> {
      return db.transaction().execute(async (tx) => {
        const used = await tx
          .updateTable('refreshTokens')
          .set({ usedAt: now })
          .where('tokenHash', '=', tokenHash)
          .where('usedAt', 'is', null)
          .where('revokedAt', 'is', null)
          .where('expiresAt', '>', now)
          .executeTakeFirst()
        if (Number(used.numUpdatedRows) === 1) {
          await storeIssued(tx, issued)
          return 'rotated'
        }
        const row = await tx.selectFrom('refreshTokens').select(['familyId', 'usedAt']).where('tokenHash', '=', tokenHash).executeTakeFirst()
        if (!row || row.usedAt === null) return 'invalid'
        await revokeFamily(tx, row.familyId, now)
        return 'reused'
      })
    },

    async revokeRefreshFamily(familyId: string, now: number): Promise<number> {
      return db.transaction().execute((tx) => revokeFamily(tx, familyId, now))
    },

    // pushed authorization requests

    async savePushedRequest(request: PushedRequest): Promise<void> {
      await db.transaction().execute(async (tx) => {
        await tx.deleteFrom('pushedRequests').where('expiresAt', '<=', request.createdAt).execute()
        await tx
          .insertInto('pushedRequests')
          .values({ ...request, params: JSON.stringify(request.params) })
          .execute()
      })
    },

    async getPushedRequest(uriHash: string, now: number): Promise<PushedRequest | undefined> {
      const row = await db.selectFrom('pushedRequests').selectAll().where('uriHash', '=', uriHash).where('usedAt', 'is', null).where('expiresAt', '>', now).executeTakeFirst()
      return row && { ...row, params: JSON.parse(row.params) as Record<string, string> }
    },

    async usePushedRequest(uriHash: string, now: number): Promise<boolean> {
      const result = await db
        .updateTable('pushedRequests')
        .set({ usedAt: now })
        .where('uriHash', '=', uriHash)
        .where('usedAt', 'is', null)
        .where('expiresAt', '>', now)
        .executeTakeFirst()
      return Number(result.numUpdatedRows) === 1
    },
  }
}

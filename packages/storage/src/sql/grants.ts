import type { Alongside, Grant, GrantStore, Install } from '@fieldgate/core'
import type { Kysely } from 'kysely'
import type { Database } from '../schema.js'
import { appendChange, fromGrant, toGrant, upsertInstall, writeAlongside, type Engine } from './rows.js'

/** Grants and their installs. */
export function sqlGrantStore(db: Kysely<Database>, engine: Engine): GrantStore {
  return {
    async createGrant(grant: Grant, also: Alongside = {}): Promise<Grant> {
      await db.transaction().execute(async (tx) => {
        await tx.insertInto('grants').values(fromGrant(grant)).execute()
        await writeAlongside(tx, also)
      })
      return grant
    },

    async getGrant(id: string): Promise<Grant | undefined> {
      return toGrant(await db.selectFrom('grants').selectAll().where('id', '=', id).executeTakeFirst())
    },

    async findActiveGrant(appId: string, tenantId: string): Promise<Grant | undefined> {
      return toGrant(await db.selectFrom('grants').selectAll().where('appId', '=', appId).where('tenantId', '=', tenantId).where('status', '=', 'active').executeTakeFirst())
    },

    async listGrants(filter: { appId?: string; tenantId?: string } = {}): Promise<Grant[]> {
      let q = db.selectFrom('grants').selectAll()
      if (filter.appId) q = q.where('appId', '=', filter.appId)
      if (filter.tenantId) q = q.where('tenantId', '=', filter.tenantId)
      const rows = await q.orderBy('createdAt').orderBy('id').execute()
      return rows.map((r) => toGrant(r)!)
    },

    async widenGrantScopes(id: string, scopes: string[], now: number, also?: (grant: Grant, grew: boolean) => Alongside): Promise<Grant | undefined> {
      return db.transaction().execute(async (tx) => {
        // SQLite's BEGIN IMMEDIATE already holds the write lock; PostgreSQL locks the row.
        let read = tx.selectFrom('grants').selectAll().where('id', '=', id).where('status', '=', 'active')
        if (engine === 'postgres') read = read.forUpdate()
        const grant = toGrant(await read.executeTakeFirst())
        if (!grant) return undefined
        const wider = [...new Set([...grant.scopes, ...scopes])]
        if (wider.length === grant.scopes.length) {
          if (also) await writeAlongside(tx, also(grant, false))
          return grant
        }
        await tx
          .updateTable('grants')
          .set({ scopes: wider.join(' '), updatedAt: now })
          .where('id', '=', id)
          .execute()
        await appendChange(tx, 'grant', id, now)
        const widened = { ...grant, scopes: wider, updatedAt: now }
        if (also) await writeAlongside(tx, also(widened, true))
        return widened
      })
    },

    async revokeGrant(id: string, now: number, also: Alongside = {}): Promise<boolean> {
      return db.transaction().execute(async (tx) => {
        const result = await tx.updateTable('grants').set({ status: 'revoked', updatedAt: now }).where('id', '=', id).where('status', '=', 'active').executeTakeFirst()
        const revoked = Number(result.numUpdatedRows) === 1
        if (revoked) {
          await tx.updateTable('opaqueTokens').set({ revokedAt: now }).where('grantId', '=', id).where('revokedAt', 'is', null).execute()
          await tx.updateTable('refreshTokens').set({ revokedAt: now }).where('grantId', '=', id).where('revokedAt', 'is', null).execute()
          await appendChange(tx, 'grant', id, now)
          await writeAlongside(tx, also)
        }
        return revoked
      })
    },

    // installs

    async saveInstall(install: Install, also: Alongside = {}): Promise<void> {
      await db.transaction().execute(async (tx) => {
        await upsertInstall(tx, install)
        await writeAlongside(tx, also)
      })
    },

    async getInstall(grantId: string): Promise<Install | undefined> {
      const row = await db.selectFrom('installs').selectAll().where('grantId', '=', grantId).executeTakeFirst()
      return row && { ...row, state: row.state as Install['state'] }
    },
  }
}

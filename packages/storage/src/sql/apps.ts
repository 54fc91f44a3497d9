import type { Alongside, App, AppFilter, AppSecret, AppStore, Grant, Page, SecretHandle } from '@fieldgate/core'
import type { Kysely, Transaction } from 'kysely'
import type { Database } from '../schema.js'
import { appendChange, fromApp, fromGrant, paged, toApp, writeAlongside, type Engine } from './rows.js'

/** Apps and their secrets, and the secrets shown once. */
export function sqlAppStore(db: Kysely<Database>, engine: Engine): AppStore {
  /**
   * PostgreSQL: serialises changes to one app (READ COMMITTED would let two rotations each see only
   * the old secret). SQLite's BEGIN IMMEDIATE already lets one writer in at a time.
   */
  const lockApp = async (tx: Transaction<Database>, appId: string): Promise<void> => {
    if (engine === 'postgres') await tx.selectFrom('apps').select('id').where('id', '=', appId).forUpdate().execute()
  }

  return {
    async createApp(app: App, secret: AppSecret | undefined, grant?: Grant, also: Alongside = {}): Promise<App> {
      const { tenant, ...rest } = also
      await db.transaction().execute(async (tx) => {
        // The app's sandbox tenant goes first: the app row references it.
        if (tenant) await tx.insertInto('tenants').values(tenant).execute()
        await tx.insertInto('apps').values(fromApp(app)).execute()
        if (secret) await tx.insertInto('appSecrets').values(secret).execute()
        if (grant) await tx.insertInto('grants').values(fromGrant(grant)).execute()
        await writeAlongside(tx, rest)
      })
      return app
    },

    async getApp(id: string): Promise<App | undefined> {
      return toApp(await db.selectFrom('apps').selectAll().where('id', '=', id).executeTakeFirst())
    },

    async getAppByClientId(clientId: string): Promise<App | undefined> {
      return toApp(await db.selectFrom('apps').selectAll().where('clientId', '=', clientId).executeTakeFirst())
    },

    async listApps(filter: AppFilter & Page = {}): Promise<App[]> {
      const { ownerUserId, review, tenantId, kind, environment, suspended, ...page } = filter
      let q = db.selectFrom('apps').selectAll()
      if (ownerUserId) q = q.where('ownerUserId', '=', ownerUserId)
      if (review) q = q.where('review', '=', review)
      if (tenantId) q = q.where('tenantId', '=', tenantId)
      if (kind) q = q.where('kind', '=', kind)
      if (environment) q = q.where('environment', '=', environment)
      if (suspended !== undefined) q = q.where('suspendedAt', suspended ? 'is not' : 'is', null)
      q = q.orderBy('createdAt').orderBy('id')
      const rows = await (page.limit !== undefined || page.query || page.offset ? paged(q, ['name', 'clientId'], page) : q).execute()
      return rows.map((r) => toApp(r)!)
    },

    async updateApp(app: App, also: Alongside = {}): Promise<void> {
      const { id, clientId: _c, createdAt: _t, ...fields } = fromApp(app)
      await db.transaction().execute(async (tx) => {
        await tx.updateTable('apps').set(fields).where('id', '=', id).execute()
        await appendChange(tx, 'app', id, Date.now())
        await writeAlongside(tx, also)
      })
    },

    async deleteApp(id: string, now: number, also: Alongside = {}): Promise<boolean> {
      return db.transaction().execute(async (tx) => {
        // Grants created meanwhile wait for this lock (their insert references the app), so none escapes the change feed.
        await lockApp(tx, id)
        const grants = await tx.selectFrom('grants').select('id').where('appId', '=', id).where('status', '=', 'active').execute()
        for (const g of grants) await appendChange(tx, 'grant', g.id, now)
        await appendChange(tx, 'app', id, now)
        const result = await tx.deleteFrom('apps').where('id', '=', id).executeTakeFirst()
        const deleted = Number(result.numDeletedRows) === 1
        if (deleted) await writeAlongside(tx, also)
        return deleted
      })
    },

    async listLiveSecrets(appId: string, now: number): Promise<AppSecret[]> {
      return db
        .selectFrom('appSecrets')
        .selectAll()
        .where('appId', '=', appId)
        .where((eb) => eb.or([eb('expiresAt', 'is', null), eb('expiresAt', '>', now)]))
        .execute()
    },

    async rotateSecret(appId: string, secret: AppSecret, graceEndsAt: number, also: Alongside = {}): Promise<void> {
      await db.transaction().execute(async (tx) => {
        await lockApp(tx, appId)
        await tx.updateTable('appSecrets').set({ expiresAt: graceEndsAt }).where('appId', '=', appId).where('expiresAt', 'is', null).execute()
        // Secrets already in a grace period never get a longer one from a later rotation.
        await tx.updateTable('appSecrets').set({ expiresAt: graceEndsAt }).where('appId', '=', appId).where('expiresAt', '>', graceEndsAt).execute()
        if (secret) await tx.insertInto('appSecrets').values(secret).execute()
        await appendChange(tx, 'app', appId, secret.createdAt)
        await writeAlongside(tx, also)
      })
    },

    // secrets shown once

    async saveSecretHandle(handle: SecretHandle): Promise<void> {
      await db.transaction().execute(async (tx) => {
        // Expired handles go as new ones come: the table holds only the last few minutes' secrets.
        await tx.deleteFrom('secretHandles').where('expiresAt', '<=', handle.createdAt).execute()
        await tx.insertInto('secretHandles').values(handle).execute()
      })
    },

    async takeSecretHandle(idHash: string, browserHash: string, now: number): Promise<{ handle: SecretHandle; first: boolean } | undefined> {
      return db.transaction().execute(async (tx) => {
        const row = await tx
          .selectFrom('secretHandles')
          .selectAll()
          .where('idHash', '=', idHash)
          .where('browserHash', '=', browserHash)
          .where('expiresAt', '>', now)
          .executeTakeFirst()
        if (!row) return undefined
        // One conditional update: among concurrent views exactly one finds the secret still there.
        const result = await tx.updateTable('secretHandles').set({ shownAt: now, secretEnc: '' }).where('idHash', '=', idHash).where('shownAt', 'is', null).executeTakeFirst()
        const first = Number(result.numUpdatedRows) === 1
        return { handle: first ? row : { ...row, secretEnc: '', shownAt: row.shownAt ?? now }, first }
      })
    },
  }
}

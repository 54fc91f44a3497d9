import type { Alongside, Grant, GrantFilter, GrantStore, Install, Page, TenantGrant } from '@fieldgate/core'
import { sql, type Kysely } from 'kysely'
import type { Database } from '../schema.js'
import { batched } from './batch.js'
import { precompiler } from './precompiled.js'
import { appendChange, fromGrant, paged, toGrant, toTenant, upsertInstall, writeAlongside, type Engine } from './rows.js'

// SQLite uses the partial index grants_one_active (… WHERE status = 'active') only for a literal
// 'active' in the query: a bound parameter cannot prove the index's condition.
const activeLiteral = sql<string>`'active'`

/** Grants and their installs. */
export function sqlGrantStore(db: Kysely<Database>, engine: Engine, keepPrepared?: (sql: string) => void): GrantStore {
  const precompiled = precompiler(db, keepPrepared)
  // Every client-credentials token of a tenant not in the cache reads this: one indexed join, compiled once.
  const tenantGrantQuery = (appId: string) =>
    db
      .selectFrom('tenants as t')
      .leftJoin('grants as g', (join) => join.onRef('g.tenantId', '=', 't.id').on('g.appId', '=', appId).on('g.status', '=', activeLiteral))
      .select(['t.id', 't.name', 't.environment', 't.marketplaceId', 't.createdAt'])
      .select(['g.id as grantId', 'g.scopes as grantScopes', 'g.createdAt as grantCreatedAt', 'g.updatedAt as grantUpdatedAt'])
  const tenantGrant = (appId: string, tenantId: string) => tenantGrantQuery(appId).where('t.id', '=', tenantId)
  type TenantGrantRow = Awaited<ReturnType<typeof tenantGrantRows>>[number]
  // PostgreSQL: compiled once and kept prepared, so a miss is neither built, parsed nor planned again.
  const tenantGrantRows = (appId: string, tenantIds: string[]) =>
    precompiled('tenant grants', () => tenantGrantQuery(appId).where(sql<boolean>`${sql.ref('t.id')} = any(${tenantIds})`), [appId, tenantIds], { prepared: true })
  // PostgreSQL only: SQLite answers one lookup in microseconds, without a round trip to share.
  const tenantGrantBatch = batched(async (keys: { appId: string; tenantId: string }[]) => {
    const found = new Map<string, TenantGrantRow>()
    const apps = [...new Set(keys.map((k) => k.appId))]
    // One query per app, at once: an app's keys do not wait for another app's round trip.
    const answers = await Promise.all(
      apps.map((appId) =>
        tenantGrantRows(
          appId,
          keys.filter((k) => k.appId === appId).map((k) => k.tenantId),
        ),
      ),
    )
    for (const [i, rows] of answers.entries()) for (const row of rows) found.set(`${apps[i]} ${row.id}`, row)
    return keys.map((k) => found.get(`${k.appId} ${k.tenantId}`))
  })
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
      return toGrant(await db.selectFrom('grants').selectAll().where('appId', '=', appId).where('tenantId', '=', tenantId).where('status', '=', activeLiteral).executeTakeFirst())
    },

    async findTenantGrant(appId: string, tenantId: string): Promise<TenantGrant | undefined> {
      const row =
        engine === 'postgres' ? await tenantGrantBatch({ appId, tenantId }) : (await precompiled('tenant grant', () => tenantGrant(appId, tenantId), [appId, tenantId]))[0]
      if (!row) return undefined
      const { grantId, grantScopes, grantCreatedAt, grantUpdatedAt, ...tenant } = row
      const grant =
        grantId === null || grantScopes === null || grantCreatedAt === null || grantUpdatedAt === null
          ? undefined
          : toGrant({ id: grantId, appId, tenantId, scopes: grantScopes, status: 'active', createdAt: grantCreatedAt, updatedAt: grantUpdatedAt })
      return { tenant: toTenant(tenant)!, grant }
    },

    async listGrants(filter: GrantFilter & Page = {}): Promise<Grant[]> {
      const { appId, tenantId, status, ...page } = filter
      let q = db.selectFrom('grants as g').selectAll('g')
      if (appId) q = q.where('g.appId', '=', appId)
      if (tenantId) q = q.where('g.tenantId', '=', tenantId)
      if (status) q = q.where('g.status', '=', status)
      q = q.orderBy('g.createdAt').orderBy('g.id')
      if (page.query?.trim()) {
        // The search names the app or the tenant, so only a search joins them.
        q = q.innerJoin('apps as a', 'a.id', 'g.appId').innerJoin('tenants as t', 't.id', 'g.tenantId')
      }
      const rows = await (page.limit !== undefined || page.query || page.offset ? paged(q, ['a.name', 'a.clientId', 't.name', 't.id'], page) : q).execute()
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

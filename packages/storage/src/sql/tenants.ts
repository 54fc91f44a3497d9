import type { Alongside, Membership, Page, Role, Session, Tenant, TenantStore, User } from '@fieldgate/core'
import type { Kysely } from 'kysely'
import type { Database } from '../schema.js'
import { appendChange, fromUser, paged, toTenant, toUser, writeAlongside } from './rows.js'

/** Tenants, users with their memberships, and sessions. */
export function sqlTenantStore(db: Kysely<Database>): TenantStore {
  return {
    async createTenant(tenant: Tenant): Promise<Tenant> {
      await db.insertInto('tenants').values(tenant).execute()
      return tenant
    },

    async getTenant(id: string): Promise<Tenant | undefined> {
      return toTenant(await db.selectFrom('tenants').selectAll().where('id', '=', id).executeTakeFirst())
    },

    async listTenants(page?: Page): Promise<Tenant[]> {
      const q = db.selectFrom('tenants').selectAll().orderBy('createdAt').orderBy('id')
      const rows = await (page ? paged(q, ['name', 'id'], page) : q).execute()
      return rows.map((r) => toTenant(r)!)
    },

    async renameTenant(id: string, name: string, also: Alongside = {}): Promise<boolean> {
      return db.transaction().execute(async (tx) => {
        const { numUpdatedRows } = await tx.updateTable('tenants').set({ name }).where('id', '=', id).executeTakeFirst()
        if (numUpdatedRows === 0n) return false
        await appendChange(tx, 'tenant', id, Date.now())
        await writeAlongside(tx, also)
        return true
      })
    },

    // users

    async createUser(user: User, memberships: Omit<Membership, 'userId'>[], also: Alongside = {}): Promise<User> {
      await db.transaction().execute(async (tx) => {
        await tx.insertInto('users').values(fromUser(user)).execute()
        for (const m of memberships)
          await tx
            .insertInto('memberships')
            .values({ ...m, userId: user.id })
            .execute()
        await writeAlongside(tx, also)
      })
      return user
    },

    async getUser(id: string): Promise<User | undefined> {
      return toUser(await db.selectFrom('users').selectAll().where('id', '=', id).executeTakeFirst())
    },

    async updateUser(user: User, also: Alongside = {}): Promise<void> {
      const { id, createdAt: _c, sandboxTenantId: _s, ...fields } = fromUser(user)
      await db.transaction().execute(async (tx) => {
        await tx.updateTable('users').set(fields).where('id', '=', id).execute()
        await writeAlongside(tx, also)
      })
    },

    async listUsers(filter: { operator?: boolean; tenantId?: string } & Page = {}): Promise<User[]> {
      const { operator, tenantId, ...page } = filter
      let q = db.selectFrom('users').selectAll()
      if (operator !== undefined) q = q.where('operator', '=', operator ? 1 : 0)
      if (tenantId) q = q.where('id', 'in', db.selectFrom('memberships').select('userId').where('tenantId', '=', tenantId))
      const rows = await paged(q.orderBy('createdAt').orderBy('id'), ['email'], page).execute()
      return rows.map((r) => toUser(r)!)
    },

    async setSandboxTenant(userId: string, tenantId: string): Promise<void> {
      await db.updateTable('users').set({ sandboxTenantId: tenantId }).where('id', '=', userId).execute()
    },

    async getUserByEmail(email: string): Promise<User | undefined> {
      return toUser(await db.selectFrom('users').selectAll().where('email', '=', email.toLowerCase()).executeTakeFirst())
    },

    async listMemberships(userId: string): Promise<Membership[]> {
      const rows = await db.selectFrom('memberships').selectAll().where('userId', '=', userId).execute()
      return rows.map((r) => ({ ...r, role: r.role as Membership['role'] }))
    },

    async listMembers(tenantId: string, page?: Omit<Page, 'query'>): Promise<{ user: User; role: Role }[]> {
      const q = db
        .selectFrom('memberships')
        .innerJoin('users', 'users.id', 'memberships.userId')
        .selectAll('users')
        .select('memberships.role')
        .where('memberships.tenantId', '=', tenantId)
        .orderBy('users.email')
      const rows = await (page ? paged(q, [], page) : q).execute()
      return rows.map(({ role, ...user }) => ({ user: toUser(user)!, role: role as Role }))
    },

    async addMembership(m: Membership, also: Alongside = {}): Promise<void> {
      await db.transaction().execute(async (tx) => {
        await tx
          .insertInto('memberships')
          .values(m)
          .onConflict((oc) => oc.columns(['userId', 'tenantId']).doUpdateSet({ role: m.role }))
          .execute()
        await writeAlongside(tx, also)
      })
    },

    async removeMembership(userId: string, tenantId: string, also: Alongside = {}): Promise<boolean> {
      return db.transaction().execute(async (tx) => {
        const { numDeletedRows } = await tx.deleteFrom('memberships').where('userId', '=', userId).where('tenantId', '=', tenantId).executeTakeFirst()
        if (numDeletedRows === 0n) return false
        await writeAlongside(tx, also)
        return true
      })
    },

    // sessions

    async createSession(session: Session): Promise<void> {
      await db.insertInto('sessions').values(session).execute()
    },

    async getSession(idHash: string, now: number): Promise<Session | undefined> {
      return db.selectFrom('sessions').selectAll().where('idHash', '=', idHash).where('expiresAt', '>', now).executeTakeFirst()
    },

    async deleteSession(idHash: string): Promise<void> {
      await db.deleteFrom('sessions').where('idHash', '=', idHash).execute()
    },

    async deleteUserSessions(userId: string, keep?: string): Promise<number> {
      let q = db.deleteFrom('sessions').where('userId', '=', userId)
      if (keep !== undefined) q = q.where('idHash', '!=', keep)
      return Number((await q.executeTakeFirst()).numDeletedRows)
    },
  }
}

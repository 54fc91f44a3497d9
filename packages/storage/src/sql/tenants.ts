import type { Membership, Session, Tenant, TenantStore, User } from '@fieldgate/core'
import type { Kysely } from 'kysely'
import type { Database } from '../schema.js'
import { toTenant } from './rows.js'

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

    async listTenants(): Promise<Tenant[]> {
      const rows = await db.selectFrom('tenants').selectAll().orderBy('createdAt').orderBy('id').execute()
      return rows.map((r) => toTenant(r)!)
    },

    // users

    async createUser(user: User, memberships: Omit<Membership, 'userId'>[]): Promise<User> {
      await db.transaction().execute(async (tx) => {
        await tx.insertInto('users').values(user).execute()
        for (const m of memberships)
          await tx
            .insertInto('memberships')
            .values({ ...m, userId: user.id })
            .execute()
      })
      return user
    },

    async getUser(id: string): Promise<User | undefined> {
      return db.selectFrom('users').selectAll().where('id', '=', id).executeTakeFirst()
    },

    async setSandboxTenant(userId: string, tenantId: string): Promise<void> {
      await db.updateTable('users').set({ sandboxTenantId: tenantId }).where('id', '=', userId).execute()
    },

    async getUserByEmail(email: string): Promise<User | undefined> {
      return db.selectFrom('users').selectAll().where('email', '=', email.toLowerCase()).executeTakeFirst()
    },

    async listMemberships(userId: string): Promise<Membership[]> {
      const rows = await db.selectFrom('memberships').selectAll().where('userId', '=', userId).execute()
      return rows.map((r) => ({ ...r, role: r.role as Membership['role'] }))
    },

    async addMembership(m: Membership): Promise<void> {
      await db
        .insertInto('memberships')
        .values(m)
        .onConflict((oc) => oc.columns(['userId', 'tenantId']).doUpdateSet({ role: m.role }))
        .execute()
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
  }
}

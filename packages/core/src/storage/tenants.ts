import type { Membership, Role, Session, Tenant, User } from '../model.js'
import type { Alongside } from './alongside.js'

/** A page of a listing: `query` matches part of a name or email, in any case. */
export interface Page {
  query?: string
  limit?: number
  offset?: number
}

/** Tenants, the users who sign in to them with their memberships, and their browser sessions. */
export interface TenantStore {
  createTenant(tenant: Tenant): Promise<Tenant>
  getTenant(id: string): Promise<Tenant | undefined>
  /** Oldest first. */
  listTenants(page?: Page): Promise<Tenant[]>
  /** Renames a tenant; appends a `tenant` change, so every process drops the name it cached. False if there is none. */
  renameTenant(id: string, name: string, also?: Alongside): Promise<boolean>

  createUser(user: User, memberships: Omit<Membership, 'userId'>[], also?: Alongside): Promise<User>
  getUser(id: string): Promise<User | undefined>
  getUserByEmail(email: string): Promise<User | undefined>
  setSandboxTenant(userId: string, tenantId: string): Promise<void>
  /** Saves email, password hash, verification, operator role and suspension (never id, createdAt or sandbox tenant). */
  updateUser(user: User, also?: Alongside): Promise<void>
  /** Oldest first; `query` matches the email; `operator` keeps operators (true) or the others (false); `tenantId` its members. */
  listUsers(filter?: { operator?: boolean; tenantId?: string } & Page): Promise<User[]>
  listMemberships(userId: string): Promise<Membership[]>
  /** A tenant's members with their roles, by email: all of them, or with `page` one page of them. */
  listMembers(tenantId: string, page?: Omit<Page, 'query'>): Promise<{ user: User; role: Role }[]>
  /** Adds a membership or changes its role. */
  addMembership(membership: Membership, also?: Alongside): Promise<void>
  removeMembership(userId: string, tenantId: string, also?: Alongside): Promise<boolean>

  createSession(session: Session): Promise<void>
  /** The session if it exists and has not expired at `now`. */
  getSession(idHash: string, now: number): Promise<Session | undefined>
  deleteSession(idHash: string): Promise<void>
  /** Ends every session of a user but `keep` (a password reset, a suspension); returns how many ended. */
  deleteUserSessions(userId: string, keep?: string): Promise<number>
}

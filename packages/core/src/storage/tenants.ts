import type { Membership, Session, Tenant, User } from '../model.js'

/** Tenants, the users who sign in to them with their memberships, and their browser sessions. */
export interface TenantStore {
  createTenant(tenant: Tenant): Promise<Tenant>
  getTenant(id: string): Promise<Tenant | undefined>
  listTenants(): Promise<Tenant[]>

  createUser(user: User, memberships: Omit<Membership, 'userId'>[]): Promise<User>
  getUser(id: string): Promise<User | undefined>
  getUserByEmail(email: string): Promise<User | undefined>
  setSandboxTenant(userId: string, tenantId: string): Promise<void>
  listMemberships(userId: string): Promise<Membership[]>
  addMembership(membership: Membership): Promise<void>

  createSession(session: Session): Promise<void>
  /** The session if it exists and has not expired at `now`. */
  getSession(idHash: string, now: number): Promise<Session | undefined>
  deleteSession(idHash: string): Promise<void>
}

import type { Membership, Session, UpstreamIdentity, UpstreamMembership, UpstreamSession } from '../model.js'
import type { Alongside } from './alongside.js'

/**
 * Sign-in through upstream OpenID Connect providers: the accounts linked by (issuer, sub), the
 * memberships their tenants claim gave, and the sessions they began (for RP-initiated and back-channel logout).
 */
export interface UpstreamStore {
  getUpstreamIdentity(issuer: string, subject: string): Promise<UpstreamIdentity | undefined>
  /** The upstream accounts linked to a user, oldest first. */
  listUpstreamIdentities(userId: string): Promise<UpstreamIdentity[]>
  /** Links an account, or notes a new sign-in (`lastSignInAt`) of one linked already. */
  saveUpstreamIdentity(identity: UpstreamIdentity, also?: Alongside): Promise<void>

  /** The user's memberships that `issuer`'s claim gave. */
  listUpstreamMemberships(userId: string, issuer: string): Promise<UpstreamMembership[]>
  /**
   * In one transaction: sets each of `put` (adding it, or changing its role) and marks it as given by
   * `issuer`; removes the memberships of `remove` (tenant ids); writes what goes alongside.
   */
  applyUpstreamMemberships(userId: string, issuer: string, change: { put: Membership[]; remove: string[] }, also?: Alongside): Promise<void>

  /** A session with what logout needs of its upstream sign-in, in one transaction. */
  createUpstreamSession(session: Session, upstream: Omit<UpstreamSession, 'sessionIdHash'>): Promise<void>
  getUpstreamSession(sessionIdHash: string): Promise<UpstreamSession | undefined>
  /**
   * Ends the sessions `issuer` began for `subject` and/or its session `sid` (back-channel logout: a
   * logout token names either or both; with both, a session must match both). Returns how many ended.
   */
  deleteUpstreamSessions(issuer: string, match: { subject?: string; sid?: string }): Promise<number>
}

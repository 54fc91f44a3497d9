import type { Alongside, Membership, Session, UpstreamIdentity, UpstreamMembership, UpstreamSession, UpstreamStore } from '@fieldgate/core'
import type { Kysely } from 'kysely'
import type { Database } from '../schema.js'
import { writeAlongside } from './rows.js'

/** Accounts linked at upstream OpenID Connect providers, the memberships they gave, and the sessions they began. */
export function sqlUpstreamStore(db: Kysely<Database>): UpstreamStore {
  return {
    async getUpstreamIdentity(issuer: string, subject: string): Promise<UpstreamIdentity | undefined> {
      return db.selectFrom('upstreamIdentities').selectAll().where('issuer', '=', issuer).where('subject', '=', subject).executeTakeFirst()
    },

    async listUpstreamIdentities(userId: string): Promise<UpstreamIdentity[]> {
      return db.selectFrom('upstreamIdentities').selectAll().where('userId', '=', userId).orderBy('createdAt').orderBy('issuer').execute()
    },

    async saveUpstreamIdentity(identity: UpstreamIdentity, also: Alongside = {}): Promise<void> {
      await db.transaction().execute(async (tx) => {
        await tx
          .insertInto('upstreamIdentities')
          .values(identity)
          .onConflict((oc) => oc.columns(['issuer', 'subject']).doUpdateSet({ lastSignInAt: identity.lastSignInAt }))
          .execute()
        await writeAlongside(tx, also)
      })
    },

    async listUpstreamMemberships(userId: string, issuer: string): Promise<UpstreamMembership[]> {
      return db.selectFrom('upstreamMemberships').selectAll().where('userId', '=', userId).where('issuer', '=', issuer).orderBy('tenantId').execute()
    },

    async applyUpstreamMemberships(userId: string, issuer: string, change: { put: Membership[]; remove: string[] }, also: Alongside = {}): Promise<void> {
      await db.transaction().execute(async (tx) => {
        for (const m of change.put) {
          await tx
            .insertInto('memberships')
            .values({ userId, tenantId: m.tenantId, role: m.role })
            .onConflict((oc) => oc.columns(['userId', 'tenantId']).doUpdateSet({ role: m.role }))
            .execute()
          await tx
            .insertInto('upstreamMemberships')
            .values({ userId, tenantId: m.tenantId, issuer })
            .onConflict((oc) => oc.columns(['userId', 'tenantId']).doUpdateSet({ issuer }))
            .execute()
        }
        // The marker goes with the membership (ON DELETE CASCADE).
        if (change.remove.length) await tx.deleteFrom('memberships').where('userId', '=', userId).where('tenantId', 'in', change.remove).execute()
        await writeAlongside(tx, also)
      })
    },

    async createUpstreamSession(session: Session, upstream: Omit<UpstreamSession, 'sessionIdHash'>): Promise<void> {
      await db.transaction().execute(async (tx) => {
        await tx.insertInto('sessions').values(session).execute()
        await tx
          .insertInto('upstreamSessions')
          .values({ ...upstream, sessionIdHash: session.idHash })
          .execute()
      })
    },

    async getUpstreamSession(sessionIdHash: string): Promise<UpstreamSession | undefined> {
      return db.selectFrom('upstreamSessions').selectAll().where('sessionIdHash', '=', sessionIdHash).executeTakeFirst()
    },

    async deleteUpstreamSessions(issuer: string, match: { subject?: string; sid?: string }): Promise<number> {
      if (match.subject === undefined && match.sid === undefined) return 0
      let ended = db.selectFrom('upstreamSessions').select('sessionIdHash').where('issuer', '=', issuer)
      if (match.subject !== undefined) ended = ended.where('subject', '=', match.subject)
      if (match.sid !== undefined) ended = ended.where('sid', '=', match.sid)
      const { numDeletedRows } = await db.deleteFrom('sessions').where('idHash', 'in', ended).executeTakeFirst()
      return Number(numDeletedRows)
    },
  }
}

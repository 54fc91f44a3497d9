import { randomUUID } from 'node:crypto'
import { auditEntry, type Actor } from '../audit.js'
import type { UpstreamProvider } from '../config.js'
import type { OperationContext } from '../context.js'
import type { AuditEntry, Membership, Role, User } from '../model.js'
import { securityEvent } from '../security.js'
import { hashSecret, randomValue } from '../secrets.js'

/*
 * Sign-in through an upstream OpenID Connect provider (docs/upstream-sign-in.md). Who may do it: anyone
 * the provider vouches for, with an ID token the server (routes/upstream.ts, openid-client) has checked.
 * - Accounts link by (issuer, sub), never by an email alone. The first sign-in of a sub creates the
 *   account when the provider says its email is verified, whatever FIELDGATE_SIGNUP says: the platform's
 *   provider decides who has an account. An account here with the same address is linked only when both
 *   sides verified the address (the provider's email_verified, our confirmation link); one whose address
 *   was never confirmed here is refused, since whoever made it may not own the address (account
 *   pre-hijacking). A linked account signs in only upstream: its password, if any, no longer works.
 * - The provider's tenants claim is applied at every sign-in: memberships it lists are added or get its
 *   role, and those it gave before and lists no more are removed. Memberships made here (members page,
 *   CLI, invitations) that it does not list are left alone; one it lists becomes its own.
 */

/** Why an upstream sign-in was refused, for the page to say so. */
export type UpstreamRefusal = 'no_email' | 'email_unverified' | 'email_taken' | 'suspended'

export class UpstreamSignInRefused extends Error {
  constructor(
    readonly reason: UpstreamRefusal,
    message: string,
  ) {
    super(message)
    this.name = 'UpstreamSignInRefused'
  }
}

/** The claims of the checked ID token, merged with the UserInfo response's. */
export type UpstreamClaims = Readonly<Record<string, unknown>> & { readonly sub: string }

export interface UpstreamSignInInput {
  provider: UpstreamProvider
  /** The issuer as the provider's metadata names it (the ID token's `iss`). */
  issuer: string
  claims: UpstreamClaims
  /** The checked ID token, kept with the session for `id_token_hint` at logout. */
  idToken: string
  address: string
}

export interface UpstreamSignIn {
  user: User
  /** The new session's cookie value. */
  session: string
  /** Made by this sign-in, or linked by it to an account with the same verified address. */
  outcome: 'signed_in' | 'created' | 'linked'
  /** The tenants the person belongs to after the claim was applied (any source). */
  tenantIds: string[]
  /** Entries of the claim that were left out (an unknown tenant, a role that is not one), for the log. */
  ignored: number
}

const roles: readonly Role[] = ['owner', 'admin', 'member']

/** The tenants and roles the claim lists: `[{"tenant_id": "…", "role": "owner|admin|member"}]`; malformed entries are ignored. */
export function tenantsClaim(value: unknown): { memberships: { tenantId: string; role: Role }[]; ignored: number } {
  const list: unknown[] = Array.isArray(value) ? value : []
  const memberships = new Map<string, Role>()
  let ignored = 0
  for (const entry of list) {
    const tenantId = typeof entry === 'object' && entry !== null && 'tenant_id' in entry ? entry.tenant_id : undefined
    const role = typeof entry === 'object' && entry !== null && 'role' in entry ? roles.find((r) => r === entry.role) : undefined
    if (typeof tenantId !== 'string' || tenantId.length > 200 || role === undefined) ignored++
    // Listed twice: the strongest role wins, so the claim's order does not matter.
    else if (!memberships.has(tenantId) || roles.indexOf(role) < roles.indexOf(memberships.get(tenantId)!)) memberships.set(tenantId, role)
  }
  return { memberships: [...memberships].map(([tenantId, role]) => ({ tenantId, role })), ignored }
}

export async function signInUpstream(ctx: OperationContext & { readonly config: { readonly sessionTtl: number } }, input: UpstreamSignInInput): Promise<UpstreamSignIn> {
  const { issuer, claims } = input
  const now = ctx.now()
  const actor: Actor = { kind: 'visitor', address: input.address }
  let outcome: UpstreamSignIn['outcome'] = 'signed_in'
  const linked = await ctx.storage.getUpstreamIdentity(issuer, claims.sub)
  let user = linked && (await ctx.storage.getUser(linked.userId))
  if (!user) {
    const first = await firstSignIn(ctx, actor, input, now)
    user = first.user
    outcome = first.outcome
  } else {
    await ctx.storage.saveUpstreamIdentity({ ...linked!, lastSignInAt: now })
  }
  if (user.suspendedAt !== null) {
    const event = securityEvent(now, { kind: 'sign_in.failed', userId: user.id, email: user.email, address: input.address, details: { reason: 'suspended', upstream: issuer } })
    await ctx.storage.recordSecurityEvent(event)
    ctx.security?.logged([event])
    throw new UpstreamSignInRefused('suspended', 'This account is suspended. Write to the people who run this site to ask why.')
  }
  const { ignored } = await applyTenantsClaim(ctx, { kind: 'person', user, address: input.address }, user, issuer, claims[input.provider.tenantsClaim], now)
  const session = randomValue(32)
  await ctx.storage.createUpstreamSession(
    { idHash: hashSecret(session), userId: user.id, createdAt: now, expiresAt: now + ctx.config.sessionTtl * 1000 },
    { issuer, subject: claims.sub, sid: typeof claims.sid === 'string' ? claims.sid : null, idToken: input.idToken },
  )
  const tenantIds = (await ctx.storage.listMemberships(user.id)).map((m) => m.tenantId)
  return { user, session, outcome, tenantIds, ignored }
}

/** A sub seen for the first time: a new account, or one here with the same address both sides verified. */
async function firstSignIn(ctx: OperationContext, actor: Actor, input: UpstreamSignInInput, now: number): Promise<{ user: User; outcome: 'created' | 'linked' }> {
  const { issuer, claims, provider } = input
  const email = typeof claims.email === 'string' ? claims.email.trim().toLowerCase() : ''
  if (!/^[^@\s]+@[^@\s]+$/.test(email) || email.length > 320) {
    throw new UpstreamSignInRefused('no_email', `${provider.name} did not give an email address for your account, and an account here needs one.`)
  }
  if (claims.email_verified !== true) {
    throw new UpstreamSignInRefused('email_unverified', `${provider.name} has not verified your email address ${email}. Confirm it there, then sign in again.`)
  }
  const identity = { issuer, subject: claims.sub, createdAt: now, lastSignInAt: now }
  const existing = await ctx.storage.getUserByEmail(email)
  if (existing) {
    if (existing.emailVerifiedAt === null) {
      throw new UpstreamSignInRefused(
        'email_taken',
        `An account here already uses ${email}, and its address was never confirmed, so it cannot be joined to your ${provider.name} account. Ask the people who run this site to remove or confirm it.`,
      )
    }
    const audit = auditEntry(actor, now, 'user.upstream_linked', { objectId: existing.id }, { issuer, email })
    await ctx.storage.saveUpstreamIdentity({ ...identity, userId: existing.id }, { audit: [audit] })
    return { user: existing, outcome: 'linked' }
  }
  const user: User = {
    id: randomUUID(),
    email,
    // No password: the account signs in upstream only ('' is no Argon2 hash, so no password matches it).
    passwordHash: '',
    createdAt: now,
    sandboxTenantId: null,
    emailVerifiedAt: now,
    operator: false,
    suspendedAt: null,
    suspendedReason: null,
  }
  await ctx.storage.createUser(user, [], { audit: [auditEntry(actor, now, 'user.created_upstream', { objectId: user.id }, { issuer, email })] })
  await ctx.storage.saveUpstreamIdentity({ ...identity, userId: user.id })
  return { user, outcome: 'created' }
}

/**
 * The claim's tenants, applied: each listed tenant that exists is set to its role; each the provider
 * gave before and lists no more is removed. One audit entry per change, in the change's transaction.
 */
export async function applyTenantsClaim(ctx: OperationContext, actor: Actor, user: User, issuer: string, claim: unknown, now: number): Promise<{ ignored: number }> {
  const wanted = tenantsClaim(claim)
  let ignored = wanted.ignored
  const current = new Map((await ctx.storage.listMemberships(user.id)).map((m) => [m.tenantId, m.role]))
  const given = new Set((await ctx.storage.listUpstreamMemberships(user.id, issuer)).map((m) => m.tenantId))
  const put: Membership[] = []
  const audit: AuditEntry[] = []
  for (const m of wanted.memberships) {
    if (!(await ctx.storage.getTenant(m.tenantId))) {
      ignored++
      continue
    }
    const was = current.get(m.tenantId)
    if (was === m.role && given.has(m.tenantId)) continue
    put.push({ userId: user.id, tenantId: m.tenantId, role: m.role })
    const action = was === undefined ? 'membership.added' : 'membership.changed'
    audit.push(auditEntry(actor, now, action, { objectId: user.id, tenantId: m.tenantId }, { email: user.email, role: m.role, ...(was ? { from: was } : {}), upstream: issuer }))
  }
  const listed = new Set(wanted.memberships.map((m) => m.tenantId))
  const remove = [...given].filter((tenantId) => !listed.has(tenantId))
  for (const tenantId of remove) audit.push(auditEntry(actor, now, 'membership.removed', { objectId: user.id, tenantId }, { email: user.email, upstream: issuer }))
  if (put.length || remove.length) await ctx.storage.applyUpstreamMemberships(user.id, issuer, { put, remove }, { audit })
  return { ignored }
}

/**
 * Back-channel logout (OpenID Connect Back-Channel Logout 1.0 §2.7): ends the sessions the logout
 * token names, by `sid`, by `sub`, or both. The token itself is checked at the edge.
 */
export async function endUpstreamSessions(ctx: OperationContext, input: { issuer: string; subject?: string; sid?: string }): Promise<number> {
  return ctx.storage.deleteUpstreamSessions(input.issuer, {
    ...(input.subject !== undefined ? { subject: input.subject } : {}),
    ...(input.sid !== undefined ? { sid: input.sid } : {}),
  })
}

/** Whether an account signs in upstream only (it is linked to a provider): then its password does not sign in. */
export async function signsInUpstream(ctx: OperationContext, userId: string): Promise<boolean> {
  return (await ctx.storage.listUpstreamIdentities(userId)).length > 0
}

import { randomUUID } from 'node:crypto'
import { actingUser, auditEntry, type Actor } from '../audit.js'
import { isLookupKey } from '../client-auth.js'
import type { OperationContext } from '../context.js'
import { emailLinkUrl, newEmailLink } from '../email-links.js'
import { newMail } from '../mail.js'
import type { AuditEntry, EmailToken, Membership, Role, Tenant, User } from '../model.js'
import { conflict, forbidden, invalid, notFound } from '../operation-error.js'
import { hashPassword } from '../sign-in.js'
import { requireOperator, tenantFor } from './access.js'
import { issuer, validLink } from './accounts.js'
import { accountEmail, newPassword } from './validate.js'

/*
 * Who belongs to a tenant, and as what. A tenant's owners and operators change it; a person may belong
 * to any number of tenants. A tenant never loses its last owner: someone must always be able to manage it.
 * People join by invitation: a single-use link mailed to the address (a week), which its owner accepts
 * signed in, or, for an address without an account, by choosing a password (the click proves the address).
 */

const roles: readonly Role[] = ['owner', 'admin', 'member']

export interface Member {
  user: User
  role: Role
}

/** An invitation sent and not yet accepted, as the members page lists it. */
export interface PendingInvitation {
  email: string
  role: Role | null
  invitedBy: string | null
  createdAt: number
  expiresAt: number
}

/** A tenant's members (by email) and the invitations waiting; owners and operators only. */
export async function listTenantMembers(
  ctx: OperationContext,
  actor: Actor,
  input: { tenantId: string },
): Promise<{ tenant: Tenant; members: Member[]; invitations: PendingInvitation[] }> {
  const tenant = await ownedTenant(ctx, actor, input.tenantId)
  const members = await ctx.storage.listMembers(tenant.id)
  const invitations = (await ctx.storage.listInvitations(tenant.id, ctx.now())).map(pending)
  return { tenant, members, invitations }
}

/** Adds an existing account to a tenant with `role`, or changes the role it has there. */
export async function setMembership(ctx: OperationContext, actor: Actor, input: { tenantId: string; email: string; role: string }): Promise<Membership> {
  const tenant = await ownedTenant(ctx, actor, input.tenantId)
  const role = roleOf(input.role)
  return putRole(ctx, actor, tenant, await account(ctx, input.email), role)
}

/** Changes the role of someone who is a member already (the members page). */
export async function changeMemberRole(ctx: OperationContext, actor: Actor, input: { tenantId: string; userId: string; role: string }): Promise<Membership> {
  const tenant = await ownedTenant(ctx, actor, input.tenantId)
  const role = roleOf(input.role)
  return putRole(ctx, actor, tenant, await member(ctx, tenant, input.userId), role)
}

/** Takes an account out of a tenant. */
export async function removeMembership(ctx: OperationContext, actor: Actor, input: { tenantId: string; email: string }): Promise<void> {
  const tenant = await ownedTenant(ctx, actor, input.tenantId)
  await takeOut(ctx, actor, tenant, await account(ctx, input.email))
}

/** Takes a member out of a tenant by user id (the members page). */
export async function removeMember(ctx: OperationContext, actor: Actor, input: { tenantId: string; userId: string }): Promise<void> {
  const tenant = await ownedTenant(ctx, actor, input.tenantId)
  await takeOut(ctx, actor, tenant, await member(ctx, tenant, input.userId))
}

async function putRole(ctx: OperationContext, actor: Actor, tenant: Tenant, user: User, role: Role): Promise<Membership> {
  const members = await ctx.storage.listMembers(tenant.id)
  const current = members.find((m) => m.user.id === user.id)?.role
  if (current === 'owner' && role !== 'owner') keepAnOwner(members, tenant)
  const membership: Membership = { userId: user.id, tenantId: tenant.id, role }
  const action = current === undefined ? 'membership.added' : 'membership.changed'
  await ctx.storage.addMembership(membership, {
    audit: [auditEntry(actor, ctx.now(), action, { objectId: user.id, tenantId: tenant.id }, { email: user.email, role, ...(current ? { was: current } : {}) })],
  })
  return membership
}

async function takeOut(ctx: OperationContext, actor: Actor, tenant: Tenant, user: User): Promise<void> {
  const members = await ctx.storage.listMembers(tenant.id)
  const current = members.find((m) => m.user.id === user.id)?.role
  if (current === undefined) throw notFound(`${user.email} is not a member of ${tenant.name}`)
  if (current === 'owner') keepAnOwner(members, tenant)
  await ctx.storage.removeMembership(user.id, tenant.id, {
    audit: [auditEntry(actor, ctx.now(), 'membership.removed', { objectId: user.id, tenantId: tenant.id }, { email: user.email, was: current })],
  })
}

/** Operators, or an owner of the tenant (an admin connects apps but does not change who belongs). */
export async function ownedTenant(ctx: OperationContext, actor: Actor, tenantId: string): Promise<Tenant> {
  // A value that cannot be an id (empty, NUL, huge) finds nothing, before any store sees it.
  if (!isLookupKey(tenantId)) throw notFound('no such tenant')
  if (actor.kind !== 'person') return tenantFor(ctx, actor, tenantId)
  const role = (await ctx.storage.listMemberships(actor.user.id)).find((m) => m.tenantId === tenantId)?.role
  const tenant = role === 'owner' ? await ctx.storage.getTenant(tenantId) : undefined
  if (!tenant) throw forbidden('changing who belongs to a tenant needs one of its owners')
  return tenant
}

async function account(ctx: OperationContext, email: string): Promise<User> {
  const user = await ctx.storage.getUserByEmail(email.trim().toLowerCase())
  if (!user) throw notFound(`no user with email ${email}`)
  return user
}

async function member(ctx: OperationContext, tenant: Tenant, userId: string): Promise<User> {
  const found = (await ctx.storage.listMembers(tenant.id)).find((m) => m.user.id === userId)
  if (!found) throw notFound(`no such member of ${tenant.name}`)
  return found.user
}

function roleOf(value: string | undefined): Role {
  const role = roles.find((r) => r === value)
  if (!role) throw invalid(`role must be one of: ${roles.join(', ')}`, 'role')
  return role
}

function keepAnOwner(members: { role: Role }[], tenant: Tenant): void {
  if (members.filter((m) => m.role === 'owner').length <= 1) throw conflict(`${tenant.name} would have no owner: make someone else an owner first`)
}

// ---- invitations ----

/** What was mailed: the address and when the link stops working. */
export interface SentInvitation {
  email: string
  expiresAt: number
}

/** What an invitation page shows before anyone accepts. */
export interface Invitation {
  email: string
  /** The tenant and role, or none for an invitation to be an operator. */
  tenant: Tenant | undefined
  role: Role | null
  invitedBy: string | null
  expiresAt: number
  /** Whether the address has an account already (then its owner signs in to accept). */
  hasAccount: boolean
}

/**
 * Mails an invitation to join a tenant with `role`: its owners and operators may. The address need not
 * have an account. Works under every sign-up policy: an invitation is how people join under `invite`.
 */
export async function inviteMember(ctx: OperationContext, actor: Actor, input: { tenantId: string; email: string; role: string }): Promise<SentInvitation> {
  const tenant = await ownedTenant(ctx, actor, input.tenantId)
  const email = accountEmail(input.email)
  const role = roleOf(input.role)
  const user = await ctx.storage.getUserByEmail(email)
  if (user && (await ctx.storage.listMemberships(user.id)).some((m) => m.tenantId === tenant.id)) {
    throw conflict(`${email} is a member of ${tenant.name} already: change their role instead`)
  }
  return sendInvitation(ctx, actor, email, tenant, role)
}

/** Mails an invitation to be an operator of the deployment: operators only. */
export async function inviteOperator(ctx: OperationContext, actor: Actor, input: { email: string }): Promise<SentInvitation> {
  requireOperator(actor, 'invite operators')
  const email = accountEmail(input.email)
  if ((await ctx.storage.getUserByEmail(email))?.operator) throw conflict(`${email} is an operator already`)
  return sendInvitation(ctx, actor, email, undefined, null)
}

/** The link, the message carrying it and the audit entry, in one transaction. */
async function sendInvitation(ctx: OperationContext, actor: Actor, email: string, tenant: Tenant | undefined, role: Role | null): Promise<SentInvitation> {
  const invitedBy = actingUser(actor)?.email ?? null
  const now = ctx.now()
  const link = newEmailLink(now, 'invite', { email, tenantId: tenant?.id ?? null, role, invitedBy })
  // The platform by its brand's name, as its pages call it.
  const platform = ctx.config?.brand?.name ?? issuer(ctx)
  const what = tenant ? `${tenant.name} as ${rolePhrase(role)}` : `${platform} as an operator`
  const mail = newMail(now, {
    to: email,
    subject: tenant ? `You are invited to ${tenant.name}` : `You are invited to operate ${platform}`,
    text: [
      `${invitedBy ?? `The people who run ${platform}`} invited you to join ${what}.`,
      '',
      'Accept by opening this link within 7 days:',
      emailLinkUrl(issuer(ctx), 'invite', link.token),
      '',
      'If you do not know why you got this, ignore it: nothing happens without the link.',
    ].join('\n'),
    kind: 'invite',
  })
  const audit = auditEntry(actor, now, 'invitation.sent', { objectId: email, tenantId: tenant?.id ?? null }, { email, role, operator: !tenant })
  await ctx.storage.saveEmailToken(link.record, { mail: [mail], audit: [audit] })
  return { email, expiresAt: link.record.expiresAt }
}

/** What the link offers, without spending it (the page shows it before the button). */
export async function peekInvitation(ctx: OperationContext, input: { token: string | undefined }): Promise<Invitation> {
  const record = await validLink(ctx, input.token, 'invite')
  const tenant = await invitedTenant(ctx, record)
  const hasAccount = (await ctx.storage.getUserByEmail(record.email)) !== undefined
  return { email: record.email, tenant, role: record.role, invitedBy: record.invitedBy, expiresAt: record.expiresAt, hasAccount }
}

/**
 * Accepts an invitation: the signed-in person it was sent to, or, for an address without an account,
 * whoever holds the link and chooses a password (the account is made with its address confirmed). The
 * link works once. An invitation never lowers a role someone has already. The caller signs a new
 * account in.
 */
export async function acceptInvitation(
  ctx: OperationContext,
  actor: Actor,
  input: { token: string | undefined; password?: string | undefined },
): Promise<{ user: User; created: boolean; tenant: Tenant | undefined }> {
  const record = await validLink(ctx, input.token, 'invite')
  const tenant = await invitedTenant(ctx, record)
  const existing = await ctx.storage.getUserByEmail(record.email)
  const signedIn = actingUser(actor)
  if (signedIn && signedIn.id !== existing?.id) {
    throw forbidden(`This invitation is for ${record.email}, but you are signed in as ${signedIn.email}. Sign out, then open the link again.`)
  }
  if (existing && !signedIn) throw forbidden(`${record.email} has an account: sign in as ${record.email}, then open the link again.`)
  if (existing?.suspendedAt) throw forbidden('This account is suspended.')
  // The password is checked before the link is spent, so a too-short one does not cost the person their link.
  const passwordHash = existing ? undefined : await hashPassword(newPassword(input.password))
  if (!(await ctx.storage.useEmailToken(record.idHash, ctx.now()))) throw invalid(spentLink)
  const now = ctx.now()
  const audit = auditEntry(actor, now, 'invitation.accepted', { objectId: existing?.id ?? record.email, tenantId: tenant?.id ?? null }, acceptedDetails(record))
  if (existing) return { user: await join(ctx, actor, existing, record, tenant, audit), created: false, tenant }
  const user: User = {
    id: randomUUID(),
    email: record.email,
    passwordHash: passwordHash ?? '',
    createdAt: now,
    sandboxTenantId: null,
    emailVerifiedAt: now,
    operator: tenant === undefined,
    suspendedAt: null,
    suspendedReason: null,
  }
  const memberships = tenant && record.role ? [{ tenantId: tenant.id, role: record.role }] : []
  try {
    await ctx.storage.createUser(user, memberships, { audit: [{ ...audit, objectId: user.id }] })
  } catch (err) {
    // Someone made an account for the address since the page was shown (a sign-up at the same moment).
    if (await ctx.storage.getUserByEmail(record.email)) throw conflict(`${record.email} has an account now: sign in and ask for a new invitation.`)
    throw err
  }
  return { user, created: true, tenant }
}

/** An existing account joins: the operator role, or the tenant with the higher of its role and the invited one. */
async function join(ctx: OperationContext, actor: Actor, user: User, record: EmailToken, tenant: Tenant | undefined, audit: AuditEntry): Promise<User> {
  // The click proves the address, as a verification link would.
  const joined: User = { ...user, operator: user.operator || tenant === undefined, emailVerifiedAt: user.emailVerifiedAt ?? ctx.now() }
  const changed = joined.operator !== user.operator || joined.emailVerifiedAt !== user.emailVerifiedAt
  if (!tenant || !record.role) {
    if (changed) await ctx.storage.updateUser(joined, { audit: [audit] })
    return joined
  }
  if (changed) await ctx.storage.updateUser(joined, { audit: [auditEntry(actor, ctx.now(), 'user.email_verified', { objectId: user.id })] })
  const current = (await ctx.storage.listMemberships(user.id)).find((m) => m.tenantId === tenant.id)?.role
  const role = current && rank(current) > rank(record.role) ? current : record.role
  await ctx.storage.addMembership(
    { userId: user.id, tenantId: tenant.id, role },
    { audit: [{ ...audit, details: { ...audit.details, role, ...(current ? { was: current } : {}) } }] },
  )
  return joined
}

const spentLink = 'This link was used already or has expired. Ask whoever invited you for a new invitation.'

/** The tenant an invitation is to; a tenant that is gone leaves the link opening nothing. */
async function invitedTenant(ctx: OperationContext, record: EmailToken): Promise<Tenant | undefined> {
  if (record.tenantId === null) return undefined
  const tenant = await ctx.storage.getTenant(record.tenantId)
  if (!tenant) throw invalid(spentLink)
  return tenant
}

const rank = (role: Role): number => roles.length - roles.indexOf(role)

export const rolePhrase = (role: Role | null): string => (role === 'owner' ? 'an owner' : role === 'admin' ? 'an admin' : 'a member')

const pending = (t: EmailToken): PendingInvitation => ({ email: t.email, role: t.role, invitedBy: t.invitedBy, createdAt: t.createdAt, expiresAt: t.expiresAt })

const acceptedDetails = (record: EmailToken) => ({ email: record.email, role: record.role, operator: record.tenantId === null, invited_by: record.invitedBy })

/** The tenants a person owns: where they manage who belongs (the Members links on Connected apps). */
export async function ownedTenants(ctx: OperationContext, user: Pick<User, 'id'>): Promise<Tenant[]> {
  const owned = (await ctx.storage.listMemberships(user.id)).filter((m) => m.role === 'owner')
  const tenants = await Promise.all(owned.map((m) => ctx.storage.getTenant(m.tenantId)))
  return tenants.filter((t): t is Tenant => t !== undefined)
}

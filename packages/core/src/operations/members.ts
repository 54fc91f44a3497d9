import { randomUUID } from 'node:crypto'
import { actingUser, auditEntry, type Actor } from '../audit.js'
import type { OperationContext } from '../context.js'
import { emailLinkUrl, newEmailLink } from '../email-links.js'
import { newMail } from '../mail.js'
import type { Membership, Role, Tenant, User } from '../model.js'
import { conflict, forbidden, invalid, notFound } from '../operation-error.js'
import { hashPassword } from '../sign-in.js'
import { requireOperator, tenantFor } from './access.js'
import { issuer, saveLink, validLink } from './accounts.js'
import { accountEmail, newPassword, oneOf } from './validate.js'

/*
 * Who belongs to a tenant, and as what. A tenant's owners and operators change it; a person may belong
 * to any number of tenants. A tenant never loses its last owner: someone must always be able to manage it.
 */

const roles: readonly Role[] = ['owner', 'admin', 'member']

/** Adds an existing account to a tenant with `role`, or changes the role it has there. */
export async function setMembership(ctx: OperationContext, actor: Actor, input: { tenantId: string; email: string; role: string }): Promise<Membership> {
  const tenant = await ownedTenant(ctx, actor, input.tenantId)
  const role = oneOf(input.role, roles, 'role')
  const user = await account(ctx, input.email)
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

/** Takes an account out of a tenant. */
export async function removeMembership(ctx: OperationContext, actor: Actor, input: { tenantId: string; email: string }): Promise<void> {
  const tenant = await ownedTenant(ctx, actor, input.tenantId)
  const user = await account(ctx, input.email)
  const members = await ctx.storage.listMembers(tenant.id)
  const current = members.find((m) => m.user.id === user.id)?.role
  if (current === undefined) throw notFound(`${user.email} is not a member of ${tenant.name}`)
  if (current === 'owner') keepAnOwner(members, tenant)
  await ctx.storage.removeMembership(user.id, tenant.id, {
    audit: [auditEntry(actor, ctx.now(), 'membership.removed', { objectId: user.id, tenantId: tenant.id }, { email: user.email, was: current })],
  })
}

/** Operators, or an owner of the tenant (an admin connects apps but does not change who belongs). */
async function ownedTenant(ctx: OperationContext, actor: Actor, tenantId: string): Promise<Tenant> {
  const tenant = await tenantFor(ctx, actor, tenantId)
  if (actor.kind === 'person') {
    const role = (await ctx.storage.listMemberships(actor.user.id)).find((m) => m.tenantId === tenant.id)?.role
    if (role !== 'owner') throw forbidden('changing who belongs to a tenant needs one of its owners')
  }
  return tenant
}

async function account(ctx: OperationContext, email: string): Promise<User> {
  const user = await ctx.storage.getUserByEmail(email.trim().toLowerCase())
  if (!user) throw notFound(`no user with email ${email}`)
  return user
}

function keepAnOwner(members: { role: Role }[], tenant: Tenant): void {
  if (members.filter((m) => m.role === 'owner').length <= 1) throw conflict(`${tenant.name} would have no owner: make someone else an owner first`)
}

// ---- invitations ----

/** What an invitation page shows before anyone accepts. */
export interface Invitation {
  email: string
  /** The tenant and role, or none for an invitation to be an operator. */
  tenant: Tenant | undefined
  role: Role | null
  invitedBy: string | null
  /** Whether the address has an account already (then its owner signs in to accept). */
  hasAccount: boolean
}

/**
 * Mails a single-use link (a week) inviting `email` into a tenant with `role` (its owners and
 * operators), or, with no tenant, to be an operator (operators only). The address need not have an
 * account: accepting makes one, confirmed, since the link reached the address. Works under every
 * sign-up policy: an invitation is how people join under `invite`.
 */
export async function invite(ctx: OperationContext, actor: Actor, input: { email: string; tenantId?: string; role?: string }): Promise<{ email: string; expiresAt: number }> {
  const email = accountEmail(input.email)
  const tenant = input.tenantId ? await ownedTenant(ctx, actor, input.tenantId) : undefined
  if (!tenant) requireOperator(actor, 'invite operators')
  const role = tenant ? oneOf(input.role ?? 'member', roles, 'role') : null
  const invitedBy = actingUser(actor)?.email ?? null
  const now = ctx.now()
  const link = newEmailLink(now, 'invite', { email, tenantId: tenant?.id ?? null, role, invitedBy })
  const what = tenant ? `${tenant.name} as ${role === 'member' ? 'a member' : `an ${role}`}` : `${issuer(ctx)} as an operator`
  const mail = newMail(now, {
    to: email,
    subject: tenant ? `You are invited to ${tenant.name}` : 'You are invited to operate Fieldgate',
    text: [
      `${invitedBy ?? `The people who run ${issuer(ctx)}`} invited you to join ${what}.`,
      '',
      'Accept by opening this link within 7 days:',
      emailLinkUrl(issuer(ctx), 'invite', link.token),
      '',
      'If you do not know why you got this, ignore it: nothing happens without the link.',
    ].join('\n'),
    kind: 'invite',
  })
  await saveLink(ctx, link.record, mail)
  await ctx.storage.recordAudit(auditEntry(actor, now, 'invitation.sent', { objectId: email, tenantId: tenant?.id ?? null }, { email, role, operator: !tenant }))
  return { email, expiresAt: link.record.expiresAt }
}

export async function peekInvitation(ctx: OperationContext, input: { token: string | undefined }): Promise<Invitation> {
  const record = await validLink(ctx, input.token, 'invite')
  const tenant = record.tenantId ? await ctx.storage.getTenant(record.tenantId) : undefined
  return { email: record.email, tenant, role: record.role, invitedBy: record.invitedBy, hasAccount: (await ctx.storage.getUserByEmail(record.email)) !== undefined }
}

/**
 * Accepts an invitation: the signed-in person it was sent to, or, for an address without an account,
 * whoever holds the link and sets a password (the account is made, its address confirmed). The link
 * works once. The caller signs a new account in.
 */
export async function acceptInvitation(
  ctx: OperationContext,
  actor: Actor,
  input: { token: string | undefined; password?: string | undefined },
): Promise<{ user: User; created: boolean }> {
  const record = await validLink(ctx, input.token, 'invite')
  const existing = await ctx.storage.getUserByEmail(record.email)
  const signedIn = actingUser(actor)
  if (existing && signedIn?.id !== existing.id) throw forbidden(`This invitation is for ${record.email}: sign in as ${record.email} to accept it.`)
  if (!existing && signedIn) throw forbidden(`This invitation is for ${record.email}, not ${signedIn.email}: sign out to accept it with a new account.`)
  const passwordHash = existing ? undefined : await hashPassword(newPassword(input.password))
  const spent = await ctx.storage.useEmailToken(record.idHash, ctx.now())
  if (!spent) throw invalid('This link was used already or has expired. You can ask for a new one.')
  const now = ctx.now()
  const user: User = existing ?? {
    id: randomUUID(),
    email: record.email,
    passwordHash: passwordHash ?? '',
    createdAt: now,
    sandboxTenantId: null,
    emailVerifiedAt: now,
    operator: false,
    suspendedAt: null,
    suspendedReason: null,
  }
  const accepted: User = { ...user, operator: user.operator || record.tenantId === null, emailVerifiedAt: user.emailVerifiedAt ?? now }
  const audit = [
    auditEntry(actor, now, 'invitation.accepted', { objectId: user.id, tenantId: record.tenantId }, { email: record.email, role: record.role, invited_by: record.invitedBy }),
  ]
  const memberships = record.tenantId && record.role ? [{ tenantId: record.tenantId, role: record.role }] : []
  if (existing) {
    await ctx.storage.updateUser(accepted, { audit })
    for (const m of memberships) await ctx.storage.addMembership({ ...m, userId: user.id })
  } else await ctx.storage.createUser(accepted, memberships, { audit })
  return { user: accepted, created: !existing }
}

/** A tenant's members, for its owners and operators. */
export async function listTenantMembers(ctx: OperationContext, actor: Actor, tenantId: string): Promise<{ tenant: Tenant; members: { user: User; role: Role }[] }> {
  const tenant = await ownedTenant(ctx, actor, tenantId)
  return { tenant, members: await ctx.storage.listMembers(tenant.id) }
}

/** The tenants a person owns: where they manage who belongs. */
export async function ownedTenants(ctx: OperationContext, user: Pick<User, 'id'>): Promise<Tenant[]> {
  const owned = (await ctx.storage.listMemberships(user.id)).filter((m) => m.role === 'owner')
  const tenants = await Promise.all(owned.map((m) => ctx.storage.getTenant(m.tenantId)))
  return tenants.filter((t): t is Tenant => t !== undefined)
}

import { auditEntry, type Actor } from '../audit.js'
import type { OperationContext } from '../context.js'
import type { Membership, Role, Tenant, User } from '../model.js'
import { conflict, forbidden, notFound } from '../operation-error.js'
import { tenantFor } from './access.js'
import { oneOf } from './validate.js'

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

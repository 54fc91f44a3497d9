import { randomUUID } from 'node:crypto'
import type { Actor, Person } from '../audit.js'
import type { OperationContext } from '../context.js'
import type { Environment, Role, Tenant, User } from '../model.js'
import { conflict, forbidden, notFound } from '../operation-error.js'
import { hashPassword } from '../sign-in.js'
import { auditEntry } from '../audit.js'
import { ownedTenant } from './members.js'
import { requireOperator, tenantFor } from './access.js'
import { accountEmail, newPassword, oneOf, requireText } from './validate.js'

export const environments: readonly Environment[] = ['sandbox', 'live']
const roles: readonly Role[] = ['owner', 'admin', 'member']

/** Operators make customer tenants; a partner's sandbox is made for them (ensurePartnerSandbox). */
export async function createTenant(ctx: OperationContext, actor: Actor, input: { name: string; environment: string }): Promise<Tenant> {
  requireOperator(actor, 'create tenants')
  return ctx.storage.createTenant(newTenant(input, ctx.now()))
}

/** Operators, or one of the tenant's owners; the new name shows at once on every instance (a `tenant` change). */
export async function renameTenant(ctx: OperationContext, actor: Actor, input: { tenantId: string; name: string }): Promise<Tenant> {
  const tenant = await ownedTenant(ctx, actor, input.tenantId)
  const name = requireText(input.name, 'name')
  const audit = [auditEntry(actor, ctx.now(), 'tenant.renamed', { objectId: tenant.id, tenantId: tenant.id }, { from: tenant.name, to: name })]
  if (!(await ctx.storage.renameTenant(tenant.id, name, { audit }))) throw notFound(`no tenant ${tenant.id}`)
  ctx.cache.apply({ kind: 'tenant', ref: tenant.id })
  return { ...tenant, name }
}

export function newTenant(input: { name: string; environment: string }, now: number): Tenant {
  const name = requireText(input.name, 'name')
  return { id: randomUUID(), name, environment: oneOf(input.environment, environments, 'environment'), marketplaceId: randomUUID(), createdAt: now }
}

/** An operator adds anyone, optionally to a tenant; a visitor signs up as themself, a member of nothing. */
export async function createUser(
  ctx: OperationContext,
  actor: Actor,
  input: { email: string; password: string; tenantId?: string; role?: string; operator?: boolean },
): Promise<User> {
  if (actor.kind === 'person') throw forbidden('a signed-in person cannot create accounts')
  if (input.operator) requireOperator(actor, 'make operators')
  if (actor.kind === 'visitor' && input.tenantId) throw forbidden('signing up joins no tenant')
  const email = accountEmail(input.email)
  const password = newPassword(input.password)
  if (await ctx.storage.getUserByEmail(email)) throw conflict(`a user with email ${email} exists`)
  const memberships = []
  if (input.tenantId) {
    await tenantFor(ctx, actor, input.tenantId)
    memberships.push({ tenantId: input.tenantId, role: oneOf(input.role ?? 'member', roles, 'role') })
  }
  const passwordHash = await hashPassword(password)
  const now = ctx.now()
  // An operator vouches for the addresses they add; a visitor confirms theirs by the link mailed to it.
  const user: User = {
    id: randomUUID(),
    email,
    passwordHash,
    createdAt: now,
    sandboxTenantId: null,
    emailVerifiedAt: actor.kind === 'operator' ? now : null,
    operator: input.operator === true,
    suspendedAt: null,
    suspendedReason: null,
  }
  return ctx.storage.createUser(user, memberships)
}

/** A partner's own sandbox tenant, made on first use: the `target_id` to test against before any customer. */
export async function ensurePartnerSandbox(ctx: OperationContext, actor: Person): Promise<Tenant> {
  const { user } = actor
  if (user.sandboxTenantId) {
    const existing = await ctx.storage.getTenant(user.sandboxTenantId)
    if (existing) return existing
  }
  const tenant = await ctx.storage.createTenant(newTenant({ name: `${user.email} sandbox`, environment: 'sandbox' }, ctx.now()))
  await ctx.storage.addMembership({ userId: user.id, tenantId: tenant.id, role: 'owner' })
  await ctx.storage.setSandboxTenant(user.id, tenant.id)
  user.sandboxTenantId = tenant.id
  return tenant
}

import { actingUser, auditEntry, type Actor } from '../audit.js'
import type { OperationContext } from '../context.js'
import { newMail } from '../mail.js'
import type { App, MailMessage, ReviewedFields, SecurityEvent, SecurityEventKind, User } from '../model.js'
import { conflict, forbidden, invalid, notFound } from '../operation-error.js'
import { securityEvent } from '../security.js'
import { appFor, requireOperator } from './access.js'

/*
 * What the platform's staff answer for: review of what partners publish, and suspension.
 * - A public live app made or changed by its partner waits for review (`pending`); until it is first
 *   approved it is not listed, installable or connectable. Once approved it keeps working as approved
 *   while a later change to its reviewed fields waits in `proposed`.
 * - A suspended app gets no token (`invalid_client`) and every token it holds is refused, on every
 *   instance: the suspension is an `app` change, which every process's cache drops at its next read of
 *   the change feed. A suspended account cannot sign in, and its apps are suspended with it.
 * Every decision is audited, recorded as a security event and mailed to the partner, in its transaction.
 */

/** What review covers, so a partner's edit of any of them waits for an operator. */
export const reviewedFieldNames = [
  'name',
  'scopes',
  'installUrl',
  'redirectUris',
  'dataApiUrl',
  'logoUrl',
  'shortDescription',
  'categories',
  'publisher',
  'supportUrl',
  'privacyPolicyUrl',
] as const satisfies readonly (keyof ReviewedFields)[]

/** Public live apps face real customers: they are reviewed. Sandbox and private apps work at once. */
export const isReviewed = (app: Pick<App, 'kind' | 'environment'>): boolean => app.kind === 'public' && app.environment === 'live'

/** Listed, installable and connectable: approved at least once, and not suspended. */
export const isAvailable = (app: App): boolean => app.approvedAt !== null && app.suspendedAt === null

export const reviewedFields = (app: ReviewedFields): ReviewedFields => ({
  name: app.name,
  scopes: app.scopes,
  installUrl: app.installUrl,
  redirectUris: app.redirectUris,
  dataApiUrl: app.dataApiUrl,
  logoUrl: app.logoUrl,
  shortDescription: app.shortDescription,
  categories: app.categories,
  publisher: app.publisher,
  supportUrl: app.supportUrl,
  privacyPolicyUrl: app.privacyPolicyUrl,
})

/** Operators only: the apps waiting for a decision, oldest first. */
export async function listReviewQueue(ctx: OperationContext, actor: Actor, page: { limit?: number; offset?: number; query?: string } = {}): Promise<App[]> {
  requireOperator(actor, 'review apps')
  return ctx.storage.listApps({ review: 'pending', ...page })
}

/** Approves what waits: a first submission goes live, a proposed change takes effect. */
export async function approveApp(ctx: OperationContext, actor: Actor, input: { clientId: string; reason?: string }): Promise<App> {
  requireOperator(actor, 'approve apps')
  const app = await appFor(ctx, actor, input.clientId)
  if (app.review !== 'pending') throw conflict(`${app.name} is not waiting for review (it is ${app.review})`)
  const now = ctx.now()
  const reason = optionalReason(input.reason)
  const approved: App = { ...app, ...(app.proposed ?? {}), review: 'approved', reviewReason: reason, approvedAt: app.approvedAt ?? now, proposed: null }
  const text = [
    `${app.name} (${app.clientId}) was approved${app.approvedAt === null ? ': customers can now find, install and connect it.' : ': your changes are in effect.'}`,
    ...(reason ? ['', `The reviewer wrote: ${reason}`] : []),
  ]
  return decide(
    ctx,
    actor,
    app,
    approved,
    'review.approved',
    'app.approved',
    { reason, first: app.approvedAt === null },
    await partnerMail(ctx, app, `Approved: ${app.name}`, text, 'review'),
  )
}

/** Rejects what waits, with the reason the partner will read; what was approved before stays in force. */
export async function rejectApp(ctx: OperationContext, actor: Actor, input: { clientId: string; reason: string }): Promise<App> {
  requireOperator(actor, 'reject apps')
  const app = await appFor(ctx, actor, input.clientId)
  if (app.review !== 'pending') throw conflict(`${app.name} is not waiting for review (it is ${app.review})`)
  const reason = requireReason(input.reason, 'a rejection needs a reason the partner can act on')
  const rejected: App = { ...app, review: 'rejected', reviewReason: reason }
  const inForce = app.approvedAt === null ? 'It is not available to customers.' : 'The version approved before stays in effect.'
  const text = [
    `${app.name} (${app.clientId}) was not approved. ${inForce}`,
    '',
    `The reviewer wrote: ${reason}`,
    '',
    'Change it in the developer portal and save to ask for review again.',
  ]
  return decide(ctx, actor, app, rejected, 'review.rejected', 'app.rejected', { reason }, await partnerMail(ctx, app, `Changes needed: ${app.name}`, text, 'review'))
}

/** Stops the app at once: no new token, and every token it holds refused. */
export async function suspendApp(ctx: OperationContext, actor: Actor, input: { clientId: string; reason: string }): Promise<App> {
  requireOperator(actor, 'suspend apps')
  const app = await appFor(ctx, actor, input.clientId)
  if (app.suspendedAt !== null) throw conflict(`${app.name} is suspended already`)
  const reason = requireReason(input.reason, 'a suspension needs a reason')
  const suspended: App = { ...app, suspendedAt: ctx.now(), suspendedReason: reason, suspendedWithAccount: false }
  const text = [`${app.name} (${app.clientId}) was suspended: its tokens no longer work and it gets no new ones.`, '', `Reason: ${reason}`]
  return decide(ctx, actor, app, suspended, 'app.suspended', 'app.suspended', { reason }, await partnerMail(ctx, app, `Suspended: ${app.name}`, text, 'suspension'))
}

export async function unsuspendApp(ctx: OperationContext, actor: Actor, input: { clientId: string }): Promise<App> {
  requireOperator(actor, 'unsuspend apps')
  const app = await appFor(ctx, actor, input.clientId)
  if (app.suspendedAt === null) throw conflict(`${app.name} is not suspended`)
  if (app.suspendedWithAccount) throw conflict(`${app.name} is suspended with its partner's account: unsuspend the account`)
  const lifted: App = { ...app, suspendedAt: null, suspendedReason: null }
  const text = [`${app.name} (${app.clientId}) is no longer suspended: it can get tokens again.`]
  return decide(ctx, actor, app, lifted, 'app.unsuspended', 'app.unsuspended', {}, await partnerMail(ctx, app, `Active again: ${app.name}`, text, 'suspension'))
}

/**
 * Suspends a partner account: it cannot sign in, its sessions end, and each of its apps is suspended
 * with it. The apps go first, so an account shown suspended never has an app still running.
 */
export async function suspendAccount(ctx: OperationContext, actor: Actor, input: { email: string; reason: string }): Promise<{ user: User; apps: App[] }> {
  requireOperator(actor, 'suspend accounts')
  const user = await userByEmail(ctx, input.email)
  if (user.operator) throw invalid('an operator account cannot be suspended: take the operator role away first')
  const reason = requireReason(input.reason, 'a suspension needs a reason')
  const now = ctx.now()
  const apps: App[] = []
  for (const app of await ctx.storage.listApps({ ownerUserId: user.id })) {
    if (app.suspendedAt !== null) continue
    apps.push(
      await commitApp(
        ctx,
        { ...app, suspendedAt: now, suspendedReason: reason, suspendedWithAccount: true },
        auditEntry(actor, now, 'app.suspended', about(app), { reason, with_account: true }),
        [],
      ),
    )
  }
  const suspended: User = { ...user, suspendedAt: now, suspendedReason: reason }
  const mail = newMail(now, {
    to: user.email,
    subject: 'Your account was suspended',
    text: [
      `Your account ${user.email} was suspended: you cannot sign in, and your apps${apps.length ? ` (${apps.map((a) => a.name).join(', ')})` : ''} no longer get tokens.`,
      '',
      `Reason: ${reason}`,
    ].join('\n'),
    kind: 'suspension',
  })
  await commitUser(ctx, actor, suspended, 'account.suspended', { reason, apps: apps.map((a) => a.clientId) }, [mail])
  await ctx.storage.deleteUserSessions(user.id)
  return { user: suspended, apps }
}

/** Lifts an account's suspension and that of the apps suspended with it (not those suspended on their own). */
export async function unsuspendAccount(ctx: OperationContext, actor: Actor, input: { email: string }): Promise<{ user: User; apps: App[] }> {
  requireOperator(actor, 'unsuspend accounts')
  const user = await userByEmail(ctx, input.email)
  if (user.suspendedAt === null) throw conflict(`${user.email} is not suspended`)
  const now = ctx.now()
  const lifted: User = { ...user, suspendedAt: null, suspendedReason: null }
  const mail = newMail(now, {
    to: user.email,
    subject: 'Your account is active again',
    text: `Your account ${user.email} is no longer suspended: you can sign in again.`,
    kind: 'suspension',
  })
  await commitUser(ctx, actor, lifted, 'account.unsuspended', {}, [mail])
  const apps: App[] = []
  for (const app of await ctx.storage.listApps({ ownerUserId: user.id })) {
    if (!app.suspendedWithAccount || app.suspendedAt === null) continue
    apps.push(
      await commitApp(
        ctx,
        { ...app, suspendedAt: null, suspendedReason: null, suspendedWithAccount: false },
        auditEntry(actor, now, 'app.unsuspended', about(app), { with_account: true }),
        [],
      ),
    )
  }
  return { user: lifted, apps }
}

/** Gives or takes the operator role; an operator cannot take their own, so a deployment keeps one. */
export async function setOperatorRole(ctx: OperationContext, actor: Actor, input: { email: string; operator: boolean }): Promise<User> {
  requireOperator(actor, 'change who operates the deployment')
  const user = await userByEmail(ctx, input.email)
  if (!input.operator && actingUser(actor)?.id === user.id) throw forbidden('you cannot take the operator role from yourself')
  if (user.suspendedAt !== null && input.operator) throw conflict(`${user.email} is suspended`)
  if (user.operator === input.operator) return user
  const changed: User = { ...user, operator: input.operator }
  await ctx.storage.updateUser(changed, {
    audit: [auditEntry(actor, ctx.now(), input.operator ? 'operator.granted' : 'operator.revoked', { objectId: user.id }, { email: user.email })],
  })
  return changed
}

async function decide(
  ctx: OperationContext,
  actor: Actor,
  before: App,
  after: App,
  kind: SecurityEventKind,
  action: string,
  details: Record<string, unknown>,
  mail: MailMessage[],
): Promise<App> {
  const now = ctx.now()
  const event = securityEvent(now, {
    kind,
    clientId: before.clientId,
    tenantId: before.tenantId,
    address: actor.address ?? null,
    details: { ...details, by: auditEntry(actor, now, action, about(before)).actor },
  })
  await commitApp(ctx, after, auditEntry(actor, now, action, about(before), details), mail, [event])
  return after
}

async function commitApp(ctx: OperationContext, app: App, audit: ReturnType<typeof auditEntry>, mail: MailMessage[], security: SecurityEvent[] = []): Promise<App> {
  await ctx.storage.updateApp(app, { audit: [audit], mail, security })
  ctx.cache.apply({ kind: 'app', ref: app.id })
  ctx.security?.logged(security)
  return app
}

async function commitUser(
  ctx: OperationContext,
  actor: Actor,
  user: User,
  kind: 'account.suspended' | 'account.unsuspended',
  details: Record<string, unknown>,
  mail: MailMessage[],
): Promise<void> {
  const now = ctx.now()
  const audit = auditEntry(actor, now, kind, { objectId: user.id }, details)
  const event = securityEvent(now, { kind, userId: user.id, email: user.email, address: actor.address ?? null, details: { ...details, by: audit.actor } })
  await ctx.storage.updateUser(user, { audit: [audit], security: [event], mail })
  ctx.security?.logged([event])
}

const about = (app: App) => ({ objectId: app.id, appId: app.id, clientId: app.clientId, tenantId: app.tenantId })

/** Notices go to the app's contact address, else its partner's; an app with neither gets none. */
async function partnerMail(ctx: OperationContext, app: App, subject: string, lines: string[], kind: string): Promise<MailMessage[]> {
  const owner = app.ownerUserId ? await ctx.storage.getUser(app.ownerUserId) : undefined
  const to = app.contactEmail ?? owner?.email
  if (!to) return []
  const link = ctx.config && app.ownerUserId ? `${ctx.config.issuer}/developer/apps/${encodeURIComponent(app.clientId)}` : undefined
  return [newMail(ctx.now(), { to, subject, text: [...lines, ...(link ? ['', `Your app: ${link}`] : [])].join('\n'), kind })]
}

async function userByEmail(ctx: OperationContext, email: string): Promise<User> {
  const user = await ctx.storage.getUserByEmail(email.trim())
  if (!user) throw notFound(`no user with email ${email}`)
  return user
}

function requireReason(reason: string | undefined, missing: string): string {
  const r = optionalReason(reason)
  if (!r) throw invalid(missing, 'reason')
  return r
}

function optionalReason(reason: string | undefined): string | null {
  const r = reason?.trim() ?? ''
  if (r.length > 2000) throw invalid('a reason is at most 2000 characters', 'reason')
  return r || null
}

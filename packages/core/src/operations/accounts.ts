import { randomUUID } from 'node:crypto'
import { auditEntry, type Actor, type Person } from '../audit.js'
import type { OperationContext } from '../context.js'
import { emailLinkHash, emailLinkUrl, newEmailLink } from '../email-links.js'
import { newMail } from '../mail.js'
import type { EmailToken, User } from '../model.js'
import { conflict, forbidden, invalid } from '../operation-error.js'
import { securityEvent } from '../security.js'
import { hashPassword } from '../sign-in.js'
import { createUser } from './tenants.js'
import { accountEmail, newPassword } from './validate.js'

/*
 * A person's own account: signing up under the deployment's policy (FIELDGATE_SIGNUP), confirming the
 * address, and resetting a forgotten password. What a visitor sees never depends on whether an address
 * has an account (sign-up and reset answer the same either way; the mailbox's owner learns the rest),
 * and every link is single-use, expires and is stored hashed (email-links.ts).
 */

/** What a sign-up did: `signedIn` under the open policy; otherwise a message went to the address. */
export type SignUpOutcome = { signedIn: User } | { mailed: true }

export async function signUp(ctx: OperationContext, actor: Actor, input: { email: string; password: string }): Promise<SignUpOutcome> {
  const policy = ctx.config?.signup ?? 'verified'
  if (policy === 'invite') throw forbidden('Accounts here are by invitation: ask the person who runs it, or a tenant owner, to invite you.')
  if (policy === 'closed') throw forbidden('Sign-up is closed here: the people who run it create accounts.')
  if (policy === 'open') return { signedIn: await createUser(ctx, actor, input) }
  const email = accountEmail(input.email)
  const password = newPassword(input.password)
  // Hashed either way, so the answer takes as long for an address with an account as for one without.
  const passwordHash = await hashPassword(password)
  const existing = await ctx.storage.getUserByEmail(email)
  if (existing) await ctx.storage.saveMail(existsMail(ctx, email))
  else await createUnverified(ctx, actor, email, passwordHash)
  return { mailed: true }
}

async function createUnverified(ctx: OperationContext, actor: Actor, email: string, passwordHash: string): Promise<void> {
  const now = ctx.now()
  const user: User = {
    id: randomUUID(),
    email,
    passwordHash,
    createdAt: now,
    sandboxTenantId: null,
    emailVerifiedAt: null,
    operator: false,
    suspendedAt: null,
    suspendedReason: null,
  }
  const link = newEmailLink(now, 'verify', { userId: user.id, email })
  try {
    await ctx.storage.createUser(user, [], {
      emailTokens: [link.record],
      mail: [verifyMail(ctx, email, link.token)],
      audit: [auditEntry(actor, now, 'user.signed_up', { objectId: user.id })],
    })
  } catch (err) {
    // Two sign-ups for one address at once: the other made the account; this one is told nothing more.
    if (await ctx.storage.getUserByEmail(email)) return
    throw err
  }
}

/** A signed-in person whose address is not confirmed yet asks for a new link. */
export async function resendVerification(ctx: OperationContext, actor: Person): Promise<void> {
  const { user } = actor
  if (user.emailVerifiedAt !== null) throw conflict('your email address is confirmed already')
  if (await mailedRecently(ctx, user.email, 'verify')) throw conflict('We sent a link less than a minute ago: look for it in your mailbox (and its spam folder).')
  const link = newEmailLink(ctx.now(), 'verify', { userId: user.id, email: user.email })
  await saveLink(ctx, link.record, verifyMail(ctx, user.email, link.token))
}

/** Follows a verification link: the address is confirmed (once; a confirmed address stays so). */
export async function verifyEmail(ctx: OperationContext, actor: Actor, input: { token: string | undefined }): Promise<User> {
  const { record, user } = await spendLink(ctx, input.token, 'verify')
  if (user.emailVerifiedAt !== null) return user
  const now = ctx.now()
  const verified: User = { ...user, emailVerifiedAt: now }
  const event = securityEvent(now, { kind: 'email.verified', userId: user.id, email: record.email, address: actor.address ?? null })
  await ctx.storage.updateUser(verified, { audit: [auditEntry(actor, now, 'user.email_verified', { objectId: user.id })], security: [event] })
  ctx.security?.logged([event])
  return verified
}

/** "Forgot password": mails a reset link if the address has an account that may sign in; says nothing either way. */
export async function requestPasswordReset(ctx: OperationContext, _actor: Actor, input: { email: string | undefined }): Promise<void> {
  const email = accountEmail(input.email)
  const user = await ctx.storage.getUserByEmail(email)
  if (!user || user.suspendedAt !== null || (await mailedRecently(ctx, email, 'reset'))) return
  const link = newEmailLink(ctx.now(), 'reset', { userId: user.id, email })
  await saveLink(ctx, link.record, resetMail(ctx, email, link.token))
}

/** Whom a verify or reset link is for, without spending it: its page shows the address before the button. */
export async function peekEmailLink(ctx: OperationContext, input: { token: string | undefined; purpose: 'verify' | 'reset' }): Promise<{ email: string }> {
  const record = await validLink(ctx, input.token, input.purpose)
  return { email: record.email }
}

/**
 * After a person signed in: the first sign-in from an address is a security event, and, when the
 * account had signed in from elsewhere before, a message to its owner, who may not have been the one.
 */
export async function noteSignIn(ctx: OperationContext, actor: Person): Promise<void> {
  const { user, address } = actor
  const seen = await ctx.storage.listSecurityEvents({ kinds: ['sign_in.new_address'], userId: user.id, limit: 1 })
  if (seen.length > 0 && (await ctx.storage.listSecurityEvents({ kinds: ['sign_in.new_address'], userId: user.id, address, limit: 1 })).length > 0) return
  const event = securityEvent(ctx.now(), { kind: 'sign_in.new_address', userId: user.id, email: user.email, address })
  const mail =
    seen.length === 0
      ? []
      : [
          newMail(ctx.now(), {
            to: user.email,
            subject: 'A new sign-in to your account',
            text: [
              `Your account ${user.email} at ${issuer(ctx)} was signed in to from ${address}, an address it had not been used from before.`,
              '',
              `If this was not you, reset your password at ${issuer(ctx)}/forgot-password: that signs everyone else out.`,
            ].join('\n'),
            kind: 'new-sign-in',
          }),
        ]
  await ctx.storage.recordSecurityEvent(event)
  for (const m of mail) await ctx.storage.saveMail(m)
  ctx.security?.logged([event])
}

/**
 * Sets a new password from a reset link. Every session of the account ends (whoever else was in is
 * out); the address counts as confirmed, since the link reached it. The caller starts a new session.
 */
export async function resetPassword(ctx: OperationContext, actor: Actor, input: { token: string | undefined; password: string | undefined }): Promise<User> {
  await validLink(ctx, input.token, 'reset')
  // Checked before the link is spent, so a too-short password does not cost the person their link.
  const passwordHash = await hashPassword(newPassword(input.password))
  const { record, user } = await spendLink(ctx, input.token, 'reset')
  if (user.suspendedAt !== null) throw forbidden('this account is suspended')
  const now = ctx.now()
  const reset: User = { ...user, passwordHash, emailVerifiedAt: user.emailVerifiedAt ?? now }
  const event = securityEvent(now, { kind: 'password.reset', userId: user.id, email: record.email, address: actor.address ?? null })
  const notice = newMail(now, {
    to: user.email,
    subject: 'Your password was changed',
    text: [
      `The password of your account ${user.email} was just changed with a reset link${actor.address ? ` from ${actor.address}` : ''}, and every other session was signed out.`,
      '',
      `If this was not you, reset it again at ${issuer(ctx)}/forgot-password and tell the people who run ${issuer(ctx)}.`,
    ].join('\n'),
    kind: 'password-changed',
  })
  await ctx.storage.updateUser(reset, { audit: [auditEntry(actor, now, 'user.password_reset', { objectId: user.id })], security: [event], mail: [notice] })
  await ctx.storage.deleteUserSessions(user.id)
  ctx.security?.logged([event])
  return reset
}

// ---- links ----

const spent = 'This link was used already or has expired. You can ask for a new one.'

/** A link of `purpose` that is unused and unexpired, without spending it. */
export async function validLink(ctx: OperationContext, token: string | undefined, purpose: EmailToken['purpose']): Promise<EmailToken> {
  const hash = emailLinkHash(token)
  const record = hash === undefined ? undefined : await ctx.storage.getEmailToken(hash, ctx.now())
  if (!record || record.purpose !== purpose) throw invalid(spent)
  return record
}

/** Spends a link of `purpose` (exactly once, even against a concurrent use) and finds its account. */
async function spendLink(ctx: OperationContext, token: string | undefined, purpose: 'verify' | 'reset'): Promise<{ record: EmailToken; user: User }> {
  await validLink(ctx, token, purpose)
  const record = await ctx.storage.useEmailToken(emailLinkHash(token) ?? '', ctx.now())
  const user = record?.userId ? await ctx.storage.getUser(record.userId) : undefined
  // A link names the address it was sent to: if the account's address changed since, it opens nothing.
  if (!record || !user || user.email !== record.email) throw invalid(spent)
  return { record, user }
}

/** A link and the message carrying it; the link first, so a message never names a link that is not there. */
export async function saveLink(ctx: OperationContext, record: EmailToken, mail: ReturnType<typeof newMail>): Promise<void> {
  await ctx.storage.saveEmailToken(record)
  await ctx.storage.saveMail(mail)
}

/** One message of a kind per address a minute: a form submitted again sends no second message. */
async function mailedRecently(ctx: OperationContext, to: string, kind: string): Promise<boolean> {
  const latest = (await ctx.storage.listMail({ query: to, limit: 20 })).find((m) => m.to === to && m.kind === kind)
  return latest !== undefined && ctx.now() - latest.createdAt < 60_000
}

// ---- the messages ----

export function issuer(ctx: OperationContext): string {
  if (!ctx.config) throw new Error('mailing a link needs the issuer (OperationContext.config)')
  return ctx.config.issuer.replace(/\/$/, '')
}

function verifyMail(ctx: OperationContext, to: string, token: string) {
  return newMail(ctx.now(), {
    to,
    subject: 'Confirm your email address',
    text: [
      `Someone, hopefully you, created an account at ${issuer(ctx)} with this address.`,
      '',
      'Confirm it by opening this link within 24 hours:',
      emailLinkUrl(issuer(ctx), 'verify', token),
      '',
      'If it was not you, ignore this message: nothing happens without the link.',
    ].join('\n'),
    kind: 'verify',
  })
}

function existsMail(ctx: OperationContext, to: string) {
  return newMail(ctx.now(), {
    to,
    subject: 'You already have an account',
    text: [
      `Someone, hopefully you, tried to create an account at ${issuer(ctx)} with this address, which has one already.`,
      '',
      `Sign in at ${issuer(ctx)}/login, or if you forgot your password, reset it at ${issuer(ctx)}/forgot-password.`,
      '',
      'If it was not you, ignore this message: nothing changed.',
    ].join('\n'),
    kind: 'signup-exists',
  })
}

function resetMail(ctx: OperationContext, to: string, token: string) {
  return newMail(ctx.now(), {
    to,
    subject: 'Reset your password',
    text: [
      `Someone, hopefully you, asked to reset the password of your account at ${issuer(ctx)}.`,
      '',
      'Choose a new password by opening this link within an hour:',
      emailLinkUrl(issuer(ctx), 'reset', token),
      '',
      'If it was not you, ignore this message: your password stays as it is.',
    ].join('\n'),
    kind: 'reset',
  })
}

import type { EmailToken } from './model.js'
import { hashSecret, randomValue } from './secrets.js'

/**
 * The links mailed to people: verify an address, reset a password, accept an invitation. Each carries
 * a 256-bit random token; the store keeps only its SHA-256 (like secrets and sessions), so a copy of the
 * database opens nothing. A link works once (AccountStore.useEmailToken) and only until it expires.
 */

/** Seconds each kind of link works for: a day to verify, an hour to reset (it is a password), a week to accept. */
export const emailLinkTtl = { verify: 24 * 3600, reset: 3600, invite: 7 * 24 * 3600 } as const satisfies Record<EmailToken['purpose'], number>

/** Where each link lands: a page that shows what it will do and a button that does it (no change on GET). */
export const emailLinkPath = { verify: '/verify-email', reset: '/reset-password', invite: '/invitations/accept' } as const satisfies Record<EmailToken['purpose'], string>

export interface NewEmailLink {
  /** For the mail only: never stored, never logged. */
  token: string
  record: EmailToken
}

type LinkFields = Pick<EmailToken, 'email'> & Partial<Pick<EmailToken, 'userId' | 'tenantId' | 'role' | 'invitedBy'>>

export function newEmailLink(now: number, purpose: EmailToken['purpose'], fields: LinkFields): NewEmailLink {
  const token = `fgl_${randomValue(32)}`
  const record: EmailToken = {
    idHash: hashSecret(token),
    purpose,
    userId: fields.userId ?? null,
    email: fields.email,
    tenantId: fields.tenantId ?? null,
    role: fields.role ?? null,
    invitedBy: fields.invitedBy ?? null,
    createdAt: now,
    expiresAt: now + emailLinkTtl[purpose] * 1000,
    usedAt: null,
  }
  return { token, record }
}

/** The full address of a link, on the deployment's issuer (the public origin people reach). */
export const emailLinkUrl = (issuer: string, purpose: EmailToken['purpose'], token: string): string =>
  `${issuer.replace(/\/$/, '')}${emailLinkPath[purpose]}?token=${encodeURIComponent(token)}`

/** The hash a link's token is stored under, or undefined for what cannot be one of ours. */
export const emailLinkHash = (token: string | undefined): string | undefined => (token && /^fgl_[A-Za-z0-9_-]{43}$/.test(token) ? hashSecret(token) : undefined)

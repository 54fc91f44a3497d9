import type { Words } from './brand.js'

/*
 * What people read instead of the codes the store keeps: audit actions, security events, and the notice
 * a page shows after a form did what was asked (`?done=<key>`, from this fixed list only, so no one can
 * put words on our page through a link).
 */

const actions = (w: Words): Readonly<Record<string, string>> => ({
  'app.created': 'App created',
  'app.updated': 'App changed',
  'app.deleted': 'App deleted',
  'app.approved': 'App approved',
  'app.rejected': 'App change rejected',
  'app.suspended': 'App suspended',
  'app.unsuspended': 'App active again',
  'app.installed': 'App installed',
  'app.uninstalled': 'App uninstalled',
  'app.disconnected': 'App disconnected',
  'review.approved': 'Review approved',
  'review.rejected': 'Review rejected',
  'account.suspended': 'Account suspended',
  'account.unsuspended': 'Account active again',
  'secret.rotated': 'Client secret rotated',
  'grant.created': 'Connected',
  'grant.revoked': 'Disconnected',
  'grant.scopes_changed': 'Permissions changed',
  'consent.given': 'Permission given',
  'consent.granted': 'Permission given',
  'consent.denied': 'Permission refused',
  'install.completed': 'Setup finished',
  'install.failed': 'Setup failed',
  'invitation.sent': 'Invitation sent',
  'invitation.accepted': 'Invitation accepted',
  'membership.added': `Added to the ${w.tenant}`,
  'membership.changed': 'Role changed',
  'membership.removed': `Removed from the ${w.tenant}`,
  'operator.granted': 'Made an operator',
  'operator.revoked': 'No longer an operator',
  'user.signed_up': 'Account created',
  'user.email_verified': 'Email address confirmed',
  'email.verified': 'Email address confirmed',
  'user.password_reset': 'Password reset',
  'password.reset': 'Password reset',
  'sign_in.failed': 'Sign-in failed',
  'sign_in.throttled': 'Sign-in slowed down',
  'sign_in.new_address': 'Sign-in from a new address',
  'code.replayed': 'Authorization code used twice',
  'admin_token.failed': 'Wrong admin token',
})

/** An action or event as a phrase; one not in the list still reads as words ("webhook.parked" → "Webhook parked"). */
export function actionLabel(code: string, words: Words): string {
  const known = actions(words)[code]
  if (known) return known
  const text = code.replace(/[._]+/g, ' ').trim()
  return text.charAt(0).toUpperCase() + text.slice(1)
}

/** The notices a redirect after a form may ask for. */
export const notices = {
  saved: 'Saved.',
  created: 'Created.',
  deleted: 'Deleted.',
  'signed-out': 'You are signed out.',
  disconnected: 'Disconnected. The app can no longer reach your data.',
  invited: 'Invitation sent.',
  'role-changed': 'Role changed.',
  removed: 'Removed.',
  rotated: 'A new client secret was made.',
  queued: 'Queued: it is sent within a few seconds.',
  approved: 'Approved.',
  rejected: 'Rejected.',
  suspended: 'Suspended.',
  unsuspended: 'Active again.',
} as const

export type NoticeKey = keyof typeof notices

const isNotice = (key: string): key is NoticeKey => Object.hasOwn(notices, key)

export const noticeText = (key: string | undefined): string | undefined => (key !== undefined && isNotice(key) ? notices[key] : undefined)

/** A path with `?done=<key>` added, for the redirect after a form. */
export const withNotice = (path: string, key: NoticeKey): string => `${path}${path.includes('?') ? '&' : '?'}done=${key}`

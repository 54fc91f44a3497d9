/* What people read instead of the codes the store keeps: audit actions and security events. */

const actions: Readonly<Record<string, string>> = {
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
  'membership.added': 'Member added',
  'membership.changed': 'Role changed',
  'membership.removed': 'Member removed',
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
  'token.revoked_grant': 'Token refused: its grant was revoked',
  'refresh_token.reused': 'Refresh token used twice (its family was ended)',
  'admin_token.failed': 'Wrong admin token',
  'tenant.renamed': 'Renamed',
  'event.test_sent': 'Test event sent',
  'event.redelivered': 'Event sent again',
  'event.retried': 'Event attempted again now',
}

/** An action or event as a phrase; one not in the list still reads as words ("webhook.parked" → "Webhook parked"). */
export function actionLabel(code: string): string {
  const known = actions[code]
  if (known) return known
  const text = code.replace(/[._]+/g, ' ').trim()
  return text.charAt(0).toUpperCase() + text.slice(1)
}

import { rolePhrase, type Invitation, type Member, type PendingInvitation, type Role, type Tenant } from '@fieldgate/core'
import { describedBy, field, fieldError, formError, type FieldError } from './form.js'
import { html, when, type SafeHtml } from './html.js'
import type { Page } from './layout.js'

const roleNames: readonly Role[] = ['owner', 'admin', 'member']

/** A role picker; `id` is unique on the page (one per member row, one for the invitation). A row's has no visible label. */
const roleSelect = (id: string, selected: string | undefined, error: FieldError | undefined, label: { visible: boolean; text: string }) => html`
  ${label.visible ? html`<label for="${id}">${label.text}</label>` : ''}
  <select id="${id}" name="role"${label.visible ? '' : html` aria-label="${label.text}"`}${describedBy(id, undefined, error)}>
    ${roleNames.map((r) => html`<option value="${r}"${r === selected ? html` selected` : ''}>${r}</option>`)}
  </select>
  ${fieldError(id, error)}`

export interface MembersPage {
  csrf: string
  user: { email: string; operator?: boolean }
  tenant: Tenant
  members: Member[]
  invitations: PendingInvitation[]
  notice?: string
  /** A refusal about one member's row: shown beside that row's role picker (field `role-<user id>`). */
  error?: FieldError
  /** What the invite form had, shown again with its error. */
  invite?: { email?: string; role?: string }
}

/** A tenant's members with their roles, for its owners: change a role, remove, invite by email. */
export const membersPage =
  (p: MembersPage): Page =>
  ({ words }) => {
    const base = `/tenants/${encodeURIComponent(p.tenant.id)}/members`
    const row = (m: Member) => html`<tr>
  <td data-label="Email">${m.user.email}${m.user.email === p.user.email ? html` <span class="muted">(you)</span>` : ''}</td>
  <td data-label="Role">${m.role}</td>
  <td><form method="post" action="${base}/role">
    <input type="hidden" name="csrf" value="${p.csrf}">
    <input type="hidden" name="user_id" value="${m.user.id}">
    ${roleSelect(`role-${m.user.id}`, m.role, p.error, { visible: false, text: `Role of ${m.user.email}` })}
    <button type="submit">Change role</button>
  </form></td>
  <td><form method="post" action="${base}/remove">
    <input type="hidden" name="csrf" value="${p.csrf}">
    <input type="hidden" name="user_id" value="${m.user.id}">
    <button type="submit" class="danger" aria-label="Remove ${m.user.email}">Remove</button>
  </form></td>
</tr>`
    const inviteError = p.error && (p.error.field === 'email' || p.error.field === 'invite-role' || p.error.field === undefined) ? p.error : undefined
    return {
      title: `Members of ${p.tenant.name}`,
      user: p.user,
      csrf: p.csrf,
      wide: true,
      body: html`<h1>Members of ${p.tenant.name}</h1>
${p.notice ? html`<p role="status">${p.notice}</p>` : ''}
${p.error && !inviteError ? html`<p class="error" role="alert"><a href="#${p.error.field ?? ''}">${p.error.message}</a></p>` : ''}
<table class="audit">
  <thead><tr><th scope="col">Email</th><th scope="col">Role</th><th scope="col">Change role</th><th scope="col">Remove</th></tr></thead>
  <tbody>${p.members.map(row)}</tbody>
</table>
<p class="muted">Owners manage who belongs; admins connect and disconnect apps; members use them. A ${words.tenant} always keeps an owner.</p>
<h2>Invite someone</h2>
${formError(inviteError)}
<form method="post" action="${base}/invite" novalidate>
  <input type="hidden" name="csrf" value="${p.csrf}">
  ${field('email', 'Email address', p.invite?.email, inviteError, 'email', 'We mail them a link that works for 7 days.', html` autocomplete="off" required`)}
  ${roleSelect('invite-role', p.invite?.role ?? 'member', inviteError, { visible: true, text: 'Role' })}
  <div class="actions"><button type="submit" class="primary">Send the invitation</button></div>
</form>
${p.invitations.length ? invitationsTable(p.invitations) : ''}`,
    }
  }

const invitationsTable = (list: PendingInvitation[]): SafeHtml => html`<h2>Invitations waiting</h2>
<table class="audit">
  <thead><tr><th scope="col">Email</th><th scope="col">Role</th><th scope="col">Invited by</th><th scope="col">Link works until</th></tr></thead>
  <tbody>${list.map((i) => html`<tr><td>${i.email}</td><td>${i.role ?? ''}</td><td>${i.invitedBy ?? 'the operators'}</td><td>${when(i.expiresAt, 'date')}</td></tr>`)}</tbody>
</table>`

/**
 * An invitation before it is accepted: who invited whom to what, then what the visitor can do: accept
 * (signed in as the address), choose a password (no account yet), or sign in / sign out first.
 */
export const invitationPage = (p: {
  csrf: string
  token: string
  invitation: Invitation
  signedInAs: { email: string; operator?: boolean } | undefined
  error?: FieldError
}): Page => {
  const i = p.invitation
  const what = i.tenant ? html`<strong>${i.tenant.name}</strong> as ${rolePhrase(i.role)}` : html`this platform as an <strong>operator</strong>`
  const back = `/invitations/accept?token=${encodeURIComponent(p.token)}`
  const form = (inner: SafeHtml | string) => html`${formError(p.error)}<form method="post" action="/invitations/accept" novalidate>
  <input type="hidden" name="csrf" value="${p.csrf}">
  <input type="hidden" name="token" value="${p.token}">
  ${inner}
  <div class="actions"><button type="submit" class="primary">Accept the invitation</button></div>
</form>`
  const signedIn = p.signedInAs?.email
  const action =
    signedIn !== undefined && signedIn !== i.email
      ? html`<p class="error" role="alert">You are signed in as ${signedIn}, but this invitation is for ${i.email}. Sign out, then open the link again.</p>`
      : signedIn === i.email
        ? form('')
        : i.hasAccount
          ? html`<p><a class="button" href="/login?${new URLSearchParams({ return_to: back }).toString()}">Sign in as ${i.email} to accept</a></p>`
          : form(html`<p>Choose a password for your new account.</p>
  <input type="text" name="username" autocomplete="username" value="${i.email}" hidden>
  ${field('password', 'Password', undefined, p.error, 'password', 'At least 10 characters.', html` autocomplete="new-password" required minlength="10"`)}`)
  return {
    // Like sign-in: a person on their way in sees the task, no site navigation.
    focused: true,
    title: 'Invitation',
    user: p.signedInAs,
    csrf: p.csrf,
    body: html`<h1>You are invited</h1>
<p>${i.invitedBy ?? 'The people who run this platform'} invited <strong>${i.email}</strong> to join ${what}.</p>
<p class="muted">The link works until ${when(i.expiresAt, 'date')}, once.</p>
${action}`,
  }
}

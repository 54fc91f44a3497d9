import type { Role, Tenant, User } from '@fieldgate/core'
import { field, formError, type FieldError } from './form.js'
import { html } from './html.js'
import { layout } from './layout.js'

const roles: readonly Role[] = ['owner', 'admin', 'member']
const roleSelect = (id: string, current: Role) =>
  html`<select id="${id}" name="role">${roles.map((r) => html`<option${r === current ? html` selected` : ''}>${r}</option>`)}</select>`

/** Who belongs to a tenant, for its owners: change a role, remove someone, invite someone by email. */
export const membersPage = (p: {
  csrf: string
  user: User
  tenant: Tenant
  members: { user: User; role: Role }[]
  notice?: string | undefined
  error?: FieldError
  email?: string
}): string => {
  const base = `/tenants/${p.tenant.id}/members`
  return layout({
    title: `Members of ${p.tenant.name}`,
    csrf: p.csrf,
    user: p.user,
    body: html`<h1>Members of ${p.tenant.name}</h1>
${p.notice ? html`<p role="status">${p.notice}</p>` : ''}
${p.error && p.error.field !== 'email' ? html`<p class="error" role="alert">${p.error.message}</p>` : ''}
<p class="muted">Owners change who belongs; admins connect and install apps; members see them. A farm always keeps an owner.</p>
${p.members.map(
  (m, i) => html`<section class="connection" aria-label="${m.user.email}">
  <h2>${m.user.email}</h2>
  <form method="post" action="${base}/role">
    <input type="hidden" name="csrf" value="${p.csrf}"><input type="hidden" name="email" value="${m.user.email}">
    <label for="role-${i}">Role</label> ${roleSelect(`role-${i}`, m.role)}
    <div class="actions"><button type="submit">Change role</button></div>
  </form>
  <form method="post" action="${base}/remove">
    <input type="hidden" name="csrf" value="${p.csrf}"><input type="hidden" name="email" value="${m.user.email}">
    <button type="submit" class="danger">Remove ${m.user.email}</button>
  </form>
</section>`,
)}
<h2>Invite someone</h2>
${p.error?.field === 'email' ? formError(p.error) : ''}
<form method="post" action="${base}/invite" novalidate>
  <input type="hidden" name="csrf" value="${p.csrf}">
  ${field('email', 'Email', p.email, p.error, 'email', 'They get a link by mail that works for a week.')}
  <label for="invite-role">Role</label> ${roleSelect('invite-role', 'member')}
  <div class="actions"><button type="submit" class="primary">Send the invitation</button></div>
</form>`,
  })
}

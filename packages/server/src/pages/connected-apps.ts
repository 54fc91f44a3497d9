import type { AuditEntry, Connection, Tenant } from '@fieldgate/core'
import { html, when } from './html.js'
import { auditTable } from './audit.js'
import type { Page } from './layout.js'

const installLine = (c: Connection) =>
  c.install
    ? html`Installed ${when(c.install.createdAt, 'date')}${c.installedBy ? html` by ${c.installedBy}` : ''}.
    ${c.install.state === 'pending' ? html` <strong>Setup not finished.</strong>` : ''}
    ${c.install.state === 'failed' ? html` <strong class="error">Setup failed: ${c.install.error ?? ''}</strong>` : ''}`
    : html`Connected ${when(c.grant.createdAt, 'date')}.`

export const connectedAppsPage =
  (p: { title: string; csrf: string; user: { email: string }; connections: Connection[]; audit: AuditEntry[]; owned: Tenant[]; notice?: string | undefined }): Page =>
  ({ words }) => ({
    title: p.title,
    user: p.user,
    csrf: p.csrf,
    body: html`<h1>${p.title}</h1>
${p.notice ? html`<p role="status">${p.notice}</p>` : ''}
${p.connections.length === 0 ? html`<p class="muted">No apps are connected to your ${words.tenants}.</p>` : ''}
${p.connections.map(
  (c) => html`<section class="connection" aria-label="${c.app.name} on ${c.tenant.name}">
  <h2>${c.app.name}</h2>
  <p>${words.Tenant}: ${c.tenant.name}. ${installLine(c)}</p>
  <p>Scopes: ${c.grant.scopes.map((s, i) => html`${i ? ', ' : ''}<code>${s}</code>`)}</p>
  ${
    c.canDisconnect
      ? html`<form method="post" action="/connected-apps/disconnect">
    <input type="hidden" name="csrf" value="${p.csrf}">
    <input type="hidden" name="grant_id" value="${c.grant.id}">
    <input type="hidden" name="back" value="${p.title === 'Installed apps' ? '/marketplace/installed' : '/connected-apps'}">
    <button type="submit">${c.install ? 'Uninstall' : 'Disconnect'} ${c.app.name}</button>
  </form>`
      : ''
  }
</section>`,
)}
${p.audit.length ? html`<h2>Activity</h2>${auditTable(p.audit, words)}` : ''}
${p.owned.length ? html`<h2>Your ${words.tenants}</h2><ul>${p.owned.map((t) => html`<li><a href="/tenants/${t.id}/members">Members of ${t.name}</a></li>`)}</ul>` : ''}`,
  })

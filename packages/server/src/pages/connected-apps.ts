import type { App, Grant, Tenant } from '@fieldgate/core'
import { html } from './html.js'
import { layout } from './layout.js'

export interface Connection {
  grant: Grant
  app: App
  tenant: Tenant
  /** Owners and admins may disconnect; members only see. */
  canDisconnect: boolean
}

export const connectedAppsPage = (p: { csrf: string; user: { email: string }; connections: Connection[]; notice?: string }): string => layout({
  title: 'Connected apps',
  user: p.user,
  csrf: p.csrf,
  body: html`<h1>Connected apps</h1>
${p.notice ? html`<p role="status">${p.notice}</p>` : ''}
${p.connections.length === 0 ? html`<p class="muted">No apps are connected to your farms.</p>` : ''}
${p.connections.map((c) => html`<section class="connection" aria-label="${c.app.name} on ${c.tenant.name}">
  <h2>${c.app.name}</h2>
  <p>Farm: ${c.tenant.name}. Connected ${new Date(c.grant.createdAt).toISOString().slice(0, 10)}.</p>
  <p>Scopes: ${c.grant.scopes.map((s, i) => html`${i ? ', ' : ''}<code>${s}</code>`)}</p>
  ${c.canDisconnect ? html`<form method="post" action="/connected-apps/disconnect">
    <input type="hidden" name="csrf" value="${p.csrf}">
    <input type="hidden" name="grant_id" value="${c.grant.id}">
    <button type="submit">Disconnect ${c.app.name}</button>
  </form>` : ''}
</section>`)}`,
})

import { describeScope, type App, type Grant, type Tenant } from '@fieldgate/core'
import { html } from './html.js'
import { layout } from './layout.js'

interface Frame {
  csrf: string
  user: { email: string }
}

/** The tenant the marketplace acts for, with a chooser when the person administers several. */
const tenantChooser = (action: string, tenants: Tenant[], current: Tenant) => tenants.length > 1
  ? html`<form method="get" action="${action}" class="inline">
  <label for="tenant">Installing for</label>
  <select id="tenant" name="tenant">${tenants.map((t) => html`<option value="${t.id}"${t.id === current.id ? html` selected` : ''}>${t.name} (${t.environment})</option>`)}</select>
  <button type="submit">Show</button></form>`
  : html`<p>Installing for <strong>${current.name}</strong> (${current.environment}).</p>`

export const marketplacePage = (p: Frame & { tenants: Tenant[]; tenant: Tenant; apps: App[]; installed: Set<string> }): string => layout({
  title: 'Marketplace',
  ...p,
  body: html`<h1>Marketplace</h1>
${tenantChooser('/marketplace', p.tenants, p.tenant)}
${p.apps.length === 0 ? html`<p class="muted">No ${p.tenant.environment} apps are listed yet.</p>` : ''}
${p.apps.map((a) => html`<section class="app-card" aria-label="${a.name}">
  <h2><a href="/marketplace/apps/${a.clientId}?tenant=${p.tenant.id}">${a.name}</a></h2>
  <p>${a.description || 'No description.'}</p>
  ${p.installed.has(a.id) ? html`<p><strong>Installed</strong></p>` : ''}
</section>`)}
<p><a href="/marketplace/installed">Installed apps</a></p>`,
})

export const marketplaceAppPage = (p: Frame & { app: App; tenant: Tenant; grant: Grant | undefined }): string => layout({
  title: p.app.name,
  ...p,
  body: html`<h1>${p.app.name}</h1>
<p>${p.app.description || 'No description.'}</p>
<p class="muted">Made by ${p.app.contactEmail ? html`<a href="mailto:${p.app.contactEmail}">${p.app.contactEmail}</a>` : 'its partner'}.</p>
<h2>It will be able to</h2>
<ul class="scopes">${p.app.scopes.map((s) => html`<li><code>${s}</code><br><span>${describeScope(s)}</span></li>`)}</ul>
${p.grant ? html`<p><strong>Installed on ${p.tenant.name}.</strong></p>` : ''}
${p.app.environment !== p.tenant.environment
    ? html`<p class="error" role="alert">This is a ${p.app.environment} app: it cannot be installed on ${p.tenant.name}, a ${p.tenant.environment} tenant.</p>`
    : html`<form method="post" action="/marketplace/apps/${p.app.clientId}/install">
  <input type="hidden" name="csrf" value="${p.csrf}">
  <input type="hidden" name="tenant_id" value="${p.tenant.id}">
  <p>On <strong>${p.tenant.name}</strong>. After installing you go to ${p.app.name} to finish setting it up.</p>
  <div class="actions"><button type="submit" class="primary">${p.grant ? 'Install again' : 'Install'}</button></div>
</form>`}`,
})

/** Where the partner sends the person back: the outcome, and on error a retry or a removal. */
export const installOutcomePage = (p: Frame & { app: App; tenant: Tenant; grant: Grant; ok: boolean; error: string | null }): string => layout({
  title: p.ok ? 'Installed' : 'Setup failed',
  ...p,
  body: p.ok
    ? html`<h1>${p.app.name} is installed</h1><p role="status">${p.app.name} is installed on ${p.tenant.name} and set up.</p>
<p><a href="/marketplace/installed">Installed apps</a></p>`
    : html`<h1>${p.app.name} could not finish setting up</h1>
<p class="error" role="alert">${p.app.name} said: ${p.error ?? 'an error'}</p>
<div class="actions">
<form method="post" action="/marketplace/apps/${p.app.clientId}/install">
  <input type="hidden" name="csrf" value="${p.csrf}">
  <input type="hidden" name="tenant_id" value="${p.tenant.id}">
  <button type="submit" class="primary">Try again</button>
</form>
<form method="post" action="/connected-apps/disconnect">
  <input type="hidden" name="csrf" value="${p.csrf}">
  <input type="hidden" name="grant_id" value="${p.grant.id}">
  <input type="hidden" name="back" value="/marketplace/installed">
  <button type="submit">Remove the install</button>
</form>
</div>`,
})

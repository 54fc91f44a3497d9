import { describeScope, formatScope, type App, type Grant, type Install, type Tenant } from '@fieldgate/core'
import { html, type SafeHtml } from './html.js'
import type { Page } from './layout.js'

interface Frame {
  csrf: string
  user: { email: string }
}

/** The tenant the marketplace acts for, with a chooser when the person administers several. */
const tenantChooser = (action: string, tenants: Tenant[], current: Tenant) =>
  tenants.length > 1
    ? html`<form method="get" action="${action}" class="inline">
  <label for="tenant">Installing for</label>
  <select id="tenant" name="tenant">${tenants.map((t) => html`<option value="${t.id}"${t.id === current.id ? html` selected` : ''}>${t.name} (${t.environment})</option>`)}</select>
  <button type="submit">Show</button></form>`
    : html`<p>Installing for <strong>${current.name}</strong> (${current.environment}).</p>`

/**
 * What an install on a tenant is, in the admin's words: set up, waiting for the partner, or failed. A
 * grant without an install row (connected, or made by the CLI) is installed.
 */
export type InstallStatus = 'Installed' | 'Setup pending' | 'Setup failed'

export const installStatus = (install: Install | undefined): InstallStatus =>
  install?.state === 'pending' ? 'Setup pending' : install?.state === 'failed' ? 'Setup failed' : 'Installed'

/** The scopes an Install will grant, and the form fields that carry exactly that list back, bound to this page. */
export interface ShownScopes {
  scopes: readonly string[]
  /** Browser.bind over client_id, tenant and the scopes. */
  binding: string
}

const scopeList = (scopes: readonly string[]) => html`<ul class="scopes">${scopes.map((s) => html`<li><code>${s}</code><br><span>${describeScope(s)}</span></li>`)}</ul>`

/** The Install (or Try again) form: it posts the shown scopes and their binding, never "whatever the app has now". */
const installForm = (p: { csrf: string; app: App; tenant: Tenant; shown: ShownScopes }, inner: SafeHtml) =>
  html`<form method="post" action="/marketplace/apps/${p.app.clientId}/install">
  <input type="hidden" name="csrf" value="${p.csrf}">
  <input type="hidden" name="tenant_id" value="${p.tenant.id}">
  <input type="hidden" name="scopes" value="${formatScope(p.shown.scopes)}">
  <input type="hidden" name="shown" value="${p.shown.binding}">
  ${inner}
</form>`

export const marketplacePage = (p: Frame & { tenants: Tenant[]; tenant: Tenant; apps: App[]; statuses: Map<string, InstallStatus> }): Page => ({
  title: 'Marketplace',
  ...p,
  body: html`<h1>Marketplace</h1>
${tenantChooser('/marketplace', p.tenants, p.tenant)}
${p.apps.length === 0 ? html`<p class="muted">No ${p.tenant.environment} apps are listed yet.</p>` : ''}
${p.apps.map(
  (a) => html`<section class="app-card" aria-label="${a.name}">
  <h2><a href="/marketplace/apps/${a.clientId}?tenant=${p.tenant.id}">${a.name}</a></h2>
  <p>${a.description || 'No description.'}</p>
  ${p.statuses.has(a.id) ? html`<p class="install-status"><strong>${p.statuses.get(a.id)}</strong></p>` : ''}
</section>`,
)}
<p><a href="/marketplace/installed">Installed apps</a></p>`,
})

export const marketplaceAppPage = (
  p: Frame & {
    app: App
    tenant: Tenant
    grant: Grant | undefined
    status: InstallStatus | undefined
    shown: ShownScopes
    note?: string
  },
): Page => ({
  title: p.app.name,
  ...p,
  body: html`<h1>${p.app.name}</h1>
${p.note ? html`<p class="error" role="alert">${p.note}</p>` : ''}
<p>${p.app.description || 'No description.'}</p>
<p class="muted">Made by ${p.app.contactEmail ? html`<a href="mailto:${p.app.contactEmail}">${p.app.contactEmail}</a>` : 'its partner'}.</p>
<h2>It will be able to</h2>
${scopeList(p.shown.scopes)}
${p.grant ? html`<p><strong>Installed on ${p.tenant.name}${p.status && p.status !== 'Installed' ? html` (${p.status.toLowerCase()})` : ''}.</strong></p>` : ''}
${
  p.app.environment !== p.tenant.environment
    ? html`<p class="error" role="alert">This is a ${p.app.environment} app: it cannot be installed on ${p.tenant.name}, a ${p.tenant.environment} tenant.</p>`
    : installForm(
        p,
        html`<p>On <strong>${p.tenant.name}</strong>. After installing you go to ${p.app.name} to finish setting it up.</p>
  <div class="actions"><button type="submit" class="primary">${p.grant ? 'Install again' : 'Install'}</button></div>`,
      )
}`,
})

/** Where the partner sends the person back: the outcome, and on error a retry (showing what it grants) or a removal. */
export const installOutcomePage = (p: Frame & { app: App; tenant: Tenant; grant: Grant; ok: boolean; error: string | null; shown: ShownScopes }): Page => ({
  title: p.ok ? 'Installed' : 'Setup failed',
  ...p,
  body: p.ok
    ? html`<h1>${p.app.name} is installed</h1><p role="status">${p.app.name} is installed on ${p.tenant.name} and set up.</p>
<p><a href="/marketplace/installed">Installed apps</a></p>`
    : html`<h1>${p.app.name} could not finish setting up</h1>
<p class="error" role="alert">${p.app.name} said: ${p.error ?? 'an error'}</p>
${retryOrRemove(p)}`,
})

function retryOrRemove(p: { csrf: string; app: App; tenant: Tenant; grant: Grant; shown: ShownScopes }) {
  return html`<h2>Trying again lets it</h2>
${scopeList(p.shown.scopes)}
<div class="actions">
${installForm(p, html`<button type="submit" class="primary">Try again</button>`)}
<form method="post" action="/connected-apps/disconnect">
  <input type="hidden" name="csrf" value="${p.csrf}">
  <input type="hidden" name="grant_id" value="${p.grant.id}">
  <input type="hidden" name="back" value="/marketplace/installed">
  <button type="submit">Remove the install</button>
</form>
</div>`
}

/**
 * A `/marketplace/complete` link the partner did not sign (or signed too long ago): nothing changed, and
 * the install is shown as it is. A stored message was signed when it arrived, so it may be shown.
 */
export const unsignedCompletionPage = (p: Frame & { app: App; tenant: Tenant; install: Install | undefined }): Page => ({
  title: 'Link not signed',
  ...p,
  body: html`<h1>This link from ${p.app.name} is not signed or has expired</h1>
<p role="alert">${p.app.name} signs the link that brings you back, and it works for five minutes. This one is not signed, or is older: nothing was changed.</p>
<p role="status">${p.app.name} on ${p.tenant.name}: <strong>${installStatus(p.install)}</strong>.</p>
${p.install?.state === 'failed' && p.install.error ? html`<p>${p.app.name} said: ${p.install.error}</p>` : ''}
<p><a href="/marketplace/apps/${p.app.clientId}?tenant=${p.tenant.id}">${p.app.name} in the marketplace</a> · <a href="/marketplace/installed">Installed apps</a></p>`,
})

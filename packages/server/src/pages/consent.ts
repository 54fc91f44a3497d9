import { describeScope, type App, type Tenant } from '@fieldgate/core'
import { html } from './html.js'
import { layout } from './layout.js'

export interface ConsentPage {
  csrf: string
  user: { email: string }
  app: App
  scopes: string[]
  /** The scope list as shown, and its binding to this browser: Allow grants exactly it. */
  shown: { scope: string; mac: string }
  tenants: Tenant[]
  /** Why the page is shown again (the app changed its scopes since the last time). */
  note?: string | undefined
  /** The authorization request's parameters, carried back unchanged with the decision. */
  request: Record<string, string>
}

export const consentPage = (p: ConsentPage): string => layout({
  title: `Connect ${p.app.name}`,
  user: p.user,
  csrf: p.csrf,
  body: html`<h1>Connect <span class="app">${p.app.name}</span> to your ${p.tenants.length > 1 ? 'farms' : 'farm'}?</h1>
${p.note ? html`<p class="warning" role="alert">${p.note}</p>` : ''}
${p.app.contactEmail ? html`<p class="muted">Contact: <a href="mailto:${p.app.contactEmail}">${p.app.contactEmail}</a></p>` : ''}
<form method="post" action="/consent">
  <input type="hidden" name="csrf" value="${p.csrf}">
  ${Object.entries(p.request).map(([name, value]) => html`<input type="hidden" name="${name}" value="${value}">`)}
  <input type="hidden" name="shown_scope" value="${p.shown.scope}">
  <input type="hidden" name="shown_scope_mac" value="${p.shown.mac}">
  ${p.tenants.length > 1
    ? html`<label for="tenant">Farm</label>
  <select id="tenant" name="tenant_id">${p.tenants.map((t) => html`<option value="${t.id}">${t.name}</option>`)}</select>`
    : html`<p>Farm: <strong>${p.tenants[0]!.name}</strong></p><input type="hidden" name="tenant_id" value="${p.tenants[0]!.id}">`}
  <h2>${p.app.name} will be able to:</h2>
  <ul class="scopes">
    ${p.scopes.map((s) => html`<li><code>${s}</code><br><span>${describeScope(s)}</span></li>`)}
  </ul>
  <p class="muted">It can read what it creates. You can disconnect it at any time under Connected apps.</p>
  <div class="actions">
    <button type="submit" name="decision" value="allow" class="primary">Allow</button>
    <button type="submit" name="decision" value="deny">Deny</button>
  </div>
</form>`,
})

import { describeScope, type App, type Tenant } from '@fieldgate/core'
import { appHead } from './app-head.js'
import { html, type SafeHtml } from './html.js'
import type { Page } from './layout.js'

export interface ConsentPage {
  csrf: string
  user: { email: string }
  app: App
  scopes: string[]
  /** The scope list as shown, and its binding to this browser: Allow grants exactly it. */
  shown: { scope: string; mac: string }
  tenants: Tenant[]
  /** Per farm, what the app already holds there: incremental consent tells it apart from what is new. */
  granted: ReadonlyMap<string, readonly string[]>
  /** Why the page is shown again (the app changed its scopes since the last time). */
  note?: string | undefined
  /** The authorization request's parameters, carried back unchanged with the decision. */
  request: Record<string, string>
  /** Where the decision sends the person: its host is shown, so a look-alike app gives itself away. */
  redirectUri: string
  /** RFC 8707: the API the access is for, when not the platform's own; shown, since it is what Allow grants. */
  resource?: string | null
}

export const consentPage =
  (p: ConsentPage): Page =>
  ({ words }) => ({
    title: `Connect ${p.app.name}`,
    user: p.user,
    csrf: p.csrf,
    focused: true,
    body: html`${appHead(p.app, { returnTo: p.redirectUri })}
<h1>Connect <span class="app">${p.app.name}</span> to your ${p.tenants.length > 1 ? words.tenants : words.tenant}?</h1>
${p.note ? html`<p class="warning" role="alert">${p.note}</p>` : ''}
${p.app.contactEmail ? html`<p class="muted">Contact: <a href="mailto:${p.app.contactEmail}">${p.app.contactEmail}</a></p>` : ''}
<form method="post" action="/consent">
  <input type="hidden" name="csrf" value="${p.csrf}">
  ${Object.entries(p.request).map(([name, value]) => html`<input type="hidden" name="${name}" value="${value}">`)}
  <input type="hidden" name="shown_scope" value="${p.shown.scope}">
  <input type="hidden" name="shown_scope_mac" value="${p.shown.mac}">
  ${
    p.tenants.length > 1
      ? html`<label for="tenant">${words.Tenant}</label>
  <select id="tenant" name="tenant_id">${p.tenants.map((t) => html`<option value="${t.id}">${t.name}</option>`)}</select>`
      : html`<p>${words.Tenant}: <strong>${p.tenants[0]!.name}</strong></p><input type="hidden" name="tenant_id" value="${p.tenants[0]!.id}">`
  }
  ${scopeLists(p)}
  ${p.resource ? html`<p>This access works only at <code>${p.resource}</code>.</p>` : ''}
  <p class="muted">It can read what it creates. You can disconnect it at any time under Connected apps. Allow sends you back to ${p.app.name}.</p>
  <div class="actions">
    <button type="submit" name="decision" value="allow" class="primary">Allow</button>
    <button type="submit" name="decision" value="deny">Deny</button>
  </div>
</form>`,
  })

const scopeItem = (s: string) => html`<li><code>${s}</code><br><span>${describeScope(s)}</span></li>`

/**
 * The scopes asked for, split into those the app would newly get and those it already holds on the farm
 * selected first (the only one, or the first of the chooser); other farms' existing grants are listed after.
 */
function scopeLists(p: ConsentPage): SafeHtml {
  const first = p.tenants[0]!
  const held = p.granted.get(first.id) ?? []
  const fresh = p.scopes.filter((s) => !held.includes(s))
  const already = p.scopes.filter((s) => held.includes(s))
  const elsewhere = p.tenants
    .slice(1)
    .map((t) => ({ t, held: p.scopes.filter((s) => (p.granted.get(t.id) ?? []).includes(s)) }))
    .filter((x) => x.held.length)
  const on = p.tenants.length > 1 ? html` on ${first.name}` : ''
  return html`${
    fresh.length
      ? html`<h2 id="new-scopes">${p.app.name} will ${already.length ? 'also ' : ''}be able to${on}:</h2>
  <ul class="scopes" aria-labelledby="new-scopes">${fresh.map(scopeItem)}</ul>`
      : html`<h2>Nothing new${on}: ${p.app.name} already has every permission it asks for.</h2>`
  }
  ${
    already.length
      ? html`<h2 id="granted-scopes">Already allowed${on}, unchanged:</h2>
  <ul class="scopes granted" aria-labelledby="granted-scopes">${already.map(scopeItem)}</ul>`
      : ''
  }
  ${elsewhere.map(({ t, held }) => html`<p class="muted">Already allowed on ${t.name}: ${held.map((s) => html`<code>${s}</code> `)}</p>`)}`
}

/**
 * A person with no farm the app can connect to (often just signed up from the app's link): what to do,
 * and the way back to the app, a Deny that sends `access_denied` with the state (a POST: it is the decision).
 */
export const noFarmPage =
  (p: { csrf: string; user: { email: string }; app: App; request: Record<string, string> }): Page =>
  ({ words, name }) => ({
    title: `No ${words.tenant} to connect`,
    user: p.user,
    csrf: p.csrf,
    focused: true,
    body: html`${appHead(p.app, {})}
<h1>No ${words.tenant} to connect</h1>
<p role="alert">You are not an owner or admin of any ${p.app.environment} ${words.tenant} that <span class="app">${p.app.name}</span> can connect to.</p>
<p>To connect it, ask an owner or admin of your ${words.tenant} to add you as an admin; if your ${words.tenant} is not on ${name} yet,
ask whoever runs ${name} for your organisation to create it. Then open the link in ${p.app.name} again.</p>
<form method="post" action="/consent">
  <input type="hidden" name="csrf" value="${p.csrf}">
  ${Object.entries(p.request).map(([name, value]) => html`<input type="hidden" name="${name}" value="${value}">`)}
  <div class="actions"><button type="submit" name="decision" value="deny" class="primary">Back to ${p.app.name}</button></div>
</form>`,
  })

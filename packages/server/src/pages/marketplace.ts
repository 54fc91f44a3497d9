import { appCategories, describeScope, formatScope, publisherOf, type App, type AppCategory, type Grant, type Install, type Tenant } from '@fieldgate/core'
import { html, type SafeHtml } from './html.js'
import { appLogo } from './app-head.js'
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

const categoryTags = (a: App): SafeHtml | string =>
  a.categories.length ? html`<ul class="categories" aria-label="Categories">${a.categories.map((c) => html`<li class="tag">${c}</li>`)}</ul>` : ''

/** The one line a card shows: the short description, else the start of the long one. */
const oneLiner = (a: App): string => a.shortDescription || (a.description.length > 140 ? `${a.description.slice(0, 139)}…` : a.description) || 'No description.'

/** What the list was asked for, kept by its links and its search form. */
export interface MarketplaceSearch {
  query: string
  category: AppCategory | undefined
  offset: number
  /** Apps per page. */
  size: number
  total: number
  more: boolean
}

const marketplaceHref = (tenant: Tenant, search: Pick<MarketplaceSearch, 'query' | 'category'>, offset: number): string => {
  const q = new URLSearchParams({ tenant: tenant.id })
  if (search.query) q.set('q', search.query)
  if (search.category) q.set('category', search.category)
  if (offset > 0) q.set('offset', String(offset))
  return `/marketplace?${q}`
}

/** The search box and category filter: a plain GET form, so it works without script and can be linked. */
const searchForm = (tenant: Tenant, search: MarketplaceSearch): SafeHtml => html`<form method="get" action="/marketplace" class="search market-search" role="search">
  <input type="hidden" name="tenant" value="${tenant.id}">
  <label for="q">Search</label>
  <input type="search" id="q" name="q" value="${search.query}" maxlength="200" placeholder="Name, description or publisher">
  <label for="category">Category</label>
  <select id="category" name="category">
    <option value="">All categories</option>
    ${appCategories.map((c) => html`<option value="${c}"${search.category === c ? html` selected` : ''}>${c}</option>`)}
  </select>
  <button type="submit">Search</button>
</form>`

const resultsLine = (p: { tenant: Tenant; search: MarketplaceSearch; apps: App[] }): SafeHtml | string => {
  const { search } = p
  const asked = search.query || search.category
  if (p.apps.length === 0) {
    return asked
      ? html`<p class="muted" role="status">No apps match${search.query ? html` “${search.query}”` : ''}${search.category ? html` in ${search.category}` : ''}. <a href="${marketplaceHref(p.tenant, { query: '', category: undefined }, 0)}">Show all apps</a></p>`
      : html`<p class="muted">No ${p.tenant.environment} apps are listed yet.</p>`
  }
  const range = `${search.offset + 1}–${search.offset + p.apps.length} of ${search.total}`
  return html`<p class="muted" role="status">${asked ? `${search.total} ${search.total === 1 ? 'app matches' : 'apps match'}` : `${search.total} ${search.total === 1 ? 'app' : 'apps'}`}${search.total > p.apps.length ? `, showing ${range}` : ''}.</p>`
}

const pager = (tenant: Tenant, search: MarketplaceSearch): SafeHtml | string =>
  search.offset > 0 || search.more
    ? html`<nav class="pager" aria-label="Pages of apps">
  ${search.offset > 0 ? html`<a href="${marketplaceHref(tenant, search, Math.max(search.offset - search.size, 0))}" rel="prev">Previous</a>` : ''}
  ${search.more ? html`<a href="${marketplaceHref(tenant, search, search.offset + search.size)}" rel="next">Next</a>` : ''}
</nav>`
    : ''

export const marketplacePage = (p: Frame & { tenants: Tenant[]; tenant: Tenant; apps: App[]; statuses: Map<string, InstallStatus>; search: MarketplaceSearch }): Page => ({
  title: 'Marketplace',
  ...p,
  body: html`<h1>Marketplace</h1>
${tenantChooser('/marketplace', p.tenants, p.tenant)}
${searchForm(p.tenant, p.search)}
${resultsLine(p)}
<div class="app-cards">${p.apps.map(
    (a) => html`<section class="app-card" aria-label="${a.name}">
  ${appLogo(a)}
  <div class="app-card-text">
  <h2><a href="/marketplace/apps/${a.clientId}?tenant=${p.tenant.id}">${a.name}</a></h2>
  <p class="publisher">by ${publisherOf(a)}</p>
  <p>${oneLiner(a)}</p>
  ${categoryTags(a)}
  ${p.statuses.has(a.id) ? html`<p class="install-status"><strong>${p.statuses.get(a.id)}</strong></p>` : ''}
  </div>
</section>`,
  )}</div>
${pager(p.tenant, p.search)}
<p><a href="/marketplace/installed">Installed apps</a></p>`,
})

/** Who makes it, and the address to write to: the contact email stands in for a publisher not named. */
const publisherLine = (a: App): SafeHtml => {
  const mail = a.contactEmail ? html`<a href="mailto:${a.contactEmail}">${a.contactEmail}</a>` : ''
  if (!a.publisher) return mail ? html`<strong>${mail}</strong>` : html`<strong>${publisherOf(a)}</strong>`
  return html`<strong>${a.publisher}</strong>${mail ? html` · ${mail}` : ''}`
}

/** The partner's links, for help and for what they do with the farm's data; external, so they say where they go. */
const listingLinks = (a: App): SafeHtml => html`<ul class="listing-links">
  ${a.supportUrl ? html`<li><a href="${a.supportUrl}" rel="noopener noreferrer">Support</a> <span class="muted">(${new URL(a.supportUrl).host})</span></li>` : html`<li class="muted">No support page given.</li>`}
  ${a.privacyPolicyUrl ? html`<li><a href="${a.privacyPolicyUrl}" rel="noopener noreferrer">Privacy policy</a> <span class="muted">(${new URL(a.privacyPolicyUrl).host})</span></li>` : html`<li class="muted">No privacy policy given.</li>`}
</ul>`

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
  body: html`<div class="app-header">${appLogo(p.app, 'large')}<div>
<h1>${p.app.name}</h1>
<p class="publisher">by ${publisherLine(p.app)}</p>
${categoryTags(p.app)}
</div></div>
${p.note ? html`<p class="error" role="alert">${p.note}</p>` : ''}
${p.app.shortDescription ? html`<p class="lead">${p.app.shortDescription}</p>` : ''}
<p>${p.app.description || (p.app.shortDescription ? '' : 'No description.')}</p>
${listingLinks(p.app)}
<h2>It will be able to</h2>
${scopeList(p.shown.scopes)}
${p.grant ? html`<p><strong>Installed on ${p.tenant.name}${p.status && p.status !== 'Installed' ? html` (${p.status.toLowerCase()})` : ''}.</strong></p>` : ''}
${
  p.app.environment !== p.tenant.environment
    ? html`<p class="error" role="alert">This is a ${p.app.environment} app: it cannot be installed on ${p.tenant.name}, a ${p.tenant.environment} tenant.</p>
<div class="actions"><a class="button secondary" href="/marketplace?tenant=${p.tenant.id}">Back to the marketplace</a></div>`
    : installForm(
        p,
        html`<p>On <strong>${p.tenant.name}</strong>. After installing you go to ${p.app.name} to finish setting it up.</p>
  <div class="actions"><button type="submit" class="primary">${p.grant ? 'Install again' : 'Install'}</button> <a class="button secondary" href="/marketplace?tenant=${p.tenant.id}">Cancel</a></div>`,
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

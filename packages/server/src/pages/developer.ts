import { describeScope, asProposed, isReviewed, scopeDescriptions, type App, type AuditEntry, type DeliveryAttempt, type OutboxEvent, type Tenant } from '@fieldgate/core'
import { auditTable } from './audit.js'
import { wordsFor } from './brand.js'
import { describedBy, field, fieldError, formError, type FieldError } from './form.js'
import { html, type SafeHtml } from './html.js'
import type { Page } from './layout.js'

interface Frame {
  csrf: string
  user: { email: string }
}

export const developerHome = (p: Frame & { sandbox: Tenant; apps: App[]; confirmFirst: boolean; notice?: string; error?: string }): Page => ({
  title: 'Developer portal',
  ...p,
  body: html`<h1>Developer portal</h1>
${p.notice ? html`<p role="status">${p.notice}</p>` : ''}
${p.error ? html`<p class="error" role="alert">${p.error}</p>` : ''}
${p.confirmFirst ? unconfirmed(p) : ''}
<section aria-label="Sandbox">
  <h2>Your sandbox</h2>
  <p>Test your apps on this sandbox tenant before any customer installs them.</p>
  <p>Sandbox <code>target_id</code>: <code id="sandbox-target-id">${p.sandbox.id}</code></p>
</section>
<h2>Your apps</h2>
${
  p.apps.length === 0
    ? html`<p class="muted">No apps yet.</p>`
    : html`<ul class="apps">${p.apps.map(
        (a) => html`<li>
  <a href="/developer/apps/${a.clientId}">${a.name}</a> <span class="muted">${a.kind}, ${a.environment}</span> ${stateTag(a)}</li>`,
      )}</ul>`
}
<p><a class="button" href="/developer/apps/new">Create an app</a></p>`,
})

/** Until the address is confirmed the partner may look around; creating apps waits (FIELDGATE_SIGNUP=verified). */
const unconfirmed = (p: Frame): SafeHtml => html`<section class="warning" aria-label="Confirm your email address">
  <p>Confirm your email address to create apps: follow the link we sent to <strong>${p.user.email}</strong>.</p>
  <form method="post" action="/developer/verify-email">
    <input type="hidden" name="csrf" value="${p.csrf}">
    <button type="submit">Send the link again</button>
  </form>
</section>`

/** Where an app stands with the platform, in a word for the list of apps. */
const stateTag = (a: App): SafeHtml | string => {
  if (a.suspendedAt !== null) return html`<span class="tag bad">suspended</span>`
  if (!isReviewed(a)) return ''
  if (a.review === 'pending') return html`<span class="tag">${a.approvedAt === null ? 'waiting for review' : 'changes waiting for review'}</span>`
  return a.review === 'rejected' ? html`<span class="tag bad">not approved</span>` : ''
}

const reviewedLabels = { name: 'name', scopes: 'scopes', installUrl: 'install URL', redirectUris: 'redirect URIs', dataApiUrl: 'Data API URL' } as const

/** What the partner must know of review and suspension, above everything else on the app's page. */
function standing(app: App): SafeHtml | string {
  const suspended =
    app.suspendedAt === null
      ? ''
      : html`<p class="warning" role="alert" id="suspension"><strong>Suspended${app.suspendedWithAccount ? ' with your account' : ''}</strong>: ${app.suspendedReason ?? ''}.
  Its tokens are refused and it gets no new ones until the platform lifts the suspension.</p>`
  if (!isReviewed(app)) return suspended
  const waiting = app.proposed ? (Object.keys(reviewedLabels) as (keyof typeof reviewedLabels)[]).filter((k) => JSON.stringify(app[k]) !== JSON.stringify(app.proposed![k])) : []
  const reason = app.reviewReason ? html` The reviewer wrote: <q>${app.reviewReason}</q>` : ''
  const review =
    app.review === 'pending'
      ? app.approvedAt === null
        ? html`<p class="warning" id="review"><strong>Waiting for review.</strong> Customers cannot see, install or connect it until the platform approves it.</p>`
        : html`<p class="warning" id="review"><strong>Your changes wait for review</strong> (${waiting.map((k) => reviewedLabels[k]).join(', ')}). The approved version stays in effect until then.</p>`
      : app.review === 'rejected'
        ? html`<p class="warning" role="alert" id="review"><strong>Not approved.</strong>${reason} ${app.approvedAt === null ? 'Customers cannot see it.' : 'The version approved before stays in effect.'} Change it and save to ask for review again.</p>`
        : html`<p id="review"><strong>Approved</strong> on ${new Date(app.approvedAt ?? app.createdAt).toISOString().slice(0, 10)}.${reason}</p>`
  return html`${suspended}${review}`
}

export interface AppFormValues {
  name?: string
  kind?: string
  environment?: string
  description?: string
  installUrl?: string
  redirectUris?: string
  contactEmail?: string
  dataApiUrl?: string
  /** Seconds, as typed; blank for the server's default. */
  tokenTtl?: string
  scopes?: string[]
  listed?: boolean
  tenantId?: string
}

const redirectHint =
  'One per line, matched exactly, for the authorization-code flow (connecting through /authorize). Live apps: https only, http only for localhost/127.0.0.1/[::1].'

/** The fields a partner edits, shared by Create and Edit. */
const appFields = (v: AppFormValues, error?: FieldError): SafeHtml => html`
  ${field('name', 'App name', v.name, error)}
  <label for="description">What it does</label>
  <textarea id="description" name="description" rows="3"${describedBy('description', undefined, error)}>${v.description ?? ''}</textarea>
  ${fieldError('description', error)}
  ${field('install_url', 'Install URL', v.installUrl, error, 'url', 'For marketplace Install: customers are sent here with ?target=…&target_id=… after installing. A live public app needs an install URL, a redirect URI, or both. Live apps: https.')}
  <label for="redirect_uris">Redirect URIs</label>
  <p class="muted hint" id="redirect_uris-hint">${redirectHint}</p>
  <textarea id="redirect_uris" name="redirect_uris" rows="2"${describedBy('redirect_uris', redirectHint, error)}>${v.redirectUris ?? ''}</textarea>
  ${fieldError('redirect_uris', error)}
  ${field('contact_email', 'Contact email', v.contactEmail, error, 'email')}
  ${field('data_api_url', 'Data API URL', v.dataApiUrl, error, 'url', 'Where events about your installs are delivered. Live apps: https.')}
  ${field('token_ttl', 'Access-token lifetime (seconds)', v.tokenTtl, error, 'number', 'Blank for the default (28000 for public apps, 3600 for private). From 60 to 2592000.', html` min="60" max="2592000" step="1"`)}
  <fieldset${describedBy('scopes', undefined, error)}><legend>Scopes it may ask for</legend>
  ${Object.keys(scopeDescriptions).map(
    (s) => html`<label class="check"><input type="checkbox" name="scope:${s}"${(v.scopes ?? ['api']).includes(s) ? html` checked` : ''}>
    <code>${s}</code> <span class="muted">${describeScope(s)}</span></label>`,
  )}
  </fieldset>
  ${fieldError('scopes', error)}
  <label class="check"><input type="checkbox" id="listed" name="listed"${v.listed ? html` checked` : ''}${describedBy('listed', undefined, error)}> List it in the marketplace</label>
  ${fieldError('listed', error)}`

export const newAppPage = (p: Frame & { values: AppFormValues; tenants: Tenant[]; error?: FieldError }): Page => ({
  title: 'Create an app',
  ...p,
  body: html`<h1>Create an app</h1>
${formError(p.error)}
<form method="post" action="/developer/apps">
  <input type="hidden" name="csrf" value="${p.csrf}">
  <label for="kind">Type</label>
  <select id="kind" name="kind">
    <option value="public"${p.values.kind !== 'private' ? html` selected` : ''}>Public: installed by customers from the marketplace</option>
    <option value="private"${p.values.kind === 'private' ? html` selected` : ''}>Private: acts only on one tenant of yours</option>
  </select>
  <label for="environment">Environment</label>
  <select id="environment" name="environment">
    <option value="sandbox"${p.values.environment !== 'live' ? html` selected` : ''}>Sandbox</option>
    <option value="live"${p.values.environment === 'live' ? html` selected` : ''}>Live</option>
  </select>
  <label for="tenant_id">Tenant (private apps)</label>
  <select id="tenant_id" name="tenant_id">${p.tenants.map((t) => html`<option value="${t.id}"${p.values.tenantId === t.id ? html` selected` : ''}>${t.name} (${t.environment})</option>`)}</select>
  ${appFields(p.values, p.error)}
  <div class="actions"><button type="submit" class="primary">Create app</button></div>
</form>`,
})

/** The one time a secret is shown: after creation or rotation. */
export const secretPage = (p: Frame & { app: App; clientSecret: string; heading: string; note?: string }): Page => ({
  title: p.heading,
  ...p,
  script: '/assets/copy.js',
  body: html`<h1>${p.heading}</h1>
<p class="warning" role="alert"><strong>Copy the client secret now.</strong> It is shown only this once and cannot be shown again; if you lose it, rotate it.</p>
<label for="client_id">Client ID</label>
<input id="client_id" type="text" readonly value="${p.app.clientId}">
<label for="client_secret">Client secret</label>
<div class="copy"><input id="client_secret" type="text" readonly value="${p.clientSecret}"> <button type="button" data-copy="client_secret">Copy</button></div>
${p.note ? html`<p>${p.note}</p>` : ''}
<p><a href="/developer/apps/${p.app.clientId}">Continue to ${p.app.name}</a></p>`,
})

/** A reload of the secret page, or a handle that expired: the secret is never shown twice. */
export const secretShownPage = (p: Frame & { app: App }): Page => ({
  title: 'Secret already shown',
  ...p,
  body: html`<h1>This secret was already shown</h1>
<p>A client secret is shown only once, right after it is made, and only in the browser that made it. Reloading the page does not create the app or rotate the secret again.</p>
<p>If you did not copy it, rotate the secret on the app's page.</p>
<p><a href="/developer/apps/${p.app.clientId}">Continue to ${p.app.name}</a></p>`,
})

export interface Delivery {
  event: OutboxEvent
  attempts: DeliveryAttempt[]
}

/** An app's Data API events and their attempts; Redeliver posts to `redeliverBase`/<event id>/redeliver. */
export const deliveries = (csrf: string, app: App, list: Delivery[], redeliverBase = `/developer/apps/${app.clientId}/events`): SafeHtml => html`<h2>Data API deliveries</h2>
${app.dataApiUrl ? html`<p class="muted">Events go to <code>${app.dataApiUrl}</code>, signed in <code>fieldgate-signature</code>.</p>` : html`<p class="muted">Set a Data API URL to receive events.</p>`}
${
  list.length === 0
    ? html`<p class="muted">No events yet.</p>`
    : html`<table class="audit">
  <thead><tr><th scope="col">Event</th><th scope="col">State</th><th scope="col">Attempts</th><th scope="col"></th></tr></thead>
  <tbody>${list.map(
    ({ event, attempts }) => html`<tr>
    <td><code>${event.type}</code><br><span class="muted">${event.id}</span></td>
    <td>${event.state}${event.lastError ? html`<br><span class="muted">${event.lastError}</span>` : ''}</td>
    <td>${attempts.map((a) => html`${new Date(a.at).toISOString().slice(11, 19)} ${a.status ?? 'no answer'}<br>`)}</td>
    <td>${
      event.state === 'pending'
        ? ''
        : html`<form method="post" action="${redeliverBase}/${event.id}/redeliver">
      <input type="hidden" name="csrf" value="${csrf}"><button type="submit">Redeliver</button></form>`
    }</td>
  </tr>`,
  )}</tbody>
</table>`
}`

/** The edit form shows what waits for review, if anything does: that is what the partner changes next. */
const editFields = (app: App, error: FieldError | undefined): SafeHtml =>
  appFields(
    {
      name: app.name,
      description: app.description,
      installUrl: app.installUrl ?? '',
      redirectUris: app.redirectUris.join('\n'),
      contactEmail: app.contactEmail ?? '',
      dataApiUrl: app.dataApiUrl ?? '',
      tokenTtl: app.tokenTtl === null ? '' : String(app.tokenTtl),
      scopes: app.scopes,
      listed: app.listed,
    },
    error,
  )

export const appPage = (
  p: Frame & {
    app: App
    secretHints: { hint: string; expiresAt: number | null }[]
    sandbox: Tenant
    audit: AuditEntry[]
    deliveries: Delivery[]
    notice?: string
    error?: FieldError
  },
): Page => ({
  title: p.app.name,
  ...p,
  body: html`<h1>${p.app.name}</h1>
${p.notice ? html`<p role="status">${p.notice}</p>` : ''}
${standing(p.app)}
${formError(p.error)}
<dl class="facts">
  <dt>Client ID</dt><dd><code>${p.app.clientId}</code></dd>
  <dt>Type</dt><dd>${p.app.kind}, ${p.app.environment}</dd>
  <dt>Access-token lifetime</dt><dd>${p.app.tokenTtl === null ? 'the default' : `${p.app.tokenTtl} seconds`}</dd>
  <dt>Client secrets</dt><dd>${p.secretHints.map((s) => html`<code>${s.hint}</code>${s.expiresAt ? html` (works until ${new Date(s.expiresAt).toISOString()})` : ' (current)'}<br>`)}</dd>
</dl>
${
  p.app.kind === 'public' && p.app.environment === 'sandbox'
    ? html`<form method="post" action="/developer/apps/${p.app.clientId}/install-sandbox">
  <input type="hidden" name="csrf" value="${p.csrf}">
  <p>Sandbox <code>target_id</code> <code>${p.sandbox.id}</code>: installed from the start, so it answers token requests at once.
  Install again to walk through your install URL as a customer would.</p>
  <button type="submit" class="primary">Install on my sandbox</button>
</form>`
    : ''
}
<h2>Edit</h2>
<form method="post" action="/developer/apps/${p.app.clientId}">
  <input type="hidden" name="csrf" value="${p.csrf}">
  ${editFields(asProposed(p.app), p.error)}
  <div class="actions"><button type="submit" class="primary">Save changes</button></div>
</form>
<h2>Rotate the client secret</h2>
<form method="post" action="/developer/apps/${p.app.clientId}/rotate-secret">
  <input type="hidden" name="csrf" value="${p.csrf}">
  <label for="grace">The old secret keeps working for</label>
  <select id="grace" name="grace">
    <option value="0">no time: stop it now</option>
    <option value="3600">1 hour</option>
    <option value="86400" selected>1 day</option>
    <option value="604800">7 days</option>
  </select>
  <div class="actions"><button type="submit">Rotate secret</button></div>
</form>
<h2>Delete</h2>
<form method="post" action="/developer/apps/${p.app.clientId}/delete">
  <input type="hidden" name="csrf" value="${p.csrf}">
  <label class="check"><input type="checkbox" name="confirm" required> Delete ${p.app.name}, uninstall it everywhere and stop all its tokens</label>
  <div class="actions"><button type="submit" class="danger">Delete app</button></div>
</form>
${deliveries(p.csrf, p.app, p.deliveries)}
${p.audit.length ? html`<h2>Activity</h2>${auditTable(p.audit, wordsFor({ one: 'farm', many: 'farms' }))}` : ''}`,
})

import {
  appCategories,
  asProposed,
  describeScope,
  isRegisteredClient,
  isReviewed,
  scopeDescriptions,
  shortDescriptionMax,
  type App,
  type AuditEntry,
  type DeliveryAttempt,
  type OutboxEvent,
  type ReviewedFields,
  type Tenant,
} from '@fieldgate/core'
import { auditTable } from './audit.js'
import { describedBy, field, fieldError, formError, type FieldError } from './form.js'
import { html, when, type SafeHtml } from './html.js'
import type { Page } from './layout.js'

interface Frame {
  csrf: string
  user: { email: string }
}

export const developerHome =
  (p: Frame & { sandbox: Tenant; apps: App[]; confirmFirst: boolean; notice?: string; error?: string }): Page =>
  ({ words }) => ({
    title: 'Developer portal',
    ...p,
    body: html`<h1>Developer portal</h1>
${p.notice ? html`<p role="status">${p.notice}</p>` : ''}
${p.error ? html`<p class="error" role="alert">${p.error}</p>` : ''}
${p.confirmFirst ? unconfirmed(p) : ''}
<section aria-label="Sandbox">
  <h2>Your sandbox</h2>
  <p>Test your apps on this sandbox ${words.tenant} before any customer installs them.</p>
  <p>Sandbox <code>target_id</code>: <code id="sandbox-target-id">${p.sandbox.id}</code></p>
</section>
<h2>Your apps</h2>
${
  p.apps.length === 0
    ? html`<p class="muted">No apps yet.</p>`
    : html`<ul class="apps">${p.apps.map(
        (a) => html`<li>
  <a href="/developer/apps/${a.clientId}">${a.name}</a> <span class="muted">${a.kind}, ${a.environment}${a.publicClient ? ', public client' : ''}</span> ${stateTag(a)}</li>`,
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

const reviewedLabels = {
  name: 'name',
  scopes: 'scopes',
  installUrl: 'install URL',
  redirectUris: 'redirect URIs',
  dataApiUrl: 'Data API URL',
  logoUrl: 'logo',
  shortDescription: 'short description',
  categories: 'categories',
  publisher: 'publisher',
  supportUrl: 'support URL',
  privacyPolicyUrl: 'privacy policy URL',
} as const satisfies Record<keyof ReviewedFields, string>

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
        : html`<p id="review"><strong>Approved</strong> on ${when(app.approvedAt ?? app.createdAt, 'date')}.${reason}</p>`
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
  logoUrl?: string
  shortDescription?: string
  categories?: string[]
  publisher?: string
  supportUrl?: string
  privacyPolicyUrl?: string
  /** Create: the Client type chosen. Edit: whether the app is a public client (RFC 6749 §2.1), which it stays. */
  publicClient?: boolean
  refreshTokens?: boolean
  accessTokenFormat?: string
  requireDpop?: boolean
  requirePar?: boolean
}

const redirectHint =
  'One per line, matched exactly, for the authorization-code flow (connecting through /authorize). Live apps: https only, http only for localhost/127.0.0.1/[::1]. A public client may also use its own scheme (com.example.app:/callback).'

/**
 * The fields a partner edits, shared by Create and Edit. `editing` says the app exists already: a
 * public client's refresh tokens are then fixed on (the core refuses them off).
 */
const appFields = (v: AppFormValues, error?: FieldError, editing = false): SafeHtml => html`
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
  ${field('token_ttl', 'Access-token lifetime (seconds)', v.tokenTtl, error, 'number', 'Blank for the default (28000 for public apps, 3600 for private; with refresh tokens, the platform’s short lifetime). From 60 to 2592000.', html` min="60" max="2592000" step="1"`)}
  <fieldset${describedBy('scopes', undefined, error)}><legend>Scopes it may ask for</legend>
  ${Object.keys(scopeDescriptions).map(
    (s) => html`<label class="check"><input type="checkbox" name="scope:${s}"${(v.scopes ?? ['api']).includes(s) ? html` checked` : ''}>
    <code>${s}</code> <span class="muted">${describeScope(s)}</span></label>`,
  )}
  </fieldset>
  ${fieldError('scopes', error)}
  ${tokenFields(v, error, editing)}
  <label class="check"><input type="checkbox" id="listed" name="listed"${v.listed ? html` checked` : ''}${describedBy('listed', undefined, error)}> List it in the marketplace</label>
  ${fieldError('listed', error)}
  ${listingFields(v, error)}`

const hints = {
  refreshTokens:
    'The authorization code grant also gives a refresh token, replaced at each use, with access tokens that expire (OAuth 2.1). Without, a code gives one token that lasts until the connection ends.',
  publicRefresh: 'Always on for a public client: with no secret, a refresh token is how it keeps access.',
  accessTokenFormat: 'What the short-lived access tokens beside refresh tokens are. Without refresh tokens a code gives an opaque token.',
  requireDpop: 'Every token request must carry a DPoP proof (RFC 9449): each token then works only with the key that asked for it.',
  requirePar: 'Authorization requests must be pushed to /oauth/par first (RFC 9126), so their parameters never travel in the address bar.',
} as const

/** A checkbox with its one-line hint under it, named by aria-describedby, and its error beside it. */
const checkbox = (id: string, label: string, checked: boolean | undefined, hint: string, error: FieldError | undefined): SafeHtml => html`
  <label class="check"><input type="checkbox" id="${id}" name="${id}"${checked ? html` checked` : ''}${describedBy(id, hint, error)}> ${label}</label>
  <p class="muted hint" id="${id}-hint">${hint}</p>
  ${fieldError(id, error)}`

/**
 * OAuth 2.1 token settings (docs/app-settings.md). A public client's refresh tokens are shown on and
 * disabled, with the reason; the hidden field sends what a disabled box cannot, so the core still decides.
 */
const tokenFields = (v: AppFormValues, error: FieldError | undefined, editing: boolean): SafeHtml => html`<fieldset class="tokens"><legend>Tokens</legend>
  ${
    editing && v.publicClient === true
      ? html`<input type="hidden" name="refresh_tokens" value="on">
  <label class="check"><input type="checkbox" id="refresh_tokens" checked disabled${describedBy('refresh_tokens', hints.publicRefresh, error)}> Refresh tokens</label>
  <p class="muted hint" id="refresh_tokens-hint">${hints.publicRefresh}</p>
  ${fieldError('refresh_tokens', error)}`
      : checkbox('refresh_tokens', 'Refresh tokens', v.refreshTokens, editing ? hints.refreshTokens : `${hints.refreshTokens} Always on for a public client.`, error)
  }
  <label for="access_token_format">Access tokens with refresh</label>
  <p class="muted hint" id="access_token_format-hint">${hints.accessTokenFormat}</p>
  <select id="access_token_format" name="access_token_format"${describedBy('access_token_format', hints.accessTokenFormat, error)}>
    <option value="jwt"${v.accessTokenFormat !== 'opaque' ? html` selected` : ''}>JWT (RFC 9068): your API checks its signature</option>
    <option value="opaque"${v.accessTokenFormat === 'opaque' ? html` selected` : ''}>Opaque: your API asks the server about it (introspection)</option>
  </select>
  ${fieldError('access_token_format', error)}
  ${checkbox('require_dpop', 'Require DPoP', v.requireDpop, hints.requireDpop, error)}
  ${checkbox('require_par', 'Require pushed authorization requests (PAR)', v.requirePar, hints.requirePar, error)}
</fieldset>`

/** How the marketplace shows the app; a live app's changes to it wait for review, like its name. */
const listingFields = (v: AppFormValues, error?: FieldError): SafeHtml => html`<fieldset class="listing"><legend>Marketplace listing</legend>
  ${field('short_description', 'Short description', v.shortDescription, error, 'text', `One line on the app's card, at most ${shortDescriptionMax} characters.`, html` maxlength="${shortDescriptionMax}"`)}
  ${field('logo_url', 'Logo URL', v.logoUrl, error, 'url', 'An https image, shown square (at least 96 × 96 pixels). Without one the card shows your initials.')}
  ${field('publisher', 'Publisher', v.publisher, error, 'text', 'Who customers see as its maker. Blank shows the contact email.', html` maxlength="100"`)}
  <fieldset id="categories"${describedBy('categories', 'categories-hint', error)}><legend>Categories</legend>
  <p class="muted hint" id="categories-hint">Up to three, so customers find it when they filter.</p>
  ${appCategories.map((c) => html`<label class="check"><input type="checkbox" name="category:${c}"${(v.categories ?? []).includes(c) ? html` checked` : ''}> ${c}</label>`)}
  </fieldset>
  ${fieldError('categories', error)}
  ${field('support_url', 'Support URL', v.supportUrl, error, 'url', 'Where customers get help (https).')}
  ${field('privacy_policy_url', 'Privacy policy URL', v.privacyPolicyUrl, error, 'url', 'What you do with your customers’ data (https).')}
</fieldset>`

/**
 * RFC 6749 §2.1's two client types, chosen once: a public client never gets a secret later, nor loses
 * what it has instead (PKCE, refresh tokens).
 */
const clientTypes = [
  ['confidential', 'Confidential', 'A server that keeps a secret: it authenticates with its client ID and client secret.'],
  ['public', 'Public', 'A desktop, mobile or agent app: no secret, so PKCE on every authorization and refresh tokens to keep access. Cannot be changed later.'],
] as const

const clientType = (publicClient: boolean): SafeHtml => html`<fieldset id="client_type"><legend>Client type</legend>
  ${clientTypes.map(
    ([
      value,
      label,
      hint,
    ]) => html`<label class="check"><input type="radio" name="client_type" value="${value}"${(value === 'public') === publicClient ? html` checked` : ''} aria-describedby="client_type-${value}-hint"> ${label}</label>
  <p class="muted hint" id="client_type-${value}-hint">${hint}</p>`,
  )}
</fieldset>`

export const newAppPage =
  (p: Frame & { values: AppFormValues; tenants: Tenant[]; error?: FieldError }): Page =>
  ({ words }) => ({
    title: 'Create an app',
    ...p,
    body: html`<h1>Create an app</h1>
${formError(p.error)}
<form method="post" action="/developer/apps">
  <input type="hidden" name="csrf" value="${p.csrf}">
  <label for="kind">Type</label>
  <select id="kind" name="kind">
    <option value="public"${p.values.kind !== 'private' ? html` selected` : ''}>Public: installed by customers from the marketplace</option>
    <option value="private"${p.values.kind === 'private' ? html` selected` : ''}>Private: acts only on one ${words.tenant} of yours</option>
  </select>
  <label for="environment">Environment</label>
  <select id="environment" name="environment">
    <option value="sandbox"${p.values.environment !== 'live' ? html` selected` : ''}>Sandbox</option>
    <option value="live"${p.values.environment === 'live' ? html` selected` : ''}>Live</option>
  </select>
  <label for="tenant_id">Tenant (private apps)</label>
  <select id="tenant_id" name="tenant_id">${p.tenants.map((t) => html`<option value="${t.id}"${p.values.tenantId === t.id ? html` selected` : ''}>${t.name} (${t.environment})</option>`)}</select>
  ${clientType(p.values.publicClient === true)}
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

/** What each event type announces, in people's words; the type itself is shown beside it for developers. */
const eventLabels: Record<string, string> = {
  ping: 'Test event',
  'grant.created': 'Access granted',
  'grant.scopes_changed': 'Access changed',
  'grant.revoked': 'Access ended',
  'app.installed': 'Installed',
  'app.uninstalled': 'Uninstalled',
  'record.created': 'Record created',
}

/** A delivery's state as the partner reads it. */
const stateLabel = (e: OutboxEvent): string => (e.state === 'delivered' ? 'Delivered' : e.state === 'failed' ? 'Failed' : e.attempts > 0 ? 'Retrying' : 'Waiting')

/** UTC to the second, in a <time> a browser or reader can localise. */

/** The body as sent, indented when it is JSON (it always is from the outbox); wrapped, never scrolled sideways. */
const prettyBody = (body: string): string => {
  try {
    return JSON.stringify(JSON.parse(body), null, 2)
  } catch {
    return body
  }
}

const attemptLine = (a: DeliveryAttempt): SafeHtml =>
  html`<li>${when(a.at)}: ${a.status === null ? html`<strong>no answer</strong>` : html`status <strong>${a.status}</strong>`}${a.error && a.status === null ? html` (${a.error})` : ''} in ${a.durationMs} ms</li>`

/**
 * An app's Data API events, each with what was sent, every attempt's answer and time, and its action:
 * Redeliver for a delivered or failed one (posts to `base`/<id>/redeliver), Retry now for one waiting out
 * its backoff (`base`/<id>/retry) where `retry` is offered. Stacked, so it fits a phone's width.
 */
export const deliveries = (
  csrf: string,
  app: App,
  list: Delivery[],
  base = `/developer/apps/${app.clientId}/events`,
  opts: { retry?: boolean; heading?: boolean } = {},
): SafeHtml => html`${opts.heading === false ? '' : html`<h2>Data API deliveries</h2>`}
${app.dataApiUrl ? html`<p class="muted">Events go to <code>${app.dataApiUrl}</code>, signed in <code>fieldgate-signature</code>.</p>` : html`<p class="muted">Set a Data API URL to receive events.</p>`}
${
  list.length === 0
    ? html`<p class="muted">No events yet.</p>`
    : html`<ul class="deliveries" aria-label="Deliveries">${list.map(
        ({ event, attempts }) => html`<li class="delivery" id="event-${event.id}">
  <p class="delivery-head"><strong>${eventLabels[event.type] ?? event.type}</strong> <code>${event.type}</code>
    <span class="tag${event.state === 'failed' ? ' bad' : ''}">${stateLabel(event)}</span></p>
  <p class="muted">${event.id} · queued ${when(event.createdAt)}${event.state === 'pending' && event.attempts > 0 ? html` · next attempt ${when(event.nextAttemptAt)}` : ''}</p>
  <p class="delivery-label">Request body</p>
  <pre class="delivery-body">${prettyBody(event.body)}</pre>
  <p class="delivery-label">Responses</p>
  ${attempts.length ? html`<ol class="attempts">${attempts.map(attemptLine)}</ol>` : html`<p class="muted">Not attempted yet.</p>`}
  ${deliveryAction(csrf, event, base, opts.retry === true)}
</li>`,
      )}</ul>`
}`

function deliveryAction(csrf: string, event: OutboxEvent, base: string, retry: boolean): SafeHtml | string {
  const button = (verb: string, label: string) => html`<form method="post" action="${base}/${event.id}/${verb}">
    <input type="hidden" name="csrf" value="${csrf}"><button type="submit">${label}</button></form>`
  if (event.state !== 'pending') return button('redeliver', 'Redeliver')
  return retry ? button('retry', 'Retry now') : ''
}

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
      logoUrl: app.logoUrl ?? '',
      shortDescription: app.shortDescription,
      categories: app.categories,
      publisher: app.publisher ?? '',
      supportUrl: app.supportUrl ?? '',
      privacyPolicyUrl: app.privacyPolicyUrl ?? '',
      publicClient: app.publicClient,
      refreshTokens: app.refreshTokens,
      accessTokenFormat: app.accessTokenFormat,
      requireDpop: app.requireDpop,
      requirePar: app.requirePar,
    },
    error,
    true,
  )

/** Which deliveries the page shows: a state (or all), and where the page starts; `more` when another follows. */
export interface DeliveryView {
  state: OutboxEvent['state'] | undefined
  offset: number
  more: boolean
}

/** Where the activity log's page starts, and whether another follows. */
export interface ActivityView {
  offset: number
  more: boolean
}

export const deliveriesPerPage = 10
export const activityPerPage = 25

const sectionNav = html`<nav class="sections" aria-label="Sections of this app">
  <a href="#settings">Settings</a><a href="#credentials">Credentials</a><a href="#data-api">Data API</a><a href="#activity">Activity</a>
</nav>`

export const appPage =
  (
    p: Frame & {
      app: App
      secretHints: { hint: string; expiresAt: number | null }[]
      sandbox: Tenant
      audit: AuditEntry[]
      deliveries: Delivery[]
      deliveryView?: DeliveryView
      activityView?: ActivityView
      notice?: string
      error?: FieldError
    },
  ): Page =>
  ({ words }) => ({
    title: p.app.name,
    ...p,
    body: html`<h1>${p.app.name}</h1>
${p.notice ? html`<p role="status">${p.notice}</p>` : ''}
${standing(p.app)}
${formError(p.error)}
${sectionNav}
<section id="settings" aria-labelledby="settings-heading">
<h2 id="settings-heading">Settings</h2>
<dl class="facts">
  <dt>Type</dt><dd>${p.app.kind}, ${p.app.environment}</dd>
  <dt>Access-token lifetime</dt><dd>${p.app.tokenTtl === null ? 'the default' : `${p.app.tokenTtl} seconds`}</dd>
  ${clientFacts(p.app, words.tenant)}
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
<h3>Edit</h3>
<form method="post" action="/developer/apps/${p.app.clientId}">
  <input type="hidden" name="csrf" value="${p.csrf}">
  ${editFields(asProposed(p.app), p.error)}
  <div class="actions"><button type="submit" class="primary">Save changes</button></div>
</form>
<h3>Delete</h3>
<form method="post" action="/developer/apps/${p.app.clientId}/delete">
  <input type="hidden" name="csrf" value="${p.csrf}">
  <label class="check"><input type="checkbox" name="confirm" required> Delete ${p.app.name}, uninstall it everywhere and stop all its tokens</label>
  <div class="actions"><button type="submit" class="danger">Delete app</button></div>
</form>
</section>
<section id="credentials" aria-labelledby="credentials-heading">
<h2 id="credentials-heading">Credentials</h2>
${p.app.publicClient ? publicCredentials(p.app) : secretCredentials(p)}
</section>
<section id="data-api" aria-labelledby="data-api-heading">
<h2 id="data-api-heading">Data API</h2>
${dataApi(p)}
</section>
<section id="activity" aria-labelledby="activity-heading">
<h2 id="activity-heading">Activity</h2>
${p.audit.length ? auditTable(p.audit, words) : html`<p class="muted">Nothing yet.</p>`}
${pager(p.app, 'activity', p.activityView?.offset ?? 0, activityPerPage, p.activityView?.more ?? false, {}, '#activity')}
</section>`,
  })

/** What kind of client the app is, what its tokens are, and, for a registered one, how it came. */
function clientFacts(app: App, tenantWord: string): SafeHtml {
  const type = app.publicClient
    ? html`Public client (<code>token_endpoint_auth_method</code> <code>none</code>): no secret, PKCE on every authorization`
    : html`Confidential client (<code>token_endpoint_auth_method</code> <code>client_secret_basic</code>): authenticates with its secret`
  const tokens = app.refreshTokens
    ? `Refresh tokens, with ${app.accessTokenFormat === 'opaque' ? 'opaque' : 'JWT'} access tokens that expire`
    : 'No refresh tokens: a code gives one token that lasts until the connection ends'
  return html`<dt>Client type</dt><dd>${type}</dd>
  <dt>Tokens</dt><dd>${tokens}</dd>
  <dt>DPoP</dt><dd>${app.requireDpop ? 'Required: every token request carries a proof, every token is bound to its key' : 'Used when the client sends a proof; not required'}</dd>
  <dt>Pushed authorization requests</dt><dd>${app.requirePar ? 'Required: authorization requests are pushed to /oauth/par first' : 'Accepted; not required'}</dd>
  ${isRegisteredClient(app) ? html`<dt>Registered</dt><dd>${registrations[app.registration]}. Not reviewed: a ${tenantWord} connects it only through consent, which says so.</dd>` : ''}`
}

/** How a registered client came to be, in words (App.registration). */
const registrations: Record<App['registration'], string> = {
  portal: 'In the portal',
  dynamic: 'By the app itself, through dynamic client registration (RFC 7591)',
  metadata_document: 'By the app itself: its client ID is the URL of its client metadata document',
}

/** A public client has no secret to list or rotate (rotateSecret refuses): it proves itself with PKCE. */
const publicCredentials = (app: App): SafeHtml => html`<dl class="facts">
  <dt>Client ID</dt><dd><code>${app.clientId}</code></dd>
  <dt>Client secret</dt><dd>None: a public client sends its client ID alone to <code>/oauth/token</code>, and proves each code with PKCE (S256).</dd>
</dl>`

const secretCredentials = (p: { csrf: string; app: App; secretHints: { hint: string; expiresAt: number | null }[] }): SafeHtml => html`<dl class="facts">
  <dt>Client ID</dt><dd><code>${p.app.clientId}</code></dd>
  <dt>Client secrets</dt><dd>${p.secretHints.map((s) => html`<code>${s.hint}</code>${s.expiresAt ? html` (works until ${when(s.expiresAt)})` : ' (current)'}<br>`)}</dd>
</dl>
<h3>Rotate the client secret</h3>
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
</form>`

const deliveryStates = [
  ['', 'All'],
  ['pending', 'Waiting'],
  ['delivered', 'Delivered'],
  ['failed', 'Failed'],
] as const

function dataApi(p: { csrf: string; app: App; deliveries: Delivery[]; deliveryView?: DeliveryView }): SafeHtml {
  const view = p.deliveryView ?? { state: undefined, offset: 0, more: false }
  return html`${
    p.app.dataApiUrl
      ? html`<form method="post" action="/developer/apps/${p.app.clientId}/test-event" class="inline">
  <input type="hidden" name="csrf" value="${p.csrf}">
  <button type="submit">Send a test event</button> <span class="muted">A signed <code>ping</code> to your Data API URL, shown below with the answer.</span>
</form>`
      : ''
  }
<form method="get" action="/developer/apps/${p.app.clientId}#data-api" class="search delivery-filter" role="search" aria-label="Filter deliveries">
  <label for="delivery-state">Show</label>
  <select id="delivery-state" name="state">${deliveryStates.map(([value, label]) => html`<option value="${value}"${(view.state ?? '') === value ? html` selected` : ''}>${label}</option>`)}</select>
  <button type="submit">Filter</button>
</form>
${deliveries(p.csrf, p.app, p.deliveries, undefined, { retry: true, heading: false })}
${pager(p.app, 'events', view.offset, deliveriesPerPage, view.more, view.state ? { state: view.state } : {}, '#data-api')}`
}

/** Previous and Next links for one of the page's lists, keeping the other query parameters it names. */
function pager(app: App, name: 'events' | 'activity', offset: number, size: number, more: boolean, keep: Record<string, string>, anchor: string): SafeHtml | string {
  if (offset === 0 && !more) return ''
  const link = (at: number) => {
    const query = new URLSearchParams({ ...keep, ...(at > 0 ? { [name]: String(at) } : {}) }).toString()
    return `/developer/apps/${app.clientId}${query ? `?${query}` : ''}${anchor}`
  }
  return html`<nav class="pager" aria-label="Pages of ${name === 'events' ? 'deliveries' : 'activity'}">
  ${offset > 0 ? html`<a href="${link(Math.max(offset - size, 0))}" rel="prev">Previous</a>` : ''}
  ${more ? html`<a href="${link(offset + size)}" rel="next">Next</a>` : ''}
</nav>`
}

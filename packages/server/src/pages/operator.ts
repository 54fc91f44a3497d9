import {
  asProposed,
  isRegisteredClient,
  isReviewed,
  type App,
  type AuditEntry,
  type Grant,
  type MailMessage,
  type Membership,
  type OutboxEvent,
  type ReviewedFields,
  type Role,
  type SecurityEvent,
  type SecurityEventKind,
  type Tenant,
  type User,
} from '@fieldgate/core'
import { auditTable } from './audit.js'
import { wordsFor } from './brand.js'
import { deliveries, type Delivery } from './developer.js'
import { fieldError, type FieldError } from './form.js'
import { html, when as moment, type SafeHtml } from './html.js'
import { actionLabel } from './labels.js'
import type { Page } from './layout.js'

/*
 * The operator console: what the platform's staff see of the whole deployment. Every page is a GET
 * that changes nothing; every decision is a form (CSRF) that answers with a redirect back here.
 */

export interface ConsoleFrame {
  csrf: string
  user: User
  notice?: string | undefined
}

/** A listing's page: its search, and where Previous and Next go. */
export interface Paging {
  path: string
  q: string
  page: number
  hasNext: boolean
  /** Other filters the links keep (a kind, a state). */
  keep?: Record<string, string>
}

const sections = [
  ['/operator', 'Overview'],
  ['/operator/review', 'Review'],
  ['/operator/apps', 'Apps'],
  ['/operator/tenants', 'Tenants'],
  ['/operator/users', 'Users'],
  ['/operator/grants', 'Grants'],
  ['/operator/deliveries', 'Deliveries'],
  ['/operator/audit', 'Audit log'],
  ['/operator/security', 'Security events'],
  ['/operator/mail', 'Mail'],
] as const

function frame(p: ConsoleFrame, title: string, body: SafeHtml): Page {
  return {
    title: `${title} · Operator console`,
    csrf: p.csrf,
    user: p.user,
    wide: true,
    body: html`<nav aria-label="Operator console" class="console">${sections.map(([href, name]) => html`<a href="${href}">${name}</a> `)}</nav>
<h1>${title}</h1>
${p.notice ? html`<p role="status">${p.notice}</p>` : ''}
${body}`,
  }
}

const when = (at: number | null): SafeHtml | string => (at === null ? '' : moment(at))

/**
 * The console speaks of tenants, whatever the customers' pages call them: the word of the CLI, the
 * admin API and `target_id`, which operators work with.
 */
const staffWords = wordsFor({ one: 'tenant', many: 'tenants' })

function search(p: Paging, label: string, extra: SafeHtml | string = ''): SafeHtml {
  return html`<form method="get" action="${p.path}" class="search" role="search">
  <label for="q">${label}</label> <input id="q" name="q" type="search" value="${p.q}" maxlength="200">
  ${extra}<button type="submit">Search</button>
</form>`
}

function pager(p: Paging): SafeHtml {
  const link = (page: number) => `${p.path}?${new URLSearchParams({ ...(p.q ? { q: p.q } : {}), ...(p.keep ?? {}), page: String(page) })}`
  return html`<nav class="pager" aria-label="Pages">
  ${p.page > 1 ? html`<a href="${link(p.page - 1)}" rel="prev">Previous</a>` : ''}
  <span class="muted">Page ${p.page}</span>
  ${p.hasNext ? html`<a href="${link(p.page + 1)}" rel="next">Next</a>` : ''}
</nav>`
}

const none = (what: string): SafeHtml => html`<p class="muted">${what}</p>`

/** Where an app stands, in words and tags. */
export function appState(app: App): SafeHtml {
  const tags: SafeHtml[] = []
  if (app.suspendedAt !== null) tags.push(html`<span class="tag bad">suspended</span>`)
  // A client that registered itself is never reviewed: it reaches a farm only through consent.
  if (isRegisteredClient(app)) tags.push(html`<span class="tag">unreviewed</span>`)
  else if (isReviewed(app)) {
    if (app.review === 'pending') tags.push(html`<span class="tag">${app.approvedAt === null ? 'waiting for review' : 'change waiting for review'}</span>`)
    else if (app.review === 'rejected') tags.push(html`<span class="tag bad">rejected</span>`)
    else tags.push(html`<span class="tag">approved</span>`)
  }
  return html`${tags.map((t) => html`${t} `)}`
}

// ---- overview ----

export interface Overview {
  pending: number
  tenants: number
  users: number
  apps: number
  events: SecurityEvent[]
}

const count = (n: number) => (n >= 500 ? '500+' : String(n))

export const overviewPage = (p: ConsoleFrame & Overview): Page =>
  frame(
    p,
    'Operator console',
    html`<ul class="counts">
  <li><a href="/operator/review"><strong>${count(p.pending)}</strong> waiting for review</a></li>
  <li><a href="/operator/apps"><strong>${count(p.apps)}</strong> apps</a></li>
  <li><a href="/operator/tenants"><strong>${count(p.tenants)}</strong> tenants</a></li>
  <li><a href="/operator/users"><strong>${count(p.users)}</strong> users</a></li>
</ul>
<h2>Latest security events</h2>
${p.events.length ? securityTable(p.events) : none('No security events yet.')}
<p><a href="/operator/security">All security events</a></p>`,
  )

// ---- review ----

const fieldLabels: Record<keyof ReviewedFields, string> = {
  name: 'Name',
  scopes: 'Scopes',
  installUrl: 'Install URL',
  redirectUris: 'Redirect URIs',
  dataApiUrl: 'Data API URL',
  logoUrl: 'Logo URL',
  shortDescription: 'Short description',
  categories: 'Categories',
  publisher: 'Publisher',
  supportUrl: 'Support URL',
  privacyPolicyUrl: 'Privacy policy URL',
}

const shownValue = (v: ReviewedFields[keyof ReviewedFields]): string => (Array.isArray(v) ? v.join(', ') || '—' : v || '—')

/** What is in force beside what the partner proposes, changed fields marked. */
function comparison(app: App): SafeHtml {
  const first = app.approvedAt === null
  const proposed = asProposed(app)
  const rows = (Object.keys(fieldLabels) as (keyof ReviewedFields)[]).map((k) => {
    const before = first ? '—' : shownValue(app[k])
    const after = shownValue(proposed[k])
    const changed = before !== after
    return html`<div>${fieldLabels[k]}</div><div${changed ? html` class="changed"` : ''}>${before}</div><div${changed ? html` class="changed"` : ''}>${after}${changed ? html` <span class="tag">changed</span>` : ''}</div>`
  })
  return html`<div class="compare" role="group" aria-label="What changes">
  <div></div><div><strong>${first ? 'In force (not live yet)' : 'In force'}</strong></div><div><strong>Proposed</strong></div>
  ${rows}
</div>`
}

function decisionForms(csrf: string, app: App, back: 'review' | 'app', error?: FieldError): SafeHtml {
  const action = (verb: string) => `/operator/apps/${encodeURIComponent(app.clientId)}/${verb}`
  // One form per app on the queue's page: ids carry the client_id, so each label and error is its own.
  const rid = `reject-reason-${app.clientId}`
  const rejectError = error?.field === 'reason' ? { ...error, field: rid } : undefined
  return html`<div class="decide">
  <form method="post" action="${action('approve')}">
    <input type="hidden" name="csrf" value="${csrf}"><input type="hidden" name="back" value="${back}">
    <label for="approve-reason-${app.clientId}">Note to the partner (optional)</label>
    <input type="text" id="approve-reason-${app.clientId}" name="reason" maxlength="2000">
    <div class="actions"><button type="submit" class="primary">Approve</button></div>
  </form>
  <form method="post" action="${action('reject')}">
    <input type="hidden" name="csrf" value="${csrf}"><input type="hidden" name="back" value="${back}">
    <label for="${rid}">Why it is rejected</label>
    <input type="text" id="${rid}" name="reason" maxlength="2000"${rejectError ? html` aria-invalid="true" aria-describedby="${rid}-error"` : ''}>
    ${fieldError(rid, rejectError)}
    <div class="actions"><button type="submit" class="danger">Reject</button></div>
  </form>
</div>`
}

export interface Owned {
  app: App
  owner: User | undefined
}

const ownerLink = (owner: User | undefined): SafeHtml | string => (owner ? html`<a href="/operator/users/${owner.id}">${owner.email}</a>` : 'the platform')

export const reviewPage = (p: ConsoleFrame & { queue: Owned[]; paging: Paging; error?: { clientId: string } & FieldError }): Page =>
  frame(
    p,
    'Review',
    html`<p class="muted">Live public apps, and changes partners made to them, wait here. Until approved, a new app is not listed and cannot be installed or connected; a change waits while the approved version keeps working.</p>
${search(p.paging, 'Find an app')}
${
  p.queue.length === 0
    ? none('Nothing waits for review.')
    : p.queue.map(
        ({ app, owner }) => html`<section class="app-card" aria-label="${app.name}">
  <h2><a href="/operator/apps/${encodeURIComponent(app.clientId)}">${app.name}</a> ${appState(app)}</h2>
  <p class="muted">${app.approvedAt === null ? 'New app' : 'Change to an approved app'} by ${ownerLink(owner)}, client_id <code>${app.clientId}</code>${app.contactEmail ? html`, contact ${app.contactEmail}` : ''}.</p>
  ${app.description ? html`<p>${app.description}</p>` : ''}
  ${comparison(app)}
  ${decisionForms(p.csrf, app, 'review', p.error?.clientId === app.clientId ? p.error : undefined)}
</section>`,
      )
}
${pager(p.paging)}`,
  )

// ---- apps ----

/** How a client that registered itself came to be (docs/registration.md); nothing for the portal's apps. */
const registrationOf = (app: App): string =>
  app.registration === 'dynamic' ? ', registered itself (RFC 7591)' : app.registration === 'metadata_document' ? ', client metadata document' : ''

export const appsPage = (p: ConsoleFrame & { apps: Owned[]; paging: Paging }): Page =>
  frame(
    p,
    'Apps',
    html`${search(p.paging, 'Name or client_id')}
${
  p.apps.length === 0
    ? none('No apps match.')
    : html`<table class="audit">
  <thead><tr><th scope="col">App</th><th scope="col">client_id</th><th scope="col">Kind</th><th scope="col">Owner</th><th scope="col">State</th></tr></thead>
  <tbody>${p.apps.map(
    ({ app, owner }) =>
      html`<tr><td><a href="/operator/apps/${encodeURIComponent(app.clientId)}">${app.name}</a></td><td><code>${app.clientId}</code></td><td>${app.kind}, ${app.environment}${app.listed ? ', listed' : ''}${registrationOf(app)}</td><td>${ownerLink(owner)}</td><td>${appState(app)}</td></tr>`,
  )}</tbody>
</table>`
}
${pager(p.paging)}`,
  )

/** A grant with its app and tenant, as the listings show it. */
export interface GrantRow {
  grant: Grant
  app: App | undefined
  tenant: Tenant | undefined
}

const appLink = (app: App | undefined, fallback: string): SafeHtml | string => (app ? html`<a href="/operator/apps/${encodeURIComponent(app.clientId)}">${app.name}</a>` : fallback)
const tenantLink = (tenant: Tenant | undefined, fallback: string): SafeHtml | string => (tenant ? html`<a href="/operator/tenants/${tenant.id}">${tenant.name}</a>` : fallback)
const grantStatus = (g: Grant): SafeHtml => (g.status === 'active' ? html`<span class="tag">active</span>` : html`<span class="tag bad">revoked</span>`)

/** Grants as a table; `show` leaves out the column the page is already about. */
function grantsTable(rows: GrantRow[], show: { app: boolean; tenant: boolean }): SafeHtml {
  return html`<table class="audit"><thead><tr>${show.app ? html`<th scope="col">App</th>` : ''}${show.tenant ? html`<th scope="col">Tenant</th>` : ''}<th scope="col">Scopes</th><th scope="col">Status</th><th scope="col">Since</th></tr></thead>
<tbody>${rows.map(
    ({ grant, app, tenant }) =>
      html`<tr>${show.app ? html`<td>${appLink(app, grant.appId)}</td>` : ''}${show.tenant ? html`<td>${tenantLink(tenant, grant.tenantId)}</td>` : ''}<td>${grant.scopes.join(' ')}</td><td>${grantStatus(grant)}</td><td>${when(grant.createdAt)}</td></tr>`,
  )}</tbody></table>`
}

/** Below a first page: the way to all of them, in the paged listing. */
const allOf = (more: boolean, href: string, label: string): SafeHtml => html`<p>${more ? html`<strong>More than shown here.</strong> ` : ''}<a href="${href}">${label}</a></p>`

export interface AppDetail extends Owned {
  /** The first grants, oldest first; `moreGrants` when there are others. */
  grants: GrantRow[]
  moreGrants: boolean
  /** The newest deliveries; `moreDeliveries` when there are others. */
  deliveries: Delivery[]
  moreDeliveries: boolean
  audit: AuditEntry[]
  /** A refused decision, shown beside the field of the form that made it. */
  error?: FieldError & { form: 'review' | 'suspension' }
}

function suspension(csrf: string, app: App, error: FieldError | undefined): SafeHtml {
  if (app.suspendedAt !== null)
    return html`<p class="warning" role="alert"><strong>Suspended</strong>${app.suspendedWithAccount ? " with its owner's account" : ''} on ${when(app.suspendedAt)}: ${app.suspendedReason ?? ''}</p>
<form method="post" action="/operator/apps/${encodeURIComponent(app.clientId)}/unsuspend"><input type="hidden" name="csrf" value="${csrf}"><button type="submit">Lift the suspension</button></form>`
  return html`<form method="post" action="/operator/apps/${encodeURIComponent(app.clientId)}/suspend">
  <input type="hidden" name="csrf" value="${csrf}">
  <label for="suspend-reason">Suspend: why (the partner is told)</label>
  <input type="text" id="suspend-reason" name="reason" maxlength="2000"${error?.field === 'reason' ? html` aria-invalid="true" aria-describedby="reason-error"` : ''}>
  ${fieldError('reason', error)}
  <p class="muted hint">Every token of the app is refused at once, on every instance, and it gets no new one.</p>
  <div class="actions"><button type="submit" class="danger">Suspend the app</button></div>
</form>`
}

export const appDetailPage = (p: ConsoleFrame & AppDetail): Page =>
  frame(
    p,
    p.app.name,
    html`<p>${appState(p.app)}</p>
<dl class="facts">
  <dt>client_id</dt><dd><code>${p.app.clientId}</code></dd>
  <dt>Kind</dt><dd>${p.app.kind}, ${p.app.environment}${p.app.listed ? ', listed in the marketplace' : ''}</dd>
  <dt>Owner</dt><dd>${ownerLink(p.owner)}</dd>
  <dt>Contact</dt><dd>${p.app.contactEmail ?? '—'}</dd>
  <dt>Created</dt><dd>${when(p.app.createdAt)}</dd>
  ${p.app.reviewReason ? html`<dt>Reviewer's note</dt><dd>${p.app.reviewReason}</dd>` : ''}
</dl>
${p.app.description ? html`<p>${p.app.description}</p>` : ''}
<h2>Review</h2>
${comparison(p.app)}
${isReviewed(p.app) && p.app.review === 'pending' ? decisionForms(p.csrf, p.app, 'app', p.error?.form === 'review' ? p.error : undefined) : ''}
<h2>Suspension</h2>
${suspension(p.csrf, p.app, p.error?.form === 'suspension' ? p.error : undefined)}
<h2>Grants</h2>
${p.grants.length === 0 ? none('No tenant has installed or connected it.') : html`${grantsTable(p.grants, { app: false, tenant: true })}${allOf(p.moreGrants, `/operator/grants?app=${encodeURIComponent(p.app.clientId)}`, 'All grants of this app')}`}
${deliveries(p.csrf, p.app, p.deliveries, `/operator/apps/${encodeURIComponent(p.app.clientId)}/events`, { retry: true })}
${p.deliveries.length ? allOf(p.moreDeliveries, `/operator/deliveries?app=${encodeURIComponent(p.app.clientId)}`, 'All deliveries of this app') : ''}
<h2>Audit log</h2>
${p.audit.length ? auditTable(p.audit, staffWords) : none('Nothing recorded yet.')}`,
  )

// ---- tenants ----

export const tenantsPage = (p: ConsoleFrame & { tenants: Tenant[]; paging: Paging }): Page =>
  frame(
    p,
    'Tenants',
    html`${search(p.paging, 'Name or id')}
${
  p.tenants.length === 0
    ? none('No tenants match.')
    : html`<table class="audit"><thead><tr><th scope="col">Tenant</th><th scope="col">Environment</th><th scope="col">id</th><th scope="col">Created</th></tr></thead>
<tbody>${p.tenants.map((t) => html`<tr><td><a href="/operator/tenants/${t.id}">${t.name}</a></td><td>${t.environment}</td><td><code>${t.id}</code></td><td>${when(t.createdAt)}</td></tr>`)}</tbody></table>`
}
${pager(p.paging)}`,
  )

export interface TenantDetail {
  tenant: Tenant
  /** The first members by email, and the first grants oldest first; `more…` when there are others. */
  members: { user: User; role: Role }[]
  moreMembers: boolean
  grants: GrantRow[]
  moreGrants: boolean
}

export const tenantDetailPage = (p: ConsoleFrame & TenantDetail): Page =>
  frame(
    p,
    p.tenant.name,
    html`<dl class="facts"><dt>id (target_id)</dt><dd><code>${p.tenant.id}</code></dd><dt>Environment</dt><dd>${p.tenant.environment}</dd><dt>marketplace_id</dt><dd><code>${p.tenant.marketplaceId}</code></dd></dl>
<h2>Members</h2>
${
  p.members.length === 0
    ? none('No members.')
    : html`<table class="audit"><thead><tr><th scope="col">Person</th><th scope="col">Role</th></tr></thead>
<tbody>${p.members.map((m) => html`<tr><td><a href="/operator/users/${m.user.id}">${m.user.email}</a></td><td>${m.role}</td></tr>`)}</tbody></table>
${allOf(p.moreMembers, `/operator/users?tenant=${p.tenant.id}`, 'All members')}`
}
<h2>Apps installed or connected</h2>
${p.grants.length === 0 ? none('None.') : html`${grantsTable(p.grants, { app: true, tenant: false })}${allOf(p.moreGrants, `/operator/grants?tenant=${p.tenant.id}`, 'All grants on this tenant')}`}`,
  )

// ---- users ----

function userFlags(u: User): SafeHtml {
  return html`${u.operator ? html`<span class="tag">operator</span> ` : ''}${u.emailVerifiedAt === null ? html`<span class="tag">unconfirmed</span> ` : ''}${u.suspendedAt !== null ? html`<span class="tag bad">suspended</span>` : ''}`
}

/** Where a listing is narrowed to one app or tenant: what it shows, and the way back to all. */
const narrowed = (what: SafeHtml | string, all: string): SafeHtml => html`<p class="muted">Only ${what}. <a href="${all}">Show all</a></p>`

/** The filters a search form keeps while the search changes. */
const kept = (keep: Record<string, string>): SafeHtml => html`${Object.entries(keep).map(([name, value]) => html`<input type="hidden" name="${name}" value="${value}">`)}`

export const usersPage = (p: ConsoleFrame & { users: User[]; forTenant?: Tenant | undefined; paging: Paging }): Page =>
  frame(
    p,
    'Users',
    html`${p.forTenant ? narrowed(html`the members of ${tenantLink(p.forTenant, p.forTenant.id)}`, '/operator/users') : ''}
${search(p.paging, 'Part of an email', p.forTenant ? kept({ tenant: p.forTenant.id }) : '')}
${
  p.users.length === 0
    ? none('No users match.')
    : html`<table class="audit"><thead><tr><th scope="col">Email</th><th scope="col"></th><th scope="col">Since</th></tr></thead>
<tbody>${p.users.map((u) => html`<tr><td><a href="/operator/users/${u.id}">${u.email}</a></td><td>${userFlags(u)}</td><td>${when(u.createdAt)}</td></tr>`)}</tbody></table>`
}
${pager(p.paging)}`,
  )

export interface UserDetail {
  person: User
  memberships: { membership: Membership; tenant: Tenant | undefined }[]
  apps: App[]
  events: SecurityEvent[]
  error?: FieldError
}

function accountForms(p: ConsoleFrame & UserDetail): SafeHtml | string {
  const u = p.person
  if (u.suspendedAt !== null)
    return html`<p class="warning" role="alert"><strong>Suspended</strong> on ${when(u.suspendedAt)}: ${u.suspendedReason ?? ''}</p>
<form method="post" action="/operator/users/${u.id}/unsuspend"><input type="hidden" name="csrf" value="${p.csrf}"><button type="submit">Lift the suspension</button></form>`
  if (u.operator) return none('An operator account cannot be suspended: take the operator role away first (fieldgate users set-operator --off).')
  return html`<form method="post" action="/operator/users/${u.id}/suspend">
  <input type="hidden" name="csrf" value="${p.csrf}">
  <label for="reason">Suspend the account: why (they are told)</label>
  <input type="text" id="reason" name="reason" maxlength="2000"${p.error?.field === 'reason' ? html` aria-invalid="true" aria-describedby="reason-error"` : ''}>
  ${fieldError('reason', p.error)}
  <p class="muted hint">They are signed out and cannot sign in; every app of theirs is suspended with the account.</p>
  <div class="actions"><button type="submit" class="danger">Suspend the account</button></div>
</form>`
}

export const userDetailPage = (p: ConsoleFrame & UserDetail): Page =>
  frame(
    p,
    p.person.email,
    html`<p>${userFlags(p.person)}</p>
<dl class="facts"><dt>id</dt><dd><code>${p.person.id}</code></dd><dt>Since</dt><dd>${when(p.person.createdAt)}</dd><dt>Email confirmed</dt><dd>${p.person.emailVerifiedAt === null ? 'not yet' : when(p.person.emailVerifiedAt)}</dd></dl>
<h2>Account</h2>
${p.error && p.error.field !== 'reason' ? html`<p class="error" role="alert">${p.error.message}</p>` : ''}
${accountForms(p)}
<h2>Tenants</h2>
${
  p.memberships.length === 0
    ? none('A member of no tenant.')
    : html`<ul>${p.memberships.map(({ membership, tenant }) => html`<li>${tenant ? html`<a href="/operator/tenants/${tenant.id}">${tenant.name}</a>` : membership.tenantId} (${membership.role})</li>`)}</ul>`
}
<h2>Apps</h2>
${p.apps.length === 0 ? none('No apps.') : html`<ul>${p.apps.map((a) => html`<li><a href="/operator/apps/${encodeURIComponent(a.clientId)}">${a.name}</a> ${appState(a)}</li>`)}</ul>`}
<h2>Security events</h2>
${p.events.length ? securityTable(p.events) : none('None.')}`,
  )

// ---- grants ----

export interface GrantsListing {
  grants: GrantRow[]
  forApp?: App | undefined
  forTenant?: Tenant | undefined
  status: string
  paging: Paging
}

export const grantsPage = (p: ConsoleFrame & GrantsListing): Page =>
  frame(
    p,
    'Grants',
    html`<p class="muted">Each tenant's consent to an app: what it installed or connected, with which scopes.</p>
${p.forApp ? narrowed(html`the grants of ${appLink(p.forApp, p.forApp.clientId)}`, '/operator/grants') : ''}
${p.forTenant ? narrowed(html`the grants on ${tenantLink(p.forTenant, p.forTenant.id)}`, '/operator/grants') : ''}
${search(
  p.paging,
  'App name or client_id, tenant name or id',
  html`${kept({ ...(p.forApp ? { app: p.forApp.clientId } : {}), ...(p.forTenant ? { tenant: p.forTenant.id } : {}) })}<label for="status">Status</label> <select id="status" name="status"><option value="">Any</option>${['active', 'revoked'].map((s) => html`<option${s === p.status ? html` selected` : ''}>${s}</option>`)}</select>`,
)}
${p.grants.length === 0 ? none('No grants match.') : grantsTable(p.grants, { app: !p.forApp, tenant: !p.forTenant })}
${pager(p.paging)}`,
  )

// ---- Data API deliveries ----

const deliveryStates = [
  ['', 'Any'],
  ['pending', 'Waiting or retrying'],
  ['delivered', 'Delivered'],
  ['failed', 'Failed'],
] as const

const eventState = (e: OutboxEvent): SafeHtml =>
  html`<span class="tag${e.state === 'failed' ? ' bad' : ''}">${e.state === 'pending' ? (e.attempts > 0 ? 'retrying' : 'waiting') : e.state}</span>`

export const deliveriesPage = (p: ConsoleFrame & { events: { event: OutboxEvent; app: App | undefined }[]; forApp?: App | undefined; state: string; paging: Paging }): Page =>
  frame(
    p,
    'Data API deliveries',
    html`<p class="muted">The events every app's Data API URL is sent, newest first. Open one for what was sent, every attempt's answer, and Redeliver or Retry now.</p>
${p.forApp ? narrowed(html`the deliveries of ${appLink(p.forApp, p.forApp.clientId)}`, '/operator/deliveries') : ''}
<form method="get" action="/operator/deliveries" class="search" role="search" aria-label="Filter deliveries">
  <label for="app">App's client_id</label> <input id="app" name="app" type="search" value="${p.forApp?.clientId ?? ''}" maxlength="100">
  <label for="state">Show</label> <select id="state" name="state">${deliveryStates.map(([value, label]) => html`<option value="${value}"${value === p.state ? html` selected` : ''}>${label}</option>`)}</select>
  <button type="submit">Filter</button>
</form>
${
  p.events.length === 0
    ? none('No deliveries match.')
    : html`<table class="audit"><thead><tr><th scope="col">Queued</th><th scope="col">Event</th>${p.forApp ? '' : html`<th scope="col">App</th>`}<th scope="col">State</th><th scope="col">Attempts</th></tr></thead>
<tbody>${p.events.map(
        ({ event, app }) =>
          html`<tr><td>${when(event.createdAt)}</td><td><a href="/operator/deliveries/${encodeURIComponent(event.id)}"><code>${event.type}</code></a><br><span class="muted">${event.id}</span></td>${p.forApp ? '' : html`<td>${appLink(app, event.appId)}</td>`}<td>${eventState(event)}</td><td><a href="/operator/deliveries/${encodeURIComponent(event.id)}#attempts">${event.attempts} ${event.attempts === 1 ? 'attempt' : 'attempts'}</a></td></tr>`,
      )}</tbody></table>`
}
${pager(p.paging)}`,
  )

/** One event of any app: what was sent, each attempt, and the operator's Redeliver or Retry now (audited). */
export const deliveryPage = (p: ConsoleFrame & { app: App; delivery: Delivery }): Page =>
  frame(
    p,
    `Delivery to ${p.app.name}`,
    html`<p><a href="/operator/deliveries?app=${encodeURIComponent(p.app.clientId)}">All deliveries of ${p.app.name}</a> · <a href="/operator/apps/${encodeURIComponent(p.app.clientId)}">The app</a></p>
<div id="attempts">${deliveries(p.csrf, p.app, [p.delivery], '/operator/deliveries', { retry: true, heading: false })}</div>`,
  )

// ---- logs ----

export const auditPage = (p: ConsoleFrame & { entries: AuditEntry[]; paging: Paging }): Page =>
  frame(
    p,
    'Audit log',
    html`${search(p.paging, 'Who, what, client_id or tenant')}${p.entries.length ? auditTable(p.entries, staffWords) : none('No entries match.')}${pager(p.paging)}`,
  )

/** A security event's details as a person reads them (`reason: …; by: …`), never as JSON. */
const detailWords = (details: Record<string, unknown>): string =>
  Object.entries(details)
    .map(([key, value]) => `${key}: ${typeof value === 'string' ? value : typeof value === 'boolean' ? (value ? 'yes' : 'no') : JSON.stringify(value)}`)
    .join('; ')

function securityTable(events: SecurityEvent[]): SafeHtml {
  return html`<table class="audit"><thead><tr><th scope="col">When</th><th scope="col">Event</th><th scope="col">Account</th><th scope="col">Address</th><th scope="col">App</th><th scope="col">Details</th></tr></thead>
<tbody>${events.map(
    (e) =>
      html`<tr><td>${when(e.at)}</td><td>${actionLabel(e.kind)}</td><td>${e.userId ? html`<a href="/operator/users/${e.userId}">${e.email ?? e.userId}</a>` : (e.email ?? '')}</td><td>${e.address ?? ''}</td><td>${e.clientId ? html`<a href="/operator/apps/${encodeURIComponent(e.clientId)}">${e.clientId}</a>` : ''}</td><td>${detailWords(e.details)}</td></tr>`,
  )}</tbody></table>`
}

export const securityPage = (p: ConsoleFrame & { events: SecurityEvent[]; kinds: readonly SecurityEventKind[]; kind: string; paging: Paging }): Page =>
  frame(
    p,
    'Security events',
    html`${search(
      p.paging,
      'Email, address or client_id',
      html`<label for="kind">Kind</label> <select id="kind" name="kind"><option value="">Any</option>${p.kinds.map((k) => html`<option${k === p.kind ? html` selected` : ''}>${k}</option>`)}</select>`,
    )}
${p.events.length ? securityTable(p.events) : none('No events match.')}
${pager(p.paging)}`,
  )

export const mailPage = (p: ConsoleFrame & { mail: MailMessage[]; smtp: boolean; state: string; paging: Paging }): Page =>
  frame(
    p,
    'Mail',
    html`<p class="muted">${
      p.smtp
        ? 'Messages go out over SMTP (FIELDGATE_SMTP_URL); a sent message keeps no text.'
        : 'No SMTP server is set (FIELDGATE_SMTP_URL): messages stay here, in the local mailbox, text and all.'
    }</p>
${search(
  p.paging,
  'Recipient or subject',
  html`<label for="state">State</label> <select id="state" name="state"><option value="">Any</option>${['local', 'pending', 'sent', 'failed'].map((s) => html`<option${s === p.state ? html` selected` : ''}>${s}</option>`)}</select>`,
)}
${
  p.mail.length === 0
    ? none('No mail matches.')
    : html`<table class="audit"><thead><tr><th scope="col">When</th><th scope="col">To</th><th scope="col">Subject</th><th scope="col">Kind</th><th scope="col">State</th></tr></thead>
<tbody>${p.mail.map(
        (m) =>
          html`<tr><td>${when(m.createdAt)}</td><td>${m.to}</td><td>${m.state === 'local' && m.text ? html`<details><summary>${m.subject}</summary><pre>${m.text}</pre></details>` : m.subject}</td><td>${m.kind}</td><td>${m.state}${m.attempts ? ` (${m.attempts} attempts)` : ''}${m.error ? html`<br><span class="muted">${m.error}</span>` : ''}</td></tr>`,
      )}</tbody></table>`
}
${pager(p.paging)}`,
  )

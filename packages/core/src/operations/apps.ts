import { randomUUID } from 'node:crypto'
import { auditEntry, type Actor } from '../audit.js'
import type { OperationContext } from '../context.js'
import { newEvent } from '../events.js'
import { isLookupKey } from '../client-auth.js'
import { appCategories, type App, type AppKind, type AppSecret, type OutboxEvent, type Tenant } from '../model.js'
import { maxCategories, shortDescriptionMax } from '../listing.js'
import { forbidden, invalid, notFound, type AppField } from '../operation-error.js'
import { hashSecret, newClientId, newClientSecret, seal, secretHint } from '../secrets.js'
import { adminTenants, appFor, requireSignedIn, tenantFor } from './access.js'
import { newGrant } from './grants.js'
import { isReviewed, reviewedFields } from './review.js'
import { ensurePartnerSandbox, environments, newTenant } from './tenants.js'
import { isPrivateUseUri, isSecureUrl, oneLine, oneOf, optionalEmail, optionalHttpsUrl, optionalUrl, requireRedirectUri, requireText, safeScopes, someOf } from './validate.js'

const kinds: readonly AppKind[] = ['private', 'public']

/** What a person may change of an app, as every edge (form, admin API, CLI) hands it over. */
export interface AppFields {
  name?: string
  description?: string
  scopes?: string
  tokenTtl?: number | null
  installUrl?: string | null
  redirectUris?: string[]
  contactEmail?: string | null
  dataApiUrl?: string | null
  listed?: boolean
  logoUrl?: string | null
  shortDescription?: string
  /** Names from appCategories. */
  categories?: string[]
  publisher?: string | null
  supportUrl?: string | null
  privacyPolicyUrl?: string | null
  /** OAuth 2.1 (docs/oauth21.md): a public client has no secret; set only when the app is made. */
  publicClient?: boolean
  refreshTokens?: boolean
  accessTokenFormat?: string
  requireDpop?: boolean
  requirePar?: boolean
}

export interface NewAppInput extends AppFields {
  name: string
  kind: string
  tenantId?: string
  environment?: string
  /** Set by operators only; a person's apps are always their own. */
  ownerUserId?: string
  /**
   * A public sandbox app is installed on its sandbox tenant (`tenantId`, or one made for it) from the
   * start, however it was made (CLI, admin API, portal), so the sandbox target_id answers tokens at once;
   * false only for tests that need an app not yet installed.
   */
  installOnSandbox?: boolean
}

export interface CreatedApp {
  app: App
  /** Shown once, never stored in clear. */
  clientSecret: string
  /** The tenant a sandbox marketplace app can test against before any customer installs it. */
  sandboxTenant?: Tenant
}

/** A public client has no secret to show (RFC 6749 §2.1). */
export type CreatedPublicClient = Omit<CreatedApp, 'clientSecret'> & { clientSecret: null }

/**
 * An operator makes any app. A person makes their own: a private one on a tenant they administer, a
 * public sandbox one tested on their partner sandbox, a public live one on no tenant.
 */
export async function createApp(ctx: OperationContext, actor: Actor, input: NewAppInput & { publicClient?: false }): Promise<CreatedApp>
export async function createApp(ctx: OperationContext, actor: Actor, input: NewAppInput): Promise<CreatedApp | CreatedPublicClient>
export async function createApp(ctx: OperationContext, actor: Actor, input: NewAppInput): Promise<CreatedApp | CreatedPublicClient> {
  requireSignedIn(actor, 'create apps')
  requireVerifiedPartner(ctx, actor)
  const now = ctx.now()
  const kind = oneOf(input.kind, kinds, 'kind')
  const tenant = await ownTenant(ctx, actor, input, kind)
  if (kind === 'private' && !tenant) throw invalid('a private app needs --tenant: the tenant it belongs to')
  const environment = oneOf(input.environment ?? tenant?.environment ?? 'sandbox', environments, 'environment')
  if (tenant && tenant.environment !== environment) throw invalid(`a ${environment} app cannot belong to a ${tenant.environment} tenant`)
  const ownerUserId = actor.kind === 'person' ? actor.user.id : (input.ownerUserId ?? null)
  const app = withFields(
    {
      id: randomUUID(),
      clientId: newClientId(),
      name: '',
      kind,
      environment,
      tenantId: tenant?.id ?? null,
      ownerUserId,
      installUrl: null,
      redirectUris: [],
      contactEmail: null,
      dataApiUrl: null,
      scopes: ['api'],
      tokenTtl: null,
      createdAt: now,
      description: '',
      listed: false,
      logoUrl: null,
      shortDescription: '',
      categories: [],
      publisher: null,
      supportUrl: null,
      privacyPolicyUrl: null,
      review: 'approved',
      reviewReason: null,
      approvedAt: now,
      proposed: null,
      suspendedAt: null,
      suspendedReason: null,
      suspendedWithAccount: false,
      ...newClientSettings(input.publicClient === true),
    },
    input,
  )
  // A partner's public live app reaches real customers only once an operator approved it (review.ts).
  if (actor.kind === 'person' && isReviewed(app)) Object.assign(app, { review: 'pending', approvedAt: null })
  const clientSecret = app.publicClient ? null : newClientSecret(environment)
  // A marketplace app gets a sandbox tenant to test against, stored with the app.
  const testsOnSandbox = kind === 'public' && environment === 'sandbox'
  const madeTenant = testsOnSandbox && !tenant ? newTenant({ name: `${app.name} sandbox`, environment: 'sandbox' }, now) : undefined
  const sandboxTenant = testsOnSandbox ? (tenant ?? madeTenant) : undefined
  if (sandboxTenant) app.tenantId = sandboxTenant.id
  const grantTenant = kind === 'private' ? tenant : input.installOnSandbox === false ? undefined : sandboxTenant
  const grant = grantTenant ? newGrant(app, grantTenant.id, app.scopes, now) : undefined
  // Everything commits at once: the app, its secret, tenant, grant, the grant's event and the audit entry.
  await ctx.storage.createApp(app, clientSecret === null ? undefined : newSecret(app.id, clientSecret, now, ctx.masterKey), grant, {
    ...(madeTenant ? { tenant: madeTenant } : {}),
    events: grant ? newEvent(app, grant.tenantId, 'grant.created', { grant_id: grant.id, scopes: grant.scopes }, now) : [],
    audit: [
      auditEntry(
        actor,
        now,
        'app.created',
        { objectId: app.id, appId: app.id, clientId: app.clientId, tenantId: app.tenantId },
        { name: app.name, kind, environment, review: app.review, public_client: app.publicClient },
      ),
    ],
  })
  return sandboxTenant ? { app, clientSecret, sandboxTenant } : { app, clientSecret }
}

/** The tenant a new app belongs to or tests on, as the actor may choose it. */
async function ownTenant(ctx: OperationContext, actor: Actor, input: NewAppInput, kind: AppKind): Promise<Tenant | undefined> {
  if (actor.kind !== 'person') return input.tenantId ? tenantFor(ctx, actor, input.tenantId) : undefined
  if (kind === 'public') return input.environment === 'live' ? undefined : ensurePartnerSandbox(ctx, actor)
  const tenant = (await adminTenants(ctx, actor.user)).find((t) => t.id === input.tenantId)
  if (!tenant) throw invalid('choose a tenant you own or administer for a private app')
  return tenant
}

/**
 * Under the `verified` and `invite` sign-up policies (the default is `verified`), a partner creates
 * apps only once they confirmed their address: an app's notices then reach a real mailbox.
 */
function requireVerifiedPartner(ctx: OperationContext, actor: Actor): void {
  if (actor.kind !== 'person' || actor.user.emailVerifiedAt !== null || ctx.config?.signup === 'open') return
  throw forbidden(`confirm your email address first: follow the link we sent to ${actor.user.email}`)
}

/**
 * Changes what a person may change of an app: never its id, client_id, kind, environment or tenant.
 * Never its grants either: widening `scopes` widens no grant and no token (wider access needs a new
 * consent or install); narrowing it narrows what new client-credentials tokens carry (grants/client-credentials.ts).
 * A partner's change to a reviewed app waits for review (review.ts); an operator's takes effect as made.
 */
export async function updateApp(ctx: OperationContext, actor: Actor, input: { clientId: string; fields: AppFields }): Promise<App> {
  const app = await appFor(ctx, actor, input.clientId)
  const submits = actor.kind === 'person' && isReviewed(app)
  const updated = submits ? submitted(app, input.fields) : withFields({ ...app }, input.fields)
  const changed = appFieldNames.filter((k) => input.fields[k] !== undefined && JSON.stringify(asProposed(app)[k]) !== JSON.stringify(asProposed(updated)[k]))
  const about = { objectId: app.id, appId: app.id, clientId: app.clientId, tenantId: app.tenantId }
  await ctx.storage.updateApp(updated, { audit: [auditEntry(actor, ctx.now(), 'app.updated', about, { changed, review: updated.review })] })
  ctx.cache.apply({ kind: 'app', ref: app.id })
  return updated
}

/** The app as its partner edits it: what waits for review over what is in force. */
export const asProposed = (app: App): App => ({ ...app, ...(app.proposed ?? {}) })

/**
 * A partner's save of a reviewed app. Never approved, the app itself is the submission. Approved, the
 * reviewed fields go to `proposed` (the approved ones stay in force) and the rest apply at once; a save
 * that leaves the reviewed fields as approved withdraws what waited. Every save asks for review again.
 */
function submitted(app: App, fields: AppFields): App {
  const candidate = withFields(asProposed(app), fields)
  if (app.approvedAt === null) return { ...candidate, review: 'pending', proposed: null }
  const proposed = reviewedFields(candidate)
  const unchanged = JSON.stringify(proposed) === JSON.stringify(reviewedFields(app))
  return { ...candidate, ...reviewedFields(app), proposed: unchanged ? null : proposed, review: unchanged ? 'approved' : 'pending' }
}

const appFieldNames = [
  'name',
  'description',
  'scopes',
  'tokenTtl',
  'installUrl',
  'redirectUris',
  'contactEmail',
  'dataApiUrl',
  'listed',
  'logoUrl',
  'shortDescription',
  'categories',
  'publisher',
  'supportUrl',
  'privacyPolicyUrl',
  'refreshTokens',
  'accessTokenFormat',
  'requireDpop',
  'requirePar',
] as const satisfies readonly (keyof AppFields)[]

/** Deletes an app; its grants, and so every token it holds, end at once. Returns the grants it ended. */
export async function deleteApp(ctx: OperationContext, actor: Actor, input: { clientId: string }): Promise<{ app: App; grantIds: string[] }> {
  return endApp(ctx, actor, await appFor(ctx, actor, input.clientId))
}

/** Deletes an app the caller has already found the actor may delete (appFor, or RFC 7592's registration access token). */
export async function endApp(ctx: OperationContext, actor: Actor, app: App, action = 'app.deleted'): Promise<{ app: App; grantIds: string[] }> {
  const grantIds = (await ctx.storage.listGrants({ appId: app.id })).map((g) => g.id)
  const audit = [
    auditEntry(actor, ctx.now(), action, { objectId: app.id, appId: app.id, clientId: app.clientId, tenantId: app.tenantId }, { name: app.name, client_id: app.clientId }),
  ]
  await ctx.storage.deleteApp(app.id, ctx.now(), { audit })
  ctx.cache.apply({ kind: 'app', ref: app.id })
  for (const ref of grantIds) ctx.cache.apply({ kind: 'grant', ref })
  return { app, grantIds }
}

/** A new secret now; the old ones keep working for `graceSeconds`, so deployments can roll over. */
export async function rotateSecret(
  ctx: OperationContext,
  actor: Actor,
  input: { clientId: string; graceSeconds: number },
): Promise<{ app: App; clientSecret: string; oldSecretsExpireAt: number }> {
  const now = ctx.now()
  const app = await appFor(ctx, actor, input.clientId)
  if (app.publicClient) throw invalid('a public client has no secret to rotate')
  const { graceSeconds } = input
  if (!Number.isInteger(graceSeconds) || graceSeconds < 0 || graceSeconds > 30 * 86400) throw invalid('grace period must be 0 to 2592000 seconds')
  const clientSecret = newClientSecret(app.environment)
  const oldSecretsExpireAt = now + graceSeconds * 1000
  const audit = [auditEntry(actor, now, 'secret.rotated', { objectId: app.id, appId: app.id, clientId: app.clientId, tenantId: app.tenantId }, { grace_seconds: graceSeconds })]
  await ctx.storage.rotateSecret(app.id, newSecret(app.id, clientSecret, now, ctx.masterKey), oldSecretsExpireAt, { audit })
  ctx.cache.apply({ kind: 'app', ref: app.id })
  return { app, clientSecret, oldSecretsExpireAt }
}

/**
 * Sends a delivered or failed Data API event again, same id and body: an operator any, a partner only
 * their own app's (and, with `appId`, only that app's). `queued` is false when it is already waiting.
 */
export async function redeliverEvent(ctx: OperationContext, actor: Actor, input: { eventId: string; appId?: string }): Promise<{ event: OutboxEvent; queued: boolean }> {
  const event = await eventFor(ctx, actor, input)
  const now = ctx.now()
  return { event, queued: await ctx.storage.redeliver(event.id, now, { audit: [eventAudit(actor, now, 'event.redelivered', event)] }) }
}

/**
 * "Retry now" for an event waiting out its backoff: its next attempt is due at once, same id and body.
 * Who may: as redeliverEvent. `queued` is false when it is no longer pending or is being attempted.
 */
export async function retryEventNow(ctx: OperationContext, actor: Actor, input: { eventId: string; appId?: string }): Promise<{ event: OutboxEvent; queued: boolean }> {
  const event = await eventFor(ctx, actor, input)
  const now = ctx.now()
  return { event, queued: await ctx.storage.retryNow(event.id, now, { audit: [eventAudit(actor, now, 'event.retried', event)] }) }
}

/** Who sent an event again, recorded only when it was (an operator acting on a partner's app answers for it). */
const eventAudit = (actor: Actor, now: number, action: string, event: OutboxEvent) =>
  auditEntry(actor, now, action, { objectId: event.id, appId: event.appId, tenantId: event.tenantId }, { event_id: event.id, type: event.type })

/** The event, if the actor may act on it: an operator any, a person their own app's; with `appId`, only that app's. */
async function eventFor(ctx: OperationContext, actor: Actor, input: { eventId: string; appId?: string }): Promise<OutboxEvent> {
  const event = isLookupKey(input.eventId) ? await ctx.storage.getEvent(input.eventId) : undefined
  const owner = event && actor.kind === 'person' ? (await ctx.storage.getApp(event.appId))?.ownerUserId : undefined
  const mayAct = actor.kind === 'operator' || (actor.kind === 'person' && owner === actor.user.id)
  if (!event || !mayAct || (input.appId !== undefined && event.appId !== input.appId)) throw notFound(`no event ${input.eventId}`)
  return event
}

/**
 * "Send a test event": a `ping` to the app's Data API URL through the outbox, so it is signed, retried
 * and shown like any other event. Its owner (or an operator) may; audited with the event's id.
 */
export async function sendTestEvent(ctx: OperationContext, actor: Actor, input: { clientId: string }): Promise<OutboxEvent> {
  const app = await appFor(ctx, actor, input.clientId)
  const now = ctx.now()
  const [event] = newEvent(app, app.tenantId, 'ping', { test: true, message: `A test event for ${app.name}` }, now)
  if (!event) throw invalid('set a Data API URL first: test events are sent there', 'data_api_url')
  const about = { objectId: event.id, appId: app.id, clientId: app.clientId, tenantId: app.tenantId }
  await ctx.storage.queueEvents([event], { audit: [auditEntry(actor, now, 'event.test_sent', about, { event_id: event.id })] })
  return event
}

/** Validates `fields` and applies them to `app`; the rules every way of creating or editing an app shares. */
function withFields(app: App, fields: AppFields): App {
  if (fields.name !== undefined) app.name = requireText(fields.name, 'name', 'name')
  if (!app.name) throw invalid('name is required (at most 200 characters)', 'name')
  if (fields.description !== undefined) {
    if (fields.description.length > 2000) throw invalid('description is at most 2000 characters', 'description')
    app.description = fields.description.trim()
  }
  if (fields.scopes !== undefined) app.scopes = safeScopes(fields.scopes)
  if (fields.tokenTtl !== undefined) app.tokenTtl = tokenTtl(fields.tokenTtl)
  if (fields.installUrl !== undefined) app.installUrl = optionalUrl(fields.installUrl ?? undefined, 'install URL', 'install_url')
  if (fields.redirectUris !== undefined) app.redirectUris = [...new Set(fields.redirectUris.map((u) => requireRedirectUri(u, app.publicClient)))]
  if (fields.contactEmail !== undefined) app.contactEmail = optionalEmail(fields.contactEmail ?? undefined)
  if (fields.dataApiUrl !== undefined) app.dataApiUrl = optionalUrl(fields.dataApiUrl ?? undefined, 'Data API URL', 'data_api_url')
  if (fields.listed !== undefined) app.listed = fields.listed
  withListing(app, fields)
  withClientSettings(app, fields)
  if (app.environment === 'live') requireLiveUrls(app)
  // Install sends a customer to the install URL; connecting (authorization code) needs a redirect URI.
  // A live public app needs a way in: either, or both (fieldmargin integrations have only redirect URIs).
  if (app.kind === 'public' && app.environment === 'live' && !app.installUrl && app.redirectUris.length === 0) {
    throw invalid('a live public app needs an install URL (marketplace Install), a redirect URI (connecting through /authorize), or both', 'install_url')
  }
  if (app.listed && (app.kind !== 'public' || !app.installUrl)) throw invalid('only a public app with an install URL can be listed in the marketplace', 'listed')
  return app
}

/** The marketplace listing's fields: https links a customer's browser loads, one-line texts, known categories. */
function withListing(app: App, fields: AppFields): void {
  if (fields.logoUrl !== undefined) app.logoUrl = optionalHttpsUrl(fields.logoUrl, 'logo URL', 'logo_url')
  if (fields.shortDescription !== undefined) app.shortDescription = oneLine(fields.shortDescription, 'short description', 'short_description', shortDescriptionMax)
  if (fields.categories !== undefined) app.categories = someOf(fields.categories, appCategories, 'categories', 'categories', maxCategories)
  if (fields.publisher !== undefined) app.publisher = oneLine(fields.publisher ?? '', 'publisher', 'publisher', 100) || null
  if (fields.supportUrl !== undefined) app.supportUrl = optionalHttpsUrl(fields.supportUrl, 'support URL', 'support_url')
  if (fields.privacyPolicyUrl !== undefined) app.privacyPolicyUrl = optionalHttpsUrl(fields.privacyPolicyUrl, 'privacy policy URL', 'privacy_policy_url')
}

/** How a new app authenticates and what its tokens are: a public client always gets refresh tokens. */
export const newClientSettings = (publicClient: boolean): Pick<App, ClientSetting | 'publicClient' | 'registration' | 'registrationTokenHash' | 'metadataExpiresAt'> => ({
  publicClient,
  refreshTokens: publicClient,
  accessTokenFormat: 'jwt',
  requireDpop: false,
  requirePar: false,
  registration: 'portal',
  registrationTokenHash: null,
  metadataExpiresAt: null,
})

type ClientSetting = 'refreshTokens' | 'accessTokenFormat' | 'requireDpop' | 'requirePar'

const tokenFormats = ['jwt', 'opaque'] as const

/** OAuth 2.1 settings (docs/oauth21.md). A public client cannot do without refresh tokens: it has nothing else to renew with. */
function withClientSettings(app: App, fields: AppFields): void {
  if (fields.refreshTokens !== undefined) app.refreshTokens = fields.refreshTokens
  if (fields.accessTokenFormat !== undefined) app.accessTokenFormat = oneOf(fields.accessTokenFormat, tokenFormats, 'access token format', 'access_token_format')
  if (fields.requireDpop !== undefined) app.requireDpop = fields.requireDpop
  if (fields.requirePar !== undefined) app.requirePar = fields.requirePar
  if (app.publicClient && !app.refreshTokens) throw invalid('a public client always gets refresh tokens', 'refresh_tokens')
}

/** The app's own access-token lifetime; null falls back to the server's default for its kind. */
function tokenTtl(ttl: number | null): number | null {
  if (ttl !== null && (!Number.isInteger(ttl) || ttl < 60 || ttl > 86400 * 30)) throw invalid('token lifetime must be a whole number of seconds from 60 to 2592000', 'token_ttl')
  return ttl
}

/**
 * Live apps carry real customers' codes, install requests and events: every URL they use must be https.
 * Plain http only for the loopback interface, where nothing crosses a network (RFC 8252 §7.3; RFC 9700 §2.1).
 */
function requireLiveUrls(app: App): void {
  const check = (value: string | null, name: string, field: AppField) => {
    if (value !== null && !isSecureUrl(value)) throw invalid(`${name} ${value} must use https in a live app (http only for 127.0.0.1, [::1] or localhost)`, field)
  }
  check(app.installUrl, 'install URL', 'install_url')
  check(app.dataApiUrl, 'Data API URL', 'data_api_url')
  for (const uri of app.redirectUris) if (!isPrivateUseUri(uri)) check(uri, 'redirect URI', 'redirect_uris')
}

function newSecret(appId: string, secret: string, now: number, masterKey: Buffer | undefined): AppSecret {
  const id = randomUUID()
  return {
    id,
    appId,
    secretHash: hashSecret(secret),
    hint: secretHint(secret),
    createdAt: now,
    expiresAt: null,
    secretEnc: masterKey ? seal(secret, id, masterKey) : null,
  }
}

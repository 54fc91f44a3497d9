import { randomUUID } from 'node:crypto'
import type { SigningAlg } from './config.js'
import { planBootstrap, planRotation, type KeyPlan } from './keys.js'
import type { App, AppKind, AppSecret, Environment, Grant, Role, SigningKeyRecord, Tenant, User } from './model.js'
import { missingFrom, parseScope } from './scopes.js'
import { auditEntry, type AdminOptions } from './audit.js'
import { newEvent } from './events.js'
import { hashSecret, newClientId, newClientSecret, seal, secretHint } from './secrets.js'
import { conflict, invalid, notFound, type AppField } from './operation-error.js'
import { hashPassword } from './sign-in.js'
import { withEvents, type Alongside, type Storage } from './storage.js'

/*
 * Operations people run on the store: the CLI, the admin API and the portal call the same ones. They
 * validate their own input and throw OperationError (operation-error.ts): a code the edge maps, and a
 * message meant for a person.
 */

const environments: readonly Environment[] = ['sandbox', 'live']
const kinds: readonly AppKind[] = ['private', 'public']
const roles: readonly Role[] = ['owner', 'admin', 'member']

export async function createTenant(storage: Storage, input: { name: string; environment: string }, now = Date.now()): Promise<Tenant> {
  return storage.createTenant(newTenant(input, now))
}

function newTenant(input: { name: string; environment: string }, now: number): Tenant {
  const name = requireText(input.name, 'name')
  return { id: randomUUID(), name, environment: oneOf(input.environment, environments, 'environment'), marketplaceId: randomUUID(), createdAt: now }
}

export async function createUser(
  storage: Storage, input: { email: string; password: string; tenantId?: string; role?: string }, now = Date.now(),
): Promise<User> {
  const email = requireText(input.email, 'email').toLowerCase()
  if (!/^[^@\s]+@[^@\s]+$/.test(email)) throw invalid('email is not an email address')
  if (input.password.length < 10) throw invalid('password must be at least 10 characters')
  if (await storage.getUserByEmail(email)) throw conflict(`a user with email ${email} exists`)
  const memberships = []
  if (input.tenantId) {
    await requireTenant(storage, input.tenantId)
    memberships.push({ tenantId: input.tenantId, role: oneOf(input.role ?? 'member', roles, 'role') })
  }
  const passwordHash = await hashPassword(input.password)
  return storage.createUser({ id: randomUUID(), email, passwordHash, createdAt: now, sandboxTenantId: null }, memberships)
}

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
}

export interface NewAppInput extends AppFields {
  name: string
  kind: string
  tenantId?: string
  environment?: string
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

export async function createApp(storage: Storage, input: NewAppInput, opts: AdminOptions = {}): Promise<CreatedApp> {
  const now = opts.now ?? Date.now()
  const kind = oneOf(input.kind, kinds, 'kind')
  const tenant = input.tenantId ? await requireTenant(storage, input.tenantId) : undefined
  if (kind === 'private' && !tenant) throw invalid('a private app needs --tenant: the tenant it belongs to')
  const environment = oneOf(input.environment ?? tenant?.environment ?? 'sandbox', environments, 'environment')
  if (tenant && tenant.environment !== environment) throw invalid(`a ${environment} app cannot belong to a ${tenant.environment} tenant`)
  const app = withFields({
    id: randomUUID(), clientId: newClientId(), name: '', kind, environment, tenantId: tenant?.id ?? null, ownerUserId: input.ownerUserId ?? null,
    installUrl: null, redirectUris: [], contactEmail: null, dataApiUrl: null, scopes: ['api'], tokenTtl: null, createdAt: now,
    description: '', listed: false,
  }, input)
  const clientSecret = newClientSecret(environment)
  // A marketplace app gets a sandbox tenant to test against, stored with the app.
  const testsOnSandbox = kind === 'public' && environment === 'sandbox'
  const madeTenant = testsOnSandbox && !tenant ? newTenant({ name: `${app.name} sandbox`, environment: 'sandbox' }, now) : undefined
  const sandboxTenant = testsOnSandbox ? (tenant ?? madeTenant) : undefined
  if (sandboxTenant) app.tenantId = sandboxTenant.id
  const grantTenant = kind === 'private' ? tenant : input.installOnSandbox === false ? undefined : sandboxTenant
  const grant = grantTenant ? newGrant(app, grantTenant.id, app.scopes, now) : undefined
  // Everything commits at once: the app, its secret, tenant, grant, the grant's event and the audit entry.
  await storage.createApp(app, newSecret(app.id, clientSecret, now, opts.masterKey), grant, {
    ...(madeTenant ? { tenant: madeTenant } : {}),
    events: grant ? newEvent(app, grant.tenantId, 'grant.created', { grant_id: grant.id, scopes: grant.scopes }, now) : [],
    audit: [auditEntry({ ...opts, now }, 'app.created', { objectId: app.id, appId: app.id, clientId: app.clientId, tenantId: app.tenantId }, { name: app.name, kind, environment })],
  })
  return sandboxTenant ? { app, clientSecret, sandboxTenant } : { app, clientSecret }
}

/**
 * Changes what a person may change of an app: never its id, client_id, kind, environment or tenant.
 * Never its grants either: widening `scopes` widens no grant and no token (wider access needs a new
 * consent or install); narrowing it narrows what new client-credentials tokens carry (grants/client-credentials.ts).
 */
export async function updateApp(storage: Storage, clientId: string, changes: AppFields, opts: AdminOptions = {}): Promise<App> {
  const app = await requireApp(storage, clientId)
  const updated = withFields({ ...app }, changes)
  const changed = (Object.keys(changes) as (keyof AppFields)[]).filter((k) => JSON.stringify(app[k]) !== JSON.stringify(updated[k]))
  await storage.updateApp(updated, { audit: [auditEntry(opts, 'app.updated', { objectId: app.id, appId: app.id, clientId: app.clientId, tenantId: app.tenantId }, { changed })] })
  return updated
}

/** Deletes an app; its grants, and so every token it holds, end at once. Returns the grants it ended. */
export async function deleteApp(storage: Storage, clientId: string, opts: AdminOptions = {}): Promise<{ app: App; grantIds: string[] }> {
  const app = await requireApp(storage, clientId)
  const grantIds = (await storage.listGrants({ appId: app.id })).map((g) => g.id)
  const audit = [auditEntry(opts, 'app.deleted', { objectId: app.id, appId: app.id, clientId: app.clientId, tenantId: app.tenantId }, { name: app.name, client_id: app.clientId })]
  await storage.deleteApp(app.id, opts.now ?? Date.now(), { audit })
  return { app, grantIds }
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
  if (fields.redirectUris !== undefined) app.redirectUris = [...new Set(fields.redirectUris.map((u) => requireRedirectUri(u)))]
  if (fields.contactEmail !== undefined) app.contactEmail = optionalEmail(fields.contactEmail ?? undefined)
  if (fields.dataApiUrl !== undefined) app.dataApiUrl = optionalUrl(fields.dataApiUrl ?? undefined, 'Data API URL', 'data_api_url')
  if (fields.listed !== undefined) app.listed = fields.listed
  if (app.environment === 'live') requireLiveUrls(app)
  // Install sends a customer to the install URL; connecting (authorization code) needs a redirect URI.
  // A live public app needs a way in: either, or both (fieldmargin integrations have only redirect URIs).
  if (app.kind === 'public' && app.environment === 'live' && !app.installUrl && app.redirectUris.length === 0) {
    throw invalid('a live public app needs an install URL (marketplace Install), a redirect URI (connecting through /authorize), or both', 'install_url')
  }
  if (app.listed && (app.kind !== 'public' || !app.installUrl)) throw invalid('only a public app with an install URL can be listed in the marketplace', 'listed')
  return app
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
  for (const uri of app.redirectUris) check(uri, 'redirect URI', 'redirect_uris')
}

/** https, or http to a loopback host: 127.0.0.0/8, [::1], localhost (RFC 8252 §7.3, RFC 6761 §6.3). */
export function isSecureUrl(value: string): boolean {
  const url = new URL(value)
  if (url.protocol === 'https:') return true
  const host = url.hostname.toLowerCase()
  return url.protocol === 'http:' && (host === 'localhost' || host.endsWith('.localhost') || host === '[::1]' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host))
}

/** A new secret now; the old ones keep working for `graceSeconds`, so deployments can roll over. */
export async function rotateSecret(
  storage: Storage, clientId: string, graceSeconds: number, opts: AdminOptions = {},
): Promise<{ app: App; clientSecret: string; oldSecretsExpireAt: number }> {
  const now = opts.now ?? Date.now()
  const app = await requireApp(storage, clientId)
  if (!Number.isInteger(graceSeconds) || graceSeconds < 0 || graceSeconds > 30 * 86400) throw invalid('grace period must be 0 to 2592000 seconds')
  const clientSecret = newClientSecret(app.environment)
  const oldSecretsExpireAt = now + graceSeconds * 1000
  const audit = [auditEntry({ ...opts, now }, 'secret.rotated', { objectId: app.id, appId: app.id, clientId: app.clientId, tenantId: app.tenantId }, { grace_seconds: graceSeconds })]
  await storage.rotateSecret(app.id, newSecret(app.id, clientSecret, now, opts.masterKey), oldSecretsExpireAt, { audit })
  return { app, clientSecret, oldSecretsExpireAt }
}

export async function createGrant(storage: Storage, input: { clientId: string; tenantId: string; scopes?: string }, opts: AdminOptions = {}): Promise<Grant> {
  const app = await requireApp(storage, input.clientId)
  const tenant = await requireTenant(storage, input.tenantId)
  if (app.kind === 'private' && app.tenantId !== tenant.id) throw invalid('a private app acts only on its own tenant')
  if (tenant.environment !== app.environment) throw invalid(`a ${app.environment} app cannot be granted a ${tenant.environment} tenant`)
  const scopes = input.scopes === undefined ? app.scopes : safeScopes(input.scopes)
  const beyond = missingFrom(scopes, app.scopes)
  if (beyond.length) throw invalid(`the app may not ask for: ${beyond.join(' ')}`)
  const existing = await storage.findActiveGrant(app.id, tenant.id)
  if (existing) return existing
  const now = opts.now ?? Date.now()
  const fresh = newGrant(app, tenant.id, scopes, now)
  const audit = [auditEntry(opts, 'grant.created', { objectId: fresh.id, appId: app.id, clientId: app.clientId, tenantId: tenant.id }, { scopes })]
  return storage.createGrant(fresh, { events: newEvent(app, tenant.id, 'grant.created', { grant_id: fresh.id, scopes }, now), audit })
}

/** Ends a grant and every token standing on it; `action` names it in the log (an uninstall, a disconnect). */
export async function revokeGrant(storage: Storage, grantId: string, opts: AdminOptions = {}, action = 'grant.revoked'): Promise<Grant> {
  const grant = await storage.getGrant(grantId)
  if (!grant) throw notFound(`no grant ${grantId}`)
  const now = opts.now ?? Date.now()
  const app = await storage.getApp(grant.appId)
  const events = app ? newEvent(app, grant.tenantId, action === 'app.uninstalled' ? 'app.uninstalled' : 'grant.revoked', { grant_id: grant.id }, now) : []
  await storage.revokeGrant(grantId, now, { events, audit: [auditEntry(opts, action, { objectId: grant.id, appId: grant.appId, tenantId: grant.tenantId })] })
  return { ...grant, status: 'revoked' }
}

/**
 * One active grant per (app, tenant): widens it with `scopes`, or creates it; a consent or install
 * racing this one may create it first, and then that one is widened. `also` names rows (an install,
 * its events and audit entry) that commit with the grant as it ends up.
 */
export async function connectApp(
  storage: Storage, app: App, tenantId: string, scopes: string[], now: number, also?: (grant: Grant) => Alongside,
): Promise<{ grant: Grant; created: boolean }> {
  for (let attempt = 0; attempt < 3; attempt++) {
    const existing = await storage.findActiveGrant(app.id, tenantId)
    if (existing) {
      const widened = await storage.widenGrantScopes(existing.id, scopes, now, (w, grew) =>
        withEvents(grew ? newEvent(app, tenantId, 'grant.scopes_changed', { grant_id: w.id, scopes: w.scopes }, now) : [], also?.(w)))
      if (widened) return { grant: widened, created: false }
      continue
    }
    try {
      const grant = newGrant(app, tenantId, scopes, now)
      const events = newEvent(app, tenantId, 'grant.created', { grant_id: grant.id, scopes }, now)
      return { grant: await storage.createGrant(grant, withEvents(events, also?.(grant))), created: true }
    } catch {
      // The unique index on active grants refused a second one: another request won; widen theirs.
    }
  }
  throw new Error('could not create or widen the grant')
}

/**
 * First start: creates the signing keys the server needs, if they are not there yet. Processes that
 * start together on an empty store race here; exactly one set of keys wins and every process uses it.
 */
export async function ensureSigningKeys(storage: Storage, alg: SigningAlg, masterKey: Buffer, now = Date.now()): Promise<SigningKeyRecord[]> {
  return applyKeyPlan(storage, (records) => planBootstrap(records, alg, masterKey, now))
}

export async function rotateSigningKeys(
  storage: Storage, alg: SigningAlg, masterKey: Buffer, defaultMaxTtl: number, now = Date.now(),
): Promise<SigningKeyRecord[]> {
  const apps = await storage.listApps()
  const maxTokenTtl = Math.max(defaultMaxTtl, ...apps.map((a) => a.tokenTtl ?? 0))
  return applyKeyPlan(storage, (records) => planRotation(records, alg, masterKey, now, maxTokenTtl))
}

/** Plans a change from the stored keys and saves it only if they are still those keys; else plans again. */
async function applyKeyPlan(storage: Storage, plan: (records: SigningKeyRecord[]) => Promise<KeyPlan>): Promise<SigningKeyRecord[]> {
  for (let attempt = 0; attempt < 5; attempt++) {
    const records = await storage.listSigningKeys()
    const { insert, update } = await plan(records)
    if (insert.length === 0 && update.length === 0) return records
    if (await storage.saveSigningKeys(insert, update, records)) return storage.listSigningKeys()
  }
  throw conflict('the signing keys kept changing under this command: run it again')
}

function newGrant(app: App, tenantId: string, scopes: string[], now: number): Grant {
  return { id: randomUUID(), appId: app.id, tenantId, scopes, status: 'active', createdAt: now, updatedAt: now }
}

function newSecret(appId: string, secret: string, now: number, masterKey: Buffer | undefined): AppSecret {
  const id = randomUUID()
  return {
    id, appId, secretHash: hashSecret(secret), hint: secretHint(secret), createdAt: now, expiresAt: null,
    secretEnc: masterKey ? seal(secret, id, masterKey) : null,
  }
}

async function requireTenant(storage: Storage, id: string): Promise<Tenant> {
  const tenant = await storage.getTenant(id)
  if (!tenant) throw notFound(`no tenant ${id}`)
  return tenant
}

async function requireApp(storage: Storage, clientId: string): Promise<App> {
  const app = await storage.getAppByClientId(clientId)
  if (!app) throw notFound(`no app with client_id ${clientId}`)
  return app
}

function oneOf<T extends string>(value: string, allowed: readonly T[], name: string): T {
  if (!(allowed as readonly string[]).includes(value)) throw invalid(`${name} must be one of: ${allowed.join(', ')}`)
  return value as T
}

function requireText(value: string | undefined, name: string, field?: AppField): string {
  const text = value?.trim()
  if (!text || text.length > 200) throw invalid(`${name} is required (at most 200 characters)`, field)
  return text
}

function safeScopes(value: string): string[] {
  try {
    return parseScope(value)
  } catch {
    throw invalid('scopes must be space-separated scope names', 'scopes')
  }
}

function optionalEmail(value: string | undefined): string | null {
  if (value === undefined || value.trim() === '') return null
  if (!/^[^@\s]+@[^@\s]+$/.test(value.trim()) || value.length > 320) throw invalid('contact email is not an email address', 'contact_email')
  return value.trim()
}

function optionalUrl(value: string | undefined, name: string, field: AppField): string | null {
  if (value === undefined || value === '') return null
  if (!isHttpUrl(value)) throw invalid(`${name} must be an http(s) URL`, field)
  return value
}

/** RFC 9700 §4.1: redirect URIs are compared exactly, so they must be absolute and carry no fragment. */
function requireRedirectUri(value: string): string {
  if (!isHttpUrl(value) || value.includes('#')) throw invalid(`redirect URI ${value} must be an absolute http(s) URL without a fragment`, 'redirect_uris')
  return value
}

function isHttpUrl(value: string): boolean {
  try {
    const url = new URL(value)
    return (url.protocol === 'https:' || url.protocol === 'http:') && url.hostname !== ''
  } catch {
    return false
  }
}

import { randomUUID } from 'node:crypto'
import type { SigningAlg } from './config.js'
import { planBootstrap, planRotation, type KeyPlan } from './keys.js'
import type { App, AppKind, AppSecret, Environment, Grant, Role, SigningKeyRecord, Tenant, User } from './model.js'
import { missingFrom, parseScope } from './scopes.js'
import { hashSecret, newClientId, newClientSecret, secretHint } from './secrets.js'
import { hashPassword } from './sign-in.js'
import type { Storage } from './storage.js'

/**
 * Operations people run on the store (CLI today; admin API and portal later). They validate their own
 * input and throw AdminError with a message meant for a person.
 */
export class AdminError extends Error {}

const environments: readonly Environment[] = ['sandbox', 'live']
const kinds: readonly AppKind[] = ['private', 'public']
const roles: readonly Role[] = ['owner', 'admin', 'member']

export async function createTenant(storage: Storage, input: { name: string; environment: string }, now = Date.now()): Promise<Tenant> {
  const name = requireText(input.name, 'name')
  return storage.createTenant({ id: randomUUID(), name, environment: oneOf(input.environment, environments, 'environment'), marketplaceId: randomUUID(), createdAt: now })
}

export async function createUser(
  storage: Storage, input: { email: string; password: string; tenantId?: string; role?: string }, now = Date.now(),
): Promise<User> {
  const email = requireText(input.email, 'email').toLowerCase()
  if (!/^[^@\s]+@[^@\s]+$/.test(email)) throw new AdminError('email is not an email address')
  if (input.password.length < 10) throw new AdminError('password must be at least 10 characters')
  if (await storage.getUserByEmail(email)) throw new AdminError(`a user with email ${email} exists`)
  const memberships = []
  if (input.tenantId) {
    await requireTenant(storage, input.tenantId)
    memberships.push({ tenantId: input.tenantId, role: oneOf(input.role ?? 'member', roles, 'role') })
  }
  const passwordHash = await hashPassword(input.password)
  return storage.createUser({ id: randomUUID(), email, passwordHash, createdAt: now }, memberships)
}

export interface NewAppInput {
  name: string
  kind: string
  tenantId?: string
  environment?: string
  scopes?: string
  tokenTtl?: number
  installUrl?: string
  redirectUris?: string[]
  contactEmail?: string
  dataApiUrl?: string
  ownerUserId?: string
}

export interface CreatedApp {
  app: App
  /** Shown once, never stored in clear. */
  clientSecret: string
  /** The tenant a sandbox marketplace app can test against before any customer installs it. */
  sandboxTenant?: Tenant
}

export async function createApp(storage: Storage, input: NewAppInput, now = Date.now()): Promise<CreatedApp> {
  const kind = oneOf(input.kind, kinds, 'kind')
  const tenant = input.tenantId ? await requireTenant(storage, input.tenantId) : undefined
  if (kind === 'private' && !tenant) throw new AdminError('a private app needs --tenant: the tenant it belongs to')
  const environment = oneOf(input.environment ?? tenant?.environment ?? 'sandbox', environments, 'environment')
  if (tenant && tenant.environment !== environment) throw new AdminError(`a ${environment} app cannot belong to a ${tenant.environment} tenant`)
  if (kind === 'public' && environment === 'live' && !input.installUrl) throw new AdminError('a live marketplace app needs an install URL')
  const tokenTtl = input.tokenTtl ?? null
  if (tokenTtl !== null && (!Number.isInteger(tokenTtl) || tokenTtl < 60 || tokenTtl > 86400 * 30)) {
    throw new AdminError('token TTL must be a whole number of seconds from 60 to 2592000')
  }
  const app: App = {
    id: randomUUID(),
    clientId: newClientId(),
    name: requireText(input.name, 'name'),
    kind,
    environment,
    tenantId: tenant?.id ?? null,
    ownerUserId: input.ownerUserId ?? null,
    installUrl: optionalUrl(input.installUrl, 'install URL'),
    redirectUris: (input.redirectUris ?? []).map((u) => requireRedirectUri(u)),
    contactEmail: input.contactEmail ?? null,
    dataApiUrl: optionalUrl(input.dataApiUrl, 'Data API URL'),
    scopes: input.scopes === undefined ? ['api'] : safeScopes(input.scopes),
    tokenTtl,
    createdAt: now,
  }
  const clientSecret = newClientSecret(environment)
  // A marketplace app gets a sandbox tenant to test against, installed there from the start.
  const sandboxTenant = kind === 'public' && environment === 'sandbox'
    ? (tenant ?? await createTenant(storage, { name: `${app.name} sandbox`, environment: 'sandbox' }, now))
    : undefined
  if (sandboxTenant) app.tenantId = sandboxTenant.id
  const grantTenant = kind === 'private' ? tenant : sandboxTenant
  const grant = grantTenant ? newGrant(app, grantTenant.id, app.scopes, now) : undefined
  await storage.createApp(app, newSecret(app.id, clientSecret, now), grant)
  return sandboxTenant ? { app, clientSecret, sandboxTenant } : { app, clientSecret }
}

/** A new secret now; the old ones keep working for `graceSeconds`, so deployments can roll over. */
export async function rotateSecret(storage: Storage, clientId: string, graceSeconds: number, now = Date.now()): Promise<{ app: App; clientSecret: string; oldSecretsExpireAt: number }> {
  const app = await requireApp(storage, clientId)
  if (!Number.isInteger(graceSeconds) || graceSeconds < 0 || graceSeconds > 30 * 86400) throw new AdminError('grace period must be 0 to 2592000 seconds')
  const clientSecret = newClientSecret(app.environment)
  const oldSecretsExpireAt = now + graceSeconds * 1000
  await storage.rotateSecret(app.id, newSecret(app.id, clientSecret, now), oldSecretsExpireAt)
  return { app, clientSecret, oldSecretsExpireAt }
}

export async function createGrant(storage: Storage, input: { clientId: string; tenantId: string; scopes?: string }, now = Date.now()): Promise<Grant> {
  const app = await requireApp(storage, input.clientId)
  const tenant = await requireTenant(storage, input.tenantId)
  if (app.kind === 'private' && app.tenantId !== tenant.id) throw new AdminError('a private app acts only on its own tenant')
  if (tenant.environment !== app.environment) throw new AdminError(`a ${app.environment} app cannot be granted a ${tenant.environment} tenant`)
  const scopes = input.scopes === undefined ? app.scopes : safeScopes(input.scopes)
  const beyond = missingFrom(scopes, app.scopes)
  if (beyond.length) throw new AdminError(`the app may not ask for: ${beyond.join(' ')}`)
  const existing = await storage.findActiveGrant(app.id, tenant.id)
  if (existing) return existing
  return storage.createGrant(newGrant(app, tenant.id, scopes, now))
}

export async function revokeGrant(storage: Storage, grantId: string, now = Date.now()): Promise<Grant> {
  const grant = await storage.getGrant(grantId)
  if (!grant) throw new AdminError(`no grant ${grantId}`)
  await storage.revokeGrant(grantId, now)
  return { ...grant, status: 'revoked' }
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
  throw new AdminError('the signing keys kept changing under this command: run it again')
}

function newGrant(app: App, tenantId: string, scopes: string[], now: number): Grant {
  return { id: randomUUID(), appId: app.id, tenantId, scopes, status: 'active', createdAt: now, updatedAt: now }
}

function newSecret(appId: string, secret: string, now: number): AppSecret {
  return { id: randomUUID(), appId, secretHash: hashSecret(secret), hint: secretHint(secret), createdAt: now, expiresAt: null }
}

async function requireTenant(storage: Storage, id: string): Promise<Tenant> {
  const tenant = await storage.getTenant(id)
  if (!tenant) throw new AdminError(`no tenant ${id}`)
  return tenant
}

async function requireApp(storage: Storage, clientId: string): Promise<App> {
  const app = await storage.getAppByClientId(clientId)
  if (!app) throw new AdminError(`no app with client_id ${clientId}`)
  return app
}

function oneOf<T extends string>(value: string, allowed: readonly T[], name: string): T {
  if (!(allowed as readonly string[]).includes(value)) throw new AdminError(`${name} must be one of: ${allowed.join(', ')}`)
  return value as T
}

function requireText(value: string | undefined, name: string): string {
  const text = value?.trim()
  if (!text || text.length > 200) throw new AdminError(`${name} is required (at most 200 characters)`)
  return text
}

function safeScopes(value: string): string[] {
  try {
    return parseScope(value)
  } catch {
    throw new AdminError('scopes must be space-separated scope names')
  }
}

function optionalUrl(value: string | undefined, name: string): string | null {
  if (value === undefined || value === '') return null
  if (!isHttpUrl(value)) throw new AdminError(`${name} must be an http(s) URL`)
  return value
}

/** RFC 9700 §4.1: redirect URIs are compared exactly, so they must be absolute and carry no fragment. */
function requireRedirectUri(value: string): string {
  if (!isHttpUrl(value) || value.includes('#')) throw new AdminError(`redirect URI ${value} must be an absolute http(s) URL without a fragment`)
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

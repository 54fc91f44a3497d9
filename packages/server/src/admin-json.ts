import type {
  App,
  AppFields,
  AuditEntry,
  DeliveryAttempt,
  Grant,
  InitialAccessToken,
  MailMessage,
  NewAppInput,
  OutboxEvent,
  ReviewedFields,
  SecurityEvent,
  SigningKeyRecord,
  Tenant,
  User,
} from '@fieldgate/core'

/** How the CLI's --json and the admin API show the store's objects: snake_case, ISO times, no secrets. */
type Json = Record<string, unknown>

function iso(ms: number): string
function iso(ms: number | null): string | null
function iso(ms: number | null): string | null {
  return ms === null ? null : new Date(ms).toISOString()
}

export const tenantJson = (t: Tenant) => ({ id: t.id, name: t.name, environment: t.environment, marketplace_id: t.marketplaceId, created_at: iso(t.createdAt) })

export const appJson = (a: App) => ({
  client_id: a.clientId,
  name: a.name,
  kind: a.kind,
  environment: a.environment,
  tenant_id: a.tenantId,
  scopes: a.scopes.join(' '),
  token_ttl: a.tokenTtl,
  install_url: a.installUrl,
  redirect_uris: a.redirectUris,
  contact_email: a.contactEmail,
  data_api_url: a.dataApiUrl,
  description: a.description,
  listed: a.listed,
  ...listingJson(a),
  owner_user_id: a.ownerUserId,
  review: a.review,
  review_reason: a.reviewReason,
  approved_at: iso(a.approvedAt),
  proposed: a.proposed && reviewedJson(a.proposed),
  suspended_at: iso(a.suspendedAt),
  suspended_reason: a.suspendedReason,
  ...clientJson(a),
})

/**
 * How the app authenticates and what its tokens are (docs/app-settings.md), in the names of RFC 7591
 * §2 where it has one: a public client's token_endpoint_auth_method is `none`.
 */
const clientJson = (a: App) => ({
  public_client: a.publicClient,
  token_endpoint_auth_method: a.publicClient ? ('none' as const) : ('client_secret_basic' as const),
  refresh_tokens: a.refreshTokens,
  access_token_format: a.accessTokenFormat,
  require_dpop: a.requireDpop,
  require_par: a.requirePar,
  registration: a.registration,
})

const reviewedJson = (r: ReviewedFields) => ({
  name: r.name,
  scopes: r.scopes.join(' '),
  install_url: r.installUrl,
  redirect_uris: r.redirectUris,
  data_api_url: r.dataApiUrl,
  ...listingJson(r),
})

/** The marketplace listing, in force or proposed. */
const listingJson = (r: ReviewedFields) => ({
  logo_url: r.logoUrl,
  short_description: r.shortDescription,
  categories: r.categories,
  publisher: r.publisher,
  support_url: r.supportUrl,
  privacy_policy_url: r.privacyPolicyUrl,
})

export const userJson = (u: User) => ({
  id: u.id,
  email: u.email,
  created_at: iso(u.createdAt),
  email_verified_at: iso(u.emailVerifiedAt),
  operator: u.operator,
  suspended_at: iso(u.suspendedAt),
  suspended_reason: u.suspendedReason,
})

export const securityEventJson = (e: SecurityEvent) => ({
  id: e.id,
  at: iso(e.at),
  kind: e.kind,
  user_id: e.userId,
  email: e.email,
  client_id: e.clientId,
  tenant_id: e.tenantId,
  address: e.address,
  details: e.details,
})

/** A message of the outbox; its text only while it sits in the local mailbox (a sent one has none). */
export const mailJson = (m: MailMessage) => ({
  id: m.id,
  to: m.to,
  subject: m.subject,
  kind: m.kind,
  state: m.state,
  attempts: m.attempts,
  error: m.error,
  created_at: iso(m.createdAt),
  sent_at: iso(m.sentAt),
  text: m.state === 'local' ? m.text : null,
})

export const grantJson = (g: Grant) => ({ id: g.id, app_id: g.appId, tenant_id: g.tenantId, scopes: g.scopes.join(' '), status: g.status })

/** An initial access token as listed: never the token, which is shown once when made. */
export const initialAccessTokenJson = (t: InitialAccessToken) => ({
  id: t.id,
  note: t.note,
  created_by: t.createdBy,
  created_at: iso(t.createdAt),
  expires_at: iso(t.expiresAt),
  revoked_at: iso(t.revokedAt),
})

export const keyJson = (k: SigningKeyRecord) => ({ kid: k.kid, alg: k.alg, state: k.state, created_at: iso(k.createdAt), retire_at: iso(k.retireAt) })

export const auditJson = (e: AuditEntry) => ({
  id: e.id,
  at: iso(e.at),
  actor: e.actor,
  actor_user_id: e.actorUserId,
  action: e.action,
  app_id: e.appId,
  client_id: e.clientId,
  tenant_id: e.tenantId,
  object_id: e.objectId,
  address: e.address,
  details: e.details,
})

export const eventJson = (e: OutboxEvent, attempts: DeliveryAttempt[] = []): Json => ({
  id: e.id,
  type: e.type,
  app_id: e.appId,
  tenant_id: e.tenantId,
  state: e.state,
  attempts: e.attempts,
  created_at: iso(e.createdAt),
  next_attempt_at: e.state === 'pending' ? iso(e.nextAttemptAt) : null,
  delivered_at: iso(e.deliveredAt),
  last_error: e.lastError,
  body: JSON.parse(e.body) as unknown,
  history: attempts.map((a) => ({ at: iso(a.at), status: a.status, error: a.error, duration_ms: a.durationMs })),
})

/** A new app as the admin API's body and the CLI's options spell it (snake_case, as appJson shows it). */
export interface AppWire {
  name: string
  kind: string
  tenant_id?: string | undefined
  environment?: string | undefined
  scopes?: string | undefined
  token_ttl?: number | undefined
  install_url?: string | undefined
  redirect_uris?: string[] | undefined
  contact_email?: string | undefined
  data_api_url?: string | undefined
  description?: string | undefined
  listed?: boolean | undefined
  logo_url?: string | undefined
  short_description?: string | undefined
  categories?: string[] | undefined
  publisher?: string | undefined
  support_url?: string | undefined
  privacy_policy_url?: string | undefined
  public_client?: boolean | undefined
  refresh_tokens?: boolean | undefined
  access_token_format?: string | undefined
  require_dpop?: boolean | undefined
  require_par?: boolean | undefined
}

/** The one mapping from wire fields to the operation's input: what is absent or empty stays unset. */
export function appInput(w: AppWire): NewAppInput {
  return {
    name: w.name,
    kind: w.kind,
    ...(w.tenant_id ? { tenantId: w.tenant_id } : {}),
    ...(w.environment ? { environment: w.environment } : {}),
    ...(w.scopes !== undefined ? { scopes: w.scopes } : {}),
    ...(w.token_ttl !== undefined ? { tokenTtl: w.token_ttl } : {}),
    ...(w.install_url ? { installUrl: w.install_url } : {}),
    ...(w.redirect_uris ? { redirectUris: w.redirect_uris } : {}),
    ...(w.contact_email ? { contactEmail: w.contact_email } : {}),
    ...(w.data_api_url ? { dataApiUrl: w.data_api_url } : {}),
    ...(w.description ? { description: w.description } : {}),
    ...(w.listed !== undefined ? { listed: w.listed } : {}),
    ...(w.logo_url ? { logoUrl: w.logo_url } : {}),
    ...(w.short_description ? { shortDescription: w.short_description } : {}),
    ...(w.categories ? { categories: w.categories } : {}),
    ...(w.publisher ? { publisher: w.publisher } : {}),
    ...(w.support_url ? { supportUrl: w.support_url } : {}),
    ...(w.privacy_policy_url ? { privacyPolicyUrl: w.privacy_policy_url } : {}),
    ...(w.public_client !== undefined ? { publicClient: w.public_client } : {}),
    ...clientSettingsInput(w),
  }
}

/** The token settings a create or an update may give (docs/app-settings.md); what is absent stays as it is. */
export function clientSettingsInput(w: Pick<AppWire, 'refresh_tokens' | 'access_token_format' | 'require_dpop' | 'require_par'>): AppFields {
  return {
    ...(w.refresh_tokens !== undefined ? { refreshTokens: w.refresh_tokens } : {}),
    ...(w.access_token_format !== undefined ? { accessTokenFormat: w.access_token_format } : {}),
    ...(w.require_dpop !== undefined ? { requireDpop: w.require_dpop } : {}),
    ...(w.require_par !== undefined ? { requirePar: w.require_par } : {}),
  }
}

/**
 * An update as the admin API's PATCH body spells it: only what is given changes; null removes an
 * optional URL, address, lifetime or listing field (as "" does from the CLI).
 */
export interface AppUpdateWire extends Pick<AppWire, 'refresh_tokens' | 'access_token_format' | 'require_dpop' | 'require_par'> {
  name?: string | undefined
  description?: string | undefined
  scopes?: string | undefined
  token_ttl?: number | null | undefined
  install_url?: string | null | undefined
  redirect_uris?: string[] | undefined
  contact_email?: string | null | undefined
  data_api_url?: string | null | undefined
  listed?: boolean | undefined
  logo_url?: string | null | undefined
  short_description?: string | undefined
  categories?: string[] | undefined
  publisher?: string | null | undefined
  support_url?: string | null | undefined
  privacy_policy_url?: string | null | undefined
}

/** The one mapping from an update's wire fields to the operation's: absent stays unset, null clears. */
export function appUpdateInput(w: AppUpdateWire): AppFields {
  const given = <T>(value: T | undefined): value is T => value !== undefined
  return {
    ...(given(w.name) ? { name: w.name } : {}),
    ...(given(w.description) ? { description: w.description } : {}),
    ...(given(w.scopes) ? { scopes: w.scopes } : {}),
    ...(given(w.token_ttl) ? { tokenTtl: w.token_ttl } : {}),
    ...(given(w.install_url) ? { installUrl: w.install_url } : {}),
    ...(given(w.redirect_uris) ? { redirectUris: w.redirect_uris } : {}),
    ...(given(w.contact_email) ? { contactEmail: w.contact_email } : {}),
    ...(given(w.data_api_url) ? { dataApiUrl: w.data_api_url } : {}),
    ...(given(w.listed) ? { listed: w.listed } : {}),
    ...(given(w.logo_url) ? { logoUrl: w.logo_url } : {}),
    ...(given(w.short_description) ? { shortDescription: w.short_description } : {}),
    ...(given(w.categories) ? { categories: w.categories } : {}),
    ...(given(w.publisher) ? { publisher: w.publisher } : {}),
    ...(given(w.support_url) ? { supportUrl: w.support_url } : {}),
    ...(given(w.privacy_policy_url) ? { privacyPolicyUrl: w.privacy_policy_url } : {}),
    ...clientSettingsInput(w),
  }
}

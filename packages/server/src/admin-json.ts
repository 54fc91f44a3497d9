import type { App, AuditEntry, DeliveryAttempt, Grant, OutboxEvent, SigningKeyRecord, Tenant } from '@fieldgate/core'

/** How the CLI's --json and the admin API show the store's objects: snake_case, ISO times, no secrets. */
type Json = Record<string, unknown>

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString())

export const tenantJson = (t: Tenant): Json => ({ id: t.id, name: t.name, environment: t.environment, marketplace_id: t.marketplaceId, created_at: iso(t.createdAt) })

export const appJson = (a: App): Json => ({
  client_id: a.clientId, name: a.name, kind: a.kind, environment: a.environment, tenant_id: a.tenantId, scopes: a.scopes.join(' '),
  token_ttl: a.tokenTtl, install_url: a.installUrl, redirect_uris: a.redirectUris, contact_email: a.contactEmail, data_api_url: a.dataApiUrl,
  description: a.description, listed: a.listed,
})

export const grantJson = (g: Grant): Json => ({ id: g.id, app_id: g.appId, tenant_id: g.tenantId, scopes: g.scopes.join(' '), status: g.status })

export const keyJson = (k: SigningKeyRecord): Json => ({ kid: k.kid, alg: k.alg, state: k.state, created_at: iso(k.createdAt), retire_at: iso(k.retireAt) })

export const auditJson = (e: AuditEntry): Json => ({
  id: e.id, at: iso(e.at), actor: e.actor, actor_user_id: e.actorUserId, action: e.action, app_id: e.appId,
  client_id: e.clientId, tenant_id: e.tenantId, object_id: e.objectId, address: e.address, details: e.details,
})

export const eventJson = (e: OutboxEvent, attempts: DeliveryAttempt[] = []): Json => ({
  id: e.id, type: e.type, app_id: e.appId, tenant_id: e.tenantId, state: e.state, attempts: e.attempts, created_at: iso(e.createdAt),
  next_attempt_at: e.state === 'pending' ? iso(e.nextAttemptAt) : null, delivered_at: iso(e.deliveredAt), last_error: e.lastError,
  body: JSON.parse(e.body) as unknown,
  history: attempts.map((a) => ({ at: iso(a.at), status: a.status, error: a.error, duration_ms: a.durationMs })),
})

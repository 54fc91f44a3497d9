/** The domain model: tenants, users, apps, grants, codes, tokens, events. Times are epoch milliseconds. */
export type Environment = 'sandbox' | 'live'
export type AppKind = 'private' | 'public'
export type Role = 'owner' | 'admin' | 'member'
export type GrantStatus = 'active' | 'revoked'
export type KeyState = 'next' | 'active' | 'retiring' | 'retired'

export interface Tenant {
  id: string
  name: string
  environment: Environment
  marketplaceId: string
  createdAt: number
}

export interface User {
  id: string
  email: string
  passwordHash: string
  createdAt: number
  /** A partner's sandbox tenant, made with their first visit to the developer portal. */
  sandboxTenantId: string | null
}

export interface Membership {
  userId: string
  tenantId: string
  role: Role
}

export interface App {
  id: string
  clientId: string
  name: string
  kind: AppKind
  environment: Environment
  /** The tenant a private app belongs to; for a public app, its partner's sandbox tenant, if any. */
  tenantId: string | null
  ownerUserId: string | null
  installUrl: string | null
  redirectUris: string[]
  contactEmail: string | null
  dataApiUrl: string | null
  /** The scopes the app may ask for. */
  scopes: string[]
  /** Access-token lifetime in seconds; null means the default for the app's kind. */
  tokenTtl: number | null
  createdAt: number
  /** What the app does, shown in the marketplace. */
  description: string
  /** Shown in the marketplace of tenants of its environment (public apps). */
  listed: boolean
}

export interface AppSecret {
  id: string
  appId: string
  secretHash: string
  hint: string
  createdAt: number
  /** null while the secret is current; set when a rotation starts its grace period. */
  expiresAt: number | null
  /** The secret sealed under the master key, to sign install redirects; null where it was not kept. */
  secretEnc: string | null
}

export interface Grant {
  id: string
  appId: string
  tenantId: string
  scopes: string[]
  status: GrantStatus
  createdAt: number
  updatedAt: number
}

/** A marketplace install of a public app on a tenant: its grant, who installed it, and how setup went. */
export interface Install {
  grantId: string
  installedBy: string | null
  /** pending until the partner sends the person back to the marketplace with success or an error. */
  state: 'pending' | 'complete' | 'failed'
  error: string | null
  createdAt: number
  updatedAt: number
}

/** Who did what to which object, when, from where. */
export interface AuditEntry {
  id: string
  at: number
  /** A person's email, `cli`, or `admin-api`. */
  actor: string
  actorUserId: string | null
  action: string
  appId: string | null
  /** The app's client_id, the name partners and operators know it by; it outlives the app's deletion here. */
  clientId: string | null
  tenantId: string | null
  objectId: string
  address: string | null
  details: Record<string, unknown>
}

/**
 * A client secret waiting to be shown once in the portal (POST/redirect/GET): the handle in the
 * redirect URL is stored hashed, the secret sealed, and the first view consumes it.
 */
export interface SecretHandle {
  idHash: string
  /** Hash of the browser id the handle was made for: another browser cannot see, or burn, it. */
  browserHash: string
  appId: string
  heading: string
  note: string
  /** Sealed under the master key; empty once shown. */
  secretEnc: string
  createdAt: number
  expiresAt: number
  shownAt: number | null
}

export interface SigningKeyRecord {
  kid: string
  alg: string
  state: KeyState
  publicJwk: string
  /** AES-256-GCM ciphertext of the private JWK under the master key. */
  privateJwkEnc: string
  createdAt: number
  /** When a retiring key may be retired: after every token it signed has expired. */
  retireAt: number | null
}

export interface AuthorizationCode {
  codeHash: string
  appId: string
  tenantId: string
  userId: string
  grantId: string
  /** The authorization request's redirect_uri, if it had one: the token request must then repeat it (RFC 6749 §4.1.3). */
  redirectUri: string | null
  scopes: string[]
  codeChallenge: string | null
  expiresAt: number
  consumedAt: number | null
  createdAt: number
}

/**
 * An opaque access token from a code exchange (fieldmargin's connection token). It never expires and
 * stands on its grant: its scopes are the grant's, so incremental consent widens it at once.
 */
export interface OpaqueToken {
  tokenHash: string
  grantId: string
  appId: string
  tenantId: string
  userId: string | null
  /** The code it was issued from: a replayed code revokes it (RFC 6749 §4.1.2). */
  codeHash: string | null
  createdAt: number
  revokedAt: number | null
}

/** What a bearer of an opaque token is: the token, its grant as it is now, and its app's client_id. */
export interface OpaqueTokenRecord {
  token: OpaqueToken
  grant: Grant
  clientId: string
}

/** A signed-in browser. The cookie holds a random id; only its hash is stored. */
export interface Session {
  idHash: string
  userId: string
  createdAt: number
  expiresAt: number
}

/** A record of the protected API (a lead, a field, a sensor reading…), noting who created it. */
export interface ApiRecord {
  id: string
  tenantId: string
  kind: string
  data: Record<string, unknown>
  createdByClientId: string | null
  createdByUserId: string | null
  createdAt: number
}

/**
 * A Data API event in the outbox: written in the transaction of the change it announces, delivered
 * to the app's Data API URL until it succeeds or a day has passed. `body` is fixed at creation, so
 * every attempt sends the same bytes with the same id.
 */
export interface OutboxEvent {
  id: string
  appId: string
  tenantId: string | null
  type: string
  body: string
  state: 'pending' | 'delivered' | 'failed'
  attempts: number
  nextAttemptAt: number
  /** A dispatcher's lease: no other process attempts the event before it runs out. */
  lockedUntil: number | null
  createdAt: number
  deliveredAt: number | null
  lastError: string | null
}

export interface DeliveryAttempt {
  id: string
  eventId: string
  at: number
  /** The receiver's HTTP status; null when no answer came (refused, timed out). */
  status: number | null
  error: string | null
  durationMs: number
}

/** One row of the change feed each process polls to drop cached state (RFC 7009 "at once" across processes). */
export interface Change {
  seq: number
  kind: 'grant' | 'keys' | 'app'
  ref: string
  createdAt: number
}

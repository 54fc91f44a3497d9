/** The domain model: tenants, users, apps, grants, codes, tokens, events. Times are epoch milliseconds. */
export type Environment = 'sandbox' | 'live'
export type AppKind = 'private' | 'public'
export type Role = 'owner' | 'admin' | 'member'
export type GrantStatus = 'active' | 'revoked'
export type KeyState = 'next' | 'active' | 'retiring' | 'retired'
/** A public live app's review: pending until an operator approves or rejects what the partner proposed. */
export type ReviewState = 'approved' | 'pending' | 'rejected'

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
  /** When the person followed the link mailed to the address; null until then. */
  emailVerifiedAt: number | null
  /** The deployment-wide operator role: the operator console, review, suspension. */
  operator: boolean
  /** A suspended account cannot sign in, and its apps are suspended with it. */
  suspendedAt: number | null
  suspendedReason: string | null
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
  /** The marketplace listing (listing.ts): an https logo, one line, categories, who publishes it, and links. */
  logoUrl: string | null
  shortDescription: string
  categories: AppCategory[]
  /** Who customers see as its maker; null shows the contact email (listing.ts publisherOf). */
  publisher: string | null
  supportUrl: string | null
  privacyPolicyUrl: string | null
  /**
   * Review of a public live app made or changed by its partner (operations/review.ts). The row holds
   * what is in force; `proposed` what waits for review. Never approved (`approvedAt` null), the app is
   * not listed, installable or connectable; approved, it keeps working as approved while a change waits.
   */
  review: ReviewState
  /** The operator's reason for the last decision. */
  reviewReason: string | null
  approvedAt: number | null
  proposed: ReviewedFields | null
  /** A suspended app gets no token and every token it holds is refused, on every instance. */
  suspendedAt: number | null
  suspendedReason: string | null
  /** Suspended because its partner's account was: unsuspending the account lifts it. */
  suspendedWithAccount: boolean
  /**
   * An RFC 6749 §2.1 public client (token_endpoint_auth_method `none`): a desktop, mobile or agent app
   * that cannot keep a secret. It has none, must use PKCE S256, and always gets refresh tokens.
   * Not `kind`: a `public` kind is a marketplace app, which may well be a confidential client.
   */
  publicClient: boolean
  /** The code grant at /oauth/token issues refresh tokens and short-lived access tokens (OAuth 2.1 §4.3). */
  refreshTokens: boolean
  /** The format of those short-lived access tokens: an RFC 9068 JWT, or an opaque token the API looks up. */
  accessTokenFormat: AccessTokenFormat
  /** Every token request must carry a DPoP proof, so every token is sender-constrained (RFC 9449). */
  requireDpop: boolean
  /** Authorization requests must be pushed first (RFC 9126 §5, `require_pushed_authorization_requests`). */
  requirePar: boolean
  /** How the app came to be: by a person or operator, or registered by the client itself. */
  registration: AppRegistration
  /** SHA-256 of the RFC 7592 registration access token of a dynamically registered client. */
  registrationTokenHash: string | null
  /** A client metadata document's app: when its fetched copy goes stale and is fetched again. */
  metadataExpiresAt: number | null
}

export type AccessTokenFormat = 'jwt' | 'opaque'

/**
 * `portal`: made by a partner or the operator (reviewed when public and live). `dynamic`: RFC 7591
 * dynamic registration. `metadata_document`: its client_id is the https URL of its metadata. A
 * registered client is never reviewed: it reaches a farm only through consent, which says so.
 */
export type AppRegistration = 'portal' | 'dynamic' | 'metadata_document'

/** A registered client (RFC 7591 or a metadata document), connectable without review. */
export const isRegisteredClient = (app: Pick<App, 'registration'>): boolean => app.registration !== 'portal'

/**
 * What an operator reviews of a public live app: its name, what it may reach, where customers are sent,
 * and how the marketplace presents it (a listing could pass for someone else's).
 */
export type ReviewedFields = Pick<
  App,
  'name' | 'scopes' | 'installUrl' | 'redirectUris' | 'dataApiUrl' | 'logoUrl' | 'shortDescription' | 'categories' | 'publisher' | 'supportUrl' | 'privacyPolicyUrl'
>

/** The marketplace's categories, fixed so a farm can filter by them; an app has up to three. */
export const appCategories = [
  'Scheduling',
  'Mapping',
  'Agronomy',
  'Livestock',
  'Telematics',
  'Weather',
  'Inventory',
  'Accounting',
  'Compliance',
  'Reporting',
  'Communication',
] as const
export type AppCategory = (typeof appCategories)[number]

/** A single-use link mailed to a person; only the hash of its secret is stored. */
export interface EmailToken {
  idHash: string
  purpose: 'verify' | 'reset' | 'invite'
  /** The account it is for; null for an invitation to someone without one yet. */
  userId: string | null
  email: string
  /** An invitation's tenant and role, or, with no tenant, an invitation to the deployment. */
  tenantId: string | null
  role: Role | null
  invitedBy: string | null
  createdAt: number
  expiresAt: number
  usedAt: number | null
}

/**
 * A message to a person. With SMTP configured it is sent (`pending` until it is, its text dropped once
 * sent); without, it stays in the local mailbox (`local`) for the operator to read.
 */
export interface MailMessage {
  id: string
  to: string
  subject: string
  text: string | null
  /** What it is about: verify, reset, invite, signup-exists, review, suspension. */
  kind: string
  state: 'local' | 'pending' | 'sent' | 'failed'
  attempts: number
  error: string | null
  createdAt: number
  sentAt: number | null
}

/** Every kind of security event, in the order the console lists them. */
export const securityEventKinds = [
  'sign_in.failed',
  'sign_in.throttled',
  'sign_in.new_address',
  'password.reset',
  'email.verified',
  'consent.given',
  'consent.denied',
  'code.replayed',
  'refresh_token.reused',
  'token.revoked_grant',
  'admin_token.failed',
  'review.approved',
  'review.rejected',
  'app.suspended',
  'app.unsuspended',
  'account.suspended',
  'account.unsuspended',
] as const
export type SecurityEventKind = (typeof securityEventKinds)[number]

/** Something that matters to the deployment's security, stored and logged (security.ts). */
export interface SecurityEvent {
  id: string
  at: number
  kind: SecurityEventKind
  userId: string | null
  /** The address a person gave or signed in with, when there is one. */
  email: string | null
  clientId: string | null
  tenantId: string | null
  address: string | null
  details: Record<string, unknown>
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
  /** RFC 8707: the resource the request named; the token's audience. Null: Fieldgate's own API. */
  resource: string | null
  /** RFC 9449 §10: the key the authorization request bound the code to (`dpop_jkt`). */
  dpopJkt: string | null
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
  /** Null for a connection token, which never expires; set for one issued with a refresh token. */
  expiresAt: number | null
  /** RFC 8707 audience; null is Fieldgate's own API. */
  resource: string | null
  /** RFC 9449: the JWK thumbprint of the key it is bound to, or null for a bearer token. */
  jkt: string | null
  /** The refresh-token family it came from: a reused refresh token revokes it with the family. */
  familyId: string | null
  /** What it was issued for, within its grant's scopes; null for a connection token, which has the grant's as they are now. */
  scopes: string[] | null
}

/**
 * A refresh token (OAuth 2.1 §4.3, RFC 9700 §4.14.2). Each use rotates it: the used one is kept, marked
 * `usedAt`, so presenting it again is recognised as theft and ends the whole family. Only its hash is stored.
 */
export interface RefreshToken {
  tokenHash: string
  /** Every token rotated from one code exchange. */
  familyId: string
  grantId: string
  appId: string
  tenantId: string
  userId: string | null
  /** What the family may ask for: the grant's scopes when it began (a refresh may narrow, never widen, §6). */
  scopes: string[]
  resource: string | null
  /** RFC 9449 §5: a public client's refresh token is bound to its DPoP key. */
  jkt: string | null
  /** When the family began: its absolute lifetime counts from here. */
  familyCreatedAt: number
  createdAt: number
  /** The sooner of the idle (sliding) and the absolute lifetime. */
  expiresAt: number
  usedAt: number | null
  revokedAt: number | null
}

/** RFC 9126: an authorization request pushed to /oauth/par, found later by its request_uri (stored hashed). */
export interface PushedRequest {
  uriHash: string
  appId: string
  /** The authorization request's parameters, checked when pushed and again when used. */
  params: Record<string, string>
  createdAt: number
  expiresAt: number
  usedAt: number | null
}

/** What a rotation found: the token was live and is now replaced, was already used (theft), or is no good. */
export type Rotation = 'rotated' | 'reused' | 'invalid'

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
  kind: 'grant' | 'keys' | 'app' | 'tenant'
  ref: string
  createdAt: number
}

/**
 * A person's account at an upstream OpenID Connect provider (the platform's own identity provider),
 * linked to a Fieldgate user by the provider's issuer and `sub`: never by an email address.
 */
export interface UpstreamIdentity {
  issuer: string
  subject: string
  userId: string
  createdAt: number
  lastSignInAt: number
}

/** A session begun by an upstream sign-in: what logout needs (the ID token as `id_token_hint`, the provider's `sid`). */
export interface UpstreamSession {
  sessionIdHash: string
  issuer: string
  subject: string
  /** The provider's session id (`sid` claim), when it gave one: back-channel logout may name it. */
  sid: string | null
  idToken: string
}

/** A membership the upstream provider's tenants claim gave: the next sign-in may change or remove it. */
export interface UpstreamMembership {
  userId: string
  tenantId: string
  issuer: string
}

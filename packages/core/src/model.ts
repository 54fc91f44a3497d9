/** The domain model of ../shared/DESIGN.md. Times are epoch milliseconds. */
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
}

export interface AppSecret {
  id: string
  appId: string
  secretHash: string
  hint: string
  createdAt: number
  /** null while the secret is current; set when a rotation starts its grace period. */
  expiresAt: number | null
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
  redirectUri: string
  scopes: string[]
  codeChallenge: string | null
  expiresAt: number
  consumedAt: number | null
  createdAt: number
}

export interface WorkOrder {
  id: string
  tenantId: string
  title: string
  status: string
  createdByClientId: string | null
  createdAt: number
}

/** One row of the change feed each process polls to drop cached state (RFC 7009 "at once" across processes). */
export interface Change {
  seq: number
  kind: 'grant' | 'keys' | 'app'
  ref: string
  createdAt: number
}

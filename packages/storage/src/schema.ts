import type { Generated } from 'kysely'

/** Table shapes as Kysely sees them (CamelCasePlugin maps them to snake_case in SQL). Times: epoch ms. */
export interface Database {
  tenants: { id: string; name: string; environment: string; marketplaceId: string; createdAt: number }
  users: {
    id: string
    email: string
    passwordHash: string
    createdAt: number
    sandboxTenantId: string | null
    emailVerifiedAt: number | null
    /** 0 or 1 */
    operator: number
    suspendedAt: number | null
    suspendedReason: string | null
  }
  memberships: { userId: string; tenantId: string; role: string }
  apps: {
    id: string
    clientId: string
    name: string
    kind: string
    environment: string
    tenantId: string | null
    ownerUserId: string | null
    installUrl: string | null
    /** JSON array */
    redirectUris: string
    contactEmail: string | null
    dataApiUrl: string | null
    /** space-separated */
    scopes: string
    tokenTtl: number | null
    createdAt: number
    description: string
    /** 0 or 1 */
    listed: number
    review: string
    reviewReason: string | null
    approvedAt: number | null
    /** JSON object, or null */
    proposed: string | null
    suspendedAt: number | null
    suspendedReason: string | null
    /** 0 or 1 */
    suspendedWithAccount: number
    logoUrl: string | null
    shortDescription: string
    /** JSON array */
    categories: string
    publisher: string | null
    supportUrl: string | null
    privacyPolicyUrl: string | null
    /** 0 or 1 */
    publicClient: number
    /** 0 or 1 */
    refreshTokens: number
    accessTokenFormat: string
    /** 0 or 1 */
    requireDpop: number
    /** 0 or 1 */
    requirePar: number
    registration: string
    registrationTokenHash: string | null
    metadataExpiresAt: number | null
  }
  appSecrets: { id: string; appId: string; secretHash: string; hint: string; createdAt: number; expiresAt: number | null; secretEnc: string | null }
  grants: { id: string; appId: string; tenantId: string; scopes: string; status: string; createdAt: number; updatedAt: number }
  signingKeys: { kid: string; alg: string; state: string; publicJwk: string; privateJwkEnc: string; createdAt: number; retireAt: number | null }
  authorizationCodes: {
    codeHash: string
    appId: string
    tenantId: string
    userId: string
    grantId: string
    redirectUri: string | null
    scopes: string
    codeChallenge: string | null
    resource: string | null
    dpopJkt: string | null
    expiresAt: number
    consumedAt: number | null
    createdAt: number
  }
  opaqueTokens: {
    tokenHash: string
    grantId: string
    appId: string
    tenantId: string
    userId: string | null
    codeHash: string | null
    createdAt: number
    revokedAt: number | null
    expiresAt: number | null
    resource: string | null
    jkt: string | null
    familyId: string | null
    /** space-separated; null: the grant's scopes as they are now */
    scopes: string | null
  }
  refreshTokens: {
    tokenHash: string
    familyId: string
    grantId: string
    appId: string
    tenantId: string
    userId: string | null
    /** space-separated */
    scopes: string
    resource: string | null
    jkt: string | null
    familyCreatedAt: number
    createdAt: number
    expiresAt: number
    usedAt: number | null
    revokedAt: number | null
  }
  pushedRequests: {
    uriHash: string
    appId: string
    /** JSON object of the authorization request's parameters */
    params: string
    createdAt: number
    expiresAt: number
    usedAt: number | null
  }
  installs: { grantId: string; installedBy: string | null; state: string; error: string | null; createdAt: number; updatedAt: number }
  auditEntries: {
    id: string
    at: number
    actor: string
    actorUserId: string | null
    action: string
    appId: string | null
    clientId: string | null
    tenantId: string | null
    objectId: string
    address: string | null
    /** JSON object */
    details: string
  }
  records: {
    id: string
    tenantId: string
    kind: string
    /** JSON object */
    data: string
    createdByClientId: string | null
    createdByUserId: string | null
    createdAt: number
  }
  events: {
    id: string
    appId: string
    tenantId: string | null
    type: string
    body: string
    state: string
    attempts: number
    nextAttemptAt: number
    lockedUntil: number | null
    createdAt: number
    deliveredAt: number | null
    lastError: string | null
  }
  eventAttempts: { id: string; eventId: string; at: number; status: number | null; error: string | null; durationMs: number }
  secretHandles: {
    idHash: string
    browserHash: string
    appId: string
    heading: string
    note: string
    secretEnc: string
    createdAt: number
    expiresAt: number
    shownAt: number | null
  }
  sessions: { idHash: string; userId: string; createdAt: number; expiresAt: number }
  upstreamIdentities: { issuer: string; subject: string; userId: string; createdAt: number; lastSignInAt: number }
  upstreamMemberships: { userId: string; tenantId: string; issuer: string }
  upstreamSessions: { sessionIdHash: string; issuer: string; subject: string; sid: string | null; idToken: string }
  changes: { seq: Generated<number>; kind: string; ref: string; createdAt: number }
  emailTokens: {
    idHash: string
    purpose: string
    userId: string | null
    email: string
    tenantId: string | null
    role: string | null
    invitedBy: string | null
    createdAt: number
    expiresAt: number
    usedAt: number | null
  }
  mail: {
    id: string
    to: string
    subject: string
    text: string | null
    kind: string
    state: string
    attempts: number
    error: string | null
    createdAt: number
    sentAt: number | null
    /** While a mailer sends it: until then no other mailer claims it (claimMail). */
    leaseUntil: Generated<number | null>
  }
  securityEvents: {
    id: string
    at: number
    kind: string
    userId: string | null
    email: string | null
    clientId: string | null
    tenantId: string | null
    address: string | null
    /** JSON object */
    details: string
  }
}

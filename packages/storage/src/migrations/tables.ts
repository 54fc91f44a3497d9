/**
 * The schema, written once with the two places where the engines differ named: the type of epoch-ms
 * columns and the change feed's auto-increment key. Each engine gets its own migration list from it.
 */
export interface Dialect {
  /** epoch milliseconds */
  ms: string
  serial: string
}

export const initialSchema = ({ ms, serial }: Dialect): string[] => [
  `CREATE TABLE tenants (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    environment TEXT NOT NULL CHECK (environment IN ('sandbox', 'live')),
    marketplace_id TEXT NOT NULL UNIQUE,
    created_at ${ms} NOT NULL)`,
  `CREATE TABLE users (
    id TEXT PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    created_at ${ms} NOT NULL)`,
  `CREATE TABLE memberships (
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    role TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'member')),
    PRIMARY KEY (user_id, tenant_id))`,
  `CREATE TABLE apps (
    id TEXT PRIMARY KEY,
    client_id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('private', 'public')),
    environment TEXT NOT NULL CHECK (environment IN ('sandbox', 'live')),
    tenant_id TEXT REFERENCES tenants (id),
    owner_user_id TEXT REFERENCES users (id),
    install_url TEXT,
    redirect_uris TEXT NOT NULL,
    contact_email TEXT,
    data_api_url TEXT,
    scopes TEXT NOT NULL,
    token_ttl INTEGER,
    created_at ${ms} NOT NULL)`,
  `CREATE TABLE app_secrets (
    id TEXT PRIMARY KEY,
    app_id TEXT NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    secret_hash TEXT NOT NULL,
    hint TEXT NOT NULL,
    created_at ${ms} NOT NULL,
    expires_at ${ms})`,
  `CREATE INDEX app_secrets_app ON app_secrets (app_id)`,
  `CREATE TABLE grants (
    id TEXT PRIMARY KEY,
    app_id TEXT NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    scopes TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('active', 'revoked')),
    created_at ${ms} NOT NULL,
    updated_at ${ms} NOT NULL)`,
  // One active grant per (app, tenant): installing twice never makes two.
  `CREATE UNIQUE INDEX grants_one_active ON grants (app_id, tenant_id) WHERE status = 'active'`,
  `CREATE INDEX grants_tenant ON grants (tenant_id)`,
  `CREATE TABLE signing_keys (
    kid TEXT PRIMARY KEY,
    alg TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('next', 'active', 'retiring', 'retired')),
    public_jwk TEXT NOT NULL,
    private_jwk_enc TEXT NOT NULL,
    created_at ${ms} NOT NULL,
    retire_at ${ms})`,
  `CREATE TABLE authorization_codes (
    code_hash TEXT PRIMARY KEY,
    app_id TEXT NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    grant_id TEXT NOT NULL REFERENCES grants (id) ON DELETE CASCADE,
    redirect_uri TEXT NOT NULL,
    scopes TEXT NOT NULL,
    code_challenge TEXT,
    expires_at ${ms} NOT NULL,
    consumed_at ${ms},
    created_at ${ms} NOT NULL)`,
  `CREATE TABLE work_orders (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    title TEXT NOT NULL,
    status TEXT NOT NULL,
    created_by_client_id TEXT,
    created_at ${ms} NOT NULL)`,
  `CREATE INDEX work_orders_page ON work_orders (tenant_id, created_at DESC, id DESC)`,
  `CREATE TABLE changes (
    seq ${serial},
    kind TEXT NOT NULL,
    ref TEXT NOT NULL,
    created_at ${ms} NOT NULL)`,
]

/**
 * Sign-in and the authorization-code grant. Nothing wrote authorization codes before this, so the table
 * is made anew with a nullable redirect_uri (the request's, when it had one: RFC 6749 §4.1.3).
 */
export const codesTokensSessions = ({ ms }: Dialect): string[] => [
  `DROP TABLE authorization_codes`,
  `CREATE TABLE authorization_codes (
    code_hash TEXT PRIMARY KEY,
    app_id TEXT NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    grant_id TEXT NOT NULL REFERENCES grants (id) ON DELETE CASCADE,
    redirect_uri TEXT,
    scopes TEXT NOT NULL,
    code_challenge TEXT,
    expires_at ${ms} NOT NULL,
    consumed_at ${ms},
    created_at ${ms} NOT NULL)`,
  `CREATE TABLE opaque_tokens (
    token_hash TEXT PRIMARY KEY,
    grant_id TEXT NOT NULL REFERENCES grants (id) ON DELETE CASCADE,
    app_id TEXT NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    user_id TEXT REFERENCES users (id) ON DELETE SET NULL,
    code_hash TEXT,
    created_at ${ms} NOT NULL,
    revoked_at ${ms})`,
  `CREATE INDEX opaque_tokens_grant ON opaque_tokens (grant_id)`,
  `CREATE INDEX opaque_tokens_code ON opaque_tokens (code_hash)`,
  `CREATE TABLE sessions (
    id_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at ${ms} NOT NULL,
    expires_at ${ms} NOT NULL)`,
  `CREATE INDEX sessions_user ON sessions (user_id)`,
]

/** The marketplace and developer portal: app listing, partner sandboxes, installs, the audit log. */
export const marketplace = ({ ms }: Dialect): string[] => [
  `ALTER TABLE apps ADD COLUMN description TEXT NOT NULL DEFAULT ''`,
  `ALTER TABLE apps ADD COLUMN listed INTEGER NOT NULL DEFAULT 0`,
  `CREATE INDEX apps_owner ON apps (owner_user_id)`,
  // The secret sealed under the master key, only to sign install redirects with it (HMAC needs the key itself).
  `ALTER TABLE app_secrets ADD COLUMN secret_enc TEXT`,
  `ALTER TABLE users ADD COLUMN sandbox_tenant_id TEXT REFERENCES tenants (id)`,
  `CREATE TABLE installs (
    grant_id TEXT PRIMARY KEY REFERENCES grants (id) ON DELETE CASCADE,
    installed_by TEXT REFERENCES users (id) ON DELETE SET NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'complete', 'failed')),
    error TEXT,
    created_at ${ms} NOT NULL,
    updated_at ${ms} NOT NULL)`,
  // No foreign keys: the log outlives what it speaks of.
  `CREATE TABLE audit_entries (
    id TEXT PRIMARY KEY,
    at ${ms} NOT NULL,
    actor TEXT NOT NULL,
    actor_user_id TEXT,
    action TEXT NOT NULL,
    app_id TEXT,
    tenant_id TEXT,
    object_id TEXT NOT NULL,
    address TEXT,
    details TEXT NOT NULL)`,
  `CREATE INDEX audit_entries_app ON audit_entries (app_id, at)`,
  `CREATE INDEX audit_entries_tenant ON audit_entries (tenant_id, at)`,
  `CREATE INDEX audit_entries_actor ON audit_entries (actor_user_id, at)`,
]

/** The protected API's records besides work orders: leads, customers, fields, maps, vehicles, sensors, alerts. */
export const records = ({ ms }: Dialect): string[] => [
  `CREATE TABLE records (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    data TEXT NOT NULL,
    created_by_client_id TEXT,
    created_by_user_id TEXT,
    created_at ${ms} NOT NULL)`,
  `CREATE INDEX records_page ON records (tenant_id, kind, created_at DESC, id DESC)`,
  `CREATE INDEX records_own_page ON records (tenant_id, kind, created_by_client_id, created_at DESC, id DESC)`,
]

/** The Data API outbox: events written with the change they announce, and each delivery attempt. */
export const outbox = ({ ms }: Dialect): string[] => [
  `CREATE TABLE events (
    id TEXT PRIMARY KEY,
    app_id TEXT NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    tenant_id TEXT,
    type TEXT NOT NULL,
    body TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts INTEGER NOT NULL,
    next_attempt_at ${ms} NOT NULL,
    locked_until ${ms},
    created_at ${ms} NOT NULL,
    delivered_at ${ms},
    last_error TEXT)`,
  `CREATE INDEX events_due ON events (state, next_attempt_at)`,
  `CREATE INDEX events_app ON events (app_id, created_at)`,
  `CREATE TABLE event_attempts (
    id TEXT PRIMARY KEY,
    event_id TEXT NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    at ${ms} NOT NULL,
    status INTEGER,
    error TEXT,
    duration_ms INTEGER NOT NULL)`,
  `CREATE INDEX event_attempts_event ON event_attempts (event_id, at)`,
]

/**
 * PostgreSQL: every commit that appends to the change feed NOTIFYs `fieldgate_changes` with the schema's
 * name, so other instances read it at once instead of at their next poll (NOTIFY is sent at commit, and
 * one per transaction however many rows it appends). SQLite has no such signal; its processes poll.
 */
export const changeNotify = (engine: 'sqlite' | 'postgres'): string[] =>
  engine === 'sqlite'
    ? []
    : [
        `CREATE FUNCTION notify_change() RETURNS trigger LANGUAGE plpgsql AS $$
  BEGIN
    PERFORM pg_notify('fieldgate_changes', TG_TABLE_SCHEMA);
    RETURN NULL;
  END $$`,
        `CREATE TRIGGER changes_notify AFTER INSERT ON changes FOR EACH STATEMENT EXECUTE FUNCTION notify_change()`,
      ]

/** Audit rows name the app by client_id (kept after the app is deleted); secrets waiting to be shown once. */
export const auditClientIdSecretHandles = ({ ms }: Dialect): string[] => [
  `ALTER TABLE audit_entries ADD COLUMN client_id TEXT`,
  `UPDATE audit_entries SET client_id = (SELECT client_id FROM apps WHERE apps.id = audit_entries.app_id)`,
  `CREATE TABLE secret_handles (
    id_hash TEXT PRIMARY KEY,
    browser_hash TEXT NOT NULL,
    app_id TEXT NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    heading TEXT NOT NULL,
    note TEXT NOT NULL,
    secret_enc TEXT NOT NULL,
    created_at ${ms} NOT NULL,
    expires_at ${ms} NOT NULL,
    shown_at ${ms})`,
  `CREATE INDEX secret_handles_expiry ON secret_handles (expires_at)`,
]

/**
 * Work orders become records of kind `work_order` like the API's other records: each row moves to
 * `records` with its title and status as the record's data, and the table goes.
 */
export const workOrdersAsRecords = (engine: 'sqlite' | 'postgres'): string[] => [
  `INSERT INTO records (id, tenant_id, kind, data, created_by_client_id, created_by_user_id, created_at)
    SELECT id, tenant_id, 'work_order', ${engine === 'sqlite' ? 'json_object' : 'json_build_object'}('title', title, 'status', status)${engine === 'sqlite' ? '' : '::text'},
      created_by_client_id, NULL, created_at
    FROM work_orders`,
  `DROP TABLE work_orders`,
]

/**
 * The operator's side: operators, verified emails and suspension on users; review and suspension on
 * apps; links mailed to people (hashed), the mail itself, and security events. Accounts and apps that
 * exist already count as verified and approved: they were trusted before review existed.
 */
export const operatorsAccounts = ({ ms }: Dialect): string[] => [
  `ALTER TABLE users ADD COLUMN email_verified_at ${ms}`,
  `UPDATE users SET email_verified_at = created_at`,
  `ALTER TABLE users ADD COLUMN operator INTEGER NOT NULL DEFAULT 0`,
  `ALTER TABLE users ADD COLUMN suspended_at ${ms}`,
  `ALTER TABLE users ADD COLUMN suspended_reason TEXT`,
  `ALTER TABLE apps ADD COLUMN review TEXT NOT NULL DEFAULT 'approved' CHECK (review IN ('approved', 'pending', 'rejected'))`,
  `ALTER TABLE apps ADD COLUMN review_reason TEXT`,
  `ALTER TABLE apps ADD COLUMN approved_at ${ms}`,
  `UPDATE apps SET approved_at = created_at`,
  `ALTER TABLE apps ADD COLUMN proposed TEXT`,
  `ALTER TABLE apps ADD COLUMN suspended_at ${ms}`,
  `ALTER TABLE apps ADD COLUMN suspended_reason TEXT`,
  `ALTER TABLE apps ADD COLUMN suspended_with_account INTEGER NOT NULL DEFAULT 0`,
  `CREATE INDEX apps_review ON apps (review, created_at)`,
  `CREATE TABLE email_tokens (
    id_hash TEXT PRIMARY KEY,
    purpose TEXT NOT NULL CHECK (purpose IN ('verify', 'reset', 'invite')),
    user_id TEXT REFERENCES users (id) ON DELETE CASCADE,
    email TEXT NOT NULL,
    tenant_id TEXT REFERENCES tenants (id) ON DELETE CASCADE,
    role TEXT,
    invited_by TEXT,
    created_at ${ms} NOT NULL,
    expires_at ${ms} NOT NULL,
    used_at ${ms})`,
  `CREATE INDEX email_tokens_expiry ON email_tokens (expires_at)`,
  `CREATE TABLE mail (
    id TEXT PRIMARY KEY,
    "to" TEXT NOT NULL,
    subject TEXT NOT NULL,
    text TEXT,
    kind TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('local', 'pending', 'sent', 'failed')),
    attempts INTEGER NOT NULL,
    error TEXT,
    created_at ${ms} NOT NULL,
    sent_at ${ms})`,
  `CREATE INDEX mail_state ON mail (state, created_at)`,
  `CREATE INDEX mail_created ON mail (created_at)`,
  // No foreign keys: like the audit log, it outlives what it speaks of.
  `CREATE TABLE security_events (
    id TEXT PRIMARY KEY,
    at ${ms} NOT NULL,
    kind TEXT NOT NULL,
    user_id TEXT,
    email TEXT,
    client_id TEXT,
    tenant_id TEXT,
    address TEXT,
    details TEXT NOT NULL)`,
  `CREATE INDEX security_events_at ON security_events (at)`,
  `CREATE INDEX security_events_user ON security_events (user_id, address, at)`,
]

/** Mail claimed by a mailer carries a lease, so two serving processes never send the same message. */
export const mailLease = ({ ms }: Dialect): string[] => [`ALTER TABLE mail ADD COLUMN lease_until ${ms}`]

/**
 * The marketplace listing of an app: logo, one-line description, categories (a JSON array), publisher
 * and links. Existing apps get an empty listing, shown with an initials badge and their contact address.
 */
export const appListing = (): string[] => [
  `ALTER TABLE apps ADD COLUMN logo_url TEXT`,
  `ALTER TABLE apps ADD COLUMN short_description TEXT NOT NULL DEFAULT ''`,
  `ALTER TABLE apps ADD COLUMN categories TEXT NOT NULL DEFAULT '[]'`,
  `ALTER TABLE apps ADD COLUMN publisher TEXT`,
  `ALTER TABLE apps ADD COLUMN support_url TEXT`,
  `ALTER TABLE apps ADD COLUMN privacy_policy_url TEXT`,
]

/**
 * Upstream sign-in (OpenID Connect): accounts linked by the provider's issuer and sub, the memberships
 * its tenants claim gave (so the next sign-in may change or take away those, and only those), and the
 * sessions it began, with the ID token logout sends back and the provider's sid back-channel logout names.
 */
export const upstreamSignIn = ({ ms }: Dialect): string[] => [
  `CREATE TABLE upstream_identities (
    issuer TEXT NOT NULL,
    subject TEXT NOT NULL,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at ${ms} NOT NULL,
    last_sign_in_at ${ms} NOT NULL,
    PRIMARY KEY (issuer, subject))`,
  `CREATE INDEX upstream_identities_user ON upstream_identities (user_id)`,
  // Cascades with the membership: one taken away here (members page, CLI) is no longer the upstream's.
  `CREATE TABLE upstream_memberships (
    user_id TEXT NOT NULL,
    tenant_id TEXT NOT NULL,
    issuer TEXT NOT NULL,
    PRIMARY KEY (user_id, tenant_id),
    FOREIGN KEY (user_id, tenant_id) REFERENCES memberships (user_id, tenant_id) ON DELETE CASCADE)`,
  `CREATE TABLE upstream_sessions (
    session_id_hash TEXT PRIMARY KEY REFERENCES sessions (id_hash) ON DELETE CASCADE,
    issuer TEXT NOT NULL,
    subject TEXT NOT NULL,
    sid TEXT,
    id_token TEXT NOT NULL)`,
  `CREATE INDEX upstream_sessions_subject ON upstream_sessions (issuer, subject)`,
  `CREATE INDEX upstream_sessions_sid ON upstream_sessions (issuer, sid)`,
]

/**
 * OAuth 2.1 clients: public clients, refresh tokens, RFC 8707 audiences, DPoP-bound tokens, pushed
 * authorization requests, and clients that registered themselves. Existing apps are confidential
 * portal apps with none of it, exactly as before.
 */
export const oauth21Clients = ({ ms }: Dialect): string[] => [
  `ALTER TABLE apps ADD COLUMN public_client INTEGER NOT NULL DEFAULT 0`,
  `ALTER TABLE apps ADD COLUMN refresh_tokens INTEGER NOT NULL DEFAULT 0`,
  `ALTER TABLE apps ADD COLUMN access_token_format TEXT NOT NULL DEFAULT 'jwt'`,
  `ALTER TABLE apps ADD COLUMN require_dpop INTEGER NOT NULL DEFAULT 0`,
  `ALTER TABLE apps ADD COLUMN require_par INTEGER NOT NULL DEFAULT 0`,
  `ALTER TABLE apps ADD COLUMN registration TEXT NOT NULL DEFAULT 'portal'`,
  `ALTER TABLE apps ADD COLUMN registration_token_hash TEXT`,
  `ALTER TABLE apps ADD COLUMN metadata_expires_at ${ms}`,
  `ALTER TABLE authorization_codes ADD COLUMN resource TEXT`,
  `ALTER TABLE authorization_codes ADD COLUMN dpop_jkt TEXT`,
  `ALTER TABLE opaque_tokens ADD COLUMN expires_at ${ms}`,
  `ALTER TABLE opaque_tokens ADD COLUMN resource TEXT`,
  `ALTER TABLE opaque_tokens ADD COLUMN jkt TEXT`,
  `ALTER TABLE opaque_tokens ADD COLUMN family_id TEXT`,
  `ALTER TABLE opaque_tokens ADD COLUMN scopes TEXT`,
  `CREATE INDEX opaque_tokens_family ON opaque_tokens (family_id)`,
  `CREATE TABLE refresh_tokens (
    token_hash TEXT PRIMARY KEY,
    family_id TEXT NOT NULL,
    grant_id TEXT NOT NULL REFERENCES grants (id) ON DELETE CASCADE,
    app_id TEXT NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    user_id TEXT REFERENCES users (id) ON DELETE SET NULL,
    scopes TEXT NOT NULL,
    resource TEXT,
    jkt TEXT,
    family_created_at ${ms} NOT NULL,
    created_at ${ms} NOT NULL,
    expires_at ${ms} NOT NULL,
    used_at ${ms},
    revoked_at ${ms})`,
  `CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id)`,
  `CREATE INDEX refresh_tokens_grant ON refresh_tokens (grant_id)`,
  // RFC 9126: the pushed request's parameters, found by the hash of its request_uri until it expires.
  `CREATE TABLE pushed_requests (
    uri_hash TEXT PRIMARY KEY,
    app_id TEXT NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    params TEXT NOT NULL,
    created_at ${ms} NOT NULL,
    expires_at ${ms} NOT NULL,
    used_at ${ms})`,
  `CREATE INDEX pushed_requests_expiry ON pushed_requests (expires_at)`,
]

/**
 * RFC 9449 §11.1: the DPoP proofs accepted, by the hash of their key's thumbprint and jti, until they are
 * too old to be accepted anyway; the expiry index is what forgetting them walks.
 */
export const dpopProofs = ({ ms }: Dialect): string[] => [
  `CREATE TABLE dpop_proofs (
    jti_hash TEXT PRIMARY KEY,
    expires_at ${ms} NOT NULL)`,
  `CREATE INDEX dpop_proofs_expiry ON dpop_proofs (expires_at)`,
]

/**
 * RFC 7591 §3 initial access tokens for the `token` registration policy (docs/registration.md): made by
 * an operator, stored hashed, good until they expire (if ever) or are revoked.
 */
export const initialAccessTokens = ({ ms }: Dialect): string[] => [
  `CREATE TABLE initial_access_tokens (
    id TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    note TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at ${ms} NOT NULL,
    expires_at ${ms},
    revoked_at ${ms})`,
]

/**
 * The operator console pages an app's grants oldest first: with 100,000 installs, the first page is read
 * from this index instead of sorting every grant of the app (grants_one_active covers active ones only).
 */
export const grantsByApp = (): string[] => [`CREATE INDEX grants_app ON grants (app_id, created_at, id)`]

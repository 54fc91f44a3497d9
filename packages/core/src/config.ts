/**
 * Every setting Fieldgate has, with its default and why. Read once at start from the environment,
 * validated, then frozen: nothing else in the code reads process.env.
 *
 * `Config` says what each setting is for; `settings` below is the table every value is read through:
 * one row per setting with its variable, default, parser and one line for README's Settings table
 * (`npm run docs:settings` writes it; packages/core/test/config.test.ts checks it matches).
 */
import { readFileSync } from 'node:fs'
import { isIP } from 'node:net'
import { isAbsolute, join } from 'node:path'
import { defaultCacheEntries } from './cache.js'

/** `EdDSA` is Ed25519 (RFC 8037). */
export type SigningAlg = 'RS256' | 'PS256' | 'ES256' | 'EdDSA'
export type SignupPolicy = 'open' | 'verified' | 'invite' | 'closed'
/** Who may register a client at /oauth/register (RFC 7591 §3): anyone, the bearer of an initial access token, nobody. */
export type RegistrationPolicy = 'open' | 'token' | 'off'

/** What the customer's organisation is called on every page and in every message: "farm", "company". */
export interface TenantWord {
  readonly one: string
  readonly many: string
}

/** An upstream OpenID Connect provider people may sign in with (the platform's own identity provider). */
export interface UpstreamProvider {
  /** `default` for the one set by FIELDGATE_OIDC_*: its callback is `/login/oidc/callback`; others `/login/oidc/<id>/callback`. */
  readonly id: string
  /** The button says "Continue with <name>". */
  readonly name: string
  readonly issuer: string
  readonly clientId: string
  readonly clientSecret: string
  readonly scopes: readonly string[]
  /** The claim listing the person's tenants: `[{"tenant_id": "…", "role": "owner|admin|member"}]`. */
  readonly tenantsClaim: string
}

export interface Config {
  /** Where the HTTP server listens. FIELDGATE_HOST, FIELDGATE_PORT. */
  readonly host: string
  readonly port: number
  /** RFC 8414 issuer and the `iss` of every token. FIELDGATE_ISSUER; defaults to the listening origin. */
  readonly issuer: string
  /** `aud` of access tokens: the protected API. FIELDGATE_AUDIENCE; defaults to `<issuer>/api`. */
  readonly audience: string
  /** Embedded SQLite lives here, with the generated master key. FIELDGATE_DATA_DIR. */
  readonly dataDir: string
  /** Set to use PostgreSQL instead of SQLite (several instances share it). DATABASE_URL. */
  readonly databaseUrl: string | undefined
  /** 32 bytes, base64 or hex, that encrypt private signing keys at rest. FIELDGATE_MASTER_KEY. */
  readonly masterKey: string | undefined
  /**
   * Algorithm of new signing keys: RS256 (the default: what the FieldEdge dialect documents and every
   * JWT library verifies), PS256, ES256, or EdDSA with Ed25519 (RFC 8037: 64-byte signatures; signs
   * about as fast as ES256, 8 times RS256, and verifies a third as fast as RS256: docs/deployment.md).
   * Only new keys take it: after a change, the first rotation starts signing with
   * the key already published as next and publishes one of the new algorithm, which the second rotation
   * starts signing with, so resource servers always hold a key before it signs. FIELDGATE_SIGNING_ALG.
   */
  readonly signingAlg: SigningAlg
  /** Token lifetimes when an app sets none: FieldEdge marketplace apps get 28000 s, private API clients 1 h. */
  readonly tokenTtl: { readonly public: number; readonly private: number }
  /**
   * Authorization codes live this long (seconds). RFC 9700 §4.2.1 wants them short; every dialect's flow
   * is one redirect, so 60 s is ample. At most 600: RFC 6749 §4.1.2 recommends 10 minutes as the ceiling.
   * FIELDGATE_CODE_TTL.
   */
  readonly codeTtl: number
  /**
   * A sign-in lasts this long (seconds), then the person signs in again. At least 5 minutes, or a person
   * could not get from the sign-in page through consent; at most 30 days. FIELDGATE_SESSION_TTL.
   */
  readonly sessionTtl: number
  /**
   * Failed sign-ins, counted in windows of `windowSeconds` from the first failure (across the deployment
   * with `redisUrl`, else per process). Nothing locks an account: a hard lockout would let anyone shut
   * the owner out with ten wrong passwords (OWASP Authentication Cheat Sheet). Instead:
   * - per account from one address: `perAccountAddress` failures are free, then each next try from that
   *   address waits `delaySeconds`, doubling per failure up to `maxDelaySeconds` (429 with Retry-After);
   * - per address, over every account: after `perAddress` failures (sign-ups count too) that address gets
   *   429 until its window ends;
   * - per account, over every address: after `perAccount` failures each attempt is held `slowdownMs`
   *   before the password is checked. It slows guessing from many addresses and never refuses.
   * So the right password from an address that is not throttled always signs in.
   * Defaults: 5 free, then 1, 2, 4 … s up to 5 min: about 13 guesses per account and address in 15
   * minutes; 50 failures per address (several people behind one NAT mistyping); past 20 failures on one
   * account, 1 s per attempt. FIELDGATE_SIGN_IN_WINDOW, FIELDGATE_SIGN_IN_PER_ACCOUNT_ADDRESS,
   * FIELDGATE_SIGN_IN_DELAY, FIELDGATE_SIGN_IN_MAX_DELAY, FIELDGATE_SIGN_IN_PER_ADDRESS,
   * FIELDGATE_SIGN_IN_PER_ACCOUNT, FIELDGATE_SIGN_IN_SLOWDOWN_MS.
   */
  readonly signInLimits: {
    readonly windowSeconds: number
    readonly perAccountAddress: number
    readonly delaySeconds: number
    readonly maxDelaySeconds: number
    readonly perAddress: number
    readonly perAccount: number
    readonly slowdownMs: number
  }
  /**
   * Which peers may tell the client's address in `X-Forwarded-For` (and the protocol and host in
   * `X-Forwarded-Proto`, `X-Forwarded-Host`). Off by default: every request's address is the socket's
   * peer and the headers are ignored, since anyone can send them. Behind a load balancer, set it, or
   * every audit entry, sign-in limit and per-address rate limit sees the balancer's address only.
   * - a hop count (`1`: trust the peer, so the address is the last one it appended; `2` for two proxies).
   *   It trusts whoever connects, so use it only where nothing but your proxies can reach Fieldgate;
   * - or a comma list of addresses and CIDRs of your proxies (`10.0.0.0/8, 192.0.2.7`), with `loopback`,
   *   `linklocal` and `uniquelocal` naming those ranges (proxy-addr, as Fastify uses it).
   * The addresses appended by untrusted peers are ignored, so a client cannot forge its own.
   * `true` (trust everyone) is refused: it would let every client choose its address. FIELDGATE_TRUST_PROXY.
   */
  readonly trustProxy: false | number | readonly string[]
  /**
   * Largest request body accepted, in bytes. OAuth requests are small; the resource API's records (a
   * field's boundary, a map's features) are what may need more. 1 KiB to 16 MiB. FIELDGATE_BODY_LIMIT.
   */
  readonly bodyLimit: number
  /**
   * How often each process reads the change feed (revocations, key rotation), in ms. It bounds how late
   * another process on SQLite hears of a revocation (PostgreSQL also wakes the feed at once by
   * LISTEN/NOTIFY). 10 ms to 1 minute: faster only loads the store. FIELDGATE_POLL_INTERVAL_MS.
   */
  readonly changePollMs: number
  /**
   * Entries each process keeps per kind of record it caches (clients, tenants with grants, grant states,
   * opaque tokens); the least recently used go first. About 1 KB each at most. FIELDGATE_CACHE_ENTRIES.
   */
  readonly cacheEntries: number
  /** pino level. FIELDGATE_LOG_LEVEL. */
  readonly logLevel: string
  /**
   * On SIGTERM or SIGINT a serving process drains in-flight requests for at most this long (ms), then
   * cuts the connections still open, so a stuck client cannot hold a shutdown. 10 s is ample for OAuth
   * requests and leaves room under Kubernetes' default 30 s grace. FIELDGATE_SHUTDOWN_TIMEOUT_MS.
   */
  readonly shutdownTimeoutMs: number
  /**
   * Bearer token of the HTTP admin API (`/admin/v1`), at least 32 characters. Unset, the admin API is
   * off: the CLI on the same store is the way in. FIELDGATE_ADMIN_TOKEN.
   */
  readonly adminToken: string | undefined
  /**
   * Who may make an account. `open`: anyone, and partners may create apps at once; `verified`: anyone,
   * but a partner creates apps only once they followed the link mailed to their address (the default:
   * an app's contact is then a real mailbox); `invite`: only people an operator or a tenant owner invited;
   * `closed`: nobody signs up, operators add accounts (CLI, admin API). FIELDGATE_SIGNUP.
   */
  readonly signup: SignupPolicy
  /**
   * SMTP server for mail (`smtp://user:pass@host:587`, STARTTLS where the server offers it; `smtps://`
   * for TLS from the start). Unset, mail stays in the local mailbox (`fieldgate mail list`, the operator
   * console). FIELDGATE_SMTP_URL.
   */
  readonly smtpUrl: string | undefined
  /**
   * A PEM file of CA certificates to trust for the SMTP server, in addition to the ones Node trusts by
   * default: for a relay whose certificate a private CA signed. Relative to the data dir or absolute;
   * read and checked at start (mail/smtp-ca.ts). Certificates are always verified: a STARTTLS upgrade to
   * a server none of these vouches for fails, and the message waits for the next attempt.
   * FIELDGATE_SMTP_CA_FILE.
   */
  readonly smtpCaFile: string | undefined
  /**
   * The platform's brand on every page and message, so its customers see its name, not ours: `name`,
   * `logo` (an https URL, or a file name in the data dir, served at /assets/brand-logo), `color` (the
   * primary colour, #rrggbb), `supportUrl`, `termsUrl`, `privacyUrl` (linked in every page's footer),
   * `tenantWord` (farm, company, organisation; `singular/plural` for any other word), and for a look of
   * its own `stylesheet` (a CSS file served instead of Fieldgate's) and `layout` (an HTML template every
   * page is drawn in, with {{title}}, {{head}}, {{header}}, {{main}} and {{footer}}). Each from its
   * FIELDGATE_BRAND_* variable (FIELDGATE_TENANT_WORD for the word) or, where that is unset, from the JSON
   * file FIELDGATE_BRAND_FILE with the same keys. Paths are relative to the data dir.
   */
  readonly brand: {
    readonly file: string | undefined
    readonly name: string
    readonly logo: string | undefined
    readonly color: string
    readonly supportUrl: string | undefined
    readonly termsUrl: string | undefined
    readonly privacyUrl: string | undefined
    readonly tenantWord: TenantWord
    readonly stylesheet: string | undefined
    readonly layout: string | undefined
  }
  /**
   * The APIs a gateway protects with `GET /forward-auth` (core/gateway.ts): a JSON file the operator writes,
   * relative to the data dir or absolute. Unset, forward-auth knows no API and refuses every check.
   * FIELDGATE_GATEWAY_FILE.
   */
  readonly gatewayFile: string | undefined
  /**
   * Sign-in with upstream OpenID Connect providers (docs/upstream-sign-in.md). One by FIELDGATE_OIDC_ISSUER,
   * FIELDGATE_OIDC_CLIENT_ID, FIELDGATE_OIDC_CLIENT_SECRET, FIELDGATE_OIDC_NAME, FIELDGATE_OIDC_SCOPES and
   * FIELDGATE_OIDC_TENANTS_CLAIM; any number more in the JSON file FIELDGATE_OIDC_FILE (relative to the data
   * dir): a list of `{id, name, issuer, client_id, client_secret, scopes, tenants_claim}`. `providers` is
   * all of them, read at start. `passwordSignIn` false (FIELDGATE_PASSWORD_SIGNIN=off) leaves only the
   * providers' buttons on the sign-in page; it needs at least one provider. An issuer is https, or http on
   * loopback (development and tests).
   */
  readonly upstream: {
    readonly file: string | undefined
    readonly issuer: string | undefined
    readonly clientId: string | undefined
    readonly clientSecret: string | undefined
    readonly name: string | undefined
    readonly scopes: string
    readonly tenantsClaim: string
    readonly passwordSignIn: boolean
    readonly providers: readonly UpstreamProvider[]
  }
  /** The From of every message. FIELDGATE_MAIL_FROM; defaults to `<brand name> <no-reply@<issuer's host>>`. */
  readonly mailFrom: string
  /**
   * Requests allowed per window of `windowSeconds`, counted across every process of a deployment when
   * `redisUrl` is set (per process otherwise). 0 turns one limit off.
   * - `perToken`, `perClient`: calls to the protected API (routes behind a bearer token) per access token
   *   and per client; only calls whose token was accepted are counted.
   * - `tokenPerClient`: token requests per client, counted only once the client has authenticated, so
   *   nobody can spend another client's budget by claiming its client_id.
   * - `tokenPerAddress`: token requests per client address (IPv6 per /64), authenticated or not: it bounds
   *   secret guessing. The address is `request.ip`: behind a load balancer, set `trustProxy` or every
   *   request has the balancer's address.
   * - `registerPerAddress`: requests to /oauth/register (RFC 7591) and its RFC 7592 paths per client
   *   address: open registration writes a row per request, so it is held far below the token endpoint.
   * Defaults, as averages over a minute: 10 API calls a second per token and 20 per client, far above what
   * an integration syncing records needs; 5 token requests a second per client (a token lasts 1 h to
   * 28000 s, so more means a client that does not reuse its tokens) and 10 per address (several clients
   * behind one NAT, while guessing a 256-bit secret at that rate is hopeless); half a registration a second
   * per address (an agent registers once per install). FIELDGATE_RATE_LIMIT_WINDOW,
   * FIELDGATE_RATE_LIMIT_PER_TOKEN, FIELDGATE_RATE_LIMIT_PER_CLIENT, FIELDGATE_RATE_LIMIT_TOKEN_PER_CLIENT,
   * FIELDGATE_RATE_LIMIT_TOKEN_PER_ADDRESS, FIELDGATE_RATE_LIMIT_REGISTER_PER_ADDRESS.
   */
  readonly rateLimits: {
    readonly windowSeconds: number
    readonly perToken: number
    readonly perClient: number
    readonly tokenPerClient: number
    readonly tokenPerAddress: number
    /** Requests to /oauth/register and its RFC 7592 paths per client address: each registration writes a row. */
    readonly registerPerAddress: number
  }
  /**
   * Where Prometheus reads `/metrics`, which shows routes, volumes and internals an outsider should
   * not see. `listen` (FIELDGATE_METRICS_LISTEN=host:port, `[::1]:9100` for IPv6) serves it on a
   * listener of its own, e.g. an internal interface. `token` (FIELDGATE_METRICS_TOKEN, 32+ characters)
   * requires `Authorization: Bearer <token>` for it wherever it is served. On the public port it is
   * served with the token when one is set; otherwise only while neither `listen` nor an https issuer
   * is set (development): a production issuer keeps it off the public port (404) unless asked.
   */
  readonly metrics: { readonly listen: { readonly host: string; readonly port: number } | undefined; readonly token: string | undefined }
  /**
   * Redis holding the rate-limit counters, so several processes and instances share one budget
   * (`redis://` or `rediss://`). Unset, each process counts in memory. If Redis is unreachable, requests
   * are served without the limits and a warning is logged. REDIS_URL.
   */
  readonly redisUrl: string | undefined
  /**
   * Prefix of every rate-limit key in Redis, so deployments (or test runs) sharing one Redis do not share
   * counters. Every process of a deployment must use the same. FIELDGATE_RATE_LIMIT_PREFIX; defaults to
   * `fieldgate:<issuer>:`, the one thing every process of a deployment already agrees on.
   */
  readonly rateLimitPrefix: string
  /**
   * Load shedding (plugins/load-shedding.ts): while the mean event-loop delay over the last `sampleMs`
   * exceeds `maxEventLoopDelayMs`, the process answers new requests with 503 temporarily_unavailable and
   * `Retry-After: retryAfterSeconds` before reading their body, and /readyz says unavailable so a balancer
   * routes elsewhere; /healthz and /metrics are always served. The delay is how long ready work waits for the CPU, so it grows with the queue, unlike
   * utilization, which is near 1 already at capacity. Measured on the token endpoint, one process on two
   * busy cores: 13-17 ms at 50 connections (throughput already flat), 30-50 ms at 100 (what bench/run.mjs
   * drives, which must not shed), 70-120 ms at 250 and 130-370 ms at 500; 75 ms sits between. Samples of
   * 500 ms react within a second yet hold 50 readings of the 10 ms timer. Retry-After 1 s: a shed moment
   * passes within a sample or two. FIELDGATE_OVERLOAD_MAX_DELAY_MS (0 turns shedding off),
   * FIELDGATE_OVERLOAD_SAMPLE_MS, FIELDGATE_OVERLOAD_RETRY_AFTER.
   */
  readonly overload: { readonly maxEventLoopDelayMs: number; readonly sampleMs: number; readonly retryAfterSeconds: number }
  /**
   * RFC 9449 DPoP proofs, at the token endpoint and at Fieldgate's own protected API. A proof's `iat`
   * may be at most `maxAgeSeconds` old and at most `futureSeconds` ahead of this clock (RFC 9449 §11.1):
   * 60 s is ample for a proof made just before its request, and every accepted `jti` is remembered in
   * the store that long (so across instances), which is what refuses a replay; clients' clocks run
   * ahead less often than behind, so the future side is kept short (5 s). With `nonce`, every proof must
   * also carry a nonce the server gave in DPoP-Nonce (§8, §9): stateless, an HMAC of a 5-minute step
   * under the master key, so any instance accepts another's; a client's clock then matters no more.
   * FIELDGATE_DPOP_NONCE, FIELDGATE_DPOP_PROOF_MAX_AGE, FIELDGATE_DPOP_PROOF_FUTURE.
   */
  readonly dpop: { readonly nonce: boolean; readonly maxAgeSeconds: number; readonly futureSeconds: number }
  /**
   * Data API delivery (the outbox dispatcher in every serving process). A failed attempt is retried
   * after `baseDelayMs`, then twice as long each time up to `maxDelayMs`, with jitter, until the event
   * is `maxAgeSeconds` old (a day, as receivers may be down that long), then parked as failed.
   * `leaseMs` must exceed `timeoutMs`: it is how long an attempt is this process's alone, and how long an
   * attempt cut off by a crash waits before another process makes it again. FIELDGATE_WEBHOOK_POLL_MS,
   * FIELDGATE_WEBHOOK_TIMEOUT_MS, FIELDGATE_WEBHOOK_LEASE_MS, FIELDGATE_WEBHOOK_BASE_DELAY_MS,
   * FIELDGATE_WEBHOOK_MAX_DELAY_MS, FIELDGATE_WEBHOOK_MAX_AGE_SECONDS.
   * `allowPrivateTargets` lets Data API URLs reach loopback, private and link-local addresses; off, a
   * partner cannot use the dispatcher to probe the network Fieldgate runs in. Turn it on only where every
   * receiver is yours (development, tests). FIELDGATE_WEBHOOK_ALLOW_PRIVATE_TARGETS=1.
   */
  readonly webhooks: {
    readonly allowPrivateTargets: boolean
    readonly pollMs: number
    readonly timeoutMs: number
    readonly leaseMs: number
    readonly baseDelayMs: number
    readonly maxDelayMs: number
    readonly maxAgeSeconds: number
    readonly batch: number
  }
  /**
   * OAuth 2.1 refresh tokens (docs/oauth21.md): the access tokens issued beside them are short-lived;
   * each refresh token lives `idleSeconds` past its last use (sliding) and never past `maxSeconds` from
   * the code exchange that began its family (absolute), after which the person is asked again.
   */
  readonly refresh: {
    readonly accessTokenSeconds: number
    readonly idleSeconds: number
    readonly maxSeconds: number
  }
  /**
   * Clients that register themselves (docs/registration.md). `policy` is RFC 7591 dynamic registration at
   * /oauth/register: `open` to anyone (the default: an MCP client or a desktop app connects with no setup,
   * and reaches a farm only through its farmer's consent, which says the app is unreviewed), `token` only
   * with an initial access token an operator made (`fieldgate registration-tokens create`), `off` not at
   * all (404). `environment` is where every registered client lives: `live` (the default) or `sandbox`,
   * which limits them to sandbox tenants. `metadataDocuments` accepts an https `client_id` whose JSON
   * document is fetched (draft-ietf-oauth-client-id-metadata-document), under the SSRF rules of Data API
   * deliveries (`webhooks.allowPrivateTargets`). FIELDGATE_REGISTRATION, FIELDGATE_REGISTRATION_ENVIRONMENT,
   * FIELDGATE_CLIENT_METADATA_DOCUMENTS.
   */
  readonly registration: {
    readonly policy: RegistrationPolicy
    readonly environment: 'live' | 'sandbox'
    readonly metadataDocuments: boolean
  }
}

export class ConfigError extends Error {}

/** A file a setting names: relative to the data directory unless absolute. */
const settingFilePath = (file: string, dataDir: string): string => (isAbsolute(file) ? file : join(dataDir, file))

const reason = (err: unknown): string => (err instanceof Error ? err.message : String(err))

/** The text of the file `variable` names, read at start: a file that cannot be read stops the start, naming the setting. */
export function readSettingFile(variable: string, file: string, dataDir: string): { path: string; text: string } {
  const path = settingFilePath(file, dataDir)
  try {
    return { path, text: readFileSync(path, 'utf8') }
  } catch (err) {
    throw new ConfigError(`${variable} ${path} cannot be read: ${reason(err)}`)
  }
}

/** The JSON of the file `variable` names, read at start: unreadable or not JSON stops the start, naming the setting. */
function readSettingJson(variable: string, file: string, dataDir: string): { path: string; json: unknown } {
  const path = settingFilePath(file, dataDir)
  try {
    return { path, json: JSON.parse(readFileSync(path, 'utf8')) }
  } catch (err) {
    throw new ConfigError(`${variable} ${path} cannot be read as JSON: ${reason(err)}`)
  }
}

/** Where settings are read from: the process environment, or an explicit one (tests, `fieldgate serve --port`). */
export type SettingsEnv = Readonly<Record<string, string | undefined>>

/** Where a setting's value may come from besides code: a variable, with the parser of its text. */
type Source<T> =
  | { readonly env: string; readonly parse: (text: string, name: string) => T }
  /** Set only in code (ConfigOverrides): nothing a deployment should change on its own. */
  | { readonly env: null }

/** A fixed default, or one computed from other settings (`Basis`), shown in README as `shown`. */
type Default<T, Basis> = { readonly default: T; readonly shown?: string } | { readonly derive: (basis: Basis) => T; readonly shown: string }

/**
 * One row of the settings table. `check` validates (and may normalise) the value wherever it came
 * from, variable, override or default; `parse` only reads the variable's text. `doc` is README's line.
 */
export type Setting<T, Basis = undefined> = Source<T> &
  Default<T, Basis> & {
    readonly check?: (value: T, name: string) => T
    readonly doc: string
  }

/** Settings read as a group, with checks across their rows (a delay no longer than its maximum...). */
type GroupKey = 'tokenTtl' | 'refresh' | 'registration' | 'signInLimits' | 'metrics' | 'rateLimits' | 'overload' | 'dpop' | 'webhooks' | 'brand' | 'upstream'
type LeafKey = Exclude<keyof Config, GroupKey>

/** Settings whose default is computed from others, and from which. */
interface Bases {
  issuer: Pick<Config, 'host' | 'port'>
  audience: Pick<Config, 'issuer'>
  rateLimitPrefix: Pick<Config, 'issuer'>
  mailFrom: Pick<Config, 'issuer' | 'brand'>
}
type BasisOf<K> = K extends keyof Bases ? Bases[K] : undefined

type Rows<T> = { readonly [K in keyof T]: Setting<T[K]> }

export interface SettingGroup<T> {
  readonly rows: Rows<T>
  /** Checks across the group's rows, once every row is read; throws ConfigError. */
  readonly check?: (value: T) => void
}

type LeafSettings = { readonly [K in LeafKey]: Setting<Config[K], BasisOf<K>> }
type GroupSettings = { readonly [G in GroupKey]: SettingGroup<Config[G]> }

/** Exactly one row per key of Config: the compiler refuses a setting without its row, or a row without a setting. */
export type SettingsTable = LeafSettings & GroupSettings

type LeafOverrides = { readonly [K in LeafKey]?: Config[K] }
type GroupOverrides = { readonly [G in GroupKey]?: Partial<Config[G]> }

/** What code and tests may set over the environment; the grouped settings may be given in part. */
export type ConfigOverrides = LeafOverrides & GroupOverrides

// Parsers and checks the rows share. Each message names the variable, so a refusal says what to fix.

const text = (value: string): string => value
const optionalText = (value: string): string | undefined => value

function whole(value: string, name: string): number {
  const n = Number(value)
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n)) throw new ConfigError(`${name} must be a whole number, 0 or more`)
  return n
}

const signupPolicies: readonly SignupPolicy[] = ['open', 'verified', 'invite', 'closed']

function signupPolicy(value: string, name: string): SignupPolicy {
  const policy = signupPolicies.find((p) => p === value)
  if (!policy) throw new ConfigError(`${name} must be one of ${signupPolicies.join(', ')}`)
  return policy
}

/** One of `allowed`, named by the variable when it is not (overrides are checked too). */
const oneOfText =
  <T extends string>(allowed: readonly T[]) =>
  (value: string, name: string): T => {
    const found = allowed.find((a) => a === value)
    if (found === undefined) throw new ConfigError(`${name} must be one of ${allowed.join(', ')}`)
    return found
  }

const registrationPolicy = oneOfText<RegistrationPolicy>(['open', 'token', 'off'])
const registrationEnvironment = oneOfText<'live' | 'sandbox'>(['live', 'sandbox'])

function smtpUrl(value: string | undefined, name: string): string | undefined {
  if (value === undefined) return undefined
  let url: URL
  try {
    url = new URL(value)
  } catch {
    throw new ConfigError(`${name} must be a URL such as smtp://user:pass@host:587`)
  }
  if (url.protocol !== 'smtp:' && url.protocol !== 'smtps:') throw new ConfigError(`${name} must start with smtp:// or smtps://`)
  return value
}

// The brand's rows: what a page shows must be a plain name, a colour, a link a person may follow.

function brandName(value: string, name: string): string {
  const trimmed = value.trim()
  if (trimmed.length < 1 || trimmed.length > 60 || /\p{Cc}/u.test(trimmed)) throw new ConfigError(`${name} must be 1 to 60 characters on one line`)
  return trimmed
}

function hexColor(value: string, name: string): string {
  if (!/^#[0-9a-fA-F]{6}$/.test(value.trim())) throw new ConfigError(`${name} must be a colour as #rrggbb, e.g. #2f6b3a`)
  return value.trim().toLowerCase()
}

/** The URL `value` spells, or undefined: a check names its own setting when it is not one. */
const urlOf = (value: string): URL | undefined => (URL.canParse(value) ? new URL(value) : undefined)

function webLink(value: string | undefined, name: string): string | undefined {
  if (value === undefined) return undefined
  const url = urlOf(value)
  if (!url || (url.protocol !== 'https:' && url.protocol !== 'http:')) throw new ConfigError(`${name} must be an http(s) URL`)
  return url.href
}

/** A logo: an https URL, or a file name inside the data dir (no `..`). */
function brandLogo(value: string | undefined, name: string): string | undefined {
  if (value === undefined || /^https:\/\//.test(value)) return webLink(value, name)
  return dataDirFile(value, name)
}

function dataDirFile(value: string | undefined, name: string): string | undefined {
  if (value === undefined) return undefined
  if (value.startsWith('/') || value.split(/[\\/]/).includes('..') || /^[a-z]+:/i.test(value)) {
    throw new ConfigError(`${name} must be an https URL or a file in the data dir (a relative path without ..)`)
  }
  return value
}

/** `farm`, `company`, `organisation`, or `singular/plural` for a word English plurals would get wrong. */
function tenantWord(value: string, name: string): TenantWord {
  const [one = '', many, ...rest] = value.trim().toLowerCase().split('/')
  const word = /^[a-z][a-z -]{1,28}[a-z]$/
  if (rest.length || !word.test(one) || (many !== undefined && !word.test(many))) {
    throw new ConfigError(`${name} must be a word such as farm, company or organisation, or singular/plural such as site/sites`)
  }
  return Object.freeze({ one, many: many ?? plural(one) })
}

const plural = (word: string): string => (/[^aeiou]y$/.test(word) ? `${word.slice(0, -1)}ies` : /(s|x|z|ch|sh)$/.test(word) ? `${word}es` : `${word}s`)

const checkTenantWord = (value: TenantWord, name: string): TenantWord => tenantWord(`${value.one}/${value.many}`, name)

/**
 * The brand's variables, with FIELDGATE_BRAND_FILE's keys standing in for those unset: the file is one
 * more source of the same rows, read by their own parsers and checks.
 */
function brandEnv(env: SettingsEnv, dataDir: string): SettingsEnv {
  const file = env.FIELDGATE_BRAND_FILE
  if (!file) return env
  const { path, json } = readSettingJson('FIELDGATE_BRAND_FILE', file, dataDir)
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new ConfigError(`FIELDGATE_BRAND_FILE ${path} must hold a JSON object`)
  const variables = new Map<string, string>()
  for (const [key, row] of Object.entries(groupSettings.brand.rows)) if (key !== 'file' && row.env !== null) variables.set(key, row.env)
  const merged: Record<string, string | undefined> = { ...env }
  for (const [key, value] of Object.entries(json)) {
    const variable = variables.get(key)
    if (!variable) throw new ConfigError(`FIELDGATE_BRAND_FILE: unknown key "${key}" (known: ${[...variables.keys()].join(', ')})`)
    if (typeof value !== 'string') throw new ConfigError(`FIELDGATE_BRAND_FILE: "${key}" must be a string`)
    if (!env[variable]) merged[variable] = value // a variable set wins over the file
  }
  return merged
}

// Upstream OpenID Connect providers: the variables' one and the file's list, checked alike.

function onOff(value: string, name: string): boolean {
  if (/^(on|1|true|yes)$/i.test(value)) return true
  if (/^(off|0|false|no)$/i.test(value)) return false
  throw new ConfigError(`${name} must be on or off`)
}

/** https, or http on loopback only: an ID token fetched over plain http elsewhere could be anyone's. */
function upstreamIssuer(value: string | undefined, name: string): string | undefined {
  if (value === undefined) return undefined
  const url = urlOf(value)
  const loopback = url !== undefined && ['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname)
  if (!url || url.search || url.hash || !(url.protocol === 'https:' || (url.protocol === 'http:' && loopback))) {
    throw new ConfigError(`${name} must be an https URL (http only on loopback), without query or fragment`)
  }
  return value
}

function claimName(value: string, name: string): string {
  if (!/^[\x21-\x7e]{1,100}$/.test(value)) throw new ConfigError(`${name} must be a claim name`)
  return value
}

const providerId = /^[a-z0-9][a-z0-9-]{0,31}$/
// Paths under /login/oidc/ that are not a provider's.
const reservedProviderIds = ['default', 'callback', 'backchannel-logout', 'signed-out', 'start', 'no-tenant']

const scopeList = (value: string): string[] => ['openid', ...value.split(/\s+/).filter((s) => s !== '' && s !== 'openid')]

/** One provider from its parts, checked; `where` names its source in every refusal. */
function upstreamProvider(
  p: { id: string; name: unknown; issuer: unknown; clientId: unknown; clientSecret: unknown; scopes: unknown; tenantsClaim: unknown },
  where: string,
): UpstreamProvider {
  const textOf = (value: unknown, key: string): string => {
    if (typeof value !== 'string' || value === '') throw new ConfigError(`${where}: ${key} must be given as text`)
    return value
  }
  const issuer = upstreamIssuer(textOf(p.issuer, 'issuer'), `${where}: issuer`) ?? ''
  const scopes = Array.isArray(p.scopes) ? p.scopes.map((s) => textOf(s, 'scopes')).join(' ') : p.scopes === undefined ? 'openid email profile' : textOf(p.scopes, 'scopes')
  return Object.freeze({
    id: p.id,
    name: brandName(p.name === undefined ? new URL(issuer).host : textOf(p.name, 'name'), `${where}: name`),
    issuer,
    clientId: textOf(p.clientId, 'client_id'),
    clientSecret: textOf(p.clientSecret, 'client_secret'),
    scopes: Object.freeze(scopeList(scopes)),
    tenantsClaim: claimName(p.tenantsClaim === undefined ? 'tenants' : textOf(p.tenantsClaim, 'tenants_claim'), `${where}: tenants_claim`),
  })
}

function providersFile(file: string, dataDir: string): UpstreamProvider[] {
  const { path, json } = readSettingJson('FIELDGATE_OIDC_FILE', file, dataDir)
  if (!Array.isArray(json)) throw new ConfigError(`FIELDGATE_OIDC_FILE ${path} must hold a JSON list of providers`)
  const known = ['id', 'name', 'issuer', 'client_id', 'client_secret', 'scopes', 'tenants_claim']
  return json.map((entry: unknown, i) => {
    const where = `FIELDGATE_OIDC_FILE provider ${i + 1}`
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) throw new ConfigError(`${where} must be a JSON object`)
    const e = new Map(Object.entries(entry))
    for (const key of e.keys()) if (!known.includes(key)) throw new ConfigError(`${where}: unknown key "${key}" (known: ${known.join(', ')})`)
    const id = e.get('id')
    if (typeof id !== 'string' || !providerId.test(id) || reservedProviderIds.includes(id)) {
      throw new ConfigError(`${where}: id must be 1 to 32 of a-z, 0-9 and -, and not one of ${reservedProviderIds.join(', ')}`)
    }
    return upstreamProvider(
      {
        id,
        name: e.get('name'),
        issuer: e.get('issuer'),
        clientId: e.get('client_id'),
        clientSecret: e.get('client_secret'),
        scopes: e.get('scopes'),
        tenantsClaim: e.get('tenants_claim'),
      },
      where,
    )
  })
}

/** The group with `providers` assembled: those given in code, the variables' one, the file's. */
function upstreamSettings(u: Config['upstream'], dataDir: string): Config['upstream'] {
  const providers = [...u.providers]
  if (u.issuer !== undefined || u.clientId !== undefined) {
    providers.push(
      upstreamProvider(
        { id: 'default', name: u.name, issuer: u.issuer, clientId: u.clientId, clientSecret: u.clientSecret, scopes: u.scopes, tenantsClaim: u.tenantsClaim },
        'FIELDGATE_OIDC_*',
      ),
    )
  }
  if (u.file !== undefined) providers.push(...providersFile(u.file, dataDir))
  const ids = providers.map((p) => p.id)
  const twice = ids.find((id, i) => ids.indexOf(id) !== i)
  if (twice !== undefined) throw new ConfigError(`upstream provider id "${twice}" is used twice`)
  if (!u.passwordSignIn && providers.length === 0) throw new ConfigError('FIELDGATE_PASSWORD_SIGNIN=off needs an upstream provider (FIELDGATE_OIDC_ISSUER or FIELDGATE_OIDC_FILE)')
  return Object.freeze({ ...u, providers: Object.freeze(providers) })
}

/** Digits only (no `1e3`, no `0x50`), 0 to 65535; 0 lets the system pick a free port. */
export function portNumber(value: string, name: string): number {
  const n = Number(value)
  if (!/^\d{1,5}$/.test(value.trim()) || n > 65535) throw new ConfigError(`${name} must be a port number from 0 to 65535`)
  return n
}

/** A whole number from `min` to `max`, wherever it came from (overrides skip `whole`). */
const within =
  (min: number, max: number, unit: string) =>
  (value: number, name: string): number => {
    if (!Number.isSafeInteger(value) || value < min || value > max) throw new ConfigError(`${name} must be ${min} to ${max}${unit}`)
    return value
  }

const algs: readonly SigningAlg[] = ['RS256', 'PS256', 'ES256', 'EdDSA']
const isSigningAlg = (value: string): value is SigningAlg => algs.some((a) => a === value)

function signingAlg(value: string): SigningAlg {
  if (!isSigningAlg(value)) throw new ConfigError(`FIELDGATE_SIGNING_ALG must be one of ${algs.join(', ')}`)
  return value
}

function issuerUrl(value: string): string {
  const issuer = trimSlash(value)
  if (!/^https?:\/\/[^/?#]+(\/[^?#]*)?$/.test(issuer)) throw new ConfigError('FIELDGATE_ISSUER must be an http(s) URL')
  return issuer
}

const proxyRanges = ['loopback', 'linklocal', 'uniquelocal']

/** FIELDGATE_TRUST_PROXY's text: off, a hop count, or a list of proxy addresses, CIDRs and range names. */
function trustProxyText(value: string): Config['trustProxy'] {
  const list = value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')
  if (list.length === 0 || (list.length === 1 && /^(0|off|false|no)$/i.test(list[0]!))) return false
  if (list.length === 1 && /^\d+$/.test(list[0]!)) return Number(list[0])
  return list
}

/** Whatever it came from: a hop count within reason, or addresses every one of which is a proxy's. */
function trustProxy(value: Config['trustProxy']): Config['trustProxy'] {
  if (value === false) return false
  if (typeof value === 'number') return hops(value)
  if (value.length === 0) return false
  for (const entry of value) {
    if (!proxyRanges.includes(entry) && !isAddressOrCidr(entry)) {
      throw new ConfigError(
        `FIELDGATE_TRUST_PROXY: "${entry}" is not a hop count, an IP address, a CIDR or one of ${proxyRanges.join(', ')} (trusting every peer is not allowed: it lets any client forge its address)`,
      )
    }
  }
  return Object.freeze([...value])
}

function hops(n: number): number | false {
  if (!Number.isSafeInteger(n) || n < 0 || n > 20) throw new ConfigError('FIELDGATE_TRUST_PROXY hop count must be a whole number from 0 to 20')
  return n === 0 ? false : n
}

/** An IPv4 or IPv6 address, optionally with a prefix length (/24) or, for IPv4, a netmask (/255.255.255.0). */
function isAddressOrCidr(entry: string): boolean {
  const [address = '', prefix, ...rest] = entry.split('/')
  const family = isIP(address)
  if (family === 0 || rest.length > 0) return false
  if (prefix === undefined) return true
  if (family === 4 && isIP(prefix) === 4) return true
  return /^\d{1,3}$/.test(prefix) && Number(prefix) <= (family === 4 ? 32 : 128)
}

function adminToken(value: string | undefined): string | undefined {
  if (value !== undefined && value.length < 32) throw new ConfigError('FIELDGATE_ADMIN_TOKEN must be at least 32 characters')
  return value
}

function redisUrl(value: string | undefined): string | undefined {
  if (value !== undefined && !/^rediss?:\/\/./.test(value)) throw new ConfigError('REDIS_URL must be a redis:// or rediss:// URL')
  return value
}

/** `host:port`, `[v6]:port`: the metrics listener. */
function listenAddress(value: string): Config['metrics']['listen'] {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(value.trim())
  const port = Number(m?.[3])
  if (!m || !Number.isInteger(port) || port < 1 || port > 65535) throw new ConfigError('FIELDGATE_METRICS_LISTEN must be host:port, e.g. 10.0.0.5:9100 or [::1]:9100')
  return { host: m[1] ?? m[2] ?? '', port }
}

function listenHost(listen: Config['metrics']['listen']): Config['metrics']['listen'] {
  if (listen === undefined) return undefined
  if (!isIP(listen.host) && listen.host !== 'localhost') throw new ConfigError('FIELDGATE_METRICS_LISTEN must be host:port with an IP address host (or localhost)')
  return Object.freeze({ ...listen })
}

function metricsToken(token: string | undefined): string | undefined {
  if (token !== undefined && (token.length < 32 || /\s/.test(token))) throw new ConfigError('FIELDGATE_METRICS_TOKEN must be at least 32 characters, without spaces')
  return token
}

/** Overrides skip `whole`'s parsing: each value must still be a whole number, 0 or more. */
function requireCounts(what: string, values: Readonly<Record<string, number>>): void {
  for (const [name, value] of Object.entries(values)) {
    if (!Number.isSafeInteger(value) || value < 0) throw new ConfigError(`${what} ${name} must be a whole number, 0 or more`)
  }
}

/** A count read from its variable: the row most settings are. */
const count = (env: string, value: number, doc: string): Setting<number> => ({ env, parse: whole, default: value, doc })

const trimSlash = (s: string): string => s.replace(/\/+$/, '')
const hostForUrl = (host: string): string => (host.includes(':') ? `[${host}]` : host === '0.0.0.0' ? '127.0.0.1' : host)

/**
 * The table, in the order README lists it: the settings of their own, then the groups. Why each
 * default is what it is, is said on its field of `Config` above.
 */
const leafSettings: LeafSettings = {
  host: { env: 'FIELDGATE_HOST', parse: text, default: '127.0.0.1', doc: 'Address to listen on (`0.0.0.0` behind a load balancer)' },
  port: { env: 'FIELDGATE_PORT', parse: portNumber, default: 4400, doc: 'Port to listen on' },
  issuer: {
    env: 'FIELDGATE_ISSUER',
    parse: text,
    check: issuerUrl,
    shown: '`http://<host>:<port>`',
    derive: ({ host, port }) => `http://${hostForUrl(host)}:${port}`,
    doc: 'RFC 8414 issuer and `iss` of every token; set it to the public URL (https makes cookies `Secure`)',
  },
  audience: { env: 'FIELDGATE_AUDIENCE', parse: text, shown: '`<issuer>/api`', derive: ({ issuer }) => `${issuer}/api`, doc: '`aud` of access tokens: the protected API' },
  dataDir: { env: 'FIELDGATE_DATA_DIR', parse: text, default: './data', doc: 'The SQLite file and, without `FIELDGATE_MASTER_KEY`, the generated master key' },
  databaseUrl: { env: 'DATABASE_URL', parse: optionalText, default: undefined, doc: 'PostgreSQL instead of SQLite, shared by several instances' },
  masterKey: {
    env: 'FIELDGATE_MASTER_KEY',
    parse: optionalText,
    default: undefined,
    shown: 'generated into the data dir',
    doc: '32 bytes (hex or base64) that encrypt private signing keys and sealed client secrets at rest; the same on every instance',
  },
  signingAlg: {
    env: 'FIELDGATE_SIGNING_ALG',
    parse: signingAlg,
    check: signingAlg,
    default: 'RS256',
    doc: 'Algorithm of new signing keys: `RS256`, `PS256`, `ES256` or `EdDSA` (Ed25519, RFC 8037); on a store that has keys, a change signs from the second `fieldgate keys rotate` on (the first publishes the new key)',
  },
  codeTtl: { env: 'FIELDGATE_CODE_TTL', parse: whole, check: within(1, 600, ' seconds'), default: 60, doc: 'Lifetime of an authorization code, seconds (1 to 600)' },
  sessionTtl: {
    env: 'FIELDGATE_SESSION_TTL',
    parse: whole,
    check: within(300, 2_592_000, ' seconds'),
    default: 12 * 3600,
    doc: 'How long a sign-in lasts, seconds (300 to 2592000)',
  },
  trustProxy: {
    env: 'FIELDGATE_TRUST_PROXY',
    parse: trustProxyText,
    check: trustProxy,
    default: false,
    doc: 'Peers that may name the client in `X-Forwarded-For`: a hop count, or a comma list of addresses, CIDRs, `loopback`, `linklocal`, `uniquelocal`',
  },
  bodyLimit: {
    env: 'FIELDGATE_BODY_LIMIT',
    parse: whole,
    check: within(1024, 16 * 1024 * 1024, ' bytes'),
    default: 16 * 1024,
    doc: 'Largest request body, bytes (1024 to 16777216)',
  },
  changePollMs: {
    env: 'FIELDGATE_POLL_INTERVAL_MS',
    parse: whole,
    check: within(10, 60_000, ''),
    default: 250,
    doc: 'How often each process reads the change feed (revocations, key rotation), ms (10 to 60000)',
  },
  cacheEntries: {
    env: 'FIELDGATE_CACHE_ENTRIES',
    parse: whole,
    check: within(100, 10_000_000, ''),
    default: defaultCacheEntries,
    doc: 'Entries each process caches per kind of record (clients, tenants with grants, grant states, opaque tokens), least recently used out first (100 to 10000000)',
  },
  logLevel: {
    env: 'FIELDGATE_LOG_LEVEL',
    parse: text,
    default: 'info',
    doc: 'pino level: `info` logs one line per request (route, status, ms, client_id, tenant), `warn` only problems and security events, `debug` also probes; never a secret, token or query string',
  },
  shutdownTimeoutMs: {
    env: 'FIELDGATE_SHUTDOWN_TIMEOUT_MS',
    parse: whole,
    default: 10_000,
    doc: 'On SIGTERM, how long in-flight requests may take before their connections are cut, ms',
  },
  adminToken: {
    env: 'FIELDGATE_ADMIN_TOKEN',
    parse: optionalText,
    check: adminToken,
    default: undefined,
    shown: '— (admin API off)',
    doc: 'Bearer token of the `/admin/v1` API, 32+ characters',
  },
  signup: {
    env: 'FIELDGATE_SIGNUP',
    parse: signupPolicy,
    check: signupPolicy,
    default: 'verified',
    doc: 'Who may sign up: `open`, `verified` (apps only after confirming the email), `invite` or `closed`',
  },
  smtpUrl: {
    env: 'FIELDGATE_SMTP_URL',
    parse: optionalText,
    check: smtpUrl,
    default: undefined,
    shown: '— (local mailbox)',
    doc: 'SMTP server for mail, `smtp://user:pass@host:587` (STARTTLS where offered) or `smtps://`',
  },
  smtpCaFile: {
    env: 'FIELDGATE_SMTP_CA_FILE',
    parse: optionalText,
    default: undefined,
    shown: "— (Node's CAs)",
    doc: "PEM file of CAs to trust for the SMTP server's certificate besides Node's own, relative to the data dir or absolute; read at start",
  },
  gatewayFile: {
    env: 'FIELDGATE_GATEWAY_FILE',
    parse: optionalText,
    default: undefined,
    shown: '— (forward-auth off)',
    doc: "JSON file of the APIs a gateway protects with `GET /forward-auth`: each API's resource URL, hosts and route rules (docs/gateways.md)",
  },
  mailFrom: {
    env: 'FIELDGATE_MAIL_FROM',
    parse: text,
    shown: '`<brand name> <no-reply@<issuer host>>`',
    derive: ({ issuer, brand }) => `${brand.name.replace(/[<>"\\]/g, '')} <no-reply@${new URL(issuer).hostname.replace(/^\[|\]$/g, '')}>`,
    doc: 'The From of every message',
  },
  redisUrl: {
    env: 'REDIS_URL',
    parse: optionalText,
    check: redisUrl,
    default: undefined,
    shown: '— (counters in memory)',
    doc: 'Redis for rate-limit and sign-in counters shared by every process and instance',
  },
  rateLimitPrefix: {
    env: 'FIELDGATE_RATE_LIMIT_PREFIX',
    parse: text,
    shown: '`fieldgate:<issuer>:`',
    derive: ({ issuer }) => `fieldgate:${issuer}:`,
    doc: 'Prefix of every counter in Redis; the same for every process of a deployment',
  },
}

const groupSettings: GroupSettings = {
  brand: {
    rows: {
      file: {
        env: 'FIELDGATE_BRAND_FILE',
        parse: optionalText,
        default: undefined,
        doc: 'A JSON file with any of the brand keys below (`name`, `logo`, `color`, `supportUrl`, `termsUrl`, `privacyUrl`, `tenantWord`, `stylesheet`, `layout`); a variable set wins over it',
      },
      name: { env: 'FIELDGATE_BRAND_NAME', parse: brandName, check: brandName, default: 'Fieldgate', doc: 'The name on every page, in titles and in mail' },
      logo: {
        env: 'FIELDGATE_BRAND_LOGO',
        parse: optionalText,
        check: brandLogo,
        default: undefined,
        doc: 'Logo in the header: an https URL, or an image file (png, svg, jpg, webp) in the data dir',
      },
      color: { env: 'FIELDGATE_BRAND_COLOR', parse: hexColor, check: hexColor, default: '#2f6b3a', doc: 'Primary colour of buttons and links, `#rrggbb`' },
      supportUrl: { env: 'FIELDGATE_BRAND_SUPPORT_URL', parse: optionalText, check: webLink, default: undefined, doc: 'Help link in every page footer' },
      termsUrl: { env: 'FIELDGATE_BRAND_TERMS_URL', parse: optionalText, check: webLink, default: undefined, doc: 'Terms of service, linked in every page footer' },
      privacyUrl: { env: 'FIELDGATE_BRAND_PRIVACY_URL', parse: optionalText, check: webLink, default: undefined, doc: 'Privacy policy, linked in every page footer' },
      tenantWord: {
        env: 'FIELDGATE_TENANT_WORD',
        parse: tenantWord,
        check: checkTenantWord,
        default: { one: 'farm', many: 'farms' },
        shown: '`farm` (`farms`)',
        doc: 'What a customer organisation is called on pages and in mail: `farm`, `company`, `organisation`, or `singular/plural`',
      },
      stylesheet: {
        env: 'FIELDGATE_BRAND_STYLESHEET',
        parse: optionalText,
        check: dataDirFile,
        default: undefined,
        doc: "A CSS file in the data dir served instead of Fieldgate's stylesheet",
      },
      layout: {
        env: 'FIELDGATE_BRAND_LAYOUT',
        parse: optionalText,
        check: dataDirFile,
        default: undefined,
        doc: 'An HTML file in the data dir every page is drawn in: `{{title}}`, `{{head}}`, `{{header}}`, `{{main}}`, `{{footer}}`, `{{lang}}`',
      },
    },
  },

  upstream: {
    rows: {
      file: {
        env: 'FIELDGATE_OIDC_FILE',
        parse: optionalText,
        check: dataDirFile,
        default: undefined,
        doc: 'A JSON file in the data dir listing upstream OpenID Connect providers: `[{"id", "name", "issuer", "client_id", "client_secret", "scopes", "tenants_claim"}]`',
      },
      issuer: {
        env: 'FIELDGATE_OIDC_ISSUER',
        parse: optionalText,
        check: upstreamIssuer,
        default: undefined,
        doc: 'Issuer of the upstream OpenID Connect provider people sign in with',
      },
      clientId: { env: 'FIELDGATE_OIDC_CLIENT_ID', parse: optionalText, default: undefined, doc: "Fieldgate's client id at that provider" },
      clientSecret: { env: 'FIELDGATE_OIDC_CLIENT_SECRET', parse: optionalText, default: undefined, doc: "Fieldgate's client secret at that provider" },
      name: { env: 'FIELDGATE_OIDC_NAME', parse: brandName, default: undefined, shown: "the issuer's host", doc: 'What the sign-in button says: "Continue with <name>"' },
      scopes: { env: 'FIELDGATE_OIDC_SCOPES', parse: text, default: 'openid email profile', doc: 'Scopes asked of that provider; `openid` is always asked' },
      tenantsClaim: {
        env: 'FIELDGATE_OIDC_TENANTS_CLAIM',
        parse: claimName,
        default: 'tenants',
        doc: 'The claim listing the person\'s tenants and roles, `[{"tenant_id": "…", "role": "owner|admin|member"}]`, applied at every sign-in',
      },
      passwordSignIn: { env: 'FIELDGATE_PASSWORD_SIGNIN', parse: onOff, default: true, doc: '`off` leaves only the upstream providers on the sign-in page (needs one)' },
      // Assembled from the rows above and the file (upstreamSettings); code and tests may give more.
      providers: { env: null, default: [], doc: 'Every upstream provider' },
    },
  },

  tokenTtl: {
    rows: {
      // The platforms' documented lifetimes; an app may set its own (developer portal, CLI --token-ttl).
      public: { env: null, default: 28000, doc: 'Access-token lifetime of marketplace apps without their own, seconds' },
      private: { env: null, default: 3600, doc: 'Access-token lifetime of private API clients without their own, seconds' },
    },
    check: (t) => requireCounts('token lifetime', t),
  },

  refresh: {
    rows: {
      accessTokenSeconds: count(
        'FIELDGATE_REFRESHABLE_TOKEN_TTL',
        900,
        'Lifetime of access tokens issued with a refresh token (apps with refresh tokens and no lifetime of their own), seconds',
      ),
      idleSeconds: count('FIELDGATE_REFRESH_TOKEN_IDLE_TTL', 14 * 86400, 'A refresh token ends this long after its family was last refreshed (sliding), seconds'),
      maxSeconds: count(
        'FIELDGATE_REFRESH_TOKEN_MAX_TTL',
        90 * 86400,
        'A refresh-token family ends this long after its code exchange, however often refreshed (absolute), seconds',
      ),
    },
    check: (r) => {
      requireCounts('refresh lifetime', r)
      if (r.accessTokenSeconds < 10) throw new ConfigError('FIELDGATE_REFRESHABLE_TOKEN_TTL must be at least 10 seconds')
      if (r.idleSeconds > r.maxSeconds) throw new ConfigError('FIELDGATE_REFRESH_TOKEN_IDLE_TTL cannot exceed FIELDGATE_REFRESH_TOKEN_MAX_TTL')
      return r
    },
  },

  registration: {
    rows: {
      policy: {
        env: 'FIELDGATE_REGISTRATION',
        parse: registrationPolicy,
        check: registrationPolicy,
        default: 'open',
        doc: 'RFC 7591 client registration at `/oauth/register`: `open`, `token` (an initial access token from `fieldgate registration-tokens create`) or `off` (docs/registration.md)',
      },
      environment: {
        env: 'FIELDGATE_REGISTRATION_ENVIRONMENT',
        parse: registrationEnvironment,
        check: registrationEnvironment,
        default: 'live',
        doc: 'Where registered clients live: `live`, or `sandbox` (they reach only sandbox tenants)',
      },
      metadataDocuments: {
        env: 'FIELDGATE_CLIENT_METADATA_DOCUMENTS',
        parse: onOff,
        default: true,
        doc: 'Accept an https `client_id` whose client metadata document is fetched (with the SSRF rules of Data API deliveries)',
      },
    },
  },

  signInLimits: {
    rows: {
      windowSeconds: count('FIELDGATE_SIGN_IN_WINDOW', 15 * 60, 'Window in which failed sign-ins are counted, seconds'),
      perAccountAddress: count('FIELDGATE_SIGN_IN_PER_ACCOUNT_ADDRESS', 5, 'Failures on one account from one address before that address waits'),
      delaySeconds: count('FIELDGATE_SIGN_IN_DELAY', 1, 'The first wait, seconds; it doubles with each further failure'),
      maxDelaySeconds: count('FIELDGATE_SIGN_IN_MAX_DELAY', 300, 'The longest wait, seconds'),
      perAddress: count('FIELDGATE_SIGN_IN_PER_ADDRESS', 50, 'Failures (and sign-ups) from one address over every account before it gets 429'),
      perAccount: count('FIELDGATE_SIGN_IN_PER_ACCOUNT', 20, 'Failures on one account from every address before each attempt on it is slowed'),
      slowdownMs: count('FIELDGATE_SIGN_IN_SLOWDOWN_MS', 1000, 'How long such an attempt is held, ms (at most 10000)'),
    },
    check: (l) => {
      requireCounts('sign-in limit', l)
      if (l.windowSeconds < 1 || l.windowSeconds > 86400) throw new ConfigError('FIELDGATE_SIGN_IN_WINDOW must be 1 to 86400 seconds')
      if (l.perAddress < 1) throw new ConfigError('FIELDGATE_SIGN_IN_PER_ADDRESS must be 1 or more')
      if (l.delaySeconds < 1 || l.maxDelaySeconds < l.delaySeconds)
        throw new ConfigError('FIELDGATE_SIGN_IN_DELAY must be 1 s or more, and FIELDGATE_SIGN_IN_MAX_DELAY at least as long')
      // A pause is held open on the server: longer than this and it would tie up connections, not slow guessing.
      if (l.slowdownMs > 10_000) throw new ConfigError('FIELDGATE_SIGN_IN_SLOWDOWN_MS must be 0 to 10000')
    },
  },

  metrics: {
    rows: {
      listen: {
        env: 'FIELDGATE_METRICS_LISTEN',
        parse: listenAddress,
        check: listenHost,
        default: undefined,
        doc: '`host:port` (`[::1]:9100` for IPv6) of a listener of its own for `/metrics`',
      },
      token: {
        env: 'FIELDGATE_METRICS_TOKEN',
        parse: optionalText,
        check: metricsToken,
        default: undefined,
        doc: 'Bearer token `/metrics` requires wherever it is served, 32+ characters',
      },
    },
  },

  rateLimits: {
    rows: {
      windowSeconds: count('FIELDGATE_RATE_LIMIT_WINDOW', 60, 'Window of every request rate limit, seconds'),
      perToken: count('FIELDGATE_RATE_LIMIT_PER_TOKEN', 600, 'Protected-API calls per access token and window; 0 turns it off'),
      perClient: count('FIELDGATE_RATE_LIMIT_PER_CLIENT', 1200, 'Protected-API calls per client and window; 0 turns it off'),
      tokenPerClient: count('FIELDGATE_RATE_LIMIT_TOKEN_PER_CLIENT', 300, 'Token requests per authenticated client and window; 0 turns it off'),
      tokenPerAddress: count('FIELDGATE_RATE_LIMIT_TOKEN_PER_ADDRESS', 600, 'Token requests per client address (IPv6 per /64) and window; 0 turns it off'),
      registerPerAddress: count('FIELDGATE_RATE_LIMIT_REGISTER_PER_ADDRESS', 30, 'Client registration requests (`/oauth/register`) per client address and window; 0 turns it off'),
    },
    check: (limits) => {
      requireCounts('rate limit', limits)
      if (limits.windowSeconds < 1 || limits.windowSeconds > 86400) throw new ConfigError('FIELDGATE_RATE_LIMIT_WINDOW must be 1 to 86400 seconds')
    },
  },

  overload: {
    rows: {
      maxEventLoopDelayMs: count('FIELDGATE_OVERLOAD_MAX_DELAY_MS', 75, 'Past this mean event-loop delay, ms, answer 503 `temporarily_unavailable` at once; 0 turns it off'),
      sampleMs: count('FIELDGATE_OVERLOAD_SAMPLE_MS', 500, 'Over how long that delay is averaged, ms (50 to 10000)'),
      retryAfterSeconds: count('FIELDGATE_OVERLOAD_RETRY_AFTER', 1, '`Retry-After` of those 503s, seconds (1 to 3600)'),
    },
    check: (o) => {
      // The delay is sampled by a 10 ms timer, so shorter samples hold too few readings to mean anything.
      if (o.sampleMs < 50 || o.sampleMs > 10_000) throw new ConfigError('FIELDGATE_OVERLOAD_SAMPLE_MS must be 50 to 10000')
      if (o.retryAfterSeconds < 1 || o.retryAfterSeconds > 3600) throw new ConfigError('FIELDGATE_OVERLOAD_RETRY_AFTER must be 1 to 3600 seconds')
    },
  },

  dpop: {
    rows: {
      nonce: { env: 'FIELDGATE_DPOP_NONCE', parse: onOff, default: false, doc: 'DPoP proofs must carry a server nonce (RFC 9449 §8, §9), given in `DPoP-Nonce`' },
      maxAgeSeconds: count('FIELDGATE_DPOP_PROOF_MAX_AGE', 60, 'How old a DPoP proof may be, by its `iat`, seconds (1 to 600)'),
      futureSeconds: count('FIELDGATE_DPOP_PROOF_FUTURE', 5, "How far ahead of this clock a DPoP proof's `iat` may be, seconds (0 to 60)"),
    },
    check: (d) => {
      if (d.maxAgeSeconds < 1 || d.maxAgeSeconds > 600) throw new ConfigError('FIELDGATE_DPOP_PROOF_MAX_AGE must be 1 to 600 seconds')
      if (d.futureSeconds > 60) throw new ConfigError('FIELDGATE_DPOP_PROOF_FUTURE must be 0 to 60 seconds')
    },
  },

  webhooks: {
    rows: {
      allowPrivateTargets: {
        env: 'FIELDGATE_WEBHOOK_ALLOW_PRIVATE_TARGETS',
        parse: (value) => value === '1',
        default: false,
        doc: '`1` lets Data API URLs reach loopback and private addresses (development only: otherwise a partner could probe your network)',
      },
      pollMs: count('FIELDGATE_WEBHOOK_POLL_MS', 500, 'How often each process looks for Data API deliveries due, ms'),
      timeoutMs: count('FIELDGATE_WEBHOOK_TIMEOUT_MS', 10_000, 'How long one delivery attempt may take, ms'),
      leaseMs: count('FIELDGATE_WEBHOOK_LEASE_MS', 60_000, "How long an attempt is one process's alone, ms; longer than the timeout"),
      baseDelayMs: count('FIELDGATE_WEBHOOK_BASE_DELAY_MS', 10_000, 'Wait before the first retry, ms; doubled with jitter after each failure'),
      maxDelayMs: count('FIELDGATE_WEBHOOK_MAX_DELAY_MS', 3_600_000, 'The longest wait between retries, ms'),
      maxAgeSeconds: count('FIELDGATE_WEBHOOK_MAX_AGE_SECONDS', 86_400, 'How long an event is retried before it is parked as failed, seconds'),
      // How many due events one poll claims: a throughput knob for the code, not a deployment's choice.
      batch: { env: null, default: 100, doc: 'Events a process claims per poll' },
    },
    check: (w) => {
      if (w.leaseMs <= w.timeoutMs) throw new ConfigError('FIELDGATE_WEBHOOK_LEASE_MS must be longer than FIELDGATE_WEBHOOK_TIMEOUT_MS')
      if (w.pollMs < 10 || w.baseDelayMs < 1 || w.maxDelayMs < w.baseDelayMs || w.batch < 1) throw new ConfigError('webhook timings are out of range')
    },
  },
}

/** Every setting, one row each. */
export const settings: SettingsTable = { ...leafSettings, ...groupSettings }

/** One setting's value: the override, else its variable (unset or empty means the default), else the default; then its check. */
function read<T, Basis>(row: Setting<T, Basis>, name: string, env: SettingsEnv, override: T | undefined, basis: Basis): T {
  let value: T
  const raw = row.env === null ? undefined : env[row.env]
  if (override !== undefined) value = override
  else if (row.env !== null && raw !== undefined && raw !== '') value = row.parse(raw, row.env)
  else value = 'derive' in row ? row.derive(basis) : row.default
  return row.check ? row.check(value, name) : value
}

function readGroup<T extends object>(group: SettingGroup<T>, env: SettingsEnv, override: Partial<T> | undefined): T {
  const value: Partial<T> = {}
  for (const key in group.rows) {
    const row = group.rows[key]
    value[key] = read(row, row.env ?? key, env, override?.[key], undefined)
  }
  // Rows<T> has exactly T's keys and the loop gave each its value; TypeScript cannot follow a loop over keys.
  const complete = value as T
  group.check?.(complete)
  return Object.freeze(complete)
}

export function loadConfig(env: SettingsEnv = process.env, overrides: ConfigOverrides = {}): Config {
  const given: LeafOverrides = overrides
  const leaf = <K extends LeafKey>(key: K, basis: BasisOf<K>): Config[K] => {
    const row: Setting<Config[K], BasisOf<K>> = leafSettings[key]
    return read<Config[K], BasisOf<K>>(row, row.env ?? key, env, given[key], basis)
  }
  const parts: GroupOverrides = overrides
  const group = <G extends GroupKey>(key: G): Config[G] => readGroup<Config[G]>(groupSettings[key], env, parts[key])
  const host = leaf('host', undefined)
  const port = leaf('port', undefined)
  const issuer = leaf('issuer', { host, port })
  const dataDir = leaf('dataDir', undefined)
  const brand = readGroup<Config['brand']>(groupSettings.brand, brandEnv(env, dataDir), parts.brand)
  const upstream = upstreamSettings(readGroup<Config['upstream']>(groupSettings.upstream, env, parts.upstream), dataDir)
  return Object.freeze({
    host,
    port,
    issuer,
    audience: leaf('audience', { issuer }),
    dataDir,
    databaseUrl: leaf('databaseUrl', undefined),
    masterKey: leaf('masterKey', undefined),
    signingAlg: leaf('signingAlg', undefined),
    tokenTtl: group('tokenTtl'),
    refresh: group('refresh'),
    registration: group('registration'),
    codeTtl: leaf('codeTtl', undefined),
    sessionTtl: leaf('sessionTtl', undefined),
    signInLimits: group('signInLimits'),
    trustProxy: leaf('trustProxy', undefined),
    bodyLimit: leaf('bodyLimit', undefined),
    changePollMs: leaf('changePollMs', undefined),
    cacheEntries: leaf('cacheEntries', undefined),
    logLevel: leaf('logLevel', undefined),
    shutdownTimeoutMs: leaf('shutdownTimeoutMs', undefined),
    adminToken: leaf('adminToken', undefined),
    signup: leaf('signup', undefined),
    smtpUrl: leaf('smtpUrl', undefined),
    smtpCaFile: leaf('smtpCaFile', undefined),
    brand,
    gatewayFile: leaf('gatewayFile', undefined),
    mailFrom: leaf('mailFrom', { issuer, brand }),
    upstream,
    metrics: group('metrics'),
    rateLimits: group('rateLimits'),
    redisUrl: leaf('redisUrl', undefined),
    rateLimitPrefix: leaf('rateLimitPrefix', { issuer }),
    overload: group('overload'),
    dpop: group('dpop'),
    webhooks: group('webhooks'),
  })
}

/** The configuration with nothing set: every default, as the table gives it. */
export const defaults: Config = loadConfig({})

/** A setting a deployment sets by a variable, as README's Settings table lists it. */
export interface DocumentedSetting {
  /** Where it is in Config: `codeTtl`, `signInLimits.windowSeconds`. */
  readonly key: string
  readonly env: string
  /** As README shows it: a value in backticks, `—` for none, or the rule a computed default follows. */
  readonly default: string
  readonly doc: string
}

type AnyRow = { readonly env: string | null; readonly doc: string; readonly shown?: string } & ({ readonly default: unknown } | { readonly derive: unknown })

const shownDefault = (row: AnyRow): string => {
  if (row.shown !== undefined) return row.shown
  const value = 'default' in row ? row.default : undefined
  if (value === undefined) return '—'
  if (typeof value === 'boolean') return value ? 'on' : 'off'
  return `\`${String(value)}\``
}

/** Every setting with a variable, in table order (the code-only ones, such as token lifetimes, are left out). */
export function documentedSettings(): DocumentedSetting[] {
  const out: DocumentedSetting[] = []
  const add = (key: string, row: AnyRow): void => {
    if (row.env !== null) out.push({ key, env: row.env, default: shownDefault(row), doc: row.doc })
  }
  for (const [key, entry] of Object.entries(settings)) {
    if ('rows' in entry) for (const [name, row] of Object.entries<AnyRow>(entry.rows)) add(`${key}.${name}`, row)
    else add(key, entry)
  }
  return out
}

/** README's Settings table, generated from `settings` (`npm run docs:settings`). */
export function settingsMarkdown(): string {
  const lines = ['| variable | default | meaning |', '| --- | --- | --- |']
  for (const s of documentedSettings()) lines.push(`| \`${s.env}\` | ${s.default} | ${s.doc} |`)
  return lines.join('\n')
}

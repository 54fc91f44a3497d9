/**
 * Every setting Fieldgate has, with its default and why. Read once at start from the environment,
 * validated, then frozen: nothing else in the code reads process.env.
 */
import { isIP } from 'node:net'

export type SigningAlg = 'RS256' | 'PS256' | 'ES256'

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
  /** Algorithm of new signing keys. RS256 is what the FieldEdge dialect documents. FIELDGATE_SIGNING_ALG. */
  readonly signingAlg: SigningAlg
  /** Token lifetimes when an app sets none: FieldEdge marketplace apps get 28000 s, private API clients 1 h. */
  readonly tokenTtl: { readonly public: number; readonly private: number }
  /** Authorization codes live this long (seconds). RFC 9700 §4.2.1 wants them short; every dialect's flow is one redirect. */
  readonly codeTtl: number
  /** A sign-in lasts this long (seconds), then the person signs in again. */
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
  /** Largest request body accepted, in bytes; OAuth requests are small. */
  readonly bodyLimit: number
  /** How often each process reads the change feed (revocations, key rotation). Bounds cross-process delay. */
  readonly changePollMs: number
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
   * Requests allowed per window of `windowSeconds`, counted across every process of a deployment when
   * `redisUrl` is set (per process otherwise). 0 turns one limit off.
   * - `perToken`, `perClient`: calls to the protected API (routes behind a bearer token) per access token
   *   and per client; only calls whose token was accepted are counted.
   * - `tokenPerClient`: token requests per client, counted only once the client has authenticated, so
   *   nobody can spend another client's budget by claiming its client_id.
   * - `tokenPerAddress`: token requests per client address (IPv6 per /64), authenticated or not: it bounds
   *   secret guessing. The address is `request.ip`: behind a load balancer, set `trustProxy` or every
   *   request has the balancer's address.
   * Defaults, as averages over a minute: 10 API calls a second per token and 20 per client, far above what
   * an integration syncing records needs; 5 token requests a second per client (a token lasts 1 h to
   * 28000 s, so more means a client that does not reuse its tokens) and 10 per address (several clients
   * behind one NAT, while guessing a 256-bit secret at that rate is hopeless). FIELDGATE_RATE_LIMIT_WINDOW,
   * FIELDGATE_RATE_LIMIT_PER_TOKEN, FIELDGATE_RATE_LIMIT_PER_CLIENT, FIELDGATE_RATE_LIMIT_TOKEN_PER_CLIENT,
   * FIELDGATE_RATE_LIMIT_TOKEN_PER_ADDRESS.
   */
  readonly rateLimits: {
    readonly windowSeconds: number
    readonly perToken: number
    readonly perClient: number
    readonly tokenPerClient: number
    readonly tokenPerAddress: number
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
}

export const defaults = {
  host: '127.0.0.1',
  port: 4400,
  dataDir: './data',
  signingAlg: 'RS256',
  tokenTtl: { public: 28000, private: 3600 },
  codeTtl: 60,
  sessionTtl: 12 * 3600,
  signInLimits: { windowSeconds: 15 * 60, perAccountAddress: 5, delaySeconds: 1, maxDelaySeconds: 300, perAddress: 50, perAccount: 20, slowdownMs: 1000 },
  trustProxy: false,
  bodyLimit: 16 * 1024,
  changePollMs: 250,
  logLevel: 'info',
  shutdownTimeoutMs: 10_000,
  rateLimits: { windowSeconds: 60, perToken: 600, perClient: 1200, tokenPerClient: 300, tokenPerAddress: 600 },
  overload: { maxEventLoopDelayMs: 75, sampleMs: 500, retryAfterSeconds: 1 },
  webhooks: { allowPrivateTargets: false, pollMs: 500, timeoutMs: 10_000, leaseMs: 60_000, baseDelayMs: 10_000, maxDelayMs: 3_600_000, maxAgeSeconds: 86_400, batch: 20 },
} as const

const algs: readonly SigningAlg[] = ['RS256', 'PS256', 'ES256']

export class ConfigError extends Error {}

/** What code and tests may set over the environment; the grouped settings may be given in part. */
export type ConfigOverrides = Partial<Omit<Config, 'signInLimits' | 'rateLimits' | 'overload' | 'webhooks'>> & {
  readonly signInLimits?: Partial<Config['signInLimits']>
  readonly rateLimits?: Partial<Config['rateLimits']>
  readonly overload?: Partial<Config['overload']>
  readonly webhooks?: Partial<Config['webhooks']>
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env, overrides: ConfigOverrides = {}): Config {
  const host = overrides.host ?? env.FIELDGATE_HOST ?? defaults.host
  const port = overrides.port ?? integer(env.FIELDGATE_PORT, defaults.port, 'FIELDGATE_PORT')
  const issuer = trimSlash(overrides.issuer ?? env.FIELDGATE_ISSUER ?? `http://${hostForUrl(host)}:${port}`)
  const signingAlg = (overrides.signingAlg ?? env.FIELDGATE_SIGNING_ALG ?? defaults.signingAlg) as SigningAlg
  if (!algs.includes(signingAlg)) throw new ConfigError(`FIELDGATE_SIGNING_ALG must be one of ${algs.join(', ')}`)
  if (!/^https?:\/\/[^/?#]+(\/[^?#]*)?$/.test(issuer)) throw new ConfigError('FIELDGATE_ISSUER must be an http(s) URL')
  return Object.freeze({
    host,
    port,
    issuer,
    audience: overrides.audience ?? env.FIELDGATE_AUDIENCE ?? `${issuer}/api`,
    dataDir: overrides.dataDir ?? env.FIELDGATE_DATA_DIR ?? defaults.dataDir,
    databaseUrl: overrides.databaseUrl ?? (env.DATABASE_URL || undefined),
    masterKey: overrides.masterKey ?? (env.FIELDGATE_MASTER_KEY || undefined),
    signingAlg,
    tokenTtl: Object.freeze({ ...defaults.tokenTtl, ...overrides.tokenTtl }),
    codeTtl: overrides.codeTtl ?? defaults.codeTtl,
    sessionTtl: overrides.sessionTtl ?? defaults.sessionTtl,
    signInLimits: signInLimits(env, overrides.signInLimits),
    trustProxy: trustProxy(overrides.trustProxy ?? env.FIELDGATE_TRUST_PROXY),
    bodyLimit: overrides.bodyLimit ?? defaults.bodyLimit,
    changePollMs: overrides.changePollMs ?? defaults.changePollMs,
    logLevel: overrides.logLevel ?? env.FIELDGATE_LOG_LEVEL ?? defaults.logLevel,
    shutdownTimeoutMs: overrides.shutdownTimeoutMs ?? count(env.FIELDGATE_SHUTDOWN_TIMEOUT_MS, defaults.shutdownTimeoutMs, 'FIELDGATE_SHUTDOWN_TIMEOUT_MS'),
    adminToken: adminToken(overrides.adminToken ?? (env.FIELDGATE_ADMIN_TOKEN || undefined)),
    metrics: metrics(env, overrides.metrics),
    rateLimits: rateLimits(env, overrides.rateLimits),
    redisUrl: redisUrl(overrides.redisUrl ?? (env.REDIS_URL || undefined)),
    rateLimitPrefix: overrides.rateLimitPrefix ?? (env.FIELDGATE_RATE_LIMIT_PREFIX || `fieldgate:${issuer}:`),
    overload: overload(env, overrides.overload),
    webhooks: webhooks(env, overrides.webhooks),
  })
}

function signInLimits(env: NodeJS.ProcessEnv, override: Partial<Config['signInLimits']> | undefined): Config['signInLimits'] {
  const d = defaults.signInLimits
  const l = {
    windowSeconds: count(env.FIELDGATE_SIGN_IN_WINDOW, d.windowSeconds, 'FIELDGATE_SIGN_IN_WINDOW'),
    perAccountAddress: count(env.FIELDGATE_SIGN_IN_PER_ACCOUNT_ADDRESS, d.perAccountAddress, 'FIELDGATE_SIGN_IN_PER_ACCOUNT_ADDRESS'),
    delaySeconds: count(env.FIELDGATE_SIGN_IN_DELAY, d.delaySeconds, 'FIELDGATE_SIGN_IN_DELAY'),
    maxDelaySeconds: count(env.FIELDGATE_SIGN_IN_MAX_DELAY, d.maxDelaySeconds, 'FIELDGATE_SIGN_IN_MAX_DELAY'),
    perAddress: count(env.FIELDGATE_SIGN_IN_PER_ADDRESS, d.perAddress, 'FIELDGATE_SIGN_IN_PER_ADDRESS'),
    perAccount: count(env.FIELDGATE_SIGN_IN_PER_ACCOUNT, d.perAccount, 'FIELDGATE_SIGN_IN_PER_ACCOUNT'),
    slowdownMs: count(env.FIELDGATE_SIGN_IN_SLOWDOWN_MS, d.slowdownMs, 'FIELDGATE_SIGN_IN_SLOWDOWN_MS'),
    ...override,
  }
  requireCounts('sign-in limit', l)
  if (l.windowSeconds < 1 || l.windowSeconds > 86400) throw new ConfigError('FIELDGATE_SIGN_IN_WINDOW must be 1 to 86400 seconds')
  if (l.perAddress < 1) throw new ConfigError('FIELDGATE_SIGN_IN_PER_ADDRESS must be 1 or more')
  if (l.delaySeconds < 1 || l.maxDelaySeconds < l.delaySeconds) throw new ConfigError('FIELDGATE_SIGN_IN_DELAY must be 1 s or more, and FIELDGATE_SIGN_IN_MAX_DELAY at least as long')
  // A pause is held open on the server: longer than this and it would tie up connections, not slow guessing.
  if (l.slowdownMs > 10_000) throw new ConfigError('FIELDGATE_SIGN_IN_SLOWDOWN_MS must be 0 to 10000')
  return Object.freeze(l)
}

function rateLimits(env: NodeJS.ProcessEnv, override: Partial<Config['rateLimits']> | undefined): Config['rateLimits'] {
  const d = defaults.rateLimits
  const limits = {
    windowSeconds: count(env.FIELDGATE_RATE_LIMIT_WINDOW, d.windowSeconds, 'FIELDGATE_RATE_LIMIT_WINDOW'),
    perToken: count(env.FIELDGATE_RATE_LIMIT_PER_TOKEN, d.perToken, 'FIELDGATE_RATE_LIMIT_PER_TOKEN'),
    perClient: count(env.FIELDGATE_RATE_LIMIT_PER_CLIENT, d.perClient, 'FIELDGATE_RATE_LIMIT_PER_CLIENT'),
    tokenPerClient: count(env.FIELDGATE_RATE_LIMIT_TOKEN_PER_CLIENT, d.tokenPerClient, 'FIELDGATE_RATE_LIMIT_TOKEN_PER_CLIENT'),
    tokenPerAddress: count(env.FIELDGATE_RATE_LIMIT_TOKEN_PER_ADDRESS, d.tokenPerAddress, 'FIELDGATE_RATE_LIMIT_TOKEN_PER_ADDRESS'),
    ...override,
  }
  requireCounts('rate limit', limits)
  if (limits.windowSeconds < 1 || limits.windowSeconds > 86400) throw new ConfigError('FIELDGATE_RATE_LIMIT_WINDOW must be 1 to 86400 seconds')
  return Object.freeze(limits)
}

function overload(env: NodeJS.ProcessEnv, override: Partial<Config['overload']> | undefined): Config['overload'] {
  const d = defaults.overload
  const o = {
    maxEventLoopDelayMs: count(env.FIELDGATE_OVERLOAD_MAX_DELAY_MS, d.maxEventLoopDelayMs, 'FIELDGATE_OVERLOAD_MAX_DELAY_MS'),
    sampleMs: count(env.FIELDGATE_OVERLOAD_SAMPLE_MS, d.sampleMs, 'FIELDGATE_OVERLOAD_SAMPLE_MS'),
    retryAfterSeconds: count(env.FIELDGATE_OVERLOAD_RETRY_AFTER, d.retryAfterSeconds, 'FIELDGATE_OVERLOAD_RETRY_AFTER'),
    ...override,
  }
  // The delay is sampled by a 10 ms timer, so shorter samples hold too few readings to mean anything.
  if (o.sampleMs < 50 || o.sampleMs > 10_000) throw new ConfigError('FIELDGATE_OVERLOAD_SAMPLE_MS must be 50 to 10000')
  if (o.retryAfterSeconds < 1 || o.retryAfterSeconds > 3600) throw new ConfigError('FIELDGATE_OVERLOAD_RETRY_AFTER must be 1 to 3600 seconds')
  return Object.freeze(o)
}

function webhooks(env: NodeJS.ProcessEnv, override: Partial<Config['webhooks']> | undefined): Config['webhooks'] {
  const d = defaults.webhooks
  const w = {
    pollMs: count(env.FIELDGATE_WEBHOOK_POLL_MS, d.pollMs, 'FIELDGATE_WEBHOOK_POLL_MS'),
    timeoutMs: count(env.FIELDGATE_WEBHOOK_TIMEOUT_MS, d.timeoutMs, 'FIELDGATE_WEBHOOK_TIMEOUT_MS'),
    leaseMs: count(env.FIELDGATE_WEBHOOK_LEASE_MS, d.leaseMs, 'FIELDGATE_WEBHOOK_LEASE_MS'),
    baseDelayMs: count(env.FIELDGATE_WEBHOOK_BASE_DELAY_MS, d.baseDelayMs, 'FIELDGATE_WEBHOOK_BASE_DELAY_MS'),
    maxDelayMs: count(env.FIELDGATE_WEBHOOK_MAX_DELAY_MS, d.maxDelayMs, 'FIELDGATE_WEBHOOK_MAX_DELAY_MS'),
    maxAgeSeconds: count(env.FIELDGATE_WEBHOOK_MAX_AGE_SECONDS, d.maxAgeSeconds, 'FIELDGATE_WEBHOOK_MAX_AGE_SECONDS'),
    batch: d.batch,
    allowPrivateTargets: env.FIELDGATE_WEBHOOK_ALLOW_PRIVATE_TARGETS === '1' || d.allowPrivateTargets,
    ...override,
  }
  if (w.leaseMs <= w.timeoutMs) throw new ConfigError('FIELDGATE_WEBHOOK_LEASE_MS must be longer than FIELDGATE_WEBHOOK_TIMEOUT_MS')
  if (w.pollMs < 10 || w.baseDelayMs < 1 || w.maxDelayMs < w.baseDelayMs || w.batch < 1) throw new ConfigError('webhook timings are out of range')
  return Object.freeze(w)
}

const proxyRanges = ['loopback', 'linklocal', 'uniquelocal']

/** FIELDGATE_TRUST_PROXY: off, a hop count, or a list of proxy addresses, CIDRs and range names. */
function trustProxy(value: string | Config['trustProxy'] | undefined): Config['trustProxy'] {
  if (value === undefined || value === false) return defaults.trustProxy
  if (typeof value === 'number') return hops(value)
  const list = typeof value === 'string' ? value.split(',').map((s) => s.trim()).filter((s) => s !== '') : [...value]
  if (list.length === 0 || (list.length === 1 && /^(0|off|false|no)$/i.test(list[0]!))) return false
  if (list.length === 1 && /^\d+$/.test(list[0]!)) return hops(Number(list[0]))
  for (const entry of list) {
    if (!proxyRanges.includes(entry) && !isAddressOrCidr(entry)) {
      throw new ConfigError(`FIELDGATE_TRUST_PROXY: "${entry}" is not a hop count, an IP address, a CIDR or one of ${proxyRanges.join(', ')} (trusting every peer is not allowed: it lets any client forge its address)`)
    }
  }
  return Object.freeze(list)
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

/** Overrides skip `count`'s parsing: each value must still be a whole number, 0 or more. */
function requireCounts(what: string, values: Readonly<Record<string, number>>): void {
  for (const [name, value] of Object.entries(values)) {
    if (!Number.isSafeInteger(value) || value < 0) throw new ConfigError(`${what} ${name} must be a whole number, 0 or more`)
  }
}

function count(value: string | undefined, fallback: number, name: string): number {
  if (value === undefined || value === '') return fallback
  const n = Number(value)
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n)) throw new ConfigError(`${name} must be a whole number, 0 or more`)
  return n
}

function redisUrl(value: string | undefined): string | undefined {
  if (value !== undefined && !/^rediss?:\/\/./.test(value)) throw new ConfigError('REDIS_URL must be a redis:// or rediss:// URL')
  return value
}

function metrics(env: NodeJS.ProcessEnv, override: Config['metrics'] | undefined): Config['metrics'] {
  const listen = override ? override.listen : listenAddress(env.FIELDGATE_METRICS_LISTEN || undefined)
  const token = override ? override.token : env.FIELDGATE_METRICS_TOKEN || undefined
  if (token !== undefined && (token.length < 32 || /\s/.test(token))) throw new ConfigError('FIELDGATE_METRICS_TOKEN must be at least 32 characters, without spaces')
  if (listen && (!isIP(listen.host) && listen.host !== 'localhost')) throw new ConfigError('FIELDGATE_METRICS_LISTEN must be host:port with an IP address host (or localhost)')
  return Object.freeze({ listen: listen && Object.freeze({ ...listen }), token })
}

/** `host:port`, `[v6]:port`: the metrics listener. */
function listenAddress(value: string | undefined): Config['metrics']['listen'] {
  if (value === undefined) return undefined
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(value.trim())
  const port = Number(m?.[3])
  if (!m || !Number.isInteger(port) || port < 1 || port > 65535) throw new ConfigError('FIELDGATE_METRICS_LISTEN must be host:port, e.g. 10.0.0.5:9100 or [::1]:9100')
  return { host: m[1] ?? m[2] ?? '', port }
}

function adminToken(value: string | undefined): string | undefined {
  if (value !== undefined && value.length < 32) throw new ConfigError('FIELDGATE_ADMIN_TOKEN must be at least 32 characters')
  return value
}

function integer(value: string | undefined, fallback: number, name: string): number {
  if (value === undefined || value === '') return fallback
  const n = Number(value)
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new ConfigError(`${name} must be a port number`)
  return n
}

const trimSlash = (s: string): string => s.replace(/\/+$/, '')
const hostForUrl = (host: string): string => (host.includes(':') ? `[${host}]` : host === '0.0.0.0' ? '127.0.0.1' : host)

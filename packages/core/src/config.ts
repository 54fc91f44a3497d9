/**
 * Every setting Fieldgate has, with its default and why. Read once at start from the environment,
 * validated, then frozen: nothing else in the code reads process.env.
 */
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
  /** Authorization codes live this long (seconds). RFC 9700 §4.2.1 wants them short; the seeds' flow is one redirect. */
  readonly codeTtl: number
  /** A sign-in lasts this long (seconds), then the person signs in again. */
  readonly sessionTtl: number
  /**
   * Sign-in attempts allowed per window, counted per process: failures per account (guessing one
   * password) and attempts per client address (guessing across accounts).
   */
  readonly signInLimits: { readonly windowSeconds: number; readonly perAccount: number; readonly perAddress: number }
  /** Largest request body accepted, in bytes; OAuth requests are small. */
  readonly bodyLimit: number
  /** How often each process reads the change feed (revocations, key rotation). Bounds cross-process delay. */
  readonly changePollMs: number
  /** pino level. FIELDGATE_LOG_LEVEL. */
  readonly logLevel: string
  /**
   * Bearer token of the HTTP admin API (`/admin/v1`), at least 32 characters. Unset, the admin API is
   * off: the CLI on the same store is the way in. FIELDGATE_ADMIN_TOKEN.
   */
  readonly adminToken: string | undefined
}

export const defaults = {
  host: '127.0.0.1',
  port: 4400,
  dataDir: './data',
  signingAlg: 'RS256',
  tokenTtl: { public: 28000, private: 3600 },
  codeTtl: 60,
  sessionTtl: 12 * 3600,
  signInLimits: { windowSeconds: 15 * 60, perAccount: 10, perAddress: 50 },
  bodyLimit: 16 * 1024,
  changePollMs: 250,
  logLevel: 'info',
} as const

const algs: readonly SigningAlg[] = ['RS256', 'PS256', 'ES256']

export class ConfigError extends Error {}

export function loadConfig(env: NodeJS.ProcessEnv = process.env, overrides: Partial<Config> = {}): Config {
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
    signInLimits: Object.freeze({ ...defaults.signInLimits, ...overrides.signInLimits }),
    bodyLimit: overrides.bodyLimit ?? defaults.bodyLimit,
    changePollMs: overrides.changePollMs ?? defaults.changePollMs,
    logLevel: overrides.logLevel ?? env.FIELDGATE_LOG_LEVEL ?? defaults.logLevel,
    adminToken: adminToken(overrides.adminToken ?? (env.FIELDGATE_ADMIN_TOKEN || undefined)),
  })
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

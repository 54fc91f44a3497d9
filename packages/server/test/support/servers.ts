/**
 * Real servers on loopback, real stores (a fresh SQLite data dir, or a random PostgreSQL schema when
 * DATABASE_URL is set). Nothing is mocked.
 */
import { randomBytes } from 'node:crypto'
import { rmSync } from 'node:fs'
import { it } from 'node:test'
import type { FastifyInstance } from 'fastify'
import pg from 'pg'
import type { DestinationStream } from 'pino'
import { loadConfig, type Config, type ConfigOverrides, type SettingsEnv, type Storage } from '@fieldgate/core'
import { buildApp, createLogger, openRuntime, type Runtime } from '@fieldgate/server'
import { freePort, tempDir } from './wait.js'

export type Engine = 'sqlite' | 'postgres'

/**
 * Overload shedding is off for the servers of the suite (in process and children, see childEnv): two
 * CI cores shared with a browser and the test clients are busy, not overloaded, and a 503 there would
 * fail a test about something else. overload.test.ts turns it on.
 */
const noShedding = { maxEventLoopDelayMs: 0, sampleMs: 500, retryAfterSeconds: 1 }

/** Set in the environment to run the PostgreSQL variants. */
export const databaseUrl = process.env.DATABASE_URL || undefined

export const silentLogger = () => createLogger('silent')

/** DROP SCHEMA … CASCADE through its own connection. */
export async function dropSchema(url: string, schema: string): Promise<void> {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)
  } finally {
    await client.end()
  }
}

export interface StartOptions {
  engine?: Engine
  /** Reuse a data dir (SQLite store and generated master key); a fresh temp dir by default. */
  dataDir?: string
  /** Reuse a PostgreSQL schema (another server on the same store). */
  schema?: string
  /** Overrides for loadConfig; `issuer` defaults to the real listening origin. */
  overrides?: ConfigOverrides
  /** FIELDGATE_* variables, for tests of how a setting is read and checked (the shell's never reach it). */
  env?: SettingsEnv
  /** Where the server logs, at `info` (silent by default), for tests that read what is logged. */
  log?: DestinationStream
  /** false: build the app without opening a port, for tests that only `app.inject` (shapes and errors). */
  listen?: boolean
}

export interface TestServer {
  readonly origin: string
  readonly issuer: string
  readonly config: Config
  readonly runtime: Runtime
  readonly storage: Storage
  readonly app: FastifyInstance
  readonly dataDir: string
  readonly engine: Engine
  readonly schema: string | undefined
  /** Absolute URL for a path on this server. */
  url(path: string): string
  close(): Promise<void>
}

/**
 * Starts a real server: loadConfig with an explicit environment (`opts.env`, never process.env, so DATABASE_URL
 * and FIELDGATE_* of the shell cannot leak in), openRuntime (migrations, keys, change feed), buildApp,
 * listen on 127.0.0.1 at a port picked first so the issuer can be the real origin.
 */
export async function startServer(opts: StartOptions = {}): Promise<TestServer> {
  const engine = opts.engine ?? 'sqlite'
  if (engine === 'postgres' && !databaseUrl) throw new Error('DATABASE_URL is not set')
  const ownsDir = opts.dataDir === undefined
  const dataDir = opts.dataDir ?? tempDir()
  const ownsSchema = engine === 'postgres' && opts.schema === undefined
  const schema = engine === 'postgres' ? (opts.schema ?? `fg_http_${randomBytes(6).toString('hex')}`) : undefined
  const port = opts.overrides?.port ?? (await freePort())
  const origin = `http://127.0.0.1:${port}`
  const config = loadConfig(opts.env ?? {}, {
    host: '127.0.0.1',
    port,
    issuer: origin,
    dataDir,
    logLevel: 'silent',
    overload: { ...noShedding },
    ...(engine === 'postgres' ? { databaseUrl } : {}),
    ...opts.overrides,
  })
  const logger = opts.log ? createLogger('info', opts.log) : silentLogger()
  let runtime: Runtime | undefined
  let app: FastifyInstance | undefined
  const cleanup = async () => {
    await app?.close().catch(() => {})
    await runtime?.close().catch(() => {})
    if (ownsSchema && schema && databaseUrl) await dropSchema(databaseUrl, schema).catch(() => {})
    if (ownsDir) rmSync(dataDir, { recursive: true, force: true })
  }
  try {
    runtime = await openRuntime(config, logger, { prepare: true, follow: true, ...(schema ? { schema } : {}) })
    app = await buildApp(runtime, logger)
    if (opts.listen !== false) await app.listen({ host: '127.0.0.1', port })
  } catch (err) {
    await cleanup()
    throw err
  }
  const rt = runtime
  const fastify = app
  let closed = false
  return {
    origin,
    issuer: config.issuer,
    config,
    runtime: rt,
    storage: rt.storage,
    app: fastify,
    dataDir,
    engine,
    schema,
    url: (path: string) => origin + path,
    async close() {
      if (closed) return
      closed = true
      await cleanup()
      // One turn of the event loop, so this process's HTTP clients see the sockets the server just
      // closed: a test that starts the next server on the same port would otherwise send its first
      // request on a pooled socket to the old one ("other side closed"; fetch does not retry a POST).
      await new Promise((resume) => setTimeout(resume, 0))
    },
  }
}

/**
 * Registers `name` once per engine: SQLite always, PostgreSQL when DATABASE_URL is set and otherwise
 * as a skipped test, so a run without PostgreSQL says what it did not cover.
 */
export function eachEngine(name: string, fn: (engine: Engine) => Promise<void>, opts: { timeout?: number } = {}): void {
  it(`${name} (SQLite)`, { timeout: opts.timeout ?? 30_000 }, () => fn('sqlite'))
  if (databaseUrl) it(`${name} (PostgreSQL)`, { timeout: opts.timeout ?? 30_000 }, () => fn('postgres'))
  else it(`${name} (PostgreSQL)`, { skip: 'DATABASE_URL is not set' }, () => {})
}

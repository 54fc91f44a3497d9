/**
 * Test helpers for the HTTP suite: real servers on loopback, real stores (a fresh SQLite data dir, or a
 * random PostgreSQL schema when DATABASE_URL is set), real fetch. Nothing is mocked.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { connect, createServer, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { it } from 'node:test'
import type { FastifyInstance } from 'fastify'
import pg from 'pg'
import type { DestinationStream } from 'pino'
import { cliActor, storeContext,
  createApp, createTenant, loadConfig, type App, type Config, type ConfigOverrides, type Grant, type NewAppInput, type Storage, type Tenant,
} from '@fieldgate/core'
import { buildApp, createLogger, openRuntime, type Runtime } from '@fieldgate/server'

export type Engine = 'sqlite' | 'postgres'

/**
 * Overload shedding is off for the servers of the suite (in process and children, see childEnv): two
 * CI cores shared with a browser and the test clients are busy, not overloaded, and a 503 there would
 * fail a test about something else. overload.test.ts turns it on.
 */
const noShedding = { maxEventLoopDelayMs: 0, sampleMs: 500, retryAfterSeconds: 1 }

/** Set in the environment to run the PostgreSQL variants. */
export const databaseUrl = process.env.DATABASE_URL || undefined

/** The monorepo root (this file compiles to packages/server/dist/test/helpers.js). */
export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../../../..')
export const cliBin = join(repoRoot, 'packages/cli/bin/fieldgate.js')

export const silentLogger = () => createLogger('silent')

/** A port nobody listens on right now (bound to port 0, then released). */
export function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const srv = createServer()
    srv.unref()
    srv.on('error', fail)
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address()
      if (!address || typeof address === 'string') return fail(new Error('no port'))
      srv.close(() => ok(address.port))
    })
  })
}

export const tempDir = (prefix = 'fg-http-') => mkdtempSync(join(tmpdir(), prefix))

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
 * Starts a real server: loadConfig with an explicit environment (never process.env, so DATABASE_URL
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
  const port = opts.overrides?.port ?? await freePort()
  const origin = `http://127.0.0.1:${port}`
  const config = loadConfig({}, {
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

// ---- fixtures through the core admin functions ----

export interface PrivateFixture {
  tenant: Tenant
  app: App
  clientId: string
  clientSecret: string
  grant: Grant
}

export async function privateApp(storage: Storage, input: Partial<NewAppInput> & { environment?: 'sandbox' | 'live' } = {}): Promise<PrivateFixture> {
  const tenant = input.tenantId
    ? (await storage.getTenant(input.tenantId))!
    : await createTenant(storeContext(storage), cliActor, { name: `Tenant ${randomBytes(3).toString('hex')}`, environment: input.environment ?? 'sandbox' })
  const created = await createApp(storeContext(storage), cliActor, { name: 'Private app', ...input, kind: 'private', tenantId: tenant.id })
  const grant = await storage.findActiveGrant(created.app.id, tenant.id)
  if (!grant) throw new Error('createApp made no grant for a private app')
  return { tenant, app: created.app, clientId: created.app.clientId, clientSecret: created.clientSecret, grant }
}

export interface PublicFixture {
  app: App
  clientId: string
  clientSecret: string
  /** The sandbox tenant createApp made for the partner, with its grant. */
  sandboxTenant: Tenant
  grant: Grant
}

export async function publicSandboxApp(storage: Storage, input: Partial<NewAppInput> = {}): Promise<PublicFixture> {
  const created = await createApp(storeContext(storage), cliActor, { name: 'Marketplace app', ...input, kind: 'public', environment: 'sandbox' })
  if (!created.sandboxTenant) throw new Error('a public sandbox app got no sandbox tenant')
  const grant = await storage.findActiveGrant(created.app.id, created.sandboxTenant.id)
  if (!grant) throw new Error('a public sandbox app got no grant on its sandbox tenant')
  return { app: created.app, clientId: created.app.clientId, clientSecret: created.clientSecret, sandboxTenant: created.sandboxTenant, grant }
}

// ---- HTTP ----

export interface Res {
  status: number
  headers: Headers
  text: string
  /** The parsed JSON body, or undefined when the body is not JSON. */
  json: any
}

export async function request(url: string, init: RequestInit = {}): Promise<Res> {
  const res = await fetch(url, { ...init, signal: init.signal ?? AbortSignal.timeout(10_000) })
  const text = await res.text()
  let json: unknown
  try {
    json = text === '' ? undefined : JSON.parse(text)
  } catch {
    json = undefined
  }
  return { status: res.status, headers: res.headers, text, json }
}

export const postJson = (url: string, body: unknown, headers: Record<string, string> = {}) =>
  request(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) })

export const postForm = (url: string, body: Record<string, string> | string, headers: Record<string, string> = {}) =>
  request(url, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body: typeof body === 'string' ? body : new URLSearchParams(body).toString(),
  })

/** RFC 6749 §2.3.1: id and secret form-urlencoded, then base64. */
export const basicAuth = (id: string, secret: string) =>
  'Basic ' + Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')

export const bearer = (token: string) => ({ authorization: `Bearer ${token}` })

/** A client-credentials token from `/oauth/token` (JSON, secret in the body); throws unless 200. */
export async function getToken(server: { url(p: string): string }, client: { clientId: string; clientSecret: string }, extra: Record<string, string> = {}): Promise<string> {
  const res = await postJson(server.url('/oauth/token'), { grant_type: 'client_credentials', client_id: client.clientId, client_secret: client.clientSecret, ...extra })
  if (res.status !== 200) throw new Error(`token request failed: ${res.status} ${res.text}`)
  return res.json.access_token as string
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** Polls `check` every `everyMs` until it returns true; resolves with the elapsed ms, rejects after `withinMs`. */
export async function waitUntil(check: () => Promise<boolean>, withinMs: number, everyMs = 50): Promise<number> {
  const start = performance.now()
  for (;;) {
    if (await check()) return performance.now() - start
    if (performance.now() - start > withinMs) throw new Error(`condition not met within ${withinMs} ms`)
    await sleep(everyMs)
  }
}

/** A JWT's parts, decoded without verification (for assertions on header and claims). */
export function decodeJwt(token: string): { header: Record<string, unknown>; payload: Record<string, unknown> } {
  const [h, p] = token.split('.')
  return {
    header: JSON.parse(Buffer.from(h!, 'base64url').toString()) as Record<string, unknown>,
    payload: JSON.parse(Buffer.from(p!, 'base64url').toString()) as Record<string, unknown>,
  }
}

// ---- subprocesses ----

/** The environment for child processes: nothing of the shell's Fieldgate or database settings. */
export function childEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(process.env)) {
    if (k.startsWith('FIELDGATE_') || k === 'DATABASE_URL' || k.startsWith('NODE_TEST') || k === 'NODE_OPTIONS') continue
    env[k] = v
  }
  return { ...env, FIELDGATE_LOG_LEVEL: 'silent', FIELDGATE_OVERLOAD_MAX_DELAY_MS: '0', ...extra }
}

export interface CliResult {
  code: number | null
  stdout: string
  stderr: string
  json: any
  /** performance.now() when the process exited. */
  exitedAt: number
}

/** Runs `fieldgate <args>` as a subprocess against `dataDir`. */
export function runCli(args: string[], env: Record<string, string>): Promise<CliResult> {
  return new Promise((ok, fail) => {
    const child = spawn(process.execPath, [cliBin, ...args], { cwd: repoRoot, env: childEnv(env), stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d })
    child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d })
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000)
    child.on('error', fail)
    child.on('close', (code) => {
      clearTimeout(timer)
      const exitedAt = performance.now()
      let json: unknown
      try {
        json = JSON.parse(stdout)
      } catch {
        json = undefined
      }
      ok({ code, stdout, stderr, json, exitedAt })
    })
  })
}

export interface ServerProcess {
  child: ChildProcess
  origin: string
  output(): string
  stop(): Promise<void>
}

/**
 * Spawns `fieldgate serve --port <port> [...args]` in its own process group and waits until it answers
 * the metadata document.
 */
const liveGroups = new Set<number>()
// Safety net: a test that fails before its cleanup must not leave servers running.
process.once('exit', () => {
  for (const pid of liveGroups) {
    try {
      process.kill(-pid, 'SIGKILL')
    } catch { /* already gone */ }
  }
})

export async function spawnServe(port: number, env: Record<string, string>, args: string[] = []): Promise<ServerProcess> {
  const child = spawn(process.execPath, [cliBin, 'serve', '--port', String(port), ...args], {
    cwd: repoRoot, env: childEnv(env), stdio: ['ignore', 'pipe', 'pipe'], detached: true,
  })
  if (child.pid !== undefined) liveGroups.add(child.pid)
  let out = ''
  child.stdout!.setEncoding('utf8').on('data', (d: string) => { out += d })
  child.stderr!.setEncoding('utf8').on('data', (d: string) => { out += d })
  const exited = new Promise<void>((r) => child.once('exit', () => r()))
  let done = false
  child.once('exit', () => {
    done = true
    if (child.pid !== undefined) liveGroups.delete(child.pid)
  })
  const stop = async () => {
    if (done || child.pid === undefined) return
    try {
      process.kill(-child.pid, 'SIGTERM')
    } catch { /* already gone */ }
    const killer = setTimeout(() => {
      try {
        process.kill(-child.pid!, 'SIGKILL')
      } catch { /* already gone */ }
    }, 3000)
    await exited
    clearTimeout(killer)
  }
  const origin = `http://127.0.0.1:${port}`
  try {
    await waitUntil(async () => {
      if (done) throw new Error(`fieldgate serve exited early:\n${out}`)
      try {
        const res = await fetch(`${origin}/.well-known/oauth-authorization-server`, { signal: AbortSignal.timeout(1000) })
        await res.arrayBuffer()
        return res.status === 200
      } catch {
        return false
      }
    }, 15_000, 50)
  } catch (err) {
    await stop()
    throw err
  }
  return { child, origin, output: () => out, stop }
}

export async function openStore(dataDir: string): Promise<Runtime> {
  const config = loadConfig({}, { dataDir, logLevel: 'silent' })
  return openRuntime(config, silentLogger(), { prepare: true, follow: false })
}

// ---- raw HTTP/1.1 on one socket (slow bodies, idle keep-alive, shutdown) ----

export interface RawResponse {
  status: number
  headers: Record<string, string>
  body: string
  json: any
}

/**
 * One TCP connection to a loopback port, driven by hand: fetch cannot trickle a body or keep a
 * connection idle on purpose. Responses need a Content-Length (every Fieldgate JSON answer has one).
 */
export class RawConnection {
  /** Resolves with performance.now() when the socket closes, by either side. */
  readonly closed: Promise<number>
  private buffer = Buffer.alloc(0)
  private wake: (() => void) | undefined
  private isClosed = false

  private constructor(readonly socket: Socket) {
    socket.on('data', (d: Buffer) => {
      this.buffer = Buffer.concat([this.buffer, d])
      this.wake?.()
    })
    socket.on('error', () => {})
    this.closed = new Promise((ok) => socket.once('close', () => {
      this.isClosed = true
      this.wake?.()
      ok(performance.now())
    }))
  }

  static open(port: number): Promise<RawConnection> {
    return new Promise((ok, fail) => {
      const socket = connect(port, '127.0.0.1')
      socket.once('connect', () => ok(new RawConnection(socket)))
      socket.once('error', fail)
    })
  }

  /** Writes the request line and headers, then the body in `pieces` spread over `overMs`, then reads the response. */
  async send(method: string, path: string, opts: { headers?: Record<string, string>; body?: string; pieces?: number; overMs?: number } = {}): Promise<RawResponse> {
    await this.write(requestHead(method, path, opts.headers ?? {}, opts.body))
    const body = Buffer.from(opts.body ?? '')
    const pieces = Math.max(1, Math.min(opts.pieces ?? 1, body.length))
    for (let i = 0; i < pieces; i++) {
      if (i > 0 && opts.overMs) await sleep(opts.overMs / (pieces - 1))
      await this.write(body.subarray(Math.floor((i * body.length) / pieces), Math.floor(((i + 1) * body.length) / pieces)))
    }
    return this.response()
  }

  write(data: string | Buffer): Promise<void> {
    return new Promise((ok, fail) => this.socket.write(data, (err) => (err ? fail(err) : ok())))
  }

  /** The next complete response; rejects if the socket closes first or nothing complete comes within `withinMs`. */
  async response(withinMs = 10_000): Promise<RawResponse> {
    const start = performance.now()
    for (;;) {
      const res = this.takeResponse()
      if (res) return res
      if (this.isClosed) throw new Error('the connection closed before a complete response')
      const left = withinMs - (performance.now() - start)
      if (left <= 0) throw new Error(`no complete response within ${withinMs} ms`)
      await new Promise<void>((ok) => {
        const timer = setTimeout(ok, left)
        this.wake = () => { clearTimeout(timer); ok() }
      })
      this.wake = undefined
    }
  }

  destroy(): void {
    this.socket.destroy()
  }

  private takeResponse(): RawResponse | undefined {
    const end = this.buffer.indexOf('\r\n\r\n')
    if (end < 0) return undefined
    const [statusLine, ...lines] = this.buffer.subarray(0, end).toString('latin1').split('\r\n')
    const headers: Record<string, string> = {}
    for (const line of lines) {
      const colon = line.indexOf(':')
      headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim()
    }
    const length = Number(headers['content-length'] ?? 0)
    if (this.buffer.length < end + 4 + length) return undefined
    const body = this.buffer.subarray(end + 4, end + 4 + length).toString('utf8')
    this.buffer = this.buffer.subarray(end + 4 + length)
    let json: unknown
    try {
      json = body === '' ? undefined : JSON.parse(body)
    } catch {
      json = undefined
    }
    return { status: Number(statusLine!.split(' ')[1]), headers, body, json }
  }
}

function requestHead(method: string, path: string, headers: Record<string, string>, body: string | undefined): string {
  const all: Record<string, string> = { host: '127.0.0.1', ...headers }
  if (body !== undefined) all['content-length'] = String(Buffer.byteLength(body))
  return `${method} ${path} HTTP/1.1\r\n${Object.entries(all).map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`
}

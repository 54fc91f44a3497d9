import cluster, { type Worker } from 'node:cluster'
import type { Config } from '@fieldgate/core'
import { holdForServing } from '@fieldgate/storage'
import type { FastifyInstance } from 'fastify'
import type { Logger } from 'pino'
import { buildApp } from './app.js'
import { openRuntime, type Runtime } from './runtime.js'

export interface ServeOptions {
  workers: number
}

type Stop = (signal: NodeJS.Signals) => void

/** After the drain deadline, how long closing the store may take before the process gives up and exits 1. */
const CLOSE_GRACE_MS = 2000
/** While draining, how often keep-alive connections that became idle are closed. */
const IDLE_SWEEP_MS = 50
/** How long the primary waits for its workers beyond their own deadline before killing them. */
const WORKER_GRACE_MS = CLOSE_GRACE_MS + 3000

/**
 * Starts serving. With several workers, the primary prepares the store (migrations, first keys) once,
 * then forks one process per worker; they share the port and the store, and restart if they die.
 * SIGTERM or SIGINT drains: see `drain` and `supervise`.
 */
export async function serve(config: Config, logger: Logger, opts: ServeOptions): Promise<void> {
  // Until the server is up there is nothing to drain: the first signal just ends the process.
  let stop: Stop = () => process.exit(0)
  trapStopSignals(logger, (signal) => stop(signal))
  const setStop = (s: Stop) => {
    stop = s
  }
  // `fieldgate restore` refuses while this lock is held (the embedded store only; PostgreSQL has pg_restore).
  if (!config.databaseUrl) holdForServing(config.dataDir)
  if (cluster.isPrimary) {
    const runtime = await openRuntime(config, logger, { prepare: true, follow: opts.workers <= 1 })
    await printFirstStartHelp(runtime.storage, config, logger)
    if (opts.workers <= 1) return listen(config, logger, runtime, setStop)
    await runtime.close()
    return supervise(config, logger, opts.workers, setStop)
  }
  const runtime = await openRuntime(config, logger, { prepare: false, follow: true })
  return listen(config, logger, runtime, setStop)
}

/**
 * The first SIGTERM or SIGINT runs `stop`; later ones are only logged. With `once`, a second signal
 * (a supervisor signalling the whole process group, an impatient Ctrl-C) would take the default action
 * and kill the process in the middle of its drain.
 */
function trapStopSignals(logger: Logger, stop: Stop): void {
  let signalled = false
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.on(signal, () => {
      if (signalled) return logger.info({ signal }, 'already shutting down')
      signalled = true
      stop(signal)
    })
  }
}

/** Forks the workers and restarts any that dies, until a stop signal: then forwards it, waits for every worker, and exits. */
function supervise(config: Config, logger: Logger, count: number, setStop: (s: Stop) => void): void {
  const live = new Set<Worker>()
  let stopping = false
  let failed = false
  const fork = () => live.add(cluster.fork())
  for (let i = 0; i < count; i++) fork()
  cluster.on('exit', (worker, code, signal) => {
    live.delete(worker)
    if (!stopping) {
      logger.error({ pid: worker.process.pid, code, signal }, 'worker died; starting another')
      setTimeout(() => {
        if (!stopping) fork()
      }, 500).unref()
      return
    }
    if (code !== 0) failed = true
    logger.info({ worker: worker.process.pid, code, signal, left: live.size }, 'worker stopped')
    if (live.size === 0) exitAfterWorkers(logger, failed)
  })
  setStop((signal) => {
    stopping = true
    logger.info({ signal, workers: live.size }, 'shutting down: stopping the workers')
    if (live.size === 0) return exitAfterWorkers(logger, failed)
    for (const w of live) w.process.kill('SIGTERM')
    // Workers bound their own drain; this catches one that is wedged beyond it.
    setTimeout(() => {
      logger.error({ workers: [...live].map((w) => w.process.pid) }, 'workers did not stop in time; killing them')
      for (const w of live) w.process.kill('SIGKILL')
      process.exit(1)
    }, config.shutdownTimeoutMs + WORKER_GRACE_MS).unref()
  })
}

function exitAfterWorkers(logger: Logger, failed: boolean): void {
  logger.info({ failed }, 'every worker stopped')
  process.exit(failed ? 1 : 0)
}

async function listen(config: Config, logger: Logger, runtime: Runtime, setStop: (s: Stop) => void): Promise<void> {
  const app = await buildApp(runtime, logger)
  const address = await app.listen({ host: config.host, port: config.port })
  logger.info({ address, issuer: config.issuer, store: runtime.storage.engine, pid: process.pid }, 'fieldgate listening')
  setStop((signal) => drain(app, runtime, config, logger, signal))
}

/**
 * Stops accepting connections and closes idle keep-alive ones (Fastify's close), answers the requests
 * in flight (new ones on open connections get 503), then closes the store. After
 * `shutdownTimeoutMs` the connections still open are cut, so a stuck client cannot hold the shutdown.
 */
function drain(app: FastifyInstance, runtime: Runtime, config: Config, logger: Logger, signal: NodeJS.Signals): void {
  const started = performance.now()
  logger.info({ signal, timeoutMs: config.shutdownTimeoutMs }, 'shutting down: draining in-flight requests')
  const deadline = setTimeout(() => {
    logger.warn({ timeoutMs: config.shutdownTimeoutMs }, 'shutdown deadline passed; cutting the connections still open')
    app.server.closeAllConnections()
    setTimeout(() => {
      logger.error('the store did not close in time; exiting anyway')
      process.exit(1)
    }, CLOSE_GRACE_MS).unref()
  }, config.shutdownTimeoutMs)
  deadline.unref()
  // Fastify's close drops the connections idle at that moment; one whose request is in flight becomes
  // idle once answered and would keep the server open until its keep-alive timeout (72 s) runs out.
  const sweep = setInterval(() => app.server.closeIdleConnections(), IDLE_SWEEP_MS)
  sweep.unref()
  app
    .close()
    .then(() => {
      clearInterval(sweep)
      return runtime.close()
    })
    .then(
      () => {
        logger.info({ drainMs: Math.round(performance.now() - started) }, 'stopped')
        process.exit(0)
      },
      (err: unknown) => {
        logger.error({ err }, 'shutting down failed')
        process.exit(1)
      },
    )
}

/**
 * The first steps to a token, as the first start prints them and README's "First tokens in a minute"
 * shows them (a test keeps the two the same): a tenant, a private app on it, a client-credentials token.
 */
export function firstStartSteps(issuer: string): string[] {
  return [
    'npx fieldgate tenants create --name "Acme Field Services" --environment sandbox',
    'npx fieldgate apps create --name "Acme dispatch" --kind private --tenant <tenant id>',
    `curl -s ${issuer}/oauth/token -H 'content-type: application/json' \\`,
    `  -d '{"grant_type":"client_credentials","client_id":"<client_id>","client_secret":"<client_secret>","scope":"api"}'`,
  ]
}

/** What the first start with an empty store prints: where it listens, the first steps, and how to pick the port. */
export function firstStartBanner(issuer: string): string {
  return [
    '',
    `  Fieldgate is running at ${issuer} with an empty store. In another terminal, make a tenant and an app, then ask for a token:`,
    '',
    ...firstStartSteps(issuer).map((line) => `    ${line}`),
    '',
    `  Partners: sign up at ${issuer}/signup for the developer portal and a sandbox tenant.`,
    '  Another port: npm start -- --port 5000, or FIELDGATE_PORT=5000 npm start (npx fieldgate serve --port 5000).',
    '',
    '',
  ].join('\n')
}

async function printFirstStartHelp(storage: { listTenants(page: { limit: number }): Promise<unknown[]> }, config: Config, logger: Logger): Promise<void> {
  // One row tells an empty store; a marketplace of a million tenants is not read at start.
  if ((await storage.listTenants({ limit: 1 })).length > 0) return
  logger.info('empty store: create a first tenant and app')
  process.stdout.write(firstStartBanner(config.issuer))
}

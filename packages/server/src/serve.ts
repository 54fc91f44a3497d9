import cluster from 'node:cluster'
import type { Config } from '@fieldgate/core'
import type { Logger } from 'pino'
import { buildApp } from './app.js'
import { openRuntime } from './runtime.js'

export interface ServeOptions {
  workers: number
}

/**
 * Starts serving. With several workers, the primary prepares the store (migrations, first keys) once,
 * then forks one process per worker; they share the port and the store, and restart if they die.
 */
export async function serve(config: Config, logger: Logger, opts: ServeOptions): Promise<void> {
  if (cluster.isPrimary) {
    const runtime = await openRuntime(config, logger, { prepare: true, follow: opts.workers <= 1 })
    await printFirstStartHelp(runtime.storage, config, logger)
    if (opts.workers <= 1) return listen(config, logger, runtime)
    await runtime.close()
    for (let i = 0; i < opts.workers; i++) cluster.fork()
    cluster.on('exit', (worker, code, signal) => {
      if (shuttingDown) return
      logger.error({ pid: worker.process.pid, code, signal }, 'worker died; starting another')
      setTimeout(() => cluster.fork(), 500).unref()
    })
    let shuttingDown = false
    const stop = () => {
      shuttingDown = true
      for (const w of Object.values(cluster.workers ?? {})) w?.process.kill('SIGTERM')
    }
    process.once('SIGTERM', stop)
    process.once('SIGINT', stop)
    return
  }
  const runtime = await openRuntime(config, logger, { prepare: false, follow: true })
  return listen(config, logger, runtime)
}

async function listen(config: Config, logger: Logger, runtime: Awaited<ReturnType<typeof openRuntime>>): Promise<void> {
  const app = await buildApp(runtime, logger)
  const address = await app.listen({ host: config.host, port: config.port })
  logger.info({ address, issuer: config.issuer, store: runtime.storage.engine, pid: process.pid }, 'fieldgate listening')
  const close = async () => {
    await app.close()
    await runtime.close()
    process.exit(0)
  }
  process.once('SIGTERM', close)
  process.once('SIGINT', close)
}

async function printFirstStartHelp(storage: { listTenants(): Promise<unknown[]> }, config: Config, logger: Logger): Promise<void> {
  if ((await storage.listTenants()).length > 0) return
  logger.info('empty store: create a first tenant and app')
  process.stdout.write(`
  Fieldgate is running with an empty store. Create a tenant and an app, then ask for a token:

    npx fieldgate tenants create --name "Acme Field Services" --environment sandbox
    npx fieldgate apps create --name "Acme dispatch" --kind private --tenant <tenant id>
    curl -s -X POST ${config.issuer}/oauth/token -H 'content-type: application/json' \\
      -d '{"grant_type":"client_credentials","client_id":"<client_id>","client_secret":"<client_secret>","scope":"api"}'

  Partners: sign up at ${config.issuer}/signup for the developer portal and a sandbox tenant.

`)
}

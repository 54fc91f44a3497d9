import { randomUUID } from 'node:crypto'
import type { FastifyInstance } from 'fastify'
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'
import { TemporarilyUnavailable, type CoreContext } from '@fieldgate/core'
import { sendOAuthError } from './errors.js'
import { neverShed, registerLoadShedding } from './load-shedding.js'
import { registerMetricsEndpoints } from './metrics.js'
import { logRequest } from './request-log.js'

/**
 * What an operations team needs from each process: liveness and readiness probes, Prometheus metrics,
 * the request id on every response (it is on every log line already, as `reqId`), one log line per
 * request (request-log.ts), and load shedding.
 */
export interface Metrics {
  readonly registry: Registry
  /** Counts an issued token by grant type and the dialect whose route issued it. */
  tokenIssued(grantType: string, dialect: string): void
}

declare module 'fastify' {
  interface FastifyInstance {
    metrics: Metrics
  }
}

/** Request ids a client may set (X-Request-Id) if they are short and plain; others get a fresh one. */
export const requestId = (header: string | string[] | undefined): string => (typeof header === 'string' && /^[A-Za-z0-9._-]{1,64}$/.test(header) ? header : randomUUID())

export function registerOperations(app: FastifyInstance, ctx: CoreContext): Metrics {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry, prefix: 'fieldgate_' })
  const requests = new Counter({
    name: 'fieldgate_http_requests_total',
    help: 'HTTP requests by route and status',
    labelNames: ['method', 'route', 'status'],
    registers: [registry],
  })
  const latency = new Histogram({
    name: 'fieldgate_http_request_duration_seconds',
    help: 'HTTP request latency by route',
    labelNames: ['method', 'route'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry],
  })
  const tokens = new Counter({
    name: 'fieldgate_tokens_issued_total',
    help: 'Access tokens issued by grant type and dialect',
    labelNames: ['grant_type', 'dialect'],
    registers: [registry],
  })
  new Gauge({
    name: 'fieldgate_webhook_backlog',
    help: 'Data API events waiting to be delivered (pending)',
    registers: [registry],
    // Read at scrape time from the store, so every process reports the deployment's backlog.
    async collect() {
      this.set(await ctx.storage.countPendingEvents())
    },
  })

  const shed = new Counter({
    name: 'fieldgate_requests_shed_total',
    help: 'Requests answered 503 by load shedding, before any work',
    registers: [registry],
  })
  // Registered before the probes below, so its hook is in place for every route.
  const shedding = registerLoadShedding(app, ctx.config.overload, () => shed.inc())
  new Gauge({
    name: 'fieldgate_event_loop_delay_seconds',
    help: 'Mean event-loop delay of the last load-shedding sample (0 with shedding off)',
    registers: [registry],
    collect() {
      this.set(shedding.delayMs() / 1000)
    },
  })

  // A request that arrives on a connection still open while the process drains (a pipelined one) is
  // told to go elsewhere in the shape of every other 503, in place of Fastify's return503OnClosing body.
  let closing = false
  app.addHook('preClose', async () => {
    closing = true
  })
  // Each label set's children, looked up once: prom-client would hash the labels on every request.
  const series = new Map<string, { count: () => void; time: (seconds: number) => void }>()
  const seriesOf = (method: string, route: string, status: number) => {
    const key = `${method} ${status} ${route}`
    let found = series.get(key)
    if (!found) {
      const count = requests.labels(method, route, String(status))
      const time = latency.labels(method, route)
      found = { count: () => count.inc(), time: (seconds) => time.observe(seconds) }
      series.set(key, found)
    }
    return found
  }
  // One hook at each end of every request, callback-style (no promise per request): each hook Fastify
  // runs costs on every request, and these are on all of them. Answering early means not calling done.
  app.addHook('onRequest', (request, reply, done) => {
    // Set first, so every answer has it: Fastify keeps headers set before an error is sent.
    reply.header('x-request-id', request.id)
    if (closing) sendOAuthError(reply.header('connection', 'close'), new TemporarilyUnavailable())
    else done()
  })
  app.addHook('onResponse', (request, reply, done) => {
    // The route pattern, never the raw URL: bounded label values, and no token from a query string.
    const route = request.routeOptions.url
    const { count, time } = seriesOf(request.method, route ?? 'unmatched', reply.statusCode)
    count()
    time(reply.elapsedTime / 1000)
    logRequest(request, reply, route)
    done()
  })

  app.get('/healthz', { config: neverShed }, async () => ({ status: 'ok' }))

  // Ready when the store answers and a signing key is loaded, and not shedding load; a load balancer sends
  // traffic elsewhere otherwise. While shedding it answers at once, without a store query.
  app.get('/readyz', { config: neverShed }, async (_request, reply) => {
    if (shedding.shedding()) {
      return reply
        .code(503)
        .header('cache-control', 'no-store')
        .header('retry-after', String(ctx.config.overload.retryAfterSeconds))
        .send({ status: 'unavailable', overloaded: true })
    }
    const checks = { store: false, keys: ctx.keys.jwks().keys.length > 0 }
    try {
      await ctx.storage.latestChangeSeq()
      checks.store = true
    } catch {
      checks.store = false
    }
    const ready = checks.store && checks.keys
    return reply
      .code(ready ? 200 : 503)
      .header('cache-control', 'no-store')
      .send({ status: ready ? 'ready' : 'unavailable', checks })
  })

  registerMetricsEndpoints(app, ctx.config, registry)

  // Called only for issued tokens, so the grant types are the registered ones: a bounded set of children.
  const issued = new Map<string, () => void>()
  const tokenIssued = (grantType: string, dialect: string): void => {
    const key = `${grantType} ${dialect}`
    let count = issued.get(key)
    if (!count) {
      const child = tokens.labels(grantType, dialect)
      count = () => child.inc()
      issued.set(key, count)
    }
    count()
  }
  const metrics: Metrics = { registry, tokenIssued }
  app.decorate('metrics', metrics)
  return metrics
}

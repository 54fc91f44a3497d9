import underPressure, { type FastifyUnderPressureOptions } from '@fastify/under-pressure'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { TemporarilyUnavailable, type Config } from '@fieldgate/core'

/**
 * Overload shedding with @fastify/under-pressure: it samples the mean event-loop delay on a timer and
 * checks it in a root onRequest hook, so a shed request costs no body parsing, client authentication,
 * signature or store query. The answer is the store-outage shape of errors.ts: 503
 * temporarily_unavailable, Retry-After, no-store.
 *
 * Every request is shed while the last sample is over (the plugin's own rule). A share growing with the
 * overshoot was measured too: it keeps more requests served at 5x, but the loop then stays as busy as at
 * the threshold and a 503 waits as long as a 200; shedding all makes the 503s fast, which is the point.
 */
export interface LoadShedding {
  /** True while the last sample was over the threshold (always false when shedding is off). */
  shedding(): boolean
  /** The mean event-loop delay of the last sample, in milliseconds (0 when shedding is off). */
  delayMs(): number
}

type Handler = NonNullable<FastifyUnderPressureOptions['pressureHandler']>

/** Route config for probes and metrics: always served, shedding or not. */
export const neverShed = { pressureHandler: () => undefined }

export function registerLoadShedding(app: FastifyInstance, config: Config['overload'], onShed: () => void): LoadShedding {
  const max = config.maxEventLoopDelayMs
  if (max === 0) return { shedding: () => false, delayMs: () => 0 }
  const err = new TemporarilyUnavailable(config.retryAfterSeconds)
  const headers = { ...err.headers, 'cache-control': 'no-store' }
  const body = err.toJSON()
  // Start-up (migrations, schema compiles) blocks the loop; a sample that holds any of it is no overload.
  let armed = false
  app.addHook('onReady', async () => {
    setTimeout(
      () => {
        armed = true
      },
      2 * config.sampleMs + 50,
    ).unref()
  })
  // Nothing returned: the request goes on. A returned payload is sent and the request stops there; one
  // sent here instead would let later hooks (bearer checks, store lookups) run until it is written.
  const pressureHandler = (_request: FastifyRequest, reply: FastifyReply) => {
    if (!armed) return undefined
    onShed()
    reply.code(err.status).headers(headers)
    return body
  }
  void app.register(underPressure, {
    maxEventLoopDelay: max,
    sampleInterval: config.sampleMs,
    // The plugin sends whatever its handler returns (its README); its types only admit void.
    pressureHandler: pressureHandler as unknown as Handler,
  })
  // memoryUsage exists once the plugin has loaded, before the app is ready (and so armed).
  return {
    shedding: () => armed && app.isUnderPressure(),
    delayMs: () => (app.hasDecorator('memoryUsage') ? app.memoryUsage().eventLoopDelay : 0),
  }
}

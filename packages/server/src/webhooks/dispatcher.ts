import { randomUUID } from 'node:crypto'
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http'
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https'
import { eventIdHeader, liveSigningSecrets, nextAttemptAt, signEvent, signatureHeader, type App, type CoreContext, type OutboxEvent, type RetryPolicy } from '@fieldgate/core'
import type { Logger } from 'pino'
import { assertPublicTarget, guardedLookup, systemResolve, type Resolve } from './targets.js'

export interface DispatcherOptions extends RetryPolicy {
  /** Let deliveries reach loopback and private addresses (development and tests only). */
  allowPrivateTargets: boolean
  /** How often the outbox is read when it was empty last time. */
  pollMs: number
  /** A receiver that has not answered by then has failed this attempt. */
  timeoutMs: number
  /** How long an event stays leased to this process; longer than any attempt can take. */
  leaseMs: number
  /** Events attempted at once by this process. */
  batch: number
  /** How host names are resolved, for the check and for connecting (tests inject one; the system resolver otherwise). */
  resolve?: Resolve
}

interface Delivery {
  url: URL
  headers: Record<string, string>
  body: string
  signal: AbortSignal
}

/**
 * Delivers the outbox to each app's Data API URL: leases due events (so no other process attempts
 * them), POSTs each body signed with the app's live secrets, and records the attempt. A 2xx answer
 * delivers it; anything else retries with backoff until the event is a day old, then parks it as
 * failed. A process that dies mid-attempt leaves its lease to run out, and the event is tried again.
 */
export class Dispatcher {
  private timer: NodeJS.Timeout | undefined
  private running: Promise<void> | undefined
  private stopped = false
  private readonly resolve: Resolve
  private readonly agents: { http: HttpAgent; https: HttpsAgent }

  constructor(
    private readonly ctx: CoreContext,
    private readonly masterKey: Buffer,
    private readonly logger: Logger,
    private readonly opts: DispatcherOptions,
  ) {
    this.resolve = opts.resolve ?? systemResolve
    // Without private targets every connection resolves through the guard, so it reaches exactly the
    // addresses that passed the check. No keep-alive: each attempt is its own, checked, connection.
    const options = opts.allowPrivateTargets ? { keepAlive: false } : { keepAlive: false, lookup: guardedLookup(this.resolve) }
    this.agents = { http: new HttpAgent(options), https: new HttpsAgent(options) }
  }

  start(): void {
    this.schedule(0)
  }

  async stop(): Promise<void> {
    this.stopped = true
    clearTimeout(this.timer)
    await this.running
    this.agents.http.destroy()
    this.agents.https.destroy()
  }

  /** Attempts what is due now; returns how many events it attempted. */
  async tick(): Promise<number> {
    const now = this.ctx.now()
    const leaseUntil = now + this.opts.leaseMs
    const events = await this.ctx.storage.claimEvents(now, leaseUntil, this.opts.batch)
    const apps = new Map<string, Promise<App | undefined>>()
    await Promise.all(
      events.map(async (event) => {
        if (!apps.has(event.appId)) apps.set(event.appId, this.ctx.storage.getApp(event.appId))
        await this.attempt(event, leaseUntil, await apps.get(event.appId))
      }),
    )
    return events.length
  }

  private async attempt(event: OutboxEvent, leaseUntil: number, app: App | undefined): Promise<void> {
    const started = this.ctx.now()
    let status: number | null = null
    let error: string | null = null
    try {
      if (!app?.dataApiUrl) throw new Error('the app has no Data API URL')
      const url = new URL(app.dataApiUrl)
      if (!this.opts.allowPrivateTargets) await assertPublicTarget(url, this.resolve)
      // Newest first: receivers verify against any, so one holding the previous secret keeps working.
      const secrets = await liveSigningSecrets(this.ctx.storage, app, this.masterKey, started)
      if (secrets.length === 0) throw new Error('the app has no secret to sign with: rotate its secret')
      // The attempt must end inside the lease, or another process could make it too.
      const left = leaseUntil - this.ctx.now() - 1000
      if (left <= 0) return
      status = await this.post({
        url,
        signal: AbortSignal.timeout(Math.min(this.opts.timeoutMs, left)),
        headers: {
          'content-type': 'application/json',
          'user-agent': 'Fieldgate-DataAPI/1',
          [eventIdHeader]: event.id,
          [signatureHeader]: signEvent(event.body, secrets, Math.floor(started / 1000)),
        },
        body: event.body,
      })
      if (status < 200 || status >= 300) error = `the receiver answered ${status}`
    } catch (err) {
      error = describe(err, this.opts.timeoutMs)
    }
    const finished = this.ctx.now()
    const attempts = event.attempts + 1
    const retryAt = error === null ? undefined : nextAttemptAt(this.opts, event, attempts, finished)
    const state = error === null ? 'delivered' : retryAt === undefined ? 'failed' : 'pending'
    const saved = await this.ctx.storage.finishAttempt(
      { id: event.id, state, attempts, nextAttemptAt: retryAt ?? event.nextAttemptAt, deliveredAt: error === null ? finished : null, lastError: error },
      leaseUntil,
      { id: randomUUID(), eventId: event.id, at: started, status, error, durationMs: finished - started },
    )
    if (!saved) this.logger.warn({ event: event.id }, 'a Data API attempt outlived its lease; another process owns the event now')
    else if (state === 'failed') this.logger.warn({ event: event.id, app: event.appId, attempts }, 'Data API event parked as failed after retrying for its whole lifetime')
  }

  /** POSTs one delivery and answers the status; redirects are not followed (a 3xx is a failed attempt). */
  private post(d: Delivery): Promise<number> {
    const send = d.url.protocol === 'https:' ? httpsRequest : d.url.protocol === 'http:' ? httpRequest : undefined
    if (!send) return Promise.reject(new Error('the Data API URL must be http or https'))
    const agent = d.url.protocol === 'https:' ? this.agents.https : this.agents.http
    return new Promise((ok, fail) => {
      const req = send(d.url, { method: 'POST', agent, signal: d.signal, headers: { ...d.headers, 'content-length': String(Buffer.byteLength(d.body)) } })
      req.on('error', fail)
      req.on('response', (res: IncomingMessage) => {
        // Only the status matters; a receiver streaming an endless body must not fill this process's memory.
        res.destroy()
        ok(res.statusCode ?? 0)
      })
      req.end(d.body)
    })
  }

  private schedule(delay: number): void {
    if (this.stopped) return
    this.timer = setTimeout(() => {
      this.running = this.tick()
        .then((n) => this.schedule(n === this.opts.batch ? 0 : this.opts.pollMs))
        .catch((err: unknown) => {
          this.logger.warn({ err }, 'reading the outbox failed; retrying')
          this.schedule(this.opts.pollMs)
        })
    }, delay)
    this.timer.unref()
  }
}

/** The attempt's error as recorded for the app's page: a timeout says so, anything else its message. */
function describe(err: unknown, timeoutMs: number): string {
  if (err instanceof Error && (err.name === 'TimeoutError' || (err.name === 'AbortError' && err.cause instanceof Error && err.cause.name === 'TimeoutError'))) {
    return `no answer within ${timeoutMs} ms`
  }
  return (err instanceof Error ? err.message : String(err)).slice(0, 300)
}

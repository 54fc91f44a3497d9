import { randomUUID } from 'node:crypto'
import {
  eventIdHeader, nextAttemptAt, signEvent, signatureHeader, unseal, type App, type CoreContext, type OutboxEvent, type RetryPolicy,
} from '@fieldgate/core'
import type { Logger } from 'pino'
import { assertPublicTarget } from './targets.js'

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

  constructor(
    private readonly ctx: CoreContext,
    private readonly masterKey: Buffer,
    private readonly logger: Logger,
    private readonly opts: DispatcherOptions,
  ) {}

  start(): void {
    this.schedule(0)
  }

  async stop(): Promise<void> {
    this.stopped = true
    clearTimeout(this.timer)
    await this.running
  }

  /** Attempts what is due now; returns how many events it attempted. */
  async tick(): Promise<number> {
    const now = this.ctx.now()
    const leaseUntil = now + this.opts.leaseMs
    const events = await this.ctx.storage.claimEvents(now, leaseUntil, this.opts.batch)
    const apps = new Map<string, Promise<App | undefined>>()
    await Promise.all(events.map(async (event) => {
      if (!apps.has(event.appId)) apps.set(event.appId, this.ctx.storage.getApp(event.appId))
      await this.attempt(event, leaseUntil, await apps.get(event.appId))
    }))
    return events.length
  }

  private async attempt(event: OutboxEvent, leaseUntil: number, app: App | undefined): Promise<void> {
    const started = this.ctx.now()
    let status: number | null = null
    let error: string | null = null
    try {
      if (!app?.dataApiUrl) throw new Error('the app has no Data API URL')
      if (!this.opts.allowPrivateTargets) await assertPublicTarget(app.dataApiUrl)
      const secrets = await this.secrets(app, started)
      if (secrets.length === 0) throw new Error('the app has no secret to sign with: rotate its secret')
      // The attempt must end inside the lease, or another process could make it too.
      const left = leaseUntil - this.ctx.now() - 1000
      if (left <= 0) return
      const res = await fetch(app.dataApiUrl, {
        method: 'POST',
        redirect: 'manual',
        signal: AbortSignal.timeout(Math.min(this.opts.timeoutMs, left)),
        headers: {
          'content-type': 'application/json',
          'user-agent': 'Fieldgate-DataAPI/1',
          [eventIdHeader]: event.id,
          [signatureHeader]: signEvent(event.body, secrets, Math.floor(started / 1000)),
        },
        body: event.body,
      })
      status = res.status
      // Only the status matters; a receiver streaming an endless body must not fill this process's memory.
      await res.body?.cancel().catch(() => undefined)
      if (status < 200 || status >= 300) error = `the receiver answered ${status}`
    } catch (err) {
      error = (err as Error).name === 'TimeoutError' ? `no answer within ${this.opts.timeoutMs} ms` : String((err as Error).message ?? err).slice(0, 300)
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

  /** Newest first: receivers verify against any, so one holding the previous secret keeps working. */
  private async secrets(app: App, now: number): Promise<string[]> {
    const live = (await this.ctx.storage.listLiveSecrets(app.id, now)).filter((s) => s.secretEnc !== null).sort((a, b) => b.createdAt - a.createdAt)
    return live.map((s) => unseal(s.secretEnc!, s.id, this.masterKey))
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

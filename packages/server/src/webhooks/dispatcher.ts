import { randomUUID } from 'node:crypto'
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http'
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https'
import {
  eventIdHeader,
  liveSigningSecrets,
  nextAttemptAt,
  signEvent,
  signatureHeader,
  type CoreContext,
  type FinishedAttempt,
  type OutboxEvent,
  type RetryPolicy,
} from '@fieldgate/core'
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
  /** Aborts at the end of the lease. */
  signal: AbortSignal
  /** How long the receiver has to answer once the attempt has a connection. */
  answerWithinMs: number
}

/** What one claim leased: its events, the lease they are under, and each app's delivery settings. */
interface Claim {
  events: OutboxEvent[]
  leaseUntil: number
  targets: Map<string, Promise<Target>>
}

/** Where an app's events go and what they are signed with, read once per claim. */
interface Target {
  url: URL
  secrets: string[]
}

/** Claims leased at once by one process while the backlog is full, so attempts overlap the next claim. */
const claimsInFlight = 4
/** Completions recorded in one transaction: at most this many, or what came in within `completionWaitMs`. */
const completionBatch = 500
const completionWaitMs = 25
/** What a receiver's answer may carry and still leave its connection open for the next attempt. */
const maxAnswerBytes = 64 * 1024

/**
 * Delivers the outbox to each app's Data API URL: leases due events (so no other process attempts
 * them), POSTs each body signed with the app's live secrets, and records the attempt. A 2xx answer
 * delivers it; anything else retries with backoff until the event is a day old, then parks it as
 * failed. A process that dies mid-attempt leaves its lease to run out, and the event is tried again.
 *
 * From a backlog, up to four claims are attempted at once, over kept-alive connections, and completions
 * are recorded in batches (one transaction for what finished within 25 ms): on SQLite each COMMIT waits
 * for the disk (4-6 ms here), so a commit per event, or per few events, bounded the rate.
 */
export class Dispatcher {
  private timer: NodeJS.Timeout | undefined
  private readonly pumps = new Set<Promise<void>>()
  private stopped = false
  private readonly resolve: Resolve
  private readonly agents: { http: HttpAgent; https: HttpsAgent }
  private completions: { finished: FinishedAttempt; recorded: (saved: boolean) => void; lost: (err: unknown) => void }[] = []
  private completionTimer: NodeJS.Timeout | undefined

  constructor(
    private readonly ctx: CoreContext,
    private readonly masterKey: Buffer,
    private readonly logger: Logger,
    private readonly opts: DispatcherOptions,
  ) {
    this.resolve = opts.resolve ?? systemResolve
    // Without private targets every connection resolves through the guard, so it reaches exactly the
    // addresses that passed the check. Kept alive between attempts (a backlog no longer pays a TCP
    // handshake per event): a socket stays connected to the address that was checked when it opened,
    // so reusing it reaches nothing new. Idle sockets close after 1 s, before common servers close
    // theirs (gunicorn 2 s, Node 5 s) under a request. At most 64 per receiver: more claims in flight
    // wait in the agent's queue (their answer's timeout starts once they have a socket, see post).
    const pool = { keepAlive: true, timeout: 1000, maxSockets: 64, maxFreeSockets: 64 }
    const options = opts.allowPrivateTargets ? pool : { ...pool, lookup: guardedLookup(this.resolve) }
    this.agents = { http: new HttpAgent(options), https: new HttpsAgent(options) }
  }

  start(): void {
    this.schedule(0)
  }

  async stop(): Promise<void> {
    this.stopped = true
    clearTimeout(this.timer)
    await Promise.all(this.pumps)
    this.agents.http.destroy()
    this.agents.https.destroy()
  }

  /** Attempts what is due now, in one claim; returns how many events it attempted, once all are recorded. */
  async tick(): Promise<number> {
    const claim = await this.claim()
    await this.attemptAll(claim)
    return claim.events.length
  }

  private async claim(): Promise<Claim> {
    const now = this.ctx.now()
    const leaseUntil = now + this.opts.leaseMs
    return { events: await this.ctx.storage.claimEvents(now, leaseUntil, this.opts.batch), leaseUntil, targets: new Map() }
  }

  /** Settles once every attempt of the claim has: stop() and the claims-in-flight bound count on it. */
  private async attemptAll(claim: Claim): Promise<void> {
    const settled = await Promise.allSettled(claim.events.map((event) => this.attempt(event, claim)))
    const failed = settled.find((s) => s.status === 'rejected')
    if (failed) throw failed.reason
  }

  /** One claim and its attempts; a full claim starts the next before its own attempts are made. */
  private startPump(): void {
    if (this.stopped || this.pumps.size >= claimsInFlight) return
    let full = false
    const pump = this.claim()
      .then((claim) => {
        full = claim.events.length === this.opts.batch
        if (full) this.startPump()
        return this.attemptAll(claim)
      })
      .catch((err: unknown) => {
        full = false
        this.logger.warn({ err }, 'reading or recording the outbox failed; retrying')
      })
      .finally(() => {
        this.pumps.delete(pump)
        if (full) this.startPump()
        else if (this.pumps.size === 0) this.schedule(this.opts.pollMs)
      })
    this.pumps.add(pump)
  }

  /** The app's URL and secrets, read and unsealed once for all its events in a claim. */
  private target(claim: Claim, appId: string): Promise<Target> {
    let target = claim.targets.get(appId)
    if (!target) {
      target = this.readTarget(appId)
      // Every event of the app reports the failure as its own attempt's error.
      target.catch(() => {})
      claim.targets.set(appId, target)
    }
    return target
  }

  private async readTarget(appId: string): Promise<Target> {
    const app = await this.ctx.storage.getApp(appId)
    if (!app?.dataApiUrl) throw new Error('the app has no Data API URL')
    const url = new URL(app.dataApiUrl)
    if (!this.opts.allowPrivateTargets) await assertPublicTarget(url, this.resolve)
    // Newest first: receivers verify against any, so one holding the previous secret keeps working.
    const secrets = await liveSigningSecrets(this.ctx.storage, app, this.masterKey, this.ctx.now())
    if (secrets.length === 0) throw new Error('the app has no secret to sign with: rotate its secret')
    return { url, secrets }
  }

  private async attempt(event: OutboxEvent, claim: Claim): Promise<void> {
    const { leaseUntil } = claim
    const started = this.ctx.now()
    let status: number | null = null
    let error: string | null = null
    try {
      const { url, secrets } = await this.target(claim, event.appId)
      // The attempt must end inside the lease, or another process could make it too.
      const left = leaseUntil - this.ctx.now() - 1000
      if (left <= 0) return
      status = await this.post({
        url,
        // The lease bounds the whole attempt, queued in the agent or not; the receiver's time starts
        // once the attempt has a connection.
        signal: AbortSignal.timeout(left),
        answerWithinMs: this.opts.timeoutMs,
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
    const saved = await this.record({
      event: { id: event.id, state, attempts, nextAttemptAt: retryAt ?? event.nextAttemptAt, deliveredAt: error === null ? finished : null, lastError: error },
      leasedUntil: leaseUntil,
      attempt: { id: randomUUID(), eventId: event.id, at: started, status, error, durationMs: finished - started },
    })
    if (!saved) this.logger.warn({ event: event.id }, 'a Data API attempt outlived its lease; another process owns the event now')
    else if (state === 'failed') this.logger.warn({ event: event.id, app: event.appId, attempts }, 'Data API event parked as failed after retrying for its whole lifetime')
  }

  /** Records an attempt with the others that finish within a few ms; answers once its transaction committed. */
  private record(finished: FinishedAttempt): Promise<boolean> {
    const recorded = new Promise<boolean>((recorded, lost) => this.completions.push({ finished, recorded, lost }))
    if (this.completions.length >= completionBatch) this.recordCompletions()
    else this.completionTimer ??= setTimeout(() => this.recordCompletions(), completionWaitMs)
    return recorded
  }

  private recordCompletions(): void {
    clearTimeout(this.completionTimer)
    this.completionTimer = undefined
    const batch = this.completions
    this.completions = []
    this.ctx.storage.finishAttempts(batch.map((c) => c.finished)).then(
      (saved) => {
        for (const [i, c] of batch.entries()) c.recorded(saved[i] === true)
      },
      (err: unknown) => {
        for (const c of batch) c.lost(err)
      },
    )
  }

  /** POSTs one delivery and answers the status; redirects are not followed (a 3xx is a failed attempt). */
  private post(d: Delivery): Promise<number> {
    const send = d.url.protocol === 'https:' ? httpsRequest : d.url.protocol === 'http:' ? httpRequest : undefined
    if (!send) return Promise.reject(new Error('the Data API URL must be http or https'))
    const agent = d.url.protocol === 'https:' ? this.agents.https : this.agents.http
    return new Promise((ok, fail) => {
      const req = send(d.url, { method: 'POST', agent, signal: d.signal, headers: { ...d.headers, 'content-length': String(Buffer.byteLength(d.body)) } })
      let unanswered: NodeJS.Timeout | undefined
      req.on('socket', () => {
        unanswered = setTimeout(() => req.destroy(Object.assign(new Error('no answer'), { name: 'TimeoutError' })), d.answerWithinMs)
      })
      req.on('close', () => clearTimeout(unanswered))
      req.on('error', fail)
      req.on('response', (res: IncomingMessage) => {
        clearTimeout(unanswered)
        ok(res.statusCode ?? 0)
        // Only the status matters. A short body is read and dropped, so the socket is kept for the next
        // attempt; a receiver streaming more than that loses the connection, never this process's memory.
        let bytes = 0
        res.on('data', (chunk: Buffer) => {
          bytes += chunk.length
          if (bytes > maxAnswerBytes) res.destroy()
        })
        res.on('error', () => {})
      })
      req.end(d.body)
    })
  }

  private schedule(delay: number): void {
    if (this.stopped) return
    clearTimeout(this.timer)
    this.timer = setTimeout(() => this.startPump(), delay)
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

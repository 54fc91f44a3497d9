import { rootCertificates } from 'node:tls'
import type { MailMessage, Storage } from '@fieldgate/core'
import { createTransport, type Transporter } from 'nodemailer'
import type { Logger } from 'pino'

export interface MailerOptions {
  /** SMTP server URL; without one, mail goes to the local mailbox. */
  smtpUrl: string | undefined
  /** CA certificates (PEM) trusted for the SMTP server besides Node's own (FIELDGATE_SMTP_CA_FILE, mail/smtp-ca.ts). */
  ca?: readonly string[]
  from: string
  /** How often the outbox is read when it was empty last time. */
  pollMs: number
  /** How long a message stays leased to this process: longer than any send can take. */
  leaseMs: number
  /** Attempts before a message is parked as failed; the wait between them doubles from 10 s to an hour. */
  maxAttempts: number
  now: () => number
}

export const defaultMailerTiming = { pollMs: 1000, leaseMs: 60_000, maxAttempts: 10 } as const

/**
 * nodemailer upgrades to STARTTLS whenever the server offers it (smtps:// is TLS from the start) and
 * verifies the certificate: an upgrade that fails is a failed attempt, never a message sent in clear.
 * One pooled connection is plenty for account mail.
 */
function smtpTransport(opts: MailerOptions): Transporter | undefined {
  if (!opts.smtpUrl) return undefined
  // A `ca` replaces Node's list for the connection; the operator's CAs are meant as well as it, not instead.
  const tls = opts.ca ? { tls: { ca: [...rootCertificates, ...opts.ca] } } : {}
  return createTransport({ url: opts.smtpUrl, pool: true, maxConnections: 1, ...tls }, { from: opts.from })
}

/**
 * Sends the mail outbox. Operations write a message in the transaction of the change it tells of
 * (a sign-up and its link, a review decision and its notice); serving processes lease pending
 * messages (claimMail: one process per message) and send them over SMTP, retrying with backoff.
 * A sent message keeps its envelope but not its text, so no link outlives its delivery in the store.
 * With no SMTP server configured, messages go to the local mailbox (state `local`, text kept) that the
 * operator reads with `fieldgate mail list` and on the console; mail is never written to the log.
 */
export class Mailer {
  private timer: NodeJS.Timeout | undefined
  private running: Promise<unknown> | undefined
  private stopped = false
  private readonly transport: Transporter | undefined

  constructor(
    private readonly storage: Storage,
    private readonly logger: Logger,
    private readonly opts: MailerOptions,
  ) {
    this.transport = smtpTransport(opts)
  }

  start(): void {
    this.schedule(0)
  }

  async stop(): Promise<void> {
    this.stopped = true
    clearTimeout(this.timer)
    await this.running
    this.transport?.close()
  }

  /** Sends (or files locally) what is due now; returns how many messages it handled. */
  async tick(): Promise<number> {
    const messages = await this.storage.claimMail(this.opts.now(), this.opts.leaseMs, 10)
    for (const message of messages) await this.handle(message)
    return messages.length
  }

  private schedule(ms: number): void {
    if (this.stopped) return
    this.timer = setTimeout(() => {
      const run = this.tick().then(
        (handled) => handled,
        (err: unknown) => {
          this.logger.warn({ err }, 'reading the mail outbox failed; retrying')
          return 0
        },
      )
      this.running = run
      void run.then((handled) => this.schedule(handled > 0 ? 0 : this.opts.pollMs))
    }, ms)
    this.timer.unref()
  }

  private async handle(message: MailMessage): Promise<void> {
    if (!this.transport) {
      await this.storage.updateMail({ ...message, state: 'local' })
      return
    }
    try {
      await this.transport.sendMail({ to: message.to, subject: message.subject, text: message.text ?? '' })
      await this.storage.updateMail({ ...message, state: 'sent', sentAt: this.opts.now(), text: null, error: null })
      this.logger.info({ mail: { id: message.id, kind: message.kind, attempts: message.attempts } }, 'mail sent')
    } catch (err) {
      await this.failed(message, err instanceof Error ? err.message : String(err))
    }
  }

  /** Retries after 10 s, 20 s, 40 s … up to an hour; after the last attempt parks the message as failed. */
  private async failed(message: MailMessage, error: string): Promise<void> {
    const last = message.attempts >= this.opts.maxAttempts
    const wait = Math.min(3_600_000, 10_000 * 2 ** (message.attempts - 1))
    const mail: MailMessage = last ? { ...message, state: 'failed', text: null, error } : { ...message, error }
    await this.storage.updateMail(mail, last ? undefined : this.opts.now() + wait)
    this.logger.warn({ mail: { id: message.id, kind: message.kind, attempts: message.attempts }, error }, last ? 'mail failed for good' : 'sending mail failed; retrying')
  }
}

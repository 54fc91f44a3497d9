import type { AddressInfo } from 'node:net'
import { simpleParser } from 'mailparser'
import { SMTPServer } from 'smtp-server'

/** A message as the receiving mail server got it, parsed as a mail client would. */
export interface ReceivedMail {
  from: string
  to: string[]
  subject: string
  text: string
  /** Whether it came over TLS (here: after STARTTLS). */
  secure: boolean
}

/** A command that carries something of the sender's (credentials, an envelope), as the receiver got it. */
export interface ReceivedCommand {
  command: 'AUTH' | 'MAIL FROM'
  secure: boolean
}

export interface ReceiverOptions {
  /** Offer STARTTLS with this key and certificate; without one it is not offered (the default). */
  tls?: { key: string; cert: string }
}

/**
 * A real SMTP server on loopback (the `smtp-server` package), the mailbox tests read: what Fieldgate
 * sends reaches it over SMTP exactly as it would reach a provider. `smtpUrl` is what FIELDGATE_SMTP_URL
 * would be. STARTTLS is offered only when started with a certificate (support/tls.ts makes one); any
 * user and password are accepted. What it saw of each session is kept, so a test can tell what came in clear.
 */
export class SmtpReceiver {
  readonly received: ReceivedMail[] = []
  readonly commands: ReceivedCommand[] = []
  /** TLS upgrades that completed. */
  secured = 0
  /** What went wrong in a session (a client that gave up on the certificate, for one). */
  readonly errors: Error[] = []
  private readonly waiters: { test: (m: ReceivedMail) => boolean; resolve: (m: ReceivedMail) => void }[] = []

  private constructor(
    private readonly server: SMTPServer,
    readonly smtpUrl: string,
  ) {}

  static async start(opts: ReceiverOptions = {}): Promise<SmtpReceiver> {
    let receiver: SmtpReceiver | undefined
    const server = new SMTPServer({
      ...(opts.tls ? { key: opts.tls.key, cert: opts.tls.cert } : { disabledCommands: ['STARTTLS'] }),
      authOptional: true,
      logger: false,
      onSecure: (_socket, _session, done) => {
        if (receiver) receiver.secured++
        done()
      },
      onAuth: (_auth, session, done) => {
        receiver?.commands.push({ command: 'AUTH', secure: session.secure })
        done(null, { user: 'test' })
      },
      onMailFrom: (_address, session, done) => {
        receiver?.commands.push({ command: 'MAIL FROM', secure: session.secure })
        done()
      },
      onData: (stream, session, done) => {
        simpleParser(stream).then(
          (parsed) => {
            receiver?.deliver({
              from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
              to: session.envelope.rcptTo.map((r) => r.address),
              subject: parsed.subject ?? '',
              text: parsed.text ?? '',
              secure: session.secure,
            })
            done()
          },
          (err: Error) => done(err),
        )
      },
    })
    server.on('error', (err) => receiver?.errors.push(err))
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const { port } = server.server.address() as AddressInfo
    receiver = new SmtpReceiver(server, `smtp://fieldgate:secret@127.0.0.1:${port}`)
    return receiver
  }

  /** The first message (received already or to come) to `to` whose subject matches. */
  next(to: string, subject: RegExp, timeoutMs = 10_000): Promise<ReceivedMail> {
    const test = (m: ReceivedMail) => m.to.includes(to.toLowerCase()) && subject.test(m.subject)
    const found = this.received.find(test)
    if (found) return Promise.resolve(found)
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no mail to ${to} matching ${subject} within ${timeoutMs} ms; got: ${this.summary()}`)), timeoutMs)
      this.waiters.push({
        test,
        resolve: (m) => {
          clearTimeout(timer)
          resolve(m)
        },
      })
    })
  }

  /** Messages received to `to`. */
  to(address: string): ReceivedMail[] {
    return this.received.filter((m) => m.to.includes(address.toLowerCase()))
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()))
  }

  private deliver(mail: ReceivedMail): void {
    this.received.push(mail)
    for (const w of this.waiters.splice(0)) {
      if (w.test(mail)) w.resolve(mail)
      else this.waiters.push(w)
    }
  }

  private summary(): string {
    return this.received.map((m) => `${m.to.join(',')}: ${m.subject}`).join('; ') || 'nothing'
  }
}

/** The link of `path` in a message's text (the one a person would click). */
export function linkIn(mail: ReceivedMail, path: string): URL {
  const found = mail.text
    .match(/https?:\/\/\S+/g)
    // A mail client leaves the punctuation that ends a sentence out of the link; so does this.
    ?.map((u) => new URL(u.replace(/[.,:;)]+$/, '')))
    .find((u) => u.pathname === path)
  if (!found) throw new Error(`no ${path} link in: ${mail.text}`)
  return found
}

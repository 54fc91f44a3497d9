import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { ConfigError } from '@fieldgate/core'
import { startServer, tempDir, waitUntil, type TestServer } from './helpers.js'
import { csrfOf, Person } from './person.js'
import { SmtpReceiver } from './support/smtp.js'
import { loopbackCertificate, opensslSkip, type LoopbackCertificate } from './support/tls.js'

/**
 * Mail over STARTTLS, over real HTTP and real SMTP: the receiver on loopback offers STARTTLS with a
 * certificate made at test time, FIELDGATE_SMTP_URL points at it and FIELDGATE_SMTP_CA_FILE names the CA
 * that vouches for it. A sign-up's message arrives over TLS; to a relay no trusted CA vouches for,
 * nothing goes in clear (neither the credentials nor the envelope) and the message waits in the outbox
 * for the next attempt, as mailer.ts retries any failed send.
 */

const skip = opensslSkip('the SMTP receiver')
const address = () => `p-${randomBytes(4).toString('hex')}@partner.example`

async function signUp(server: TestServer): Promise<string> {
  const p = new Person(server, address())
  const form = await p.get('/signup')
  const res = await p.post('/signup', { csrf: csrfOf(form), email: p.email, password: Person.password, return_to: '/developer' })
  assert.equal(res.status, 303, res.text)
  return p.email
}

/** The stored message to `email` once an attempt to send it failed (claiming it counts the attempt; failing records why). */
async function firstFailure(server: TestServer, email: string) {
  await waitUntil(async () => Boolean((await server.storage.listMail({ query: email }))[0]?.error), 10_000)
  const [stored] = await server.storage.listMail({ query: email })
  assert.ok(stored)
  return stored
}

describe('mail over STARTTLS', { skip }, () => {
  let dir: string
  /** The relay's certificate, and the CA file that vouches for it. */
  let relay: LoopbackCertificate
  /** A certificate nobody told Fieldgate to trust. */
  let stranger: LoopbackCertificate
  const receivers: SmtpReceiver[] = []
  const servers: TestServer[] = []

  /** A receiver offering STARTTLS with `tls`, and a server sending to it with FIELDGATE_SMTP_URL (and the CA file, if any). */
  async function start(tls: LoopbackCertificate, caFile: string | undefined): Promise<{ smtp: SmtpReceiver; server: TestServer }> {
    const smtp = await SmtpReceiver.start({ tls })
    receivers.push(smtp)
    const server = await startServer({ env: { FIELDGATE_SMTP_URL: smtp.smtpUrl, ...(caFile ? { FIELDGATE_SMTP_CA_FILE: caFile } : {}) } })
    servers.push(server)
    return { smtp, server }
  }

  before(() => {
    dir = tempDir('fg-mail-tls-')
    relay = loopbackCertificate(dir, 'relay')
    stranger = loopbackCertificate(dir, 'stranger')
  })
  after(async () => {
    for (const s of servers) await s.close()
    for (const r of receivers) await r.close()
    if (dir) rmSync(dir, { recursive: true, force: true })
  })

  it('a sign-up mails its link after upgrading to TLS, credentials and envelope included', async () => {
    const { smtp, server } = await start(relay, relay.certPath)
    assert.match(server.config.smtpUrl ?? '', /^smtp:\/\//, 'STARTTLS on a plain smtp:// URL, not smtps://')
    const email = await signUp(server)
    const mail = await smtp.next(email, /Confirm your email address/)
    assert.equal(mail.secure, true, 'the message came over TLS')
    assert.equal(smtp.secured, 1, 'one STARTTLS upgrade (one pooled connection)')
    assert.deepEqual(
      smtp.commands.map((c) => `${c.command} ${c.secure ? 'over TLS' : 'in clear'}`),
      ['AUTH over TLS', 'MAIL FROM over TLS'],
    )
    await waitUntil(async () => (await server.storage.listMail({ query: email }))[0]?.state === 'sent', 5000)
  })

  for (const [name, tls, caFile] of [
    ['a certificate the CA file does not vouch for', () => stranger, () => relay.certPath],
    ['no CA file: Node does not know the test CA', () => relay, () => undefined],
  ] as const) {
    it(`to a relay offering STARTTLS with ${name}, nothing is sent in clear and the message waits`, async () => {
      const { smtp, server } = await start(tls(), caFile())
      const email = await signUp(server)
      const stored = await firstFailure(server, email)
      assert.equal(stored.attempts, 1)
      assert.equal(stored.state, 'pending', 'kept for the next attempt (10 s later), not dropped')
      assert.match(stored.error ?? '', /certificate/i)
      assert.notEqual(stored.text, null, 'the text stays until it is delivered')
      assert.equal(smtp.secured, 0, 'no TLS session was made')
      assert.deepEqual(smtp.commands, [], 'no credentials and no envelope in clear')
      assert.deepEqual(smtp.received, [])
    })
  }

  it('a CA file that cannot be read or holds no certificate stops the start, naming the variable', async () => {
    const smtp = await SmtpReceiver.start({ tls: relay })
    receivers.push(smtp)
    const junk = join(dir, 'junk.pem')
    writeFileSync(junk, 'not a certificate\n')
    const refused = async (caFile: string, message: RegExp) => {
      const failed = await startServer({ env: { FIELDGATE_SMTP_URL: smtp.smtpUrl, FIELDGATE_SMTP_CA_FILE: caFile } }).then(
        async (server) => {
          await server.close()
          return undefined
        },
        (err: unknown) => err,
      )
      assert.ok(failed instanceof ConfigError, `refused: ${String(failed)}`)
      assert.match(failed.message, message)
    }
    await refused(join(dir, 'missing.pem'), /^FIELDGATE_SMTP_CA_FILE .*missing\.pem cannot be read/)
    await refused(junk, /^FIELDGATE_SMTP_CA_FILE .*junk\.pem holds no PEM certificate/)
  })
})

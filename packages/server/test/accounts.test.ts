import assert from 'node:assert/strict'
import { randomBytes, randomUUID } from 'node:crypto'
import { Writable } from 'node:stream'
import { after, before, describe, it } from 'node:test'
import { cliActor, createUser, newEmailLink, suspendAccount, unsuspendAccount, type MailMessage } from '@fieldgate/core'
import { openStorage } from '@fieldgate/storage'
import { Mailer } from '../src/mail/mailer.js'
import { bearer, request, runCli, silentLogger, startServer, tempDir, waitUntil, type TestServer } from './helpers.js'
import { csrfOf, hiddenFields, Person } from './person.js'
import { linkIn, SmtpReceiver } from './support/smtp.js'

/**
 * Accounts with real email, over real HTTP: the server sends through a real SMTP server on loopback
 * (smtp-server), and the person follows the links from the messages it received. Sign-up and reset
 * answer the same whether or not an address has an account; links work once, expire, and a reset
 * ends every session. The browser journey is in accounts-browser.test.ts.
 */

const address = () => `p-${randomBytes(4).toString('hex')}@partner.example`
const pathOf = (url: URL) => url.pathname + url.search

async function signUp(p: Person, password = Person.password) {
  const form = await p.get('/signup')
  return p.post('/signup', { csrf: csrfOf(form), email: p.email, password, return_to: '/developer' })
}

describe('accounts with real email (verified sign-up, the default)', () => {
  let server: TestServer
  let smtp: SmtpReceiver
  const log: string[] = []

  before(async () => {
    smtp = await SmtpReceiver.start()
    server = await startServer({
      overrides: { smtpUrl: smtp.smtpUrl, trustProxy: ['127.0.0.1/32'] },
      log: logTo(log),
    })
    assert.equal(server.config.signup, 'verified', 'the default policy')
  })
  after(async () => {
    await server?.close()
    await smtp?.close()
  })

  it('sign-up says "check your email", signs nobody in, and mails a link that confirms the address once', async () => {
    const p = new Person(server, address())
    const res = await signUp(p)
    assert.equal(res.status, 303, res.text)
    assert.equal(res.headers.get('location'), '/signup/sent?return_to=%2Fdeveloper')
    assert.equal(p.cookie('fg_session'), undefined, 'not signed in')
    const user = await server.storage.getUserByEmail(p.email)
    assert.equal(user?.emailVerifiedAt, null)

    const mail = await smtp.next(p.email, /Confirm your email address/)
    const link = linkIn(mail, '/verify-email')
    assert.equal(link.origin, server.origin, 'the link starts with the issuer')
    assert.match(mail.text, /within 24 hours/)

    // The page says what the link does; opening it changes nothing (no state change on GET).
    const page = await p.get(pathOf(link))
    assert.equal(page.status, 200)
    assert.match(page.text, new RegExp(`Confirm that <strong>${p.email}</strong> is your address`))
    assert.equal((await server.storage.getUser(user!.id))?.emailVerifiedAt, null, 'a GET confirms nothing')

    const confirmed = await p.post('/verify-email', hiddenFields(page.text))
    assert.equal(confirmed.status, 303)
    assert.equal(confirmed.headers.get('location'), '/login?notice=verified&return_to=%2Fdeveloper')
    assert.notEqual((await server.storage.getUser(user!.id))?.emailVerifiedAt, null)
    const signIn = await p.get(confirmed.headers.get('location')!)
    assert.match(signIn.text, /Your email address is confirmed/)

    const again = await p.post('/verify-email', hiddenFields(page.text))
    assert.equal(again.status, 400, 'a link works once')
    assert.match(again.text, /used already or has expired/)
    const events = await server.storage.listSecurityEvents({ kinds: ['email.verified'], userId: user!.id })
    assert.equal(events.length, 1)

    // Sent, the message keeps its envelope and loses its text: no link outlives its delivery in the store.
    const [stored] = await server.storage.listMail({ query: p.email })
    assert.equal(stored?.state, 'sent')
    assert.equal(stored?.text, null)
  })

  it('signing up with an address that has an account answers the same and tells only the mailbox', async () => {
    const email = address()
    await createUser(server.runtime.ctx, cliActor, { email, password: Person.password })
    const before = (await server.storage.listUsers({ limit: 500 })).length
    const res = await signUp(new Person(server, email), 'another long password')
    assert.equal(res.status, 303)
    assert.equal(res.headers.get('location'), '/signup/sent?return_to=%2Fdeveloper', 'the same answer as for a new address')
    const mail = await smtp.next(email, /You already have an account/)
    assert.match(mail.text, /\/forgot-password/)
    assert.equal((await server.storage.listUsers({ limit: 500 })).length, before, 'no second account')
    assert.ok(await new Person(server, email).signIn().then((r) => r.status === 303), 'the password is as it was')
  })

  it('a bad sign-up form is explained beside its field and changes nothing', async () => {
    const p = new Person(server, 'not-an-address')
    const res = await signUp(p)
    assert.equal(res.status, 400)
    assert.match(res.text, /id="email-error">email is not an email address/)
    const short = await signUp(new Person(server, address()), 'short')
    assert.equal(short.status, 400)
    assert.match(short.text, /id="password-error">password must be at least 10 characters/)
    assert.match(short.text, /aria-invalid="true"/)
  })

  it('an unconfirmed partner may sign in but creates no app until confirming; the link can be sent again', async () => {
    const p = new Person(server, address())
    await signUp(p)
    await smtp.next(p.email, /Confirm your email address/)
    assert.equal((await p.signIn()).status, 303)
    const home = await p.get('/developer')
    assert.match(home.text, /Confirm your email address to create apps/)
    const form = await p.get('/developer/apps/new')
    const made = await p.post('/developer/apps', { csrf: csrfOf(form), name: 'Too soon', description: 'x', environment: 'sandbox', kind: 'public' })
    assert.equal(made.status, 403, made.text)
    assert.match(made.text, /confirm your email address first/)

    // A minute has not passed since the first link: no second message yet.
    const early = await p.post('/developer/verify-email', { csrf: csrfOf(home) })
    assert.equal(early.status, 409)
    assert.match(early.text, /less than a minute ago/)
    assert.equal(smtp.to(p.email).length, 1)

    // An unconfirmed account with no link mailed lately (made straight in the store) gets one from Send again.
    const q = new Person(server, address())
    await server.storage.createUser({ ...(await server.storage.getUserByEmail(p.email))!, id: randomUUID(), email: q.email, sandboxTenantId: null }, [])
    assert.equal((await q.signIn()).status, 303)
    const qHome = await q.get('/developer')
    const resent = await q.post('/developer/verify-email', { csrf: csrfOf(qHome) })
    assert.equal(resent.status, 303)
    assert.equal(resent.headers.get('location'), '/developer?notice=resent')
    assert.match((await q.get('/developer?notice=resent')).text, /We sent a new link/)
    const link = linkIn(await smtp.next(q.email, /Confirm your email address/), '/verify-email')
    const confirmed = await q.post('/verify-email', hiddenFields((await q.get(pathOf(link))).text))
    assert.equal(confirmed.headers.get('location'), '/developer?notice=verified', 'signed in as the account: back to the portal')
    assert.match((await q.get('/developer?notice=verified')).text, /you can create apps/)
  })
  it('Forgot password answers the same for any address, mails a one-hour link, and a reset ends every other session', async () => {
    const email = address()
    await createUser(server.runtime.ctx, cliActor, { email, password: Person.password })
    const elsewhere = new Person(server, email)
    assert.equal((await elsewhere.signIn()).status, 303)
    assert.equal((await elsewhere.get('/connected-apps')).status, 200)

    const p = new Person(server, email)
    const ask = async (who: string) => {
      const form = await p.get('/forgot-password')
      return p.post('/forgot-password', { csrf: csrfOf(form), email: who })
    }
    const unknown = await ask(address())
    const known = await ask(email.toUpperCase())
    assert.equal(unknown.status, 303)
    assert.equal(known.status, 303)
    assert.equal(unknown.headers.get('location'), known.headers.get('location'), 'the same answer either way')
    assert.match((await p.get(known.headers.get('location')!)).text, /If an account has that address/)

    const mail = await smtp.next(email, /Reset your password/)
    assert.match(mail.text, /within an hour/)
    const link = linkIn(mail, '/reset-password')
    const page = await p.get(pathOf(link))
    assert.equal(page.status, 200)
    assert.match(page.text, new RegExp(`For <strong>${email}</strong>`))

    // A too-short password is explained beside its field, and the link still works after it.
    const short = await p.post('/reset-password', { ...hiddenFields(page.text), password: 'short' })
    assert.equal(short.status, 400)
    assert.match(short.text, /id="password-error">password must be at least 10 characters/)

    const password = 'a brand new passphrase'
    const reset = await p.post('/reset-password', { ...hiddenFields(page.text), password })
    assert.equal(reset.status, 303, reset.text)
    assert.equal(reset.headers.get('location'), '/connected-apps')
    assert.equal((await p.get('/connected-apps')).status, 200, 'signed in with a new session')
    assert.equal((await elsewhere.get('/connected-apps')).status, 303, 'the other session ended')
    assert.equal((await new Person(server, email).signIn()).status, 401, 'the old password no longer works')
    assert.equal((await new Person(server, email).signIn(password)).status, 303)

    const spent = await p.get(pathOf(link))
    assert.equal(spent.status, 400, 'a link works once')
    assert.match(spent.text, /used already or has expired/)
    const replay = await p.post('/reset-password', { csrf: csrfOf(await p.get('/forgot-password')), token: hiddenFields(page.text).token!, password: 'yet another passphrase' })
    assert.equal(replay.status, 400, 'posting it again sets nothing')
    const notice = await smtp.next(email, /Your password was changed/)
    assert.match(notice.text, /every other session was signed out/)
    assert.equal((await server.storage.listSecurityEvents({ kinds: ['password.reset'], query: email })).length, 1)
  })

  it('an expired or unknown link opens nothing, and says where to get a new one', async () => {
    const email = address()
    const user = await createUser(server.runtime.ctx, cliActor, { email, password: Person.password })
    const old = newEmailLink(Date.now() - 3_601_000, 'reset', { userId: user.id, email })
    await server.storage.saveEmailToken(old.record)
    const p = new Person(server, email)
    for (const token of [old.token, `fgl_${'A'.repeat(43)}`, 'nonsense', '']) {
      const page = await p.get(`/reset-password?token=${encodeURIComponent(token)}`)
      assert.equal(page.status, 400, token)
      assert.match(page.text, /This link does not work/)
      assert.match(page.text, /href="\/forgot-password"/)
    }
    const verify = await p.get(`/verify-email?token=${encodeURIComponent(old.token)}`)
    assert.equal(verify.status, 400, 'a reset link is no verify link')
  })

  it('a suspended account cannot sign in, and its open session stops working; both decisions are security events', async () => {
    const email = address()
    await createUser(server.runtime.ctx, cliActor, { email, password: Person.password })
    const open = new Person(server, email)
    await open.signIn()
    await suspendAccount(server.runtime.ctx, cliActor, { email, reason: 'Listing counterfeit apps' })
    const user = (await server.storage.getUserByEmail(email))!
    const [suspended] = await server.storage.listSecurityEvents({ kinds: ['account.suspended'], userId: user.id })
    assert.equal(suspended?.email, email)
    assert.equal(suspended?.details.reason, 'Listing counterfeit apps')
    assert.equal(suspended?.details.by, 'cli', 'who decided')
    assert.equal((await open.get('/connected-apps')).status, 303, 'signed out')
    const wrong = await new Person(server, email).signIn('a wrong password!')
    assert.equal(wrong.status, 401, 'a wrong password is answered as always: the suspension is not told to a guesser')
    const right = await new Person(server, email).signIn()
    assert.equal(right.status, 403)
    assert.match(right.text, /This account is suspended/)
    const forgot = new Person(server, email)
    await forgot.post('/forgot-password', { csrf: csrfOf(await forgot.get('/forgot-password')), email })
    await new Promise((r) => setTimeout(r, 1500))
    assert.equal(smtp.to(email).filter((m) => /Reset your password/.test(m.subject)).length, 0, 'no reset link for a suspended account')

    await unsuspendAccount(server.runtime.ctx, cliActor, { email })
    const [lifted] = await server.storage.listSecurityEvents({ kinds: ['account.unsuspended'], userId: user.id })
    assert.equal(lifted?.email, email)
    assert.equal(lifted?.details.by, 'cli')
    assert.equal((await new Person(server, email).signIn()).status, 303, 'signs in again')
  })

  it('failed sign-ins, a throttle and a sign-in from a new address are security events; a new address is mailed', async () => {
    const email = address()
    const user = await createUser(server.runtime.ctx, cliActor, { email, password: Person.password })
    const p = new Person(server, email)
    for (let i = 0; i < 3; i++) assert.equal((await p.signIn('not the password')).status, 401)
    const failed = await server.storage.listSecurityEvents({ kinds: ['sign_in.failed'], query: email })
    assert.equal(failed.length, 3, 'one event per failure')
    assert.equal(failed[0]?.address, '127.0.0.1')

    assert.equal((await p.signIn()).status, 303)
    assert.equal((await server.storage.listSecurityEvents({ kinds: ['sign_in.new_address'], userId: user.id })).length, 1, 'the first address')
    assert.equal((await new Person(server, email).signIn()).status, 303)
    assert.equal((await server.storage.listSecurityEvents({ kinds: ['sign_in.new_address'], userId: user.id })).length, 1, 'a known address again is no event')

    const traveller = new Person(server, email)
    traveller.headers['x-forwarded-for'] = '203.0.113.9'
    assert.equal((await traveller.signIn()).status, 303)
    const [newest] = await server.storage.listSecurityEvents({ kinds: ['sign_in.new_address'], userId: user.id })
    assert.equal(newest?.address, '203.0.113.9')
    const mail = await smtp.next(email, /A new sign-in to your account/)
    assert.match(mail.text, /from 203\.0\.113\.9/)

    // Throttled (another account, from another address): refused with 429, one event a minute however many refusals.
    const hammered = address()
    await createUser(server.runtime.ctx, cliActor, { email: hammered, password: Person.password })
    const guesser = new Person(server, hammered)
    guesser.headers['x-forwarded-for'] = '198.51.100.7'
    const statuses: number[] = []
    while (statuses.at(-1) !== 429 && statuses.length < 30) statuses.push((await guesser.signIn('not the password')).status)
    assert.equal(statuses.at(-1), 429, `throttled at last: ${statuses.join(' ')}`)
    assert.equal((await guesser.signIn('not the password')).status, 429)
    await waitUntil(async () => (await server.storage.listSecurityEvents({ kinds: ['sign_in.throttled'], query: hammered })).length > 0, 3_000)
    const throttled = await server.storage.listSecurityEvents({ kinds: ['sign_in.throttled'], query: hammered })
    assert.equal(throttled.length, 1, 'one event, not one per refusal')
    assert.equal(throttled[0]?.address, '198.51.100.7')
    assert.equal(throttled[0]?.details.form, 'sign-in')

    // The log names the event, never the person's address or password.
    const lines = log.filter((l) => l.includes('sign_in.failed'))
    assert.ok(lines.length >= 3)
    assert.ok(
      log.every((l) => !l.includes(email) && !l.includes('not the password')),
      'no email or password in the log',
    )
  })
})

describe('without an SMTP server: the local mailbox', () => {
  let server: TestServer
  const log: string[] = []
  const adminToken = randomBytes(32).toString('base64url')
  before(async () => {
    server = await startServer({ overrides: { adminToken }, log: logTo(log) })
  })
  after(() => server?.close())

  it('keeps the message, text and all, for the operator to read; never in the log', async () => {
    const p = new Person(server, address())
    await signUp(p)
    await waitUntil(async () => (await server.storage.listMail({ query: p.email }))[0]?.state === 'local', 5_000)
    const [mail] = await server.storage.listMail({ query: p.email })
    assert.match(mail?.text ?? '', /\/verify-email\?token=fgl_/)
    const token = /token=(fgl_[\w-]+)/.exec(mail!.text!)![1]!
    assert.ok(log.length > 0)
    assert.ok(
      log.every((l) => !l.includes(token)),
      'the link is not in the log',
    )
  })

  it('the operator reads it with `fieldgate mail list` and GET /admin/v1/mail', async () => {
    const p = new Person(server, address())
    await signUp(p)
    await waitUntil(async () => (await server.storage.listMail({ query: p.email }))[0]?.state === 'local', 5_000)
    const cli = await runCli(['mail', 'list', '--json', '--query', p.email], { FIELDGATE_DATA_DIR: server.config.dataDir })
    assert.equal(cli.code, 0, cli.stderr)
    const [listed] = cli.json as { to: string; state: string; kind: string; text: string }[]
    assert.equal(listed?.to, p.email)
    assert.equal(listed?.kind, 'verify')
    assert.match(listed?.text ?? '', /\/verify-email\?token=fgl_/)
    const text = await runCli(['mail', 'list', '--state', 'local'], { FIELDGATE_DATA_DIR: server.config.dataDir })
    assert.match(text.stdout, new RegExp(`local +${p.email}  Confirm your email address`))
    const api = await request(server.url(`/admin/v1/mail?q=${encodeURIComponent(p.email)}&state=local`), { headers: bearer(adminToken) })
    assert.equal(api.status, 200, api.text)
    assert.deepEqual(api.json, cli.json)
    const refused = await request(server.url('/admin/v1/mail'), { headers: bearer('x'.repeat(40)) })
    assert.equal(refused.status, 401)
  })
})

describe('the mailer', () => {
  it('retries a message the SMTP server did not take, with backoff, and sends it once it is up', async () => {
    const storage = openStorage({ dataDir: tempDir() })
    await storage.migrate()
    let now = Date.now()
    const smtp = await SmtpReceiver.start()
    const port = new URL(smtp.smtpUrl).port
    await smtp.close()
    const down = new Mailer(storage, silentLogger(), {
      smtpUrl: `smtp://127.0.0.1:${port}`,
      from: 'Fieldgate <no-reply@fieldgate.example>',
      pollMs: 50,
      leaseMs: 60_000,
      maxAttempts: 3,
      now: () => now,
    })
    const message: MailMessage = {
      id: 'm1',
      to: 'ann@example.com',
      subject: 'Hello',
      text: 'Hi Ann',
      kind: 'test',
      state: 'pending',
      attempts: 0,
      error: null,
      createdAt: now,
      sentAt: null,
    }
    await storage.saveMail(message)
    assert.equal(await down.tick(), 1)
    let [stored] = await storage.listMail()
    assert.equal(stored?.state, 'pending')
    assert.equal(stored?.attempts, 1)
    assert.match(stored?.error ?? '', /ECONNREFUSED|connect/i)
    assert.equal(await down.tick(), 0, 'not before the backoff')
    await down.stop()

    const up = await SmtpReceiver.start()
    const mailer = new Mailer(storage, silentLogger(), {
      smtpUrl: up.smtpUrl,
      from: 'Fieldgate <no-reply@fieldgate.example>',
      pollMs: 50,
      leaseMs: 60_000,
      maxAttempts: 3,
      now: () => now,
    })
    now += 10_001
    assert.equal(await mailer.tick(), 1)
    ;[stored] = await storage.listMail()
    assert.equal(stored?.state, 'sent')
    assert.equal(stored?.attempts, 2)
    assert.equal(stored?.text, null)
    const [got] = up.to('ann@example.com')
    assert.equal(got?.text.trim(), 'Hi Ann')
    assert.equal(got?.from, 'no-reply@fieldgate.example')
    await mailer.stop()
    await up.close()
    await storage.close()
  })
})

/** A log destination that keeps each line, for tests that read what was logged. */
function logTo(lines: string[]): Writable {
  return new Writable({
    write(chunk, _encoding, done) {
      lines.push(String(chunk))
      done()
    },
  })
}

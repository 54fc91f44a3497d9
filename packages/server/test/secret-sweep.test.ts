import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { readFileSync, readdirSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { after, before, describe, it } from 'node:test'
import { cliActor, createApp, createTenant, createUser, loadConfig } from '@fieldgate/core'
import { buildApp, createLogger, openRuntime, type Runtime } from '@fieldgate/server'
import type { FastifyInstance } from 'fastify'
import { basicAuth, bearer, freePort, postForm, postJson, request, tempDir } from './helpers.js'
import { Person, csrfOf } from './person.js'

/**
 * The security sweep: drive every kind of credential through a server whose log is captured at the
 * most verbose level, with failures mixed in, then look for each secret, token, code, verifier,
 * password and session cookie in clear text in the log and in the store's files (database and WAL).
 */
describe('no secret in clear text in the logs or the store', () => {
  let app: FastifyInstance
  let runtime: Runtime
  let dataDir: string
  let origin: string
  const log: string[] = []
  const secrets = new Map<string, string>()
  /** The local mailbox's messages, the one place docs/operations.md says an email link is kept in clear. */
  const mailed: string[] = []
  const remember = (what: string, value: string) => {
    assert.ok(value && value.length >= 16, `${what} looks like a real value`)
    secrets.set(what, value)
  }

  before(async () => {
    dataDir = tempDir('fg-sweep-')
    const port = await freePort()
    origin = `http://127.0.0.1:${port}`
    const adminToken = randomBytes(32).toString('base64url')
    remember('admin token', adminToken)
    const config = loadConfig({}, { host: '127.0.0.1', port, issuer: origin, dataDir, logLevel: 'trace', adminToken })
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        log.push(chunk.toString())
        done()
      },
    })
    const logger = createLogger('trace', sink)
    runtime = await openRuntime(config, logger, { prepare: true, follow: true })
    app = await buildApp(runtime, logger)
    await app.listen({ host: '127.0.0.1', port })
  })
  after(async () => {
    await app.close()
    await runtime.close()
    rmSync(dataDir, { recursive: true, force: true })
  })

  it('drives client credentials, the code flow with PKCE, pages, the admin API and failures', async () => {
    const url = (p: string) => origin + p
    const tenant = await createTenant(runtime.ctx, cliActor, { name: 'Sweep farm', environment: 'sandbox' })
    const priv = await createApp(runtime.ctx, cliActor, { name: 'Sweep private', kind: 'private', tenantId: tenant.id, scopes: 'api alerts:write' })
    remember('private client secret', priv.clientSecret)
    const callback = 'https://partner.example/cb'
    const pub = await createApp(runtime.ctx, cliActor, {
      name: 'Sweep public',
      kind: 'public',
      environment: 'sandbox',
      scopes: 'fields:read:all',
      redirectUris: [callback],
    })
    remember('public client secret', pub.clientSecret)
    const password = `sweep password ${randomBytes(8).toString('hex')}`
    remember('password', password)
    const email = 'sweeper@farm.example'
    await createUser(runtime.ctx, cliActor, { email, password, tenantId: tenant.id, role: 'owner' })

    // Client credentials: body, Basic, JSON, with wrong secrets in between.
    const jwt = (await postJson(url('/oauth/token'), { grant_type: 'client_credentials', client_id: priv.app.clientId, client_secret: priv.clientSecret })).json
      .access_token as string
    remember('JWT access token', jwt)
    await postForm(url('/oauth/token'), { grant_type: 'client_credentials' }, { authorization: basicAuth(priv.app.clientId, priv.clientSecret) })
    await postForm(url('/oauth/token'), { grant_type: 'client_credentials', client_id: priv.app.clientId, client_secret: `${priv.clientSecret}x` })
    await request(url(`/api/rest/v2/workorders?access_token=${jwt}`))
    await request(url('/api/rest/v2/workorders'), { headers: bearer(`${jwt}x`) })
    await postJson(url('/v1/alerts'), { title: 'Sweep' }, bearer(jwt))
    await postForm(url('/oauth/introspect'), { token: jwt }, { authorization: basicAuth(priv.app.clientId, priv.clientSecret) })

    // The code flow with PKCE; the code travels in a query string once, as fieldmargin allows.
    const person = new Person({ url }, email)
    const wrongLogin = await person.get('/login')
    await person.post('/login', { csrf: csrfOf(wrongLogin), email, password: `${password}!` })
    assert.equal((await person.signIn(password)).status, 303)
    const verifier = randomBytes(32).toString('base64url')
    remember('PKCE verifier', verifier)
    const challenge = createHash('sha256').update(verifier).digest('base64url')
    const location = await person.decide(
      { client_id: pub.app.clientId, scope: 'fields:read:all', state: 'sweep', code_challenge: challenge, code_challenge_method: 'S256' },
      'allow',
    )
    const code = location.searchParams.get('code')!
    remember('authorization code', code)
    const exchanged = await request(
      url(`/v1/token.exchange?${new URLSearchParams({ code, client_id: pub.app.clientId, client_secret: pub.clientSecret, code_verifier: verifier })}`),
      { method: 'POST' },
    )
    assert.equal(exchanged.status, 200, exchanged.text)
    const opaque = exchanged.json.access_token as string
    remember('opaque access token', opaque)
    await request(url('/v1/permissions'), { headers: bearer(opaque) })
    await postForm(url('/v1/token.exchange'), { code, client_id: pub.app.clientId, client_secret: pub.clientSecret, code_verifier: verifier })
    const session = person.cookie('fg_session')
    remember('session cookie', session!)

    // The admin API, right and wrong, and a rotation whose new secret is shown once.
    const rotated = await request(url(`/admin/v1/apps/${priv.app.clientId}/rotate-secret`), {
      method: 'POST',
      headers: { authorization: `Bearer ${secrets.get('admin token')}`, 'content-type': 'application/json' },
      body: '{"grace":60}',
    })
    assert.equal(rotated.status, 200, rotated.text)
    remember('rotated client secret', rotated.json.client_secret)
    await request(url('/admin/v1/tenants'), { headers: { authorization: `Bearer ${secrets.get('admin token')}x` } })
    await postJson(url('/v1/token.revoke'), { access_token: opaque })

    // An email link (a sign-up's confirmation): without SMTP the local mailbox keeps the message, link
    // and all (docs/operations.md), and nothing else may hold it; email_tokens keeps its hash.
    const signer = new Person({ url }, `sweep-${randomBytes(4).toString('hex')}@partner.example`)
    const signup = await signer.get('/signup')
    assert.equal((await signer.post('/signup', { csrf: csrfOf(signup), email: signer.email, password: 'a sweep passphrase', return_to: '/developer' })).status, 303)
    const [mail] = await runtime.storage.listMail({ query: signer.email, limit: 1 })
    const link = /fgl_[A-Za-z0-9_-]{43}/.exec(mail?.text ?? '')?.[0]
    assert.ok(link && mail?.text, 'the confirmation link is in the local mailbox')
    remember('email link token', link)
    mailed.push(mail.text)
    assert.equal((await runtime.storage.getEmailToken(createHash('sha256').update(link).digest('base64url'), Date.now()))?.purpose, 'verify', 'stored under its hash')
    // Wait for the dispatcher and the change feed to have done their part too.
    await new Promise((r) => setTimeout(r, 600))
  })

  it('finds none of them in the log', () => {
    const text = log.join('')
    assert.ok(text.length > 0, 'something was logged at trace level')
    for (const [what, value] of secrets) assert.equal(text.includes(value), false, `${what} is in the log`)
  })

  it('finds none of them in the database files', async () => {
    // A checkpoint is not needed: the WAL is read too.
    const files = readdirSync(dataDir).filter((f) => f.startsWith('fieldgate.db'))
    assert.ok(files.includes('fieldgate.db'))
    const stored = files.map((f) => readFileSync(join(dataDir, f)).toString('latin1')).join('\n')
    // Every copy of a local mailbox message (the table and the WAL's pages) is left out, and only those.
    const bytes = mailed.reduce((rest, text) => rest.split(text).join(''), stored)
    assert.ok(bytes.length < stored.length, 'the mailbox message was found in the store')
    for (const [what, value] of secrets) assert.equal(bytes.includes(value), false, `${what} is stored in clear text`)
    assert.ok(bytes.includes(createHash('sha256').update(secrets.get('email link token')!).digest('base64url')), 'the email link is stored as its SHA-256')
    // And the hashes are there, so the search looks at the right bytes.
    const hash = createHash('sha256').update(secrets.get('opaque access token')!).digest('base64url')
    assert.ok(bytes.includes(hash), 'the opaque token is stored as its SHA-256')
  })
})

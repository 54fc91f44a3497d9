/**
 * OAuth Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document-01): documents served
 * by a real HTTP server on loopback (allowed only because these servers allow private targets, as
 * FIELDGATE_WEBHOOK_ALLOW_PRIVATE_TARGETS=1 does), fetched at authorize, cached for their max-age, refused
 * when they are not what §4 asks, and never fetched from a private address when that is not allowed.
 */
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { after, before, describe, it } from 'node:test'
import { cliActor, clientIdUrl, createTenant, createUser, defaults, tokenEndpoint, type App } from '@fieldgate/core'
import { bearer, eachEngine, injectHttp, postForm, request, startServer, type Engine, type Res, type TestServer } from './helpers.js'
import { Person } from './person.js'

interface Served {
  status?: number
  headers?: Record<string, string>
  body: string
}

/** A client's website: serves what each path is set to, and counts the requests per path. */
class DocumentServer {
  readonly served = new Map<string, Served>()
  readonly hits = new Map<string, number>()
  private server: http.Server | undefined
  origin = ''

  async start(): Promise<void> {
    this.server = http.createServer((req, res) => {
      const path = req.url ?? '/'
      this.hits.set(path, (this.hits.get(path) ?? 0) + 1)
      const doc = this.served.get(path)
      if (!doc) return void res.writeHead(404).end()
      res.writeHead(doc.status ?? 200, { 'content-type': 'application/json', ...doc.headers }).end(doc.body)
    })
    await new Promise<void>((ok) => this.server!.listen(0, '127.0.0.1', ok))
    this.origin = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`
  }

  /** A fresh path serving the document `make` builds for its URL; returns the URL (the client_id). */
  serve(make: (url: string) => unknown, o: Omit<Served, 'body'> & { raw?: string } = {}): string {
    const path = `/clients/${randomBytes(4).toString('hex')}.json`
    const url = this.origin + path
    this.served.set(path, { ...o, body: o.raw ?? JSON.stringify(make(url)) })
    return url
  }

  hitsOf(url: string): number {
    return this.hits.get(new URL(url).pathname) ?? 0
  }

  stop(): Promise<void> {
    return new Promise((ok) => this.server?.close(() => ok()) ?? ok())
  }
}

const CALLBACK = 'http://127.0.0.1:53700/callback'
const document = (url: string, extra: Record<string, unknown> = {}) => ({
  client_id: url,
  client_name: 'Doc Agent',
  redirect_uris: [CALLBACK],
  token_endpoint_auth_method: 'none',
  grant_types: ['authorization_code', 'refresh_token'],
  scope: 'fields:read:all maps:write some:scope:elsewhere',
  ...extra,
})

const pkce = () => {
  const verifier = randomBytes(32).toString('base64url')
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') }
}

const authorizeQuery = (clientId: string, challenge = pkce().challenge) =>
  new URLSearchParams({
    response_type: 'code',
    client_id: clientId,
    redirect_uri: CALLBACK,
    scope: 'fields:read:all',
    state: 's',
    code_challenge: challenge,
    code_challenge_method: 'S256',
  })

const privateAllowed = { webhooks: { allowPrivateTargets: true } }

describe('client metadata documents', () => {
  const docs = new DocumentServer()
  before(() => docs.start())
  after(() => docs.stop())

  /** Authorize before anyone signed in: a client that checks out is sent to sign in (303); one that does not gets a page. */
  const authorize = (server: TestServer, clientId: string): Promise<Res> => injectHttp(() => server).request(server.url(`/oauth/authorize?${authorizeQuery(clientId)}`))
  const appOf = async (server: TestServer, clientId: string): Promise<App> => (await server.storage.getAppByClientId(clientId)) ?? assert.fail(`no app ${clientId}`)

  eachEngine('fetches the document once, keeps the client for its max-age, and fetches it again once stale', async (engine: Engine) => {
    const server = await startServer({ engine, listen: false, overrides: privateAllowed })
    try {
      const url = docs.serve((u) => document(u, { logo_uri: 'https://agent.example/logo.png', contacts: ['dev@agent.example'] }), {
        headers: { 'cache-control': 'public, max-age=600' },
      })
      const started = Date.now()
      const first = await authorize(server, url)
      assert.equal(first.status, 303, first.text)
      assert.match(first.headers.get('location') ?? '', /^\/login/)
      assert.equal(docs.hitsOf(url), 1)
      const app = await appOf(server, url)
      assert.equal(app.registration, 'metadata_document')
      assert.equal(app.publicClient, true)
      assert.equal(app.refreshTokens, true)
      assert.equal(app.kind, 'public')
      assert.equal(app.environment, 'live')
      assert.equal(app.approvedAt, null)
      assert.equal(app.name, 'Doc Agent')
      assert.deepEqual(app.redirectUris, [CALLBACK])
      assert.deepEqual(app.scopes, ['fields:read:all', 'maps:write'], "scopes this server does not know are the document's other servers'")
      assert.equal(app.logoUrl, 'https://agent.example/logo.png')
      assert.equal(app.contactEmail, 'dev@agent.example')
      const expiresIn = (app.metadataExpiresAt ?? 0) - started
      assert.ok(expiresIn >= 599_000 && expiresIn <= 605_000, `cached for ${expiresIn} ms`)
      assert.equal((await server.storage.listAudit({ appIds: [app.id], limit: 5 }))[0]?.action, 'client.registered')

      // Within max-age: no fetch, on this process or from the store.
      for (let i = 0; i < 3; i++) assert.equal((await authorize(server, url)).status, 303)
      server.runtime.ctx.cache.apply({ kind: 'app', ref: app.id })
      assert.equal((await authorize(server, url)).status, 303)
      assert.equal(docs.hitsOf(url), 1, 'not fetched again within max-age')

      // Stale: fetched again, and what changed is stored (and audited); what is not in the document stays.
      docs.served.set(new URL(url).pathname, { body: JSON.stringify(document(url, { client_name: 'Doc Agent 2' })) })
      await server.storage.updateApp({ ...app, metadataExpiresAt: Date.now() - 1, suspendedReason: 'kept' })
      server.runtime.ctx.cache.apply({ kind: 'app', ref: app.id })
      assert.equal((await authorize(server, url)).status, 303)
      assert.equal(docs.hitsOf(url), 2)
      const updated = await appOf(server, url)
      assert.equal(updated.id, app.id)
      assert.equal(updated.name, 'Doc Agent 2')
      assert.equal(updated.logoUrl, null)
      assert.equal(updated.suspendedReason, 'kept')
      assert.ok((updated.metadataExpiresAt ?? 0) - Date.now() > 3_500_000, 'no Cache-Control: an hour')
      const [changed] = await server.storage.listAudit({ appIds: [app.id], limit: 5 })
      assert.equal(changed?.action, 'client.metadata_changed')
      assert.deepEqual(changed?.details.changed, ['name', 'logoUrl', 'contactEmail'])
    } finally {
      await server.close()
    }
  })

  it('holds max-age between 5 minutes and a day; no-store counts as the shortest', async () => {
    const server = await startServer({ listen: false, overrides: privateAllowed })
    try {
      for (const [header, seconds] of [
        ['max-age=10', 300],
        ['max-age=999999', 86_400],
        ['no-store', 300],
        ['max-age=3000, must-revalidate', 3000],
      ] as const) {
        const url = docs.serve((u) => document(u), { headers: { 'cache-control': header } })
        const started = Date.now()
        assert.equal((await authorize(server, url)).status, 303)
        const held = ((await appOf(server, url)).metadataExpiresAt ?? 0) - started
        assert.ok(held >= seconds * 1000 - 1000 && held <= seconds * 1000 + 5000, `${header}: held ${held} ms`)
      }
    } finally {
      await server.close()
    }
  })

  it('refuses a document that is not what §4 asks for, with a page that says why; nothing is stored or cached', async () => {
    const server = await startServer({ listen: false, overrides: privateAllowed })
    try {
      const refused: Array<[string, string, RegExp]> = [
        ['client_id mismatch', docs.serve((u) => document(`${u}x`)), /another client_id/],
        ['client_id of another host', docs.serve((u) => document(u.replace('127.0.0.1', 'localhost'))), /another client_id/],
        ['oversized (over 5 KB)', docs.serve((u) => document(u, { client_name: 'A', padding: 'x'.repeat(6000) })), /larger than 5120 bytes/],
        ['not JSON', docs.serve(() => ({}), { raw: '<html>hello</html>' }), /not JSON/],
        ['a JSON list', docs.serve(() => ({}), { raw: '[]' }), /not a JSON object/],
        ['served as text/html', docs.serve((u) => document(u), { headers: { 'content-type': 'text/html' } }), /not served as JSON/],
        ['a 404', docs.serve((u) => document(u), { status: 404 }), /answered 404/],
        ['a redirect', docs.serve((u) => document(u), { status: 302, headers: { location: '/elsewhere.json' } }), /redirects are not followed/],
        ['a client secret', docs.serve((u) => document(u, { client_secret: 'shh' })), /client secret/],
        ['client_secret_basic', docs.serve((u) => document(u, { token_endpoint_auth_method: 'client_secret_basic' })), /must be none/],
        ['private_key_jwt', docs.serve((u) => document(u, { token_endpoint_auth_method: 'private_key_jwt' })), /private_key_jwt is not supported/],
        ['no redirect_uris', docs.serve((u) => document(u, { redirect_uris: undefined })), /redirect_uris is required/],
        ['a javascript: redirect', docs.serve((u) => document(u, { redirect_uris: ['javascript:alert(1)'] })), /redirect URI/],
        ['redirect_uris not a list', docs.serve((u) => document(u, { redirect_uris: CALLBACK })), /not a list of strings/],
        ['client_credentials', docs.serve((u) => document(u, { grant_types: ['client_credentials'] })), /client_credentials/],
      ]
      docs.served.set('/elsewhere.json', { body: '{}' })
      for (const [what, url, why] of refused) {
        const res = await authorize(server, url)
        assert.equal(res.status, 400, `${what}: ${res.status}`)
        assert.match(res.text, /could not be verified/, what)
        assert.match(res.text, why, what)
        assert.equal(await server.storage.getAppByClientId(url), undefined, `${what}: nothing stored`)
        assert.equal((await authorize(server, url)).status, 400)
        assert.equal(docs.hitsOf(url), 2, `${what}: an error is never cached`)
      }
      assert.equal(docs.hits.get('/elsewhere.json'), undefined, 'the redirect was not followed')
    } finally {
      await server.close()
    }
  })

  it('never fetches from a private address unless private targets are allowed, nor plain http', async () => {
    const server = await startServer({ listen: false })
    try {
      const path = new URL(docs.serve((u) => document(u))).pathname
      const port = new URL(docs.origin).port
      for (const url of [`https://127.0.0.1:${port}${path}`, `https://localhost:${port}${path}`, `https://[::1]:${port}${path}`, `https://10.0.0.1:${port}${path}`]) {
        const res = await authorize(server, url)
        assert.equal(res.status, 400, url)
        assert.match(res.text, /loopback, private or reserved address/, url)
        assert.equal(await server.storage.getAppByClientId(url), undefined)
      }
      // http is a client_id URL only where private targets are allowed: here it is just an unknown client_id.
      const plain = await authorize(server, `${docs.origin}${path}`)
      assert.equal(plain.status, 400)
      assert.match(plain.text, /not known to this server/)
      assert.equal(docs.hits.get(path), undefined, 'nothing was fetched')
    } finally {
      await server.close()
    }
  })

  it('with FIELDGATE_CLIENT_METADATA_DOCUMENTS off, a client_id URL is unknown, and a client it made before too', async () => {
    const on = await startServer({ listen: false, overrides: privateAllowed })
    const off = await startServer({ listen: false, dataDir: on.dataDir, overrides: { ...privateAllowed, registration: { metadataDocuments: false } } })
    try {
      const url = docs.serve((u) => document(u))
      assert.equal((await authorize(on, url)).status, 303)
      const res = await authorize(off, url)
      assert.equal(res.status, 400)
      assert.match(res.text, /not known to this server/)
      const fresh = docs.serve((u) => document(u))
      assert.equal((await authorize(off, fresh)).status, 400)
      assert.equal(docs.hitsOf(fresh), 0)
    } finally {
      await off.close()
      await on.close()
    }
  })

  it('takes only a normalised https URL with a path as a client_id URL (§3)', () => {
    const cfg = { webhooks: { ...defaults.webhooks, allowPrivateTargets: false } }
    const yes = ['https://agent.example/client.json', 'https://agent.example:8443/a/b?v=1', 'https://agent.example/']
    const no = [
      'https://agent.example',
      'https://user:pw@agent.example/c',
      'https://agent.example/c#f',
      'https://agent.example/a/../c',
      'https://agent.example/./c',
      'https://Agent.Example/c',
      'https://agent.example:443/c',
      'http://agent.example/c',
      'http://127.0.0.1:8000/c',
      'ftp://agent.example/c',
      '0123456789abcdef',
    ]
    for (const id of yes) assert.ok(clientIdUrl(cfg, id), id)
    for (const id of no) assert.equal(clientIdUrl(cfg, id), undefined, id)
    assert.ok(clientIdUrl({ webhooks: { ...cfg.webhooks, allowPrivateTargets: true } }, 'http://127.0.0.1:8000/c'), 'loopback http where private targets are allowed')
    assert.equal(clientIdUrl({ webhooks: { ...cfg.webhooks, allowPrivateTargets: true } }, 'http://agent.example/c'), undefined)
  })

  describe('a document client through consent and the token endpoint', () => {
    let server: TestServer
    before(async () => {
      server = await startServer({ overrides: privateAllowed })
    })
    after(() => server.close())

    it('consent shows its host and that it is unreviewed; the code, then a refresh, with client_id alone and no refetch', async () => {
      const ctx = server.runtime.ctx
      const tenant = await createTenant(ctx, cliActor, { name: 'West Farm', environment: 'live' })
      const email = `owner-${randomBytes(4).toString('hex')}@farm.example`
      await createUser(ctx, cliActor, { email, password: Person.password, tenantId: tenant.id, role: 'owner' })
      const person = new Person(server, email)
      assert.equal((await person.signIn()).status, 303)
      const url = docs.serve((u) => document(u), { headers: { 'cache-control': 'max-age=300' } })

      const { verifier, challenge } = pkce()
      const consent = await person.get(`/oauth/authorize?${authorizeQuery(url, challenge)}`)
      assert.equal(consent.status, 200, consent.text)
      assert.match(consent.text, /Fieldgate has not reviewed Doc Agent\./)
      assert.match(consent.text, new RegExp(`from 127\\.0\\.0\\.1:${new URL(docs.origin).port}`))
      assert.match(consent.text, /Sends you back to <strong>127\.0\.0\.1:53700<\/strong>/)
      const location = await person.decide(Object.fromEntries(authorizeQuery(url, challenge)), 'allow')
      const code = location.searchParams.get('code') ?? assert.fail(`no code in ${location}`)
      const hits = docs.hitsOf(url)

      // The token endpoint uses the stored copy, even stale: the code was issued under consent to it.
      const app = await appOf(server, url)
      await server.storage.updateApp({ ...app, metadataExpiresAt: Date.now() - 1 })
      ctx.cache.apply({ kind: 'app', ref: app.id })
      const params = { grant_type: 'authorization_code', code, client_id: url, redirect_uri: CALLBACK, code_verifier: verifier }
      // /oauth/token's body does not name the refresh token yet (routes/token.ts, another branch): the
      // exchange goes through the token endpoint's core, the refresh through HTTP.
      const exchanged = await tokenEndpoint(ctx, { params, authorization: undefined })
      assert.equal((await request(server.url('/v1/permissions'), { headers: bearer(exchanged.accessToken) })).status, 200)
      const refreshed = await postForm(server.url('/oauth/token'), { grant_type: 'refresh_token', refresh_token: exchanged.refreshToken!, client_id: url })
      assert.equal(refreshed.status, 200, refreshed.text)
      assert.equal(refreshed.json.token_type, 'Bearer')
      assert.equal(docs.hitsOf(url), hits, 'the token endpoint fetched nothing')
      // A confidential client's credentials for it are refused: it has no secret.
      const withSecret = await postForm(server.url('/oauth/token'), { grant_type: 'refresh_token', refresh_token: 'x', client_id: url, client_secret: 'guess' })
      assert.equal(withSecret.status, 401)
    })
  })
})

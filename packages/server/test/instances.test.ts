/**
 * Several stateless instances on one PostgreSQL behave as one: revocation, uninstall and key rotation
 * reach every instance within a second, a code is single-use across instances, and the Data API outbox
 * is shared without a double send. Each instance polls its change feed only once a minute here, so
 * anything seen sooner came through LISTEN/NOTIFY.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { after, before, describe, it } from 'node:test'
import { cliActor, personActor, createApp, createTenant, createUser, eventIdHeader, installApp, revokeGrant, rotateSigningKeys } from '@fieldgate/core'
import { bearer, databaseUrl, decodeJwt, getToken, postForm, postJson, privateApp, request, startServer, waitUntil, type TestServer } from './helpers.js'
import { Person } from './person.js'

const WORKORDERS = '/api/rest/v2/workorders'
const slowPoll = { changePollMs: 60_000 }
// A generous timeout: a receiver in this busy test process answering late would see a (legitimate) retry.
const webhooks = { allowPrivateTargets: true, pollMs: 50, timeoutMs: 5000, leaseMs: 10_000, baseDelayMs: 100, maxDelayMs: 400, maxAgeSeconds: 86400, batch: 20 }

/** Two instances on one schema, with one master key and one issuer, as a deployment has. */
async function twoInstances(): Promise<[TestServer, TestServer]> {
  const masterKey = randomBytes(32).toString('hex')
  const a = await startServer({ engine: 'postgres', overrides: { masterKey, ...slowPoll, webhooks } })
  const b = await startServer({ engine: 'postgres', schema: a.schema!, overrides: { masterKey, issuer: a.issuer, ...slowPoll, webhooks } })
  return [a, b]
}

/** A farm's owner, signed in at `server`, and a public app that connects through consent. */
async function signedInFarmer(server: TestServer) {
  const tenant = await createTenant(server.runtime.ctx, cliActor, { name: `Farm ${randomBytes(3).toString('hex')}`, environment: 'sandbox' })
  const email = `owner-${randomBytes(4).toString('hex')}@farm.example`
  await createUser(server.runtime.ctx, cliActor, { email, password: Person.password, tenantId: tenant.id, role: 'owner' })
  const app = await createApp(server.runtime.ctx, cliActor, {
    name: 'Field Mapper',
    kind: 'public',
    environment: 'sandbox',
    scopes: 'fields:read:all',
    redirectUris: ['https://partner.example/callback'],
  })
  const person = new Person(server, email)
  assert.equal((await person.signIn()).status, 303)
  return { app, person }
}

const status = async (server: TestServer, token: string) => (await request(server.url(WORKORDERS), { headers: bearer(token) })).status

describe('two instances on one PostgreSQL', { skip: databaseUrl ? false : 'DATABASE_URL is not set: several instances need PostgreSQL' }, () => {
  let a: TestServer
  let b: TestServer
  before(async () => {
    ;[a, b] = await twoInstances()
  })
  after(async () => {
    await b?.close()
    await a?.close()
  })

  it('a grant revoked through one instance stops its JWT at the other within 1 s', { timeout: 30_000 }, async (t) => {
    const seen: number[] = []
    for (let round = 0; round < 5; round++) {
      const f = await privateApp(a.storage)
      const token = await getToken(a, f)
      assert.equal(await status(b, token), 200, 'the peer accepts it and now caches the grant')
      await revokeGrant(a.runtime.ctx, cliActor, { grantId: f.grant.id })
      const ms = await waitUntil(async () => (await status(b, token)) === 401, 1000, 5)
      assert.ok(ms < 1000, `refused after ${ms} ms`)
      seen.push(Math.round(ms))
    }
    t.diagnostic(`revocation seen by the other instance after ${seen.join(', ')} ms`)
  })

  it("an uninstall through one instance ends the installed app's tokens on the other within 1 s", { timeout: 30_000 }, async () => {
    const tenant = await createTenant(a.runtime.ctx, cliActor, { name: 'Installed', environment: 'sandbox' })
    const user = await createUser(a.runtime.ctx, cliActor, {
      email: `owner-${randomBytes(4).toString('hex')}@example.com`,
      password: Person.password,
      tenantId: tenant.id,
      role: 'owner',
    })
    const created = await createApp(a.runtime.ctx, cliActor, {
      name: 'Planner',
      kind: 'public',
      environment: 'sandbox',
      installUrl: 'https://partner.example/install',
      listed: true,
      scopes: 'api',
    })
    const { grant } = await installApp(a.runtime.ctx, personActor(user, '127.0.0.1'), { clientId: created.app.clientId, tenantId: tenant.id, shownScopes: created.app.scopes })
    const token = await getToken(b, { clientId: created.app.clientId, clientSecret: created.clientSecret }, { target_id: tenant.id })
    assert.equal(await status(a, token), 200)
    await revokeGrant(b.runtime.ctx, personActor(user, '127.0.0.1'), { grantId: grant.id })
    const ms = await waitUntil(async () => (await status(a, token)) === 401, 1000, 5)
    assert.ok(ms < 1000, `refused after ${ms} ms`)
  })

  it('a key rotation through one instance is published and used by the other within 1 s', { timeout: 30_000 }, async () => {
    const f = await privateApp(a.storage)
    const before = decodeJwt(await getToken(b, f)).header.kid
    const keys = await rotateSigningKeys(a.runtime.ctx, cliActor, { alg: a.config.signingAlg, defaultMaxTtl: 28_000 })
    const active = keys.find((k) => k.state === 'active')!.kid
    assert.notEqual(active, before)
    const ms = await waitUntil(async () => decodeJwt(await getToken(b, f)).header.kid === active, 1000, 5)
    assert.ok(ms < 1000, `signing with the new key after ${ms} ms`)
    const jwks = (await request(b.url('/.well-known/jwks.json'))).json as { keys: { kid: string }[] }
    assert.ok(
      jwks.keys.some((k) => k.kid === before),
      'the old key still verifies its tokens',
    )
    assert.equal(await status(a, await getToken(b, f)), 200, 'a token from the new key is accepted by the instance that rotated')
  })

  it('a code redeemed at both instances at once gives exactly one token', { timeout: 30_000 }, async () => {
    const { app, person } = await signedInFarmer(a)
    for (let round = 0; round < 3; round++) {
      const location = await person.decide({ client_id: app.app.clientId, scope: 'fields:read:all', state: 's' }, 'allow')
      const code = location.searchParams.get('code')!
      const form = { code, client_id: app.app.clientId, client_secret: app.clientSecret }
      const results = await Promise.all(Array.from({ length: 20 }, (_, i) => postForm((i % 2 ? a : b).url('/v1/token.exchange'), form)))
      const statuses = results.map((r) => r.status)
      assert.equal(statuses.filter((s) => s === 200).length, 1, statuses.join(' '))
      for (const r of results) if (r.status !== 200) assert.equal(r.json.error, 'invalid_grant')
    }
  })

  it('an opaque token revoked through one instance is refused by the other within 1 s, though the other caches it', { timeout: 30_000 }, async (t) => {
    const { app, person } = await signedInFarmer(a)
    const credentials = { client_id: app.app.clientId, client_secret: app.clientSecret }
    const connect = async (): Promise<string> => {
      const location = await person.decide({ client_id: app.app.clientId, scope: 'fields:read:all', state: 's' }, 'allow')
      const exchanged = await postForm(a.url('/v1/token.exchange'), { ...credentials, code: location.searchParams.get('code')! })
      assert.equal(exchanged.status, 200)
      return String(exchanged.json.access_token)
    }
    const seen: number[] = []
    // RFC 7009 revocation of one token, then fieldmargin's token.revoke, which ends the grant.
    for (const revoke of [
      (token: string) => postForm(a.url('/oauth/revoke'), { ...credentials, token }),
      (token: string) => postJson(a.url('/v1/token.revoke'), { access_token: token }),
    ]) {
      const token = await connect()
      for (let i = 0; i < 3; i++) assert.equal((await request(b.url('/v1/permissions'), { headers: bearer(token) })).status, 200, 'the peer accepts it, and caches it')
      assert.equal((await revoke(token)).status, 200)
      assert.equal((await request(a.url('/v1/permissions'), { headers: bearer(token) })).status, 401, 'the instance that revoked refuses it at once')
      const ms = await waitUntil(async () => (await request(b.url('/v1/permissions'), { headers: bearer(token) })).status === 401, 1000, 5)
      assert.ok(ms < 1000, `refused after ${ms} ms`)
      seen.push(Math.round(ms))
    }
    t.diagnostic(`opaque-token revocation seen by the other instance after ${seen.join(', ')} ms`)
  })

  it('both dispatchers share the Data API outbox: every event arrives, none sent by both', { timeout: 60_000 }, async () => {
    const receiver = await listenReceiver()
    try {
      const tenant = await createTenant(a.runtime.ctx, cliActor, { name: 'Hooked', environment: 'sandbox' })
      const created = await createApp(a.runtime.ctx, cliActor, {
        name: 'Hooked',
        kind: 'private',
        tenantId: tenant.id,
        scopes: 'alerts:write',
        dataApiUrl: receiver.url,
      })
      const token = await getToken(a, { clientId: created.app.clientId, clientSecret: created.clientSecret })
      const writes = await Promise.all(Array.from({ length: 200 }, (_, i) => postJson((i % 2 ? a : b).url('/v1/alerts'), { title: `alert ${i}`, severity: 'info' }, bearer(token))))
      assert.deepEqual([...new Set(writes.map((w) => w.status))], [201])
      await waitUntil(async () => receiver.ids.length >= 200, 30_000, 50)
      await new Promise((r) => setTimeout(r, 500))
      assert.equal(new Set(receiver.ids).size, 200, 'every record.created event arrived')
      // Two instances never send one event at once: an id arrives again only as the retry of an
      // attempt the store recorded as failed (an answer later than the timeout).
      const counts = new Map<string, number>()
      for (const id of receiver.ids) counts.set(id, (counts.get(id) ?? 0) + 1)
      for (const [id, n] of counts) {
        if (n > 1) assert.ok((await a.storage.listAttempts(id)).length >= n, `event ${id} arrived ${n} times, more than it was attempted`)
      }
    } finally {
      await receiver.close()
    }
  })
})

/** A Data API receiver on loopback that notes the ids of record.created events. */
async function listenReceiver(): Promise<{ url: string; ids: string[]; close(): Promise<void> }> {
  const ids: string[] = []
  const server: Server = createServer((req, res) => {
    let body = ''
    req.setEncoding('utf8').on('data', (c: string) => {
      body += c
    })
    req.on('end', () => {
      if ((JSON.parse(body) as { type: string }).type === 'record.created') ids.push(String(req.headers[eventIdHeader]))
      res.writeHead(200).end()
    })
  })
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/data-api`,
    ids,
    close: () =>
      new Promise((ok) => {
        server.closeAllConnections()
        server.close(() => ok())
      }),
  }
}

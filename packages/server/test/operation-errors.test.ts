import assert from 'node:assert/strict'
import { randomBytes, randomUUID } from 'node:crypto'
import { after, before, describe, it } from 'node:test'
import { cliActor, OperationError, createTenant, createUser, deleteApp, revokeGrant } from '@fieldgate/core'
import { databaseUrl, startServer, type Engine, type TestServer } from './helpers.js'
import { Person, csrfOf } from './person.js'

/**
 * Operations refuse with a stable code, never a message to match: the admin API answers 404 not_found,
 * 409 conflict, 400 invalid_request from it, on both engines, through app.inject (no port is opened).
 */
function operationErrors(engine: Engine): void {
  const adminToken = randomBytes(32).toString('base64url')
  let server: TestServer
  before(async () => {
    server = await startServer({ engine, listen: false, overrides: { adminToken } })
  })
  after(() => server.close())

  const admin = async (method: 'GET' | 'POST' | 'DELETE', url: string, payload?: object) => {
    const res = await server.app.inject({ method, url, headers: { authorization: `Bearer ${adminToken}` }, ...(payload ? { payload } : {}) })
    return { status: res.statusCode, body: res.body ? JSON.parse(res.body) : undefined }
  }

  it('answers 404 not_found for an app or grant that does not exist', async () => {
    const deleted = await admin('DELETE', '/admin/v1/apps/fg_unknownclient')
    assert.equal(deleted.status, 404)
    assert.equal(deleted.body.error, 'not_found')
    assert.match(deleted.body.error_description, /no app with client_id fg_unknownclient/)
    assert.equal((await admin('POST', '/admin/v1/apps/fg_unknownclient/rotate-secret', { grace: 0 })).status, 404)
    assert.equal((await admin('POST', `/admin/v1/grants/${randomUUID()}/revoke`, {})).status, 404)
  })

  it('answers 409 conflict for a user whose email is taken, and changes nothing', async () => {
    const email = `taken-${randomBytes(4).toString('hex')}@farm.example`
    assert.equal((await admin('POST', '/admin/v1/users', { email, password: 'long enough password' })).status, 201)
    const again = await admin('POST', '/admin/v1/users', { email, password: 'another long password' })
    assert.equal(again.status, 409)
    assert.equal(again.body.error, 'conflict')
    assert.equal((await server.storage.getUserByEmail(email))?.email, email)
  })

  it('answers 400 invalid_request for input the operation refuses', async () => {
    const res = await admin('POST', '/admin/v1/apps', { name: 'No tenant', kind: 'private' })
    assert.equal(res.status, 400)
    assert.equal(res.body.error, 'invalid_request')
    assert.match(res.body.error_description, /private app needs/)
  })

  it('throws OperationError with the code from core itself', async () => {
    const codeOf = (p: Promise<unknown>) =>
      p.then(
        () => 'none',
        (err: unknown) => (err instanceof OperationError ? err.code : 'other'),
      )
    assert.equal(await codeOf(deleteApp(server.runtime.ctx, cliActor, { clientId: 'fg_nosuchapp' })), 'not_found')
    assert.equal(await codeOf(revokeGrant(server.runtime.ctx, cliActor, { grantId: randomUUID() })), 'not_found')
    assert.equal(await codeOf(createTenant(server.runtime.ctx, cliActor, { name: 'x', environment: 'moon' })), 'invalid')
    const email = `dup-${randomBytes(4).toString('hex')}@farm.example`
    await createUser(server.runtime.ctx, cliActor, { email, password: 'long enough password' })
    assert.equal(await codeOf(createUser(server.runtime.ctx, cliActor, { email, password: 'long enough password' })), 'conflict')
  })
}

// Open sign-up tells a taken email by the operation's code, not by matching its message (real port: a Person browses).
// Under `verified`, the default, it tells nobody but the mailbox (accounts.test.ts).
describe('open sign-up with an email that has an account', () => {
  let server: TestServer
  before(async () => {
    server = await startServer({ overrides: { signup: 'open' } })
  })
  after(() => server.close())

  it('shows the sign-in hint and makes no second account', async () => {
    const signUp = async (p: Person) => p.post('/signup', { csrf: csrfOf(await p.get('/signup')), email: p.email, password: Person.password })
    const email = `twice-${randomBytes(4).toString('hex')}@farm.example`
    assert.equal((await signUp(new Person(server, email))).status, 303)
    const first = await server.storage.getUserByEmail(email)
    const again = await signUp(new Person(server, email))
    assert.equal(again.status, 400)
    assert.match(again.text, /An account with that email exists: sign in instead\./)
    assert.equal((await server.storage.getUserByEmail(email))?.id, first?.id)
  })
})

describe('operation errors (SQLite)', () => operationErrors('sqlite'))
if (databaseUrl) describe('operation errors (PostgreSQL)', () => operationErrors('postgres'))
else describe('operation errors (PostgreSQL)', { skip: 'DATABASE_URL is not set' }, () => {})

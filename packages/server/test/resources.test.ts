import assert from 'node:assert/strict'
import { randomBytes, randomUUID } from 'node:crypto'
import { after, before, describe, it } from 'node:test'
import { cliActor, createApp, createTenant, createUser, resourceKinds, type Tenant } from '@fieldgate/core'
import { bearer, getToken, postForm, postJson, request, startServer, type Res, type TestServer } from './helpers.js'
import { Person } from './person.js'

const ALL = ['api', 'fields:read:all', 'maps:write', 'vehicles:write', 'sensors:write', 'alerts:write']

/** A valid body and the scope that writes it, per route. */
const routes: { path: string; write: string; tenantWide: boolean; body: Record<string, unknown> }[] = [
  { path: '/api/v1/leads', write: 'api', tenantWide: true, body: { name: 'Jane Roe', email: 'jane@example.com' } },
  { path: '/api/v1/customers', write: 'api', tenantWide: true, body: { name: 'Acme Farms', address: '1 Field Lane' } },
  {
    path: '/v1/fields',
    write: 'maps:write',
    tenantWide: false,
    body: {
      name: 'North field',
      boundary: [
        [0, 0],
        [0, 1],
        [1, 1],
        [0, 0],
      ],
      area_ha: 12.5,
    },
  },
  { path: '/v1/field-maps', write: 'maps:write', tenantWide: false, body: { field_id: 'f1', name: 'Yield 2026', features: [{ type: 'Feature' }] } },
  { path: '/v1/farm-maps', write: 'maps:write', tenantWide: false, body: { name: 'Whole farm' } },
  { path: '/v1/vehicle-locations', write: 'vehicles:write', tenantWide: false, body: { vehicle_id: 'tractor-1', position: [52.1, -1.2], recorded_at: '2026-11-23T10:00:00.000Z' } },
  { path: '/v1/sensor-readings', write: 'sensors:write', tenantWide: false, body: { sensor_id: 'soil-3', value: 21.5, unit: 'C' } },
  { path: '/v1/alerts', write: 'alerts:write', tenantWide: false, body: { title: 'Gate open', severity: 'warning' } },
]

interface Tokens {
  kind: string
  /** A token with every scope on `tenant`, and one for each scope left out. */
  full: string
  without: (scope: string) => Promise<string>
  tenant: Tenant
}

const call = (server: TestServer, token: string, path: string, body?: unknown): Promise<Res> =>
  body === undefined ? request(server.url(path), { headers: bearer(token) }) : postJson(server.url(path), body, bearer(token))

function expectMissingScope(res: Res, scope: string, what: string): void {
  assert.equal(res.status, 403, `${what}: ${res.status} ${res.text}`)
  assert.equal(res.json.error, 'missing_scope', what)
  assert.equal(res.json.needed, scope, what)
  assert.match(res.json.error_description, new RegExp(scope), what)
  assert.match(res.headers.get('www-authenticate')!, new RegExp(`error="insufficient_scope", scope="${scope}"`), what)
}

/** Client-credentials JWTs: one private app per token, all on one tenant, each asking for its scopes. */
async function jwtTokens(server: TestServer): Promise<Tokens> {
  const tenant = await createTenant(server.runtime.ctx, cliActor, { name: 'JWT tenant', environment: 'sandbox' })
  const issue = async (scopes: string[]) => {
    const created = await createApp(server.runtime.ctx, cliActor, { name: 'Private', kind: 'private', tenantId: tenant.id, scopes: ALL.join(' ') })
    return getToken(server, { clientId: created.app.clientId, clientSecret: created.clientSecret }, { scope: scopes.join(' ') })
  }
  return { kind: 'JWT', full: await issue(ALL), without: (s) => issue(ALL.filter((x) => x !== s)), tenant }
}

/** Opaque connection tokens from the code flow: scopes belong to the connection, so one farm per token. */
async function opaqueTokens(server: TestServer): Promise<Tokens> {
  const callback = 'https://partner.example/cb'
  const partnerApp = await createApp(server.runtime.ctx, cliActor, { name: 'Integration', kind: 'public', environment: 'sandbox', scopes: ALL.join(' '), redirectUris: [callback] })
  const issue = async (scopes: string[]) => {
    const tenant = await createTenant(server.runtime.ctx, cliActor, { name: `Farm ${randomBytes(3).toString('hex')}`, environment: 'sandbox' })
    const email = `farmer-${randomBytes(4).toString('hex')}@farm.example`
    await createUser(server.runtime.ctx, cliActor, { email, password: Person.password, tenantId: tenant.id, role: 'owner' })
    const person = new Person(server, email)
    await person.signIn()
    const location = await person.decide({ client_id: partnerApp.app.clientId, scope: scopes.join(' ') }, 'allow')
    const res = await postForm(server.url('/v1/token.exchange'), {
      code: location.searchParams.get('code')!,
      client_id: partnerApp.app.clientId,
      client_secret: partnerApp.clientSecret,
    })
    assert.equal(res.status, 200, res.text)
    return { token: res.json.access_token as string, tenant }
  }
  const full = await issue(ALL)
  return { kind: 'opaque', full: full.token, without: async (s) => (await issue(ALL.filter((x) => x !== s))).token, tenant: full.tenant }
}

describe('resource API', () => {
  let server: TestServer
  before(async () => {
    server = await startServer()
  })
  after(() => server.close())

  for (const [name, make] of [
    ['JWT', jwtTokens],
    ['opaque', opaqueTokens],
  ] as const) {
    it(`scope matrix with ${name} tokens: every route creates, lists and reads with its scope, and is refused without`, async () => {
      const tokens = await make(server)
      for (const route of routes) {
        const created = await call(server, tokens.full, route.path, route.body)
        assert.equal(created.status, 201, `${route.path}: ${created.text}`)
        assert.equal(typeof created.json.id, 'string')
        assert.ok(created.json.created_by.client_id, 'notes the app that created it')
        for (const [k, v] of Object.entries(route.body)) assert.deepEqual(created.json[k], v, `${route.path} ${k}`)
        const list = await call(server, tokens.full, route.path)
        assert.equal(list.status, 200)
        assert.ok(
          list.json.results.some((r: { id: string }) => r.id === created.json.id),
          route.path,
        )
        const one = await call(server, tokens.full, `${route.path}/${created.json.id}`)
        assert.deepEqual(one.json, created.json)

        const lacking = await tokens.without(route.write)
        expectMissingScope(await call(server, lacking, route.path, route.body), route.write, `POST ${route.path} without ${route.write}`)
        // An invalid body from a caller without the scope still gets missing_scope, not a validation error.
        expectMissingScope(await call(server, lacking, route.path, { nonsense: true }), route.write, `bad POST ${route.path}`)
        if (route.tenantWide) expectMissingScope(await call(server, lacking, route.path), 'api', `GET ${route.path} without api`)
      }
    })
  }

  it('refuses bad bodies with 400 and unknown records with 404, and needs a token', async () => {
    const { full } = await jwtTokens(server)
    const bad = await call(server, full, '/v1/sensor-readings', { sensor_id: 'x', value: 'warm' })
    assert.equal(bad.status, 400)
    assert.equal(bad.json.error, 'invalid_request')
    const extra = await call(server, full, '/v1/alerts', { title: 'x', surprise: 1 })
    assert.equal(extra.status, 400)
    const missing = await call(server, full, `/v1/alerts/${randomUUID()}`)
    assert.equal(missing.status, 404)
    const none = await request(server.url('/v1/fields'))
    assert.equal(none.status, 401)
    assert.equal(none.json.error, 'invalid_token')
  })

  it("an integration reads what it created; fields:read:all reads everyone's fields", async () => {
    const tenant = await createTenant(server.runtime.ctx, cliActor, { name: 'Shared farm', environment: 'sandbox' })
    const token = async (scopes: string) => {
      const created = await createApp(server.runtime.ctx, cliActor, { name: 'App', kind: 'private', tenantId: tenant.id, scopes: ALL.join(' ') })
      return getToken(server, { clientId: created.app.clientId, clientSecret: created.clientSecret }, { scope: scopes })
    }
    const a = await token('maps:write alerts:write')
    const b = await token('maps:write alerts:write')
    const reader = await token('fields:read:all')
    const fieldA = (await call(server, a, '/v1/fields', { name: 'A field' })).json
    const fieldB = (await call(server, b, '/v1/fields', { name: 'B field' })).json
    const alertA = (await call(server, a, '/v1/alerts', { title: 'A alert' })).json
    // A field a person drew, not any integration.
    await server.storage.createRecord({
      id: randomUUID(),
      tenantId: tenant.id,
      kind: resourceKinds.field.kind,
      data: { name: 'Hand drawn' },
      createdByClientId: null,
      createdByUserId: randomUUID(),
      createdAt: Date.now(),
    })

    const listA = await call(server, a, '/v1/fields')
    assert.deepEqual(
      listA.json.results.map((r: { id: string }) => r.id),
      [fieldA.id],
    )
    expectMissingScope(await call(server, a, `/v1/fields/${fieldB.id}`), 'fields:read:all', "another integration's field")
    assert.equal((await call(server, b, `/v1/alerts/${alertA.id}`)).status, 404, "another integration's alert is not there")
    assert.deepEqual((await call(server, b, '/v1/alerts')).json.results, [])

    const all = await call(server, reader, '/v1/fields')
    assert.deepEqual(all.json.results.map((r: { name: string }) => r.name).sort(), ['A field', 'B field', 'Hand drawn'])
    assert.ok(
      all.json.results.some((r: { created_by: { user_id?: string } }) => r.created_by.user_id),
      'a person made one',
    )
    assert.equal((await call(server, reader, `/v1/fields/${fieldB.id}`)).json.name, 'B field')
    // Another tenant's token sees none of it.
    const other = await jwtTokens(server)
    assert.equal((await call(server, other.full, `/v1/fields/${fieldA.id}`)).status, 404)
  })

  it('pages by cursor, newest first', async () => {
    const { full } = await jwtTokens(server)
    const ids: string[] = []
    for (let i = 0; i < 5; i++) ids.push((await call(server, full, '/v1/sensor-readings', { sensor_id: 's', value: i })).json.id)
    const seen: string[] = []
    let cursor: string | null = null
    do {
      const page: Res = await call(server, full, `/v1/sensor-readings?limit=2${cursor ? `&cursor=${cursor}` : ''}`)
      seen.push(...page.json.results.map((r: { id: string }) => r.id))
      cursor = page.json.next_cursor
    } while (cursor)
    assert.deepEqual([...seen].sort(), [...ids].sort())
    assert.equal(new Set(seen).size, 5)
    assert.equal((await call(server, full, '/v1/sensor-readings?cursor=bm9wZQ')).status, 400)
  })

  it('is documented in /openapi.json with the access-token scheme', async () => {
    const doc = await request(server.url('/openapi.json'))
    for (const route of routes) {
      assert.ok(doc.json.paths[route.path]?.post, route.path)
      assert.deepEqual(doc.json.paths[route.path].post.security, [{ accessToken: [] }])
      assert.match(doc.json.paths[route.path].post.summary, new RegExp(route.write))
    }
  })
})

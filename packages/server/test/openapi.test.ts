import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { basicAuth, bearer, injectHttp, privateApp, publicSandboxApp, startServer, type PrivateFixture, type PublicFixture, type Res, type TestServer } from './helpers.js'

// biome-ignore lint/suspicious/noExplicitAny: the OpenAPI document is walked as arbitrary JSON
type Schema = { [key: string]: any }

/** Every endpoint a client calls, with whether it takes input (a body or parameters). */
const endpoints: Array<[method: string, path: string, input: boolean]> = [
  ['post', '/oauth/token', true],
  ['post', '/authentication/api/oauth/token', true],
  ['post', '/v1/token.exchange', true],
  ['post', '/oauth/introspect', true],
  ['post', '/oauth/revoke', true],
  ['post', '/v1/token.revoke', true],
  ['get', '/v1/permissions', true],
  ['get', '/api/rest/v2/workorders', true],
  ['post', '/api/rest/v2/workorders', true],
  ['get', '/.well-known/oauth-authorization-server', false],
  ['get', '/.well-known/jwks.json', false],
  ['get', '/healthz', false],
  ['get', '/readyz', false],
]

/** The JSON Schema subset the documents use: type, enum, required, properties, additionalProperties, items, oneOf. */
function violations(schema: Schema, value: unknown, at = '$'): string[] {
  if (schema.oneOf) {
    const matching = (schema.oneOf as Schema[]).filter((s) => violations(s, value, at).length === 0)
    return matching.length === 1 ? [] : [`${at}: matches ${matching.length} of oneOf`]
  }
  const types: string[] = schema.type === undefined ? [] : [schema.type].flat()
  const actual = value === null ? 'null' : Array.isArray(value) ? 'array' : Number.isInteger(value) ? 'integer' : typeof value
  if (types.length > 0 && !types.includes(actual) && !(actual === 'integer' && types.includes('number'))) return [`${at}: ${actual}, not ${types.join('|')}`]
  if (schema.enum && !schema.enum.includes(value)) return [`${at}: ${JSON.stringify(value)} not in enum`]
  const out: string[] = []
  if (actual === 'object' && typeof value === 'object' && value !== null) {
    const record = Object.fromEntries(Object.entries(value))
    for (const name of schema.required ?? []) if (!(name in record)) out.push(`${at}.${name}: missing`)
    for (const [name, v] of Object.entries(record)) {
      const sub = schema.properties?.[name]
      if (sub) out.push(...violations(sub, v, `${at}.${name}`))
      else if (schema.additionalProperties === false) out.push(`${at}.${name}: not documented`)
    }
  }
  if (Array.isArray(value) && schema.items) for (const [i, v] of value.entries()) out.push(...violations(schema.items, v, `${at}[${i}]`))
  return out
}

describe('/openapi.json documents every endpoint a client calls', () => {
  let server: TestServer
  let doc: Schema
  let f: PrivateFixture
  let pub: PublicFixture
  // Shapes only: through app.inject, no port.
  const { request, postJson, postForm, getToken } = injectHttp(() => server)
  before(async () => {
    server = await startServer({ listen: false })
    f = await privateApp(server.storage, { scopes: 'api' })
    pub = await publicSandboxApp(server.storage, { scopes: 'api' })
    const res = await request(server.url('/openapi.json'))
    assert.equal(res.status, 200)
    doc = res.json
  })
  after(() => server.close())

  const operation = (method: string, path: string): Schema => {
    const op = doc.paths[path]?.[method]
    assert.ok(op, `${method.toUpperCase()} ${path} is not in /openapi.json`)
    return op
  }
  const responseSchema = (method: string, path: string, status: number): Schema => {
    const r = operation(method, path).responses[String(status)]
    assert.ok(r, `${method.toUpperCase()} ${path} documents no ${status}`)
    return r.content?.['application/json']?.schema ?? {}
  }
  /** A real answer checks out against what the document says for its status. */
  const conforms = (method: string, path: string, res: Res) => {
    const schema = responseSchema(method, path, res.status)
    assert.deepEqual(violations(schema, res.json), [], `${method.toUpperCase()} ${path} ${res.status}: ${res.text}`)
  }

  for (const [method, path, input] of endpoints) {
    it(`${method.toUpperCase()} ${path}: tagged, with its input, a success and an error schema`, () => {
      const op = operation(method, path)
      assert.ok(op.tags?.length > 0 && op.summary, 'tags and summary')
      if (input) assert.ok(op.requestBody || op.parameters?.length > 0, 'a request body or parameters')
      const statuses = Object.keys(op.responses)
      assert.ok(
        statuses.some((s) => s.startsWith('2')),
        `a 2xx response: ${statuses.join(', ')}`,
      )
      const failures = statuses.filter((s) => s.startsWith('4') || s.startsWith('5'))
      assert.ok(failures.length > 0, `an error response: ${statuses.join(', ')}`)
      for (const s of failures) assert.ok(op.responses[s].content?.['application/json']?.schema, `${s} has a schema`)
    })
  }

  it("documents the token endpoints' form and JSON bodies and OAuth's error shape", () => {
    for (const path of ['/oauth/token', '/authentication/api/oauth/token', '/v1/token.exchange', '/oauth/introspect', '/oauth/revoke']) {
      assert.deepEqual(Object.keys(operation('post', path).requestBody.content).sort(), ['application/json', 'application/x-www-form-urlencoded'], path)
      assert.deepEqual(responseSchema('post', path, 401).required, ['error'], path)
    }
  })

  it('says what the wire carries: real answers match the documented schemas', async () => {
    const rfc = await postForm(server.url('/oauth/token'), { grant_type: 'client_credentials', scope: 'api' }, { authorization: basicAuth(f.clientId, f.clientSecret) })
    assert.equal(rfc.status, 200)
    conforms('post', '/oauth/token', rfc)
    const fieldEdge = await postJson(server.url('/oauth/token'), {
      grant_type: 'client_credentials',
      client_id: pub.clientId,
      client_secret: pub.clientSecret,
      target_id: pub.sandboxTenant.id,
    })
    assert.equal(fieldEdge.status, 200)
    assert.deepEqual(Object.keys(fieldEdge.json), ['access_token', 'token_type', 'expires_in'])
    conforms('post', '/oauth/token', fieldEdge)
    const wrong = await postJson(server.url('/oauth/token'), { grant_type: 'client_credentials', client_id: f.clientId, client_secret: 'wrong' })
    assert.equal(wrong.status, 401)
    conforms('post', '/oauth/token', wrong)
    const malformed = await postJson(server.url('/oauth/token'), { client_id: f.clientId })
    assert.equal(malformed.status, 400)
    conforms('post', '/oauth/token', malformed)
    const fn = await postJson(server.url('/authentication/api/oauth/token'), { grant_type: 'client_credentials', client_id: f.clientId, client_secret: f.clientSecret })
    assert.equal(fn.status, 200)
    conforms('post', '/authentication/api/oauth/token', fn)

    const token = await getToken(server, f, { scope: 'api' })
    const introspected = await postForm(server.url('/oauth/introspect'), { token }, { authorization: basicAuth(f.clientId, f.clientSecret) })
    assert.equal(introspected.json.active, true)
    conforms('post', '/oauth/introspect', introspected)
    conforms('get', '/v1/permissions', await request(server.url('/v1/permissions'), { headers: bearer(token) }))
    conforms('get', '/v1/permissions', await request(server.url('/v1/permissions'), { headers: bearer('not-a-token') }))
    const created = await postJson(server.url('/api/rest/v2/workorders'), { title: 'Documented' }, bearer(token))
    assert.equal(created.status, 201)
    conforms('post', '/api/rest/v2/workorders', created)
    conforms('get', '/api/rest/v2/workorders', await request(server.url('/api/rest/v2/workorders?limit=1'), { headers: bearer(token) }))
    conforms('get', '/.well-known/oauth-authorization-server', await request(server.url('/.well-known/oauth-authorization-server')))
    conforms('get', '/.well-known/jwks.json', await request(server.url('/.well-known/jwks.json')))
    conforms('get', '/healthz', await request(server.url('/healthz')))
    conforms('get', '/readyz', await request(server.url('/readyz')))
    const badCode = await postForm(server.url('/v1/token.exchange'), { code: 'no-such-code', client_id: pub.clientId, client_secret: pub.clientSecret })
    assert.equal(badCode.json.error, 'invalid_grant')
    conforms('post', '/v1/token.exchange', badCode)
    conforms('post', '/v1/token.revoke', await postForm(server.url('/v1/token.revoke'), { access_token: 'not-a-token' }))
    // A client-credentials JWT ends with its expiry: RFC 7009 §2.2.1 unsupported_token_type, documented as a 400.
    const unsupported = await postForm(server.url('/oauth/revoke'), { token }, { authorization: basicAuth(f.clientId, f.clientSecret) })
    assert.equal(unsupported.json.error, 'unsupported_token_type')
    conforms('post', '/oauth/revoke', unsupported)
  })
})

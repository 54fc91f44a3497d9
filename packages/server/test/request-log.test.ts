/**
 * The request log over real HTTP: exactly one line per request, with its method, route pattern,
 * status, duration, request id, address, and the client and tenant where the request knows them;
 * never a secret, token, code, password, cookie or query string.
 */
import assert from 'node:assert/strict'
import { Writable } from 'node:stream'
import { after, before, describe, it } from 'node:test'
import { createLogger, RequestLogger } from '../src/logger.js'
import { bearer, getToken, postForm, privateApp, request, startServer, waitUntil, type PrivateFixture, type TestServer } from './helpers.js'

interface Line {
  msg: string
  reqId?: string
  level: number
  [field: string]: unknown
}

describe('the request log', () => {
  let server: TestServer
  let app: PrivateFixture
  const lines: string[] = []

  before(async () => {
    server = await startServer({
      log: new Writable({
        write(chunk, _encoding, done) {
          lines.push(...String(chunk).split('\n').filter(Boolean))
          done()
        },
      }),
    })
    app = await privateApp(server.storage)
  })
  after(() => server?.close())

  const requestLines = (): Line[] => lines.map((l) => JSON.parse(l) as Line).filter((l) => l.msg === 'request')
  /** The line of the request whose response carried `id`; exactly one. */
  const lineOf = async (id: string | null): Promise<Line> => {
    assert.ok(id, 'the response carries its request id')
    await waitUntil(async () => requestLines().some((l) => l.reqId === id), 2_000)
    const found = requestLines().filter((l) => l.reqId === id)
    assert.equal(found.length, 1, `one line for request ${id}`)
    return found[0]!
  }

  it('writes one line per request with its route, status, duration, client and tenant, and no secret', async () => {
    const token = await getToken(server, app)
    const issued = await postForm(server.url('/oauth/token'), { grant_type: 'client_credentials', client_id: app.clientId, client_secret: app.clientSecret })
    assert.equal(issued.status, 200)
    const tokenLine = await lineOf(issued.headers.get('x-request-id'))
    assert.equal(tokenLine.method, 'POST')
    assert.equal(tokenLine.route, '/oauth/token')
    assert.equal(tokenLine.status, 200)
    assert.equal(typeof tokenLine.ms, 'number')
    assert.equal(tokenLine.address, '127.0.0.1')
    assert.equal(tokenLine.client_id, app.clientId)
    assert.equal(tokenLine.tenant, app.tenant.id)

    // A bearer request: the token's client and tenant; the route, not the URL with its query.
    const api = await request(server.url('/v1/permissions?access_token=nothing-here&code=hunter2-code'), {
      headers: { ...bearer(token), cookie: 'fg_session=cookie-secret-value' },
    })
    const apiLine = await lineOf(api.headers.get('x-request-id'))
    assert.equal(apiLine.route, '/v1/permissions')
    assert.equal(apiLine.status, api.status)

    // A wrong secret, a page and a path nothing answers: one line each as well.
    const refused = await postForm(server.url('/oauth/token'), { grant_type: 'client_credentials', client_id: app.clientId, client_secret: 'the-wrong-secret-value' })
    assert.equal((await lineOf(refused.headers.get('x-request-id'))).status, 401)
    const page = await request(server.url('/login?return_to=%2Fdeveloper'))
    assert.equal((await lineOf(page.headers.get('x-request-id'))).route, '/login')
    const missing = await request(server.url('/no/such/path?token=zzz-token-zzz'))
    const missingLine = await lineOf(missing.headers.get('x-request-id'))
    assert.equal(missingLine.status, 404)
    assert.equal(missingLine.route, '(unrouted)')

    const all = lines.join('\n')
    for (const secret of [app.clientSecret, token, 'the-wrong-secret-value', 'hunter2-code', 'nothing-here', 'cookie-secret-value', 'zzz-token-zzz', 'return_to']) {
      assert.ok(!all.includes(secret), `the log holds ${secret.slice(0, 12)}…`)
    }
  })

  it('logs probes at debug, so at info they leave no line', async () => {
    const res = await request(server.url('/healthz'))
    assert.equal(res.status, 200)
    const id = res.headers.get('x-request-id')
    await request(server.url('/login'))
    await new Promise((r) => setTimeout(r, 100))
    assert.equal(requestLines().filter((l) => l.reqId === id).length, 0)
  })
})

describe("a request's logger", () => {
  const capture = () => {
    const lines: Line[] = []
    const destination = new Writable({
      write(chunk, _encoding, done) {
        lines.push(
          ...String(chunk)
            .split('\n')
            .filter(Boolean)
            .map((l) => JSON.parse(l) as Line),
        )
        done()
      },
    })
    return { lines, logger: createLogger('info', destination) }
  }
  const settle = () => new Promise((r) => setImmediate(r))

  it("writes its request's bindings and the arguments as given, and nothing below its level", async () => {
    const { lines, logger } = capture()
    const log = new RequestLogger(logger, { reqId: 'r-1' }, {})
    log.debug('not at info')
    log.info('plain')
    log.warn({ status: 502 }, 'upstream %s', 'refused')
    log.error({ body: { client_secret: 'hunter2' } }, 'with a secret')
    await settle()
    assert.deepEqual(
      lines.map((l) => [l.reqId, l.level, l.msg]),
      [
        ['r-1', 30, 'plain'],
        ['r-1', 40, 'upstream refused'],
        ['r-1', 50, 'with a secret'],
      ],
    )
    assert.equal(lines[1]?.status, 502)
    assert.deepEqual(lines[2]?.body, { client_secret: '[redacted]' })
  })

  it('takes a level of its own from the route or when set, and its children keep the bindings', async () => {
    const { lines, logger } = capture()
    const quiet = new RequestLogger(logger, { reqId: 'r-2' }, { level: 'error' })
    assert.equal(quiet.level, 'error')
    quiet.warn('dropped')
    const loud = new RequestLogger(logger, { reqId: 'r-3' }, {})
    assert.equal(loud.level, 'info')
    loud.level = 'debug'
    loud.debug('kept')
    loud.child({ part: 'mail' }).info('from a child')
    await settle()
    assert.deepEqual(
      lines.map((l) => [l.reqId, l.msg, l.part]),
      [
        ['r-3', 'kept', undefined],
        ['r-3', 'from a child', 'mail'],
      ],
    )
    assert.equal(logger.level, 'info', "the process's logger keeps its level")
  })
})

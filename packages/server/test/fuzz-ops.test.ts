/**
 * Fuzzing the health, readiness and metrics endpoints, the OpenAPI and metadata documents, the JWKS and
 * the static assets, and the refusals before any route (headers over the limit). Issue 7, the security
 * sweep: no 5xx, errors keep their shape, no request changes the store. The generators, the server with
 * its fixtures and the checks are in support/fuzz.ts.
 */
import assert from 'node:assert/strict'
import net from 'node:net'
import { it } from 'node:test'
import { bearer, request } from './helpers.js'
import fc from 'fast-check'
import { bearerAuth, edgeSegment, fuzzFile, getRoute, req, type Fixture, type Spec } from './support/fuzz.js'

/** What a gateway sends forward-auth: the original request in X-Forwarded-*, odd as a client could make it, and a token or junk. */
const forwarded = (f: Fixture) =>
  fc
    .tuple(
      bearerAuth(f),
      fc.record(
        {
          'x-forwarded-uri': fc.oneof(fc.constantFrom('/orders', '/orders/../admin', '/a%2fb', `/x?access_token=${f.privToken}`), fc.stringMatching(/^[\x21-\x7e]{0,60}$/)),
          'x-forwarded-method': fc.oneof(fc.constantFrom('GET', 'POST', 'DELETE', 'BREW'), fc.stringMatching(/^[\x21-\x7e]{0,10}$/)),
          'x-forwarded-host': fc.oneof(fc.constant('127.0.0.1'), fc.stringMatching(/^[\x21-\x7e]{0,40}$/)),
        },
        { requiredKeys: [] },
      ),
    )
    .map(([auth, headers]) => ({ ...auth, ...headers }))

const forwardAuthMethods = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const
const forwardAuth = forwardAuthMethods.flatMap((method): Spec[] => [
  {
    method,
    route: '/forward-auth',
    kind: 'api',
    note: 'no API is declared: every check is refused',
    build: (f) => req({ method, path: '/forward-auth', auth: forwarded(f), otherMethods: false }),
  },
  {
    method,
    route: '/forward-auth/*',
    kind: 'api',
    note: 'Envoy’s form, the original path after /forward-auth',
    build: (f) => req({ method, path: edgeSegment.map((s) => `/forward-auth/${s}`), auth: forwarded(f), otherMethods: false }),
  },
])

const specs: Spec[] = [
  // ---- operations and metadata ----
  getRoute('/healthz', 'api'),
  getRoute('/readyz', 'api'),
  getRoute('/metrics', 'plain'),
  getRoute('/openapi.json', 'api'),
  getRoute('/.well-known/oauth-authorization-server', 'api'),
  getRoute('/.well-known/jwks.json', 'api'),
  getRoute('/assets/fieldgate.css', 'plain'),
  getRoute('/assets/copy.js', 'plain'),
  getRoute('/assets/pages.js', 'plain'),
  getRoute('/.well-known/oauth-protected-resource', 'api'),
  getRoute('/.well-known/oauth-protected-resource/*', 'api', { path: () => edgeSegment.map((s) => `/.well-known/oauth-protected-resource/${s}`) }),
  ...forwardAuth,
]

fuzzFile('ops', 'fuzzing operations and metadata', specs, (fx) => {
  // Found by this fuzzing: Fastify's default clientErrorHandler wrote its 431 with a JSON body even to a
  // HEAD request (RFC 9110 §9.3.2: no content in a response to HEAD); a client read those bytes as the
  // start of the next response (node:http: "Parse Error: Expected HTTP/").
  it('answers HEAD without content, also when refusing headers over the limit (431)', async () => {
    const f = fx()
    const port = Number(new URL(f.server.origin).port)
    const answer = await new Promise<string>((resolve, reject) => {
      const socket = net.connect(port, '127.0.0.1', () => socket.end(`HEAD /healthz?x=${'a'.repeat(20_000)} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`))
      let out = ''
      socket
        .setEncoding('latin1')
        .on('data', (d: string) => {
          out += d
        })
        .on('end', () => resolve(out))
        .on('error', reject)
    })
    const [head, ...rest] = answer.split('\r\n\r\n')
    assert.match(head!, /^HTTP\/1\.1 431 /)
    assert.match(head!, /\r\nConnection: close\r\n/i)
    assert.equal(rest.join('\r\n\r\n'), '', 'a HEAD response carries no content')
  })

  it('answers headers over the limit with 431 and an OAuth error, from Node, not the app, and closes', async () => {
    const f = fx()
    for (const route of ['/healthz', '/oauth/authorize', '/api/v1/leads']) {
      const res = await request(f.server.url(`${route}?x=${'a'.repeat(20_000)}`), { headers: bearer(f.privToken) })
      assert.equal(res.status, 431, res.text)
      assert.equal(res.json?.error, 'invalid_request', res.text)
      assert.equal(res.headers.get('connection'), 'close')
    }
  })
})

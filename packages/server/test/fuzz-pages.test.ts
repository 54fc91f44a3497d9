/**
 * Fuzzing the home page, sign-in, sign-up, sign-out and the connected-apps pages, and the size of the
 * sign-in redirect's headers. Issue 7, the security sweep: no 5xx, errors keep their shape, no request
 * changes the store. The generators, the server with its fixtures and the checks are in
 * support/fuzz.ts.
 */
import assert from 'node:assert/strict'
import { it } from 'node:test'
import fc from 'fast-check'
import { asText, edgeSegment, fieldsOf, forgedCsrf, fuzzFile, getRoute, pageAuth, pageForm, paramsOf, replay, sendRaw, withKey, type Spec } from './support/fuzz.js'
import { Person } from './person.js'

/** Shaped like a mailed link's token, but never issued. */
const unknownLink = `fgl_${'A'.repeat(43)}`

const specs: Spec[] = [
  // ---- pages: home ----
  getRoute('/', 'page', { auth: pageAuth }),

  // ---- pages: sign-in ----
  getRoute('/login', 'page', {
    auth: pageAuth,
    names: ['return_to'],
    real: () => ['/connected-apps', '//evil.example', '/\\evil.example', 'https://evil.example', '/%0d%0aSet-Cookie:x=1', '/\u202e'],
  }),
  {
    method: 'POST',
    route: '/login',
    kind: 'page',
    note: "never the person's password",
    build: (f) =>
      pageForm(f, {
        path: '/login',
        hints: ['email', 'password', 'return_to'],
        params: paramsOf(
          fieldsOf(['email', 'password', 'return_to'], {
            email: [f.person.email, f.person.email.toUpperCase(), ` ${f.person.email}`],
            return_to: ['//evil.example', 'https://evil.example', '/ok'],
          }),
        ),
      }),
  },
  getRoute('/signup', 'page', { auth: pageAuth, names: ['return_to'], real: () => ['/developer', '//evil.example', 'javascript:alert(1)'] }),
  {
    method: 'POST',
    route: '/signup',
    kind: 'page',
    note: 'passwords are always under 10 characters as the server decodes them',
    build: (f) =>
      pageForm(f, {
        path: '/signup',
        hints: ['email', 'password', 'return_to'],
        // At most 3 code units, as a string: a lone surrogate sent as WTF-8 decodes to three U+FFFD, so
        // the server sees at most 9 characters; an object would be spelled as its (long) JSON text.
        params: paramsOf(fieldsOf(['email', 'password', 'return_to'], { email: ['new@farm.example', f.person.email, 'a@b'] })).map((p) =>
          p.password === undefined ? p : withKey(p, 'password', asText(p.password).slice(0, 3)),
        ),
      }),
  },
  getRoute('/signup/sent', 'page', { auth: pageAuth }),

  // ---- pages: the links mailed to people, and forgot password ----
  getRoute('/verify-email', 'page', { auth: pageAuth, names: ['token'], real: () => [unknownLink, '', 'fgl_'] }),
  {
    method: 'POST',
    route: '/verify-email',
    kind: 'page',
    note: 'the token is never a live link',
    build: (f) => pageForm(f, { path: '/verify-email', hints: ['token'], params: paramsOf(fieldsOf(['token'], { token: [unknownLink, 'fgl_'] })) }),
  },
  getRoute('/invitations/accept', 'page', { auth: pageAuth, names: ['token'], real: () => [unknownLink, ''] }),
  {
    method: 'POST',
    route: '/invitations/accept',
    kind: 'page',
    note: 'the token is never a live invitation',
    build: (f) =>
      pageForm(f, {
        path: '/invitations/accept',
        hints: ['token', 'password'],
        params: paramsOf(fieldsOf(['token', 'password'], { token: [unknownLink], password: [Person.password] })),
      }),
  },
  // ---- pages: a tenant's members, for its owners ----
  getRoute('/tenants/:id/members', 'page', {
    auth: pageAuth,
    names: ['notice'],
    path: (f) =>
      fc.oneof(
        fc.constantFrom(...f.tenantIds).map((t) => `/tenants/${t}/members`),
        edgeSegment.map((s) => `/tenants/${s}/members`),
      ),
  }),
  ...(['invite', 'role', 'remove'] as const).map(
    (verb): Spec => ({
      method: 'POST',
      route: `/tenants/:id/members/${verb}`,
      kind: 'page',
      note: 'never a valid CSRF token (a valid one on a real member and role would act)',
      build: (f) =>
        pageForm(f, {
          path: fc.constantFrom(...f.tenantIds).map((t) => `/tenants/${t}/members/${verb}`),
          hints: ['email', 'role'],
          params: paramsOf(fieldsOf(['email', 'role'], { email: [f.person.email], role: ['owner', 'member'] })),
          csrf: forgedCsrf(f),
        }),
    }),
  ),
  getRoute('/forgot-password', 'page', { auth: pageAuth }),
  {
    method: 'POST',
    route: '/forgot-password',
    kind: 'page',
    note: "never an account's address (that one mails a link)",
    build: (f) =>
      pageForm(f, {
        path: '/forgot-password',
        hints: ['email'],
        params: paramsOf(fieldsOf(['email'], { email: ['nobody@farm.example', 'a@b', ' @ '] })).filter((p) => asText(p.email).trim().toLowerCase() !== f.person.email),
      }),
  },
  getRoute('/forgot-password/sent', 'page', { auth: pageAuth }),
  getRoute('/reset-password', 'page', { auth: pageAuth, names: ['token'], real: () => [unknownLink, ''] }),
  {
    method: 'POST',
    route: '/reset-password',
    kind: 'page',
    note: 'the token is never a live link',
    build: (f) =>
      pageForm(f, {
        path: '/reset-password',
        hints: ['token', 'password'],
        params: paramsOf(fieldsOf(['token', 'password'], { token: [unknownLink], password: [Person.password] })),
      }),
  },
  {
    method: 'POST',
    route: '/logout',
    kind: 'page',
    note: 'never a valid CSRF token (a valid one signs out whatever the body)',
    build: (f) => pageForm(f, { path: '/logout', hints: [], params: paramsOf({}), csrf: forgedCsrf(f) }),
  },

  // ---- pages: connected apps ----
  getRoute('/connected-apps', 'page', { auth: pageAuth, names: ['back'] }),
  {
    method: 'POST',
    route: '/connected-apps/disconnect',
    kind: 'page',
    note: 'grant_id is never a real grant',
    build: (f) =>
      pageForm(f, {
        path: '/connected-apps/disconnect',
        hints: ['grant_id', 'back'],
        params: paramsOf(
          fieldsOf(['grant_id', 'back'], { back: ['/marketplace/installed', '//evil.example'], grant_id: f.grantIds.map((g) => `${g}x`).concat(f.grantIds.map((g) => ` ${g}`)) }),
        ),
      }),
  },
]

fuzzFile('pages', 'fuzzing the sign-in and connected-apps pages', specs, (fx) => {
  // Found by this fuzzing: a page that sent a signed-out person to sign in put the whole request URL,
  // percent-encoded once more, into return_to: a request URL under the 16 KiB header limit came back as
  // a Location of up to ~2x its size, which Node's HTTP client and proxies with 4-8 KiB header buffers
  // refuse. A return_to sign-in would ignore (over 4096 characters) is now the page's path alone.
  it('a redirect to sign-in keeps its headers within 16 KiB: a query too long to carry is left out', async () => {
    const f = fx()
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('/connected-apps', '/marketplace/installed', '/developer', '/developer/apps/new', '/marketplace'),
        fc.integer({ min: 1, max: 12_000 }),
        async (route, n) => {
          const url = `${route}?back=${'%E2%80%AE'.repeat(Math.ceil(n / 9))}`
          const res = await sendRaw(f, 'GET', url)
          assert.equal(res.status, 303)
          assert.ok(
            res.headerBytes <= 16 * 1024,
            `GET ${url.length} characters → ${res.headerBytes} bytes of headers (Location: ${String(res.headers.location).length} characters)`,
          )
          const location = new URL(res.headers.location!, f.server.origin)
          assert.equal(location.pathname, '/login')
          assert.equal(location.searchParams.get('return_to'), url.length <= 4096 ? url : route)
        },
      ),
      { numRuns: 30, ...replay },
    )
  })
})

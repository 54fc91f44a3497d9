/**
 * Fuzzing the developer portal's pages and forms (new app, settings, secret rotation, deletion, sandbox
 * installs, event redelivery and Retry now, test events). Issue 7, the security sweep: no 5xx, errors keep their shape, no request
 * changes the store. The generators, the server with its fixtures and the checks are in
 * support/fuzz.ts.
 */
import { randomBytes } from 'node:crypto'
import fc from 'fast-check'
import {
  asText,
  CALLBACK,
  edgeSegment,
  edgeString,
  fieldsOf,
  forgedCsrf,
  fuzzFile,
  getRoute,
  INSTALL_URL,
  pageAuth,
  pageForm,
  paramsOf,
  withKey,
  withoutKey,
  type Fixture,
  type Spec,
} from './support/fuzz.js'

/** Developer-portal paths for one app: the person's own (harmless input only), someone else's, or junk. */
const appPath = (f: Fixture, suffix: string) =>
  fc.oneof(
    fc.constantFrom(f.pub.clientId, f.priv.clientId).map((c) => `/developer/apps/${c}${suffix}`),
    edgeSegment.map((s) => `/developer/apps/${s}${suffix}`),
  )
const ownPath = (f: Fixture, suffix: string) => `/developer/apps/${f.own.clientId}${suffix}`

const APP_FORM_FIELDS = [
  'name',
  'kind',
  'environment',
  'tenant_id',
  'description',
  'install_url',
  'redirect_uris',
  'contact_email',
  'data_api_url',
  'token_ttl',
  'listed',
  'scope:api',
  'scope:maps:write',
  'logo_url',
  'short_description',
  'category:Mapping',
  'category:Weather',
  'publisher',
  'support_url',
  'privacy_policy_url',
  'client_type',
  'refresh_tokens',
  'access_token_format',
  'require_dpop',
  'require_par',
  'grace',
  'confirm',
]
const APP_FORM_REAL = {
  kind: ['public', 'private', 'PRIVATE'],
  environment: ['sandbox', 'live'],
  listed: ['on', 'off'],
  'scope:api': ['on'],
  'scope:maps:write': ['on'],
  install_url: [INSTALL_URL, 'javascript:alert(1)', 'http://127.0.0.1/', 'https://'],
  redirect_uris: [`${CALLBACK}\nhttps://evil.example/`, 'http://localhost\r\n'],
  contact_email: ['a@b', '@'],
  token_ttl: ['600', '59', '1.5', 'NaN', '', '2592001'],
  confirm: ['on', 'off', 'ON'],
  client_type: ['public', 'confidential', 'PUBLIC'],
  refresh_tokens: ['on', 'off'],
  access_token_format: ['jwt', 'opaque', 'paseto', ''],
  require_dpop: ['on', 'off'],
  require_par: ['on'],
  grace: ['0', '-1', 'NaN', '1e9', '2592001', '1.5', ''],
  tenant_id: [randomBytes(8).toString('hex')],
  name: ['App', ' ', ''],
  description: ['x'.repeat(2001)],
  logo_url: ['https://logo.example/l.png', 'http://logo.example/l.png', 'data:image/png;base64,AAAA', 'https://'],
  short_description: ['One line', 'two\nlines', 'x'.repeat(141)],
  'category:Mapping': ['on'],
  'category:Weather': ['on', 'off'],
  publisher: ['Acme', 'x'.repeat(101), '\u0000'],
  support_url: ['https://help.example/', 'mailto:help@example.com', 'javascript:alert(1)'],
  privacy_policy_url: ['https://help.example/privacy', 'ftp://help.example/'],
} as Record<string, readonly string[]>

/** Numbers the developer portal would accept as a grace period (it reads `Number(form.grace || '86400')`). */
const validGrace = (g: unknown) => {
  if (g !== undefined && typeof g !== 'string') return false
  const n = Number(g || '86400')
  return Number.isInteger(n) && n >= 0 && n <= 2_592_000
}

const specs: Spec[] = [
  // ---- pages: developer portal ----
  getRoute('/developer', 'page', { auth: pageAuth }),
  getRoute('/developer/apps/new', 'page', { auth: pageAuth }),
  {
    method: 'POST',
    route: '/developer/verify-email',
    kind: 'page',
    note: "the person's address is confirmed already: nothing is sent",
    build: (f) => pageForm(f, { path: '/developer/verify-email', hints: [], params: paramsOf({}) }),
  },
  {
    method: 'POST',
    route: '/developer/apps',
    kind: 'page',
    note: 'a public app is live with neither install URL nor redirect URI, a private one never has an own tenant',
    build: (f) =>
      pageForm(f, {
        path: '/developer/apps',
        hints: APP_FORM_FIELDS,
        params: paramsOf(fieldsOf(APP_FORM_FIELDS, APP_FORM_REAL)).map((p) =>
          p.kind === 'private'
            ? withKey(p, 'tenant_id', `not-${asText(p.tenant_id ?? '')}`)
            : withKey(withoutKey(withoutKey(p, 'install_url'), 'redirect_uris'), 'environment', 'live'),
        ),
      }),
  },
  getRoute('/developer/apps/:clientId', 'page', {
    auth: pageAuth,
    names: ['notice', 'state', 'events', 'activity'],
    path: (f) => fc.oneof(fc.constant(ownPath(f, '')), appPath(f, '')),
  }),
  getRoute('/developer/apps/:clientId/secret', 'page', { auth: pageAuth, names: ['h'], path: (f) => fc.oneof(fc.constant(ownPath(f, '/secret')), appPath(f, '/secret')) }),
  {
    method: 'POST',
    route: '/developer/apps/:clientId',
    kind: 'page',
    note: 'on the own app the name is always missing or blank',
    build: (f) =>
      fc.oneof(
        pageForm(f, { path: appPath(f, ''), hints: APP_FORM_FIELDS, params: paramsOf(fieldsOf(APP_FORM_FIELDS, APP_FORM_REAL)) }),
        pageForm(f, {
          path: ownPath(f, ''),
          hints: APP_FORM_FIELDS,
          params: fc
            .tuple(paramsOf(fieldsOf(APP_FORM_FIELDS, APP_FORM_REAL)), fc.constantFrom(undefined, '', ' ', '\t\n', '\u00a0', '\ufeff\u2028', ' '.repeat(300)))
            .map(([p, name]) => (name === undefined ? withoutKey(p, 'name') : withKey(p, 'name', name))),
        }),
      ),
  },
  {
    method: 'POST',
    route: '/developer/apps/:clientId/rotate-secret',
    kind: 'page',
    note: 'on the own app the grace period is always out of range',
    build: (f) =>
      fc.oneof(
        pageForm(f, { path: appPath(f, '/rotate-secret'), hints: ['grace'], params: paramsOf(fieldsOf(['grace'], APP_FORM_REAL)) }),
        pageForm(f, {
          path: ownPath(f, '/rotate-secret'),
          hints: ['grace'],
          params: paramsOf({ grace: fc.oneof(edgeString, fc.constantFrom('-1', '2592001', '1.5', 'NaN', 'Infinity', '1e400', '٣', '0x', '86400x')) }, true)
            .map((p) => ('grace' in p ? p : withKey(p, 'grace', 'NaN')))
            .filter((p) => !validGrace(p.grace)),
        }),
      ),
  },
  {
    method: 'POST',
    route: '/developer/apps/:clientId/delete',
    kind: 'page',
    note: 'on the own app confirm is never "on"',
    build: (f) =>
      fc.oneof(
        pageForm(f, { path: appPath(f, '/delete'), hints: ['confirm'], params: paramsOf(fieldsOf(['confirm'], APP_FORM_REAL)) }),
        pageForm(f, {
          path: ownPath(f, '/delete'),
          hints: ['confirm'],
          params: paramsOf(fieldsOf(['confirm'], { confirm: ['ON', 'on ', 'yes', 'true', '1'] })).filter((p) => p.confirm !== 'on'),
        }),
      ),
  },
  {
    method: 'POST',
    route: '/developer/apps/:clientId/install-sandbox',
    kind: 'page',
    note: 'on the own app never a valid CSRF token',
    build: (f) =>
      fc.oneof(
        pageForm(f, { path: appPath(f, '/install-sandbox'), hints: [], params: paramsOf({}) }),
        pageForm(f, { path: ownPath(f, '/install-sandbox'), hints: [], params: paramsOf({}), csrf: forgedCsrf(f) }),
      ),
  },
  {
    method: 'POST',
    route: '/developer/apps/:clientId/events/:eventId/redeliver',
    kind: 'page',
    note: 'no real event id',
    build: (f) =>
      pageForm(f, {
        path: fc.tuple(fc.oneof(fc.constant(f.own.clientId), edgeSegment), edgeSegment).map(([c, e]) => `/developer/apps/${c}/events/${e}/redeliver`),
        hints: [],
        params: paramsOf({}),
      }),
  },
  {
    method: 'POST',
    route: '/developer/apps/:clientId/events/:eventId/retry',
    kind: 'page',
    note: 'no real event id',
    build: (f) =>
      pageForm(f, {
        path: fc.tuple(fc.oneof(fc.constant(f.own.clientId), edgeSegment), edgeSegment).map(([c, e]) => `/developer/apps/${c}/events/${e}/retry`),
        hints: [],
        params: paramsOf({}),
      }),
  },
  {
    method: 'POST',
    route: '/developer/apps/:clientId/test-event',
    kind: 'page',
    note: "someone else's app or junk, or the own app without a valid CSRF token",
    build: (f) =>
      fc.oneof(
        pageForm(f, { path: appPath(f, '/test-event'), hints: [], params: paramsOf({}) }),
        pageForm(f, { path: ownPath(f, '/test-event'), hints: [], params: paramsOf({}), csrf: forgedCsrf(f) }),
      ),
  },
]

fuzzFile('developer', 'fuzzing the developer portal', specs)

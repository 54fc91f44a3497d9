/**
 * Fuzzing the operator console's pages and forms (the fixture's person is an operator). No 5xx, errors
 * keep their shape, no request changes the store: a decision on a real app or account is only ever
 * sent one its state refuses (approve or reject what waits for nothing, lift a suspension that is not
 * there), a blank or over-long reason, or a forged CSRF token. The generators, the server with its
 * fixtures and the checks are in support/fuzz.ts.
 */
import fc from 'fast-check'
import { edgeSegment, fieldsOf, forgedCsrf, fuzzFile, getRoute, pageAuth, pageForm, paramsOf, type Fixture, type Spec } from './support/fuzz.js'

const LISTING = { auth: pageAuth, names: ['q', 'page'], real: () => ['1', '2', '0', '-1', '1.5', '10001', '%', 'farm'] }

/** A console path for a real app or account, or junk in its place. */
const appPath = (f: Fixture, suffix: string) =>
  fc.oneof(
    fc.constantFrom(f.pub.clientId, f.priv.clientId, f.own.clientId).map((c) => `/operator/apps/${c}${suffix}`),
    edgeSegment.map((s) => `/operator/apps/${s}${suffix}`),
  )
const userPath = (f: Fixture, suffix: string) =>
  fc.oneof(
    fc.constant(`/operator/users/${f.userId}${suffix}`),
    edgeSegment.map((s) => `/operator/users/${s}${suffix}`),
  )
/** Reasons no decision accepts: blank, or over 2000 characters once trimmed (core trims a reason first). */
const badReason = fc.oneof(
  fc.constantFrom('', ' ', '\t\n'),
  fc.string({ minLength: 2001, maxLength: 2100 }).filter((s) => s.trim().length > 2000),
)

const decision = (verb: string, note: string, reason: fc.Arbitrary<unknown> | undefined): Spec => ({
  method: 'POST',
  route: `/operator/apps/:clientId/${verb}`,
  kind: 'page',
  note,
  build: (f) =>
    fc.oneof(
      pageForm(f, {
        path: appPath(f, `/${verb}`),
        hints: ['reason', 'back'],
        params: paramsOf(fieldsOf(['back'], { back: ['review', 'app'] })).chain((p) => (reason ? reason.map((r) => ({ ...p, reason: r })) : fc.constant(p))),
      }),
      pageForm(f, { path: appPath(f, `/${verb}`), hints: ['reason', 'back'], params: paramsOf(fieldsOf(['reason', 'back'])), csrf: forgedCsrf(f) }),
    ),
})

const specs: Spec[] = [
  getRoute('/operator', 'page', { auth: pageAuth }),
  getRoute('/operator/review', 'page', LISTING),
  getRoute('/operator/apps', 'page', LISTING),
  getRoute('/operator/apps/:clientId', 'page', { auth: pageAuth, names: ['notice'], path: (f) => appPath(f, '') }),
  getRoute('/operator/tenants', 'page', LISTING),
  getRoute('/operator/tenants/:id', 'page', {
    auth: pageAuth,
    path: (f) =>
      fc.oneof(
        fc.constantFrom(...f.tenantIds).map((t) => `/operator/tenants/${t}`),
        edgeSegment.map((s) => `/operator/tenants/${s}`),
      ),
  }),
  getRoute('/operator/users', 'page', { ...LISTING, names: ['q', 'page', 'tenant'], real: (f) => ['1', '0', '%', ...f.tenantIds] }),
  getRoute('/operator/users/:id', 'page', { auth: pageAuth, names: ['notice'], path: (f) => userPath(f, '') }),
  getRoute('/operator/grants', 'page', {
    ...LISTING,
    names: ['q', 'page', 'status', 'app', 'tenant'],
    real: (f) => ['active', 'revoked', 'ACTIVE', '', '2', f.pub.clientId, f.own.clientId, ...f.tenantIds],
  }),
  getRoute('/operator/deliveries', 'page', {
    ...LISTING,
    names: ['page', 'state', 'app'],
    real: (f) => ['pending', 'failed', 'delivered', 'FAILED', '', '0', f.pub.clientId, f.priv.clientId],
  }),
  getRoute('/operator/deliveries/:eventId', 'page', { auth: pageAuth, names: ['notice'], path: () => edgeSegment.map((e) => `/operator/deliveries/${e}`) }),
  ...(['redeliver', 'retry'] as const).map(
    (verb): Spec => ({
      method: 'POST',
      route: `/operator/deliveries/:eventId/${verb}`,
      kind: 'page',
      note: 'the event is never a real one',
      build: (f) => pageForm(f, { path: edgeSegment.map((e) => `/operator/deliveries/${e}/${verb}`), hints: [], params: paramsOf({}) }),
    }),
  ),
  getRoute('/operator/audit', 'page', LISTING),
  getRoute('/operator/security', 'page', { ...LISTING, names: ['q', 'page', 'kind'], real: () => ['sign_in.failed', 'SIGN_IN.FAILED', '', '1', '-1'] }),
  getRoute('/operator/mail', 'page', { ...LISTING, names: ['q', 'page', 'state'], real: () => ['local', 'sent', 'LOCAL', '', '0'] }),
  decision('approve', 'no fixture app waits for review', fieldsOf(['reason']).reason),
  decision('reject', 'no fixture app waits for review', fieldsOf(['reason']).reason),
  decision('suspend', 'the reason is always blank or over 2000 characters', badReason),
  decision('unsuspend', 'no fixture app is suspended', undefined),
  ...(['redeliver', 'retry'] as const).map(
    (verb): Spec => ({
      method: 'POST',
      route: `/operator/apps/:clientId/events/:eventId/${verb}`,
      kind: 'page',
      note: 'the event is never a real one',
      build: (f) => pageForm(f, { path: fc.tuple(appPath(f, ''), edgeSegment).map(([app, e]) => `${app}/events/${e}/${verb}`), hints: [], params: paramsOf({}) }),
    }),
  ),
  {
    method: 'POST',
    route: '/operator/users/:id/suspend',
    kind: 'page',
    note: 'the only real account is an operator, which cannot be suspended',
    build: (f) => pageForm(f, { path: userPath(f, '/suspend'), hints: ['reason'], params: paramsOf(fieldsOf(['reason'])) }),
  },
  {
    method: 'POST',
    route: '/operator/users/:id/unsuspend',
    kind: 'page',
    note: 'the account is not suspended',
    build: (f) => pageForm(f, { path: userPath(f, '/unsuspend'), hints: [], params: paramsOf({}) }),
  },
]

fuzzFile('operator', 'fuzzing the operator console', specs)

/**
 * Fuzzing the marketplace pages: the listing, an app's page, installs, their completion and the
 * installed apps. Issue 7, the security sweep: no 5xx, errors keep their shape, no request changes the
 * store. The generators, the server with its fixtures and the checks are in support/fuzz.ts.
 */
import fc from 'fast-check'
import { edgeSegment, fieldsOf, forgedCsrf, fuzzFile, getRoute, pageAuth, pageForm, paramsOf, type Spec } from './support/fuzz.js'

const specs: Spec[] = [
  // ---- pages: marketplace ----
  getRoute('/marketplace/installed', 'page', { auth: pageAuth }),
  getRoute('/marketplace', 'page', {
    auth: pageAuth,
    names: ['tenant', 'q', 'category', 'offset'],
    real: (f) => [...f.tenantIds, 'Mapping', 'mapping', 'Weather', '20', '99999', '-1', '1e3', '%', '_', '!'],
  }),
  getRoute('/marketplace/apps/:clientId', 'page', {
    auth: pageAuth,
    names: ['tenant'],
    real: (f) => f.tenantIds,
    path: (f) => fc.oneof(fc.constantFrom(f.pub.clientId, f.own.clientId, f.priv.clientId), edgeSegment).map((c) => `/marketplace/apps/${c}`),
  }),
  {
    method: 'POST',
    route: '/marketplace/apps/:clientId/install',
    kind: 'page',
    note: 'installable apps never get a valid CSRF token',
    build: (f) =>
      fc.oneof(
        pageForm(f, {
          path: fc.oneof(fc.constant(f.priv.clientId), edgeSegment).map((c) => `/marketplace/apps/${c}/install`),
          hints: ['tenant_id'],
          params: paramsOf(fieldsOf(['tenant_id'], { tenant_id: f.tenantIds })),
        }),
        pageForm(f, {
          path: fc.constantFrom(f.pub.clientId, f.own.clientId).map((c) => `/marketplace/apps/${c}/install`),
          hints: ['tenant_id'],
          params: paramsOf(fieldsOf(['tenant_id'], { tenant_id: f.tenantIds })),
          csrf: forgedCsrf(f),
        }),
      ),
  },
  // Never a real client_id: with one, status=success would finish that install.
  getRoute('/marketplace/complete', 'page', {
    auth: pageAuth,
    names: ['client_id', 'target_id', 'status', 'error_description'],
    real: (f) => [...f.tenantIds, 'success', 'error', 'x'.repeat(3000)],
  }),
]

fuzzFile('marketplace', 'fuzzing the marketplace', specs)

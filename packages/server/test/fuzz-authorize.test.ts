/**
 * Fuzzing the authorization endpoints (both spellings) and the consent form. Issue 7, the security
 * sweep: no 5xx, errors keep their shape, no request changes the store. The generators, the server with
 * its fixtures and the checks are in support/fuzz.ts.
 */
import { ALL_SCOPES, CALLBACK, fieldsOf, fuzzFile, getRoute, pageAuth, pageForm, paramsOf, type Spec } from './support/fuzz.js'

const AUTHORIZE_FIELDS = ['response_type', 'client_id', 'redirect_uri', 'scope', 'state', 'code_challenge', 'code_challenge_method', 'prompt', 'nonce']

const specs: Spec[] = [
  // ---- pages: authorization and consent ----
  ...['/authorize', '/oauth/authorize'].map((route) =>
    getRoute(route, 'page', {
      auth: pageAuth,
      names: AUTHORIZE_FIELDS,
      real: (f) => [f.pub.clientId, f.own.clientId, f.priv.clientId, CALLBACK, 'code', 'token', 'S256', 'plain', 'fields:read:all', ALL_SCOPES, 'a'.repeat(43)],
    }),
  ),
  {
    method: 'POST',
    route: '/consent',
    kind: 'page',
    note: 'tenant_id is never a farm of the person',
    build: (f) =>
      pageForm(f, {
        path: '/consent',
        hints: [...AUTHORIZE_FIELDS, 'decision', 'tenant_id'],
        params: paramsOf(
          fieldsOf([...AUTHORIZE_FIELDS, 'decision', 'tenant_id'], {
            client_id: [f.pub.clientId, f.own.clientId],
            redirect_uri: [CALLBACK],
            response_type: ['code'],
            scope: ['fields:read:all'],
            decision: ['allow', 'deny', 'Allow'],
            tenant_id: [f.priv.tenant.id + ' ', `x${f.pub.sandboxTenant.id}`, '00000000-0000-0000-0000-000000000000'],
          }),
        ),
      }),
  },
]

fuzzFile('authorize', 'fuzzing authorization and consent', specs)

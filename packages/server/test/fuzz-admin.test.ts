/**
 * Fuzzing the admin API: its lists, creates, secret rotation, app deletion, grant revocation and key
 * rotation. Issue 7, the security sweep: no 5xx, errors keep their shape, no request changes the store.
 * The generators, the server with its fixtures and the checks are in support/fuzz.ts.
 */
import fc from 'fast-check'
import {
  adminAuth,
  bodies,
  edgeSegment,
  fieldsOf,
  fuzzFile,
  getRoute,
  invalidFor,
  isAdmin,
  junkAdminAuth,
  paramsOf,
  req,
  type Params,
  type Spec,
  type WriteSchema,
} from './support/fuzz.js'

/** PATCH /admin/v1/apps/:client_id's body: nothing required, so only an unknown field makes it invalid. */
const APP_UPDATE = {
  text: ['name', 'description', 'scopes', 'install_url', 'contact_email', 'data_api_url', 'logo_url', 'short_description', 'publisher', 'support_url', 'privacy_policy_url'],
  other: ['token_ttl', 'redirect_uris', 'listed', 'categories', 'refresh_tokens', 'access_token_format', 'require_dpop', 'require_par'],
  required: [],
} as const satisfies WriteSchema

const specs: Spec[] = [
  // ---- the admin API ----
  getRoute('/admin/v1/tenants', 'api', { auth: adminAuth }),
  getRoute('/admin/v1/apps', 'api', { auth: adminAuth }),
  getRoute('/admin/v1/grants', 'api', { auth: adminAuth, names: ['tenant_id'], real: (f) => f.tenantIds }),
  getRoute('/admin/v1/keys', 'api', { auth: adminAuth }),
  getRoute('/admin/v1/registration-tokens', 'api', { auth: adminAuth }),
  getRoute('/admin/v1/users', 'api', { auth: adminAuth, names: ['q', 'limit', 'offset'], real: () => ['1', '500', '501', '0', '-1', '1.5', '%', 'farm'] }),
  getRoute('/admin/v1/mail', 'api', { auth: adminAuth, names: ['q', 'limit', 'offset', 'state'], real: () => ['local', 'sent', 'LOCAL', '1', '501', '-1', '%'] }),
  getRoute('/admin/v1/security-events', 'api', {
    auth: adminAuth,
    names: ['q', 'limit', 'offset', 'kind'],
    real: () => ['sign_in.failed', 'code.replayed', 'nope', '1', '501', '-1', '%'],
  }),
  getRoute('/admin/v1/audit', 'api', {
    auth: adminAuth,
    names: ['client_id', 'tenant_id', 'limit'],
    real: (f) => [f.priv.clientId, ...f.tenantIds, '1', '10000', '10001', '0', '-1', '1.5'],
  }),
  ...(
    [
      ['/admin/v1/tenants', { text: ['name', 'environment'], required: ['name', 'environment'] }, { environment: ['sandbox', 'live'] }],
      // The password has no NUL pattern: it is not a "text" field here, so a NUL never stands in for a violation.
      [
        '/admin/v1/users',
        { text: ['email', 'tenant_id', 'role'], other: ['password', 'operator'], required: ['email', 'password'] },
        { role: ['owner', 'member'], email: ['fuzz@farm.example'], password: ['long enough password'] },
      ],
      [
        '/admin/v1/apps',
        {
          text: [
            'name',
            'kind',
            'tenant_id',
            'environment',
            'scopes',
            'install_url',
            'contact_email',
            'data_api_url',
            'description',
            'logo_url',
            'short_description',
            'publisher',
            'support_url',
            'privacy_policy_url',
          ],
          other: ['token_ttl', 'redirect_uris', 'listed', 'categories', 'public_client', 'refresh_tokens', 'access_token_format', 'require_dpop', 'require_par'],
          required: ['name', 'kind'],
        },
        { kind: ['private', 'public'], environment: ['sandbox'] },
      ],
      ['/admin/v1/grants', { text: ['client_id', 'tenant_id', 'scopes'], required: ['client_id', 'tenant_id'] }, {}],
      ['/admin/v1/registration-tokens', { text: ['note'], other: ['expires_days'], required: [] }, {}],
      ['/admin/v1/users/suspend', { text: ['email', 'reason'], required: ['email', 'reason'] }, { email: ['fuzz@farm.example'] }],
      ['/admin/v1/users/operator', { text: ['email'], other: ['operator'], required: ['email', 'operator'] }, { email: ['fuzz@farm.example'] }],
      ['/admin/v1/users/unsuspend', { text: ['email'], other: ['reason'], required: ['email'] }, { email: ['fuzz@farm.example'] }],
      ['/admin/v1/memberships', { text: ['email', 'tenant_id', 'role'], required: ['email', 'tenant_id', 'role'] }, { email: ['fuzz@farm.example'], role: ['owner', 'member'] }],
      ['/admin/v1/memberships/remove', { text: ['email', 'tenant_id'], required: ['email', 'tenant_id'] }, { email: ['fuzz@farm.example'] }],
      ['/admin/v1/invitations', { text: ['email', 'tenant_id', 'role'], other: ['operator'], required: ['email'] }, { email: ['fuzz@farm.example'], role: ['owner', 'member'] }],
    ] as [string, WriteSchema, Record<string, readonly string[]>][]
  ).map(
    ([route, schema, real]): Spec => ({
      method: 'POST',
      route,
      kind: 'api',
      note: 'bodies always miss a required field, add an unknown one or carry a NUL',
      build: (f) =>
        req({
          method: 'POST',
          path: route,
          auth: adminAuth(f),
          otherMethods: false,
          body: bodies(invalidFor(schema, { ...real, client_id: [f.priv.clientId], tenant_id: f.tenantIds }), f.limit, { hints: [...schema.text, ...(schema.other ?? [])] }),
        }),
    }),
  ),
  {
    method: 'POST',
    route: '/admin/v1/apps/:client_id/rotate-secret',
    kind: 'api',
    note: 'a real client_id only with an invalid body',
    build: (f) =>
      fc.oneof(
        req({
          method: 'POST',
          path: edgeSegment.map((s) => `/admin/v1/apps/${s}/rotate-secret`),
          auth: adminAuth(f),
          body: bodies(paramsOf(fieldsOf(['grace'])), f.limit, { hints: ['grace'], allowEmpty: true }),
        }),
        req({
          method: 'POST',
          path: `/admin/v1/apps/${f.priv.clientId}/rotate-secret`,
          auth: adminAuth(f),
          body: bodies(
            fc.oneof(
              invalidFor({ text: [], other: ['grace'], required: [] }),
              fc.constantFrom(-1, 2_592_001, 1.5, '1.5', 'x', '-1', 1e300, '2592001').map((g) => ({ grace: g }) as Params),
            ),
            f.limit,
            { hints: ['grace'] },
          ),
        }),
      ),
  },
  {
    method: 'POST',
    route: '/admin/v1/registration-tokens/:id/revoke',
    kind: 'api',
    note: 'no initial access token exists',
    build: (f) =>
      req({
        method: 'POST',
        path: edgeSegment.map((s) => `/admin/v1/registration-tokens/${s}/revoke`),
        auth: adminAuth(f),
        body: bodies(paramsOf({}), f.limit, { hints: [], allowEmpty: true }),
      }),
  },
  ...['approve', 'reject', 'suspend', 'unsuspend'].map(
    (verb): Spec => ({
      method: 'POST',
      route: `/admin/v1/apps/:client_id/${verb}`,
      kind: 'api',
      note: 'never a real client_id',
      build: (f) =>
        req({
          method: 'POST',
          path: edgeSegment.map((s) => `/admin/v1/apps/${s}/${verb}`),
          auth: adminAuth(f),
          body: bodies(paramsOf(fieldsOf(['reason'])), f.limit, { hints: ['reason'], allowEmpty: true }),
        }),
    }),
  ),
  {
    method: 'PATCH',
    route: '/admin/v1/apps/:client_id',
    kind: 'api',
    note: 'a real client_id only with a body that names an unknown field',
    build: (f) =>
      fc.oneof(
        req({
          method: 'PATCH',
          path: edgeSegment.map((s) => `/admin/v1/apps/${s}`),
          auth: adminAuth(f),
          otherMethods: false,
          body: bodies(paramsOf(fieldsOf([...APP_UPDATE.text, ...APP_UPDATE.other])), f.limit, { hints: [...APP_UPDATE.text, ...APP_UPDATE.other], allowEmpty: true }),
        }),
        req({
          method: 'PATCH',
          path: `/admin/v1/apps/${f.priv.clientId}`,
          auth: adminAuth(f),
          otherMethods: false,
          body: bodies(invalidFor(APP_UPDATE, { access_token_format: ['jwt', 'opaque'] }), f.limit, { hints: [...APP_UPDATE.text, ...APP_UPDATE.other] }),
        }),
      ),
  },
  {
    method: 'DELETE',
    route: '/admin/v1/apps/:client_id',
    kind: 'api',
    note: 'never a real client_id',
    build: (f) =>
      req({
        method: 'DELETE',
        path: edgeSegment.map((s) => `/admin/v1/apps/${s}`),
        auth: adminAuth(f),
        body: fc.option(bodies(paramsOf({}), f.limit, { hints: [] }), { nil: undefined }),
      }),
  },
  {
    method: 'POST',
    route: '/admin/v1/grants/:id/revoke',
    kind: 'api',
    note: 'never a real grant id',
    build: (f) =>
      req({
        method: 'POST',
        path: fc.oneof(edgeSegment, fc.constantFrom(...f.grantIds.map((g) => `${g}x`))).map((s) => `/admin/v1/grants/${s}/revoke`),
        auth: adminAuth(f),
        body: fc.option(bodies(paramsOf({}), f.limit, { hints: [] }), { nil: undefined }),
      }),
  },
  {
    method: 'POST',
    route: '/admin/v1/keys/rotate',
    kind: 'api',
    note: 'the admin token only with a body the server cannot read',
    build: (f) =>
      fc.oneof(
        req({ method: 'POST', path: '/admin/v1/keys/rotate', auth: junkAdminAuth(f), body: fc.option(bodies(paramsOf({}), f.limit, { hints: [] }), { nil: undefined }) }),
        req({
          method: 'POST',
          path: '/admin/v1/keys/rotate',
          auth: adminAuth(f).filter((h) => h.authorization !== undefined && isAdmin(f, h.authorization)),
          otherMethods: false,
          body: bodies(paramsOf({}), f.limit, { hints: [], rejectOnly: true }),
        }),
      ),
  },
]

fuzzFile('admin', 'fuzzing the admin API', specs)

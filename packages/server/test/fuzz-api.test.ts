/**
 * Fuzzing Field Nation's work orders and every route of the resource API (lists, reads by id, creates).
 * Issue 7, the security sweep: no 5xx, errors keep their shape, no request changes the store. The
 * generators, the server with its fixtures and the checks are in support/fuzz.ts.
 */
import { resourceRoutes } from '../src/routes/resources.js'
import { bearerAuth, bodies, edgeSegment, fuzzFile, getRoute, invalidFor, queryOf, req, type Spec } from './support/fuzz.js'

const resourceSpecs: Spec[] = resourceRoutes.flatMap((r): Spec[] => {
  const props = r.body.properties
  const isText = (k: string) => {
    const s = props[k]
    return s !== undefined && 'type' in s && s.type === 'string'
  }
  const text = Object.keys(props).filter(isText)
  const other = Object.keys(props).filter((k) => !isText(k))
  const listNames = ['limit', 'cursor', 'access_token']
  return [
    getRoute(r.path, 'api', {
      auth: (f) => bearerAuth(f),
      names: listNames,
      real: (f) => [f.privToken, f.opaque, '1', '100', '101', '0', Buffer.from(`${Date.now()}.${'0'.repeat(36)}`).toString('base64url')],
    }),
    getRoute(`${r.path}/:id`, 'api', { auth: (f) => bearerAuth(f), names: ['access_token'], path: () => edgeSegment.map((s) => `${r.path}/${s}`) }),
    {
      method: 'POST',
      route: r.path,
      kind: 'api',
      note: 'bodies always miss a required field, add an unknown one or carry a NUL',
      build: (f) =>
        req({
          method: 'POST',
          path: r.path,
          auth: bearerAuth(f),
          query: queryOf(['access_token'], [f.privToken]),
          body: bodies(invalidFor({ text, other, required: r.body.required }), f.limit, { hints: Object.keys(props) }),
        }),
    },
  ]
})

const specs: Spec[] = [
  // ---- Field Nation work orders ----
  getRoute('/api/rest/v2/workorders', 'api', { auth: (f) => bearerAuth(f), names: ['limit', 'cursor', 'access_token'], real: (f) => [f.privToken, '1', '100', '101'] }),
  {
    method: 'POST',
    route: '/api/rest/v2/workorders',
    kind: 'api',
    note: 'bodies always miss title, add an unknown field or carry a NUL',
    build: (f) =>
      req({
        method: 'POST',
        path: '/api/rest/v2/workorders',
        auth: bearerAuth(f),
        query: queryOf(['access_token'], [f.privToken]),
        body: bodies(invalidFor({ text: ['title', 'status'], required: ['title'] }, { status: ['draft', 'approved', 'DRAFT'] }), f.limit, { hints: ['title', 'status'] }),
      }),
  },

  // ---- the resource API ----
  ...resourceSpecs,
]

fuzzFile('api', 'fuzzing the data APIs', specs)

import { createHash, timingSafeEqual } from 'node:crypto'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { Type } from 'typebox'
import {
  InvalidToken,
  MissingToken,
  adminApiActor,
  approveApp,
  listReviewQueue,
  notFound,
  rejectApp,
  setOperatorRole,
  suspendAccount,
  suspendApp,
  unsuspendAccount,
  unsuspendApp,
  createApp,
  createGrant,
  createTenant,
  createUser,
  deleteApp,
  revokeGrant,
  rotateSecret,
  rotateSigningKeys,
  removeMembership,
  securityEventKinds,
  setMembership,
  invalid,
  inviteMember,
  inviteOperator,
  type Actor,
  type CoreContext,
} from '@fieldgate/core'
import { appInput, appJson, auditJson, grantJson, keyJson, mailJson, securityEventJson, tenantJson, userJson } from '../admin-json.js'
import { list, nullable, oneOf, strict, text as str } from '../schemas/common.js'

/**
 * The CLI's operations over HTTP (`/admin/v1`), for scripts and control planes that cannot run the
 * CLI beside the store. Authenticated by FIELDGATE_ADMIN_TOKEN; off when it is unset. Every route
 * has a schema, which validates input, types the handler and is what `/openapi.json` documents.
 */
export async function adminApiRoutes(fastify: FastifyInstance, { ctx }: { ctx: CoreContext }): Promise<void> {
  const expected = ctx.config.adminToken && sha256(ctx.config.adminToken)
  if (!expected) return
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>()
  app.addHook('onRequest', async (request) => {
    const header = request.headers.authorization
    if (!header || !/^bearer /i.test(header)) throw new MissingToken()
    if (!timingSafeEqual(sha256(header.slice(7).trim()), expected)) {
      // One event a minute per address: a script guessing leaves a line, not one per guess.
      ctx.security.record({ kind: 'admin_token.failed', address: request.ip, details: { route: request.routeOptions.url ?? null } }, { once: `admin ${request.ip}` })
      throw new InvalidToken('The admin token is not valid')
    }
  })
  const by = (request: FastifyRequest): Actor => adminApiActor(request.ip)
  const s = ctx.storage

  app.get('/admin/v1/tenants', { schema: { ...doc('List tenants'), response: { 200: list(tenant) } } }, async () => (await s.listTenants()).map(tenantJson))

  app.post(
    '/admin/v1/tenants',
    {
      schema: { ...doc('Create a tenant'), body: strict({ name: str(), environment: oneOf(['sandbox', 'live']) }), response: { 201: tenant } },
    },
    async (request, reply) => reply.code(201).send(tenantJson(await createTenant(ctx, by(request), request.body))),
  )

  app.post(
    '/admin/v1/users',
    {
      schema: {
        ...doc('Create a user, optionally a member of a tenant'),
        body: strict({
          email: str(),
          password: Type.String({ minLength: 10, maxLength: 1000 }),
          tenant_id: Type.Optional(str()),
          role: Type.Optional(oneOf(['owner', 'admin', 'member'])),
          operator: Type.Optional(Type.Boolean()),
        }),
        response: { 201: strict({ id: str(), email: str() }) },
      },
    },
    async (request, reply) => {
      const b = request.body
      const membership = b.tenant_id ? { tenantId: b.tenant_id, role: b.role ?? 'member' } : {}
      const u = await createUser(ctx, by(request), { email: b.email, password: b.password, operator: b.operator ?? false, ...membership })
      return reply.code(201).send({ id: u.id, email: u.email })
    },
  )

  app.get('/admin/v1/users', { schema: { ...doc('List users, oldest first; `q` finds part of an email'), querystring: page, response: { 200: list(user) } } }, async (request) =>
    (await s.listUsers(pageOf(request.query))).map(userJson),
  )

  app.get(
    '/admin/v1/mail',
    {
      schema: {
        ...doc('The mail outbox, newest first: with no SMTP server set, the local mailbox (messages with their text); `q` finds a recipient or subject'),
        querystring: strict({ ...page.properties, state: Type.Optional(Type.Union(mailStates.map((s) => Type.Literal(s)))) }),
        response: { 200: list(mail) },
      },
    },
    async (request) => (await s.listMail({ ...pageOf(request.query), ...(request.query.state ? { state: request.query.state } : {}) })).map(mailJson),
  )

  app.get(
    '/admin/v1/security-events',
    {
      schema: {
        ...doc('Security events, newest first; `kind` picks one kind, `q` finds an email, client_id or address'),
        querystring: strict({ ...page.properties, kind: Type.Optional(Type.Union(securityEventKinds.map((k) => Type.Literal(k)))) }),
        response: { 200: list(securityEventShape) },
      },
    },
    async (request) => (await s.listSecurityEvents({ ...pageOf(request.query), ...(request.query.kind ? { kinds: [request.query.kind] } : {}) })).map(securityEventJson),
  )

  const membership = strict({ user_id: str(), tenant_id: str(), role: str() })
  app.post(
    '/admin/v1/memberships',
    {
      schema: {
        ...doc('Add an account to a tenant, or change its role there; a tenant keeps at least one owner'),
        body: strict({ email: str(), tenant_id: str(), role: oneOf(['owner', 'admin', 'member']) }),
        response: { 200: membership },
      },
    },
    async (request) => {
      const m = await setMembership(ctx, by(request), { tenantId: request.body.tenant_id, email: request.body.email, role: request.body.role })
      return { user_id: m.userId, tenant_id: m.tenantId, role: m.role }
    },
  )
  app.post(
    '/admin/v1/memberships/remove',
    {
      schema: {
        ...doc('Take an account out of a tenant (never its last owner)'),
        body: strict({ email: str(), tenant_id: str() }),
        response: { 200: strict({ removed: Type.Boolean() }) },
      },
    },
    async (request) => {
      await removeMembership(ctx, by(request), { tenantId: request.body.tenant_id, email: request.body.email })
      return { removed: true }
    },
  )

  app.post(
    '/admin/v1/invitations',
    {
      schema: {
        ...doc('Mail a one-week invitation: to join tenant_id with role, or (operator: true) to be an operator'),
        body: strict({ email: str(), tenant_id: Type.Optional(str()), role: Type.Optional(oneOf(['owner', 'admin', 'member'])), operator: Type.Optional(Type.Boolean()) }),
        response: { 201: strict({ invited: str(), expires_at: str() }) },
      },
    },
    async (request, reply) => {
      const { email, tenant_id: tenantId, role, operator } = request.body
      if ((operator === true) === (tenantId !== undefined)) throw invalid('give tenant_id (with role) or operator: true')
      const sent = tenantId !== undefined ? await inviteMember(ctx, by(request), { tenantId, email, role: role ?? 'member' }) : await inviteOperator(ctx, by(request), { email })
      return reply.code(201).send({ invited: sent.email, expires_at: new Date(sent.expiresAt).toISOString() })
    },
  )

  app.post(
    '/admin/v1/users/operator',
    {
      schema: { ...doc('Give or take the operator role'), body: strict({ email: str(), operator: Type.Boolean() }), response: { 200: user } },
    },
    async (request) => userJson(await setOperatorRole(ctx, by(request), request.body)),
  )

  for (const [verb, suspend] of [
    ['suspend', true],
    ['unsuspend', false],
  ] as const) {
    app.post(
      `/admin/v1/users/${verb}`,
      {
        schema: {
          ...doc(suspend ? 'Suspend a partner account: no sign-in, and every app of theirs suspended' : 'Lift an account suspension, and that of the apps suspended with it'),
          body: suspend ? strict({ email: str(), reason: str() }) : strict({ email: str(), reason: Type.Optional(str()) }),
          response: { 200: strict({ user, apps: list(appShape) }) },
        },
      },
      async (request) => {
        const { email, reason } = request.body
        const r = suspend ? await suspendAccount(ctx, by(request), { email, reason: reason ?? '' }) : await unsuspendAccount(ctx, by(request), { email })
        return { user: userJson(r.user), apps: r.apps.map(appJson) }
      },
    )
  }

  app.get(
    '/admin/v1/apps',
    {
      schema: { ...doc('List apps; `review=pending` is the review queue'), querystring: strict({ review: Type.Optional(oneOf(['pending'])) }), response: { 200: list(appShape) } },
    },
    async (request) => (request.query.review ? await listReviewQueue(ctx, by(request)) : await s.listApps()).map(appJson),
  )

  const decisions = {
    approve: { summary: 'Approve what waits for review: a first submission goes live, a change takes effect', reason: 'optional', run: approveApp },
    reject: { summary: 'Reject what waits for review, with the reason the partner reads', reason: 'required', run: rejectApp },
    suspend: { summary: 'Suspend an app: no new token (invalid_client), every token it holds refused, on every instance', reason: 'required', run: suspendApp },
    unsuspend: { summary: 'Lift an app suspension', reason: 'none', run: unsuspendApp },
  } as const
  for (const [verb, d] of Object.entries(decisions)) {
    app.post(
      `/admin/v1/apps/:client_id/${verb}`,
      {
        schema: {
          ...doc(d.summary),
          params: strict({ client_id: str() }),
          body: Type.Unsafe<{ reason?: string } | undefined>({ ...strict({ reason: Type.Optional(Type.String({ maxLength: 2000 })) }), nullable: true }),
          response: { 200: appShape },
        },
      },
      async (request) => appJson(await d.run(ctx, by(request), { clientId: request.params.client_id, reason: request.body?.reason ?? '' })),
    )
  }

  app.post(
    '/admin/v1/apps',
    {
      schema: {
        ...doc('Create an app; the client secret is in this response only'),
        body: strict({
          name: str(),
          kind: oneOf(['private', 'public']),
          tenant_id: Type.Optional(str()),
          environment: Type.Optional(oneOf(['sandbox', 'live'])),
          scopes: Type.Optional(str()),
          token_ttl: Type.Optional(Type.Integer()),
          install_url: Type.Optional(str()),
          redirect_uris: Type.Optional(list(str())),
          contact_email: Type.Optional(str()),
          data_api_url: Type.Optional(str()),
          description: Type.Optional(str()),
          listed: Type.Optional(Type.Boolean()),
          logo_url: Type.Optional(str()),
          short_description: Type.Optional(str()),
          categories: Type.Optional(list(str(100))),
          publisher: Type.Optional(str()),
          support_url: Type.Optional(str()),
          privacy_policy_url: Type.Optional(str()),
        }),
        response: { 201: strict({ ...appShape.properties, client_secret: Type.Optional(str()), sandbox_target_id: Type.Optional(str()) }) },
      },
    },
    async (request, reply) => {
      const created = await createApp(ctx, by(request), appInput(request.body))
      const sandbox = created.sandboxTenant ? { sandbox_target_id: created.sandboxTenant.id } : {}
      // A public client has no secret (RFC 6749 §2.1): the field is left out.
      const secret = created.clientSecret === null ? {} : { client_secret: created.clientSecret }
      return reply.code(201).send({ ...appJson(created.app), ...secret, ...sandbox })
    },
  )

  app.post(
    '/admin/v1/apps/:client_id/rotate-secret',
    {
      schema: {
        ...doc('Rotate a client secret; the old one works for `grace` seconds'),
        params: strict({ client_id: str() }),
        body: Type.Unsafe<{ grace?: number } | undefined>({ ...strict({ grace: Type.Optional(Type.Integer({ minimum: 0, maximum: 2592000 })) }), nullable: true }),
        response: { 200: strict({ client_id: str(), client_secret: str(), old_secret_expires_at: str() }) },
      },
    },
    async (request) => {
      const r = await rotateSecret(ctx, by(request), { clientId: request.params.client_id, graceSeconds: request.body?.grace ?? 86400 })
      return { client_id: r.app.clientId, client_secret: r.clientSecret, old_secret_expires_at: new Date(r.oldSecretsExpireAt).toISOString() }
    },
  )

  app.delete(
    '/admin/v1/apps/:client_id',
    {
      schema: { ...doc('Delete an app: its grants and every token end at once'), params: strict({ client_id: str() }), response: { 204: Type.Null() } },
    },
    async (request, reply) => {
      await deleteApp(ctx, by(request), { clientId: request.params.client_id })
      return reply.code(204).send(null)
    },
  )

  app.get(
    '/admin/v1/grants',
    {
      schema: { ...doc('List grants'), querystring: strict({ tenant_id: Type.Optional(str()) }), response: { 200: list(grant) } },
    },
    async (request) => {
      const tenantId = request.query.tenant_id
      return (await s.listGrants(tenantId ? { tenantId } : {})).map(grantJson)
    },
  )

  app.post(
    '/admin/v1/grants',
    {
      schema: { ...doc('Grant an app access to a tenant'), body: strict({ client_id: str(), tenant_id: str(), scopes: Type.Optional(str()) }), response: { 201: grant } },
    },
    async (request, reply) => {
      const b = request.body
      const g = await createGrant(ctx, by(request), { clientId: b.client_id, tenantId: b.tenant_id, ...(b.scopes !== undefined ? { scopes: b.scopes } : {}) })
      return reply.code(201).send(grantJson(g))
    },
  )

  app.post(
    '/admin/v1/grants/:id/revoke',
    {
      schema: { ...doc('Revoke a grant: every token standing on it stops at once'), params: strict({ id: str() }), response: { 200: grant } },
    },
    async (request) => grantJson(await revokeGrant(ctx, by(request), { grantId: request.params.id })),
  )

  app.get('/admin/v1/keys', { schema: { ...doc('List signing keys'), response: { 200: list(key) } } }, async () => (await s.listSigningKeys()).map(keyJson))

  app.post(
    '/admin/v1/keys/rotate',
    {
      schema: { ...doc('Rotate signing keys: the published next key signs, the old one verifies until its tokens expire'), response: { 200: list(key) } },
    },
    async (request) => {
      const { signingAlg, tokenTtl } = ctx.config
      return (await rotateSigningKeys(ctx, by(request), { alg: signingAlg, defaultMaxTtl: Math.max(tokenTtl.public, tokenTtl.private) })).map(keyJson)
    },
  )

  app.get(
    '/admin/v1/audit',
    {
      schema: {
        ...doc('The audit log, newest first'),
        querystring: strict({ client_id: Type.Optional(str()), tenant_id: Type.Optional(str()), limit: Type.Integer({ minimum: 1, maximum: 10000, default: 100 }) }),
        response: { 200: list(audit) },
      },
    },
    async (request) => {
      const q = request.query
      const found = q.client_id ? await s.getAppByClientId(q.client_id) : undefined
      if (q.client_id && !found) throw notFound(`no app with client_id ${q.client_id}`)
      return (await s.listAudit({ ...(found ? { appIds: [found.id] } : {}), ...(q.tenant_id ? { tenantIds: [q.tenant_id] } : {}), limit: q.limit })).map(auditJson)
    },
  )
}

const sha256 = (value: string): Buffer => createHash('sha256').update(value).digest()

// ---- response shapes: what the OpenAPI document shows and fast-json-stringify writes ----

const nullableStr = nullable(Type.String())
const doc = (summary: string) => ({ tags: ['admin'], summary, security: [{ adminToken: [] }] })

const tenant = strict({ id: str(), name: str(), environment: str(), marketplace_id: str(), created_at: str() })
const listing = {
  logo_url: nullableStr,
  short_description: Type.String(),
  categories: list(str()),
  publisher: nullableStr,
  support_url: nullableStr,
  privacy_policy_url: nullableStr,
}
const reviewed = strict({ name: str(), scopes: str(), install_url: nullableStr, redirect_uris: list(str()), data_api_url: nullableStr, ...listing })
const appShape = strict({
  client_id: str(),
  name: str(),
  kind: str(),
  environment: str(),
  tenant_id: nullableStr,
  scopes: str(),
  token_ttl: nullable(Type.Integer()),
  install_url: nullableStr,
  redirect_uris: list(str()),
  contact_email: nullableStr,
  data_api_url: nullableStr,
  description: str(),
  listed: Type.Boolean(),
  ...listing,
  owner_user_id: nullableStr,
  review: str(),
  review_reason: nullableStr,
  approved_at: nullableStr,
  proposed: nullable(reviewed),
  suspended_at: nullableStr,
  suspended_reason: nullableStr,
})
const user = strict({
  id: str(),
  email: str(),
  created_at: str(),
  email_verified_at: nullableStr,
  operator: Type.Boolean(),
  suspended_at: nullableStr,
  suspended_reason: nullableStr,
})
const securityEventShape = strict({
  id: str(),
  at: str(),
  kind: str(),
  user_id: nullableStr,
  email: nullableStr,
  client_id: nullableStr,
  tenant_id: nullableStr,
  address: nullableStr,
  details: Type.Record(Type.String(), Type.Unknown()),
})
const mailStates = ['local', 'pending', 'sent', 'failed'] as const
const mail = strict({
  id: str(),
  to: str(),
  subject: str(),
  kind: str(),
  state: str(),
  attempts: Type.Integer(),
  error: nullableStr,
  created_at: str(),
  sent_at: nullableStr,
  text: nullableStr,
})
const page = strict({
  q: Type.Optional(Type.String({ maxLength: 200 })),
  limit: Type.Integer({ minimum: 1, maximum: 500, default: 50 }),
  offset: Type.Integer({ minimum: 0, default: 0 }),
})
const pageOf = (q: { q?: string | undefined; limit: number; offset: number }) => ({ limit: q.limit, offset: q.offset, ...(q.q ? { query: q.q } : {}) })
const grant = strict({ id: str(), app_id: str(), tenant_id: str(), scopes: str(), status: str() })
const key = strict({ kid: str(), alg: str(), state: str(), created_at: str(), retire_at: nullableStr })
const audit = strict({
  id: str(),
  at: str(),
  actor: str(),
  actor_user_id: nullableStr,
  action: str(),
  app_id: nullableStr,
  client_id: nullableStr,
  tenant_id: nullableStr,
  object_id: str(),
  address: nullableStr,
  details: Type.Record(Type.String(), Type.Unknown()),
})

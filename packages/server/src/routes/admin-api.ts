import { createHash, timingSafeEqual } from 'node:crypto'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import {
  InvalidToken, MissingToken, adminApiActor, notFound, createApp, createGrant, createTenant, createUser, deleteApp, revokeGrant, rotateSecret,
  rotateSigningKeys, type Actor, type CoreContext,
} from '@fieldgate/core'
import { appJson, auditJson, grantJson, keyJson, tenantJson } from '../admin-json.js'

/**
 * The CLI's operations over HTTP (`/admin/v1`), for scripts and control planes that cannot run the
 * CLI beside the store. Authenticated by FIELDGATE_ADMIN_TOKEN; off when it is unset. Every route
 * has a schema, which validates input and is what `/openapi.json` documents.
 */
export async function adminApiRoutes(app: FastifyInstance, { ctx }: { ctx: CoreContext }): Promise<void> {
  const expected = ctx.config.adminToken && sha256(ctx.config.adminToken)
  if (!expected) return
  app.addHook('onRequest', async (request) => {
    const header = request.headers.authorization
    if (!header || !/^bearer /i.test(header)) throw new MissingToken()
    if (!timingSafeEqual(sha256(header.slice(7).trim()), expected)) throw new InvalidToken('The admin token is not valid')
  })
  const by = (request: FastifyRequest): Actor => adminApiActor(request.ip)
  const s = ctx.storage

  app.get('/admin/v1/tenants', { schema: { ...doc('List tenants'), response: { 200: list(tenant) } } }, async () => (await s.listTenants()).map(tenantJson))

  app.post('/admin/v1/tenants', {
    schema: { ...doc('Create a tenant'), body: object({ name: str, environment: { type: 'string', enum: ['sandbox', 'live'] } }, ['name', 'environment']), response: { 201: tenant } },
  }, async (request, reply) => {
    const b = request.body as { name: string; environment: string }
    return reply.code(201).send(tenantJson(await createTenant(ctx, by(request), b)))
  })

  app.post('/admin/v1/users', {
    schema: {
      ...doc('Create a user, optionally a member of a tenant'),
      body: object({ email: str, password: { type: 'string', minLength: 10, maxLength: 1000 }, tenant_id: str, role: { type: 'string', enum: ['owner', 'admin', 'member'] } }, ['email', 'password']),
      response: { 201: object({ id: str, email: str }) },
    },
  }, async (request, reply) => {
    const b = request.body as { email: string; password: string; tenant_id?: string; role?: string }
    const u = await createUser(ctx, by(request), { email: b.email, password: b.password, ...(b.tenant_id ? { tenantId: b.tenant_id, role: b.role ?? 'member' } : {}) })
    return reply.code(201).send({ id: u.id, email: u.email })
  })

  app.get('/admin/v1/apps', { schema: { ...doc('List apps'), response: { 200: list(appShape) } } }, async () => (await s.listApps()).map(appJson))

  app.post('/admin/v1/apps', {
    schema: {
      ...doc('Create an app; the client secret is in this response only'),
      body: object({
        name: str, kind: { type: 'string', enum: ['private', 'public'] }, tenant_id: str, environment: { type: 'string', enum: ['sandbox', 'live'] },
        scopes: str, token_ttl: { type: 'integer' }, install_url: str, redirect_uris: { type: 'array', items: str }, contact_email: str,
        data_api_url: str, description: str, listed: { type: 'boolean' },
      }, ['name', 'kind']),
      response: { 201: { ...appShape, properties: { ...appShape.properties, client_secret: str, sandbox_target_id: str } } },
    },
  }, async (request, reply) => {
    const b = request.body as {
      name: string; kind: string; tenant_id?: string; environment?: string; scopes?: string; token_ttl?: number; install_url?: string
      redirect_uris?: string[]; contact_email?: string; data_api_url?: string; description?: string; listed?: boolean
    }
    const created = await createApp(ctx, by(request), {
      name: b.name, kind: b.kind,
      ...(b.tenant_id ? { tenantId: b.tenant_id } : {}), ...(b.environment ? { environment: b.environment } : {}),
      ...(b.scopes !== undefined ? { scopes: b.scopes } : {}), ...(b.token_ttl !== undefined ? { tokenTtl: b.token_ttl } : {}),
      ...(b.install_url ? { installUrl: b.install_url } : {}), ...(b.redirect_uris ? { redirectUris: b.redirect_uris } : {}),
      ...(b.contact_email ? { contactEmail: b.contact_email } : {}), ...(b.data_api_url ? { dataApiUrl: b.data_api_url } : {}),
      ...(b.description ? { description: b.description } : {}), ...(b.listed !== undefined ? { listed: b.listed } : {}),
    })
    const sandbox = created.sandboxTenant ? { sandbox_target_id: created.sandboxTenant.id } : {}
    return reply.code(201).send({ ...appJson(created.app), client_secret: created.clientSecret, ...sandbox })
  })

  app.post('/admin/v1/apps/:client_id/rotate-secret', {
    schema: {
      ...doc('Rotate a client secret; the old one works for `grace` seconds'), params: object({ client_id: str }, ['client_id']),
      body: { ...object({ grace: { type: 'integer', minimum: 0, maximum: 2592000 } }), nullable: true },
      response: { 200: object({ client_id: str, client_secret: str, old_secret_expires_at: str }) },
    },
  }, async (request) => {
    const { client_id: clientId } = request.params as { client_id: string }
    const grace = (request.body as { grace?: number } | undefined)?.grace ?? 86400
    const r = await rotateSecret(ctx, by(request), { clientId, graceSeconds: grace })
    return { client_id: r.app.clientId, client_secret: r.clientSecret, old_secret_expires_at: new Date(r.oldSecretsExpireAt).toISOString() }
  })

  app.delete('/admin/v1/apps/:client_id', {
    schema: { ...doc('Delete an app: its grants and every token end at once'), params: object({ client_id: str }, ['client_id']), response: { 204: { type: 'null' } } },
  }, async (request, reply) => {
    await deleteApp(ctx, by(request), { clientId: (request.params as { client_id: string }).client_id })
    return reply.code(204).send()
  })

  app.get('/admin/v1/grants', {
    schema: { ...doc('List grants'), querystring: object({ tenant_id: str }), response: { 200: list(grant) } },
  }, async (request) => {
    const { tenant_id: tenantId } = request.query as { tenant_id?: string }
    return (await s.listGrants(tenantId ? { tenantId } : {})).map(grantJson)
  })

  app.post('/admin/v1/grants', {
    schema: { ...doc('Grant an app access to a tenant'), body: object({ client_id: str, tenant_id: str, scopes: str }, ['client_id', 'tenant_id']), response: { 201: grant } },
  }, async (request, reply) => {
    const b = request.body as { client_id: string; tenant_id: string; scopes?: string }
    const g = await createGrant(ctx, by(request), { clientId: b.client_id, tenantId: b.tenant_id, ...(b.scopes !== undefined ? { scopes: b.scopes } : {}) })
    return reply.code(201).send(grantJson(g))
  })

  app.post('/admin/v1/grants/:id/revoke', {
    schema: { ...doc('Revoke a grant: every token standing on it stops at once'), params: object({ id: str }, ['id']), response: { 200: grant } },
  }, async (request) => {
    const g = await revokeGrant(ctx, by(request), { grantId: (request.params as { id: string }).id })
    return grantJson(g)
  })

  app.get('/admin/v1/keys', { schema: { ...doc('List signing keys'), response: { 200: list(key) } } }, async () => (await s.listSigningKeys()).map(keyJson))

  app.post('/admin/v1/keys/rotate', {
    schema: { ...doc('Rotate signing keys: the published next key signs, the old one verifies until its tokens expire'), response: { 200: list(key) } },
  }, async (request) => {
    const { signingAlg, tokenTtl } = ctx.config
    return (await rotateSigningKeys(ctx, by(request), { alg: signingAlg, defaultMaxTtl: Math.max(tokenTtl.public, tokenTtl.private) })).map(keyJson)
  })

  app.get('/admin/v1/audit', {
    schema: { ...doc('The audit log, newest first'), querystring: object({ client_id: str, tenant_id: str, limit: { type: 'integer', minimum: 1, maximum: 10000, default: 100 } }), response: { 200: list(audit) } },
  }, async (request) => {
    const q = request.query as { client_id?: string; tenant_id?: string; limit: number }
    const found = q.client_id ? await s.getAppByClientId(q.client_id) : undefined
    if (q.client_id && !found) throw notFound(`no app with client_id ${q.client_id}`)
    return (await s.listAudit({ ...(found ? { appIds: [found.id] } : {}), ...(q.tenant_id ? { tenantIds: [q.tenant_id] } : {}), limit: q.limit })).map(auditJson)
  })
}

const sha256 = (value: string): Buffer => createHash('sha256').update(value).digest()

// ---- schemas: input validation and the OpenAPI document ----

type Schema = Record<string, unknown>
// PostgreSQL text cannot hold NUL: refused at the edge on both engines alike.
const str = { type: 'string', maxLength: 2000, pattern: '^[^\\u0000]*$' } as const
const nullableStr = { type: ['string', 'null'] } as const
const doc = (summary: string) => ({ tags: ['admin'], summary, security: [{ adminToken: [] }] })
const object = (properties: Record<string, Schema>, required: string[] = []) => ({ type: 'object', additionalProperties: false, properties, required })
const list = (item: Schema) => ({ type: 'array', items: item })

const tenant = object({ id: str, name: str, environment: str, marketplace_id: str, created_at: str })
const appShape = object({
  client_id: str, name: str, kind: str, environment: str, tenant_id: nullableStr, scopes: str, token_ttl: { type: ['integer', 'null'] },
  install_url: nullableStr, redirect_uris: list(str), contact_email: nullableStr, data_api_url: nullableStr, description: str, listed: { type: 'boolean' },
})
const grant = object({ id: str, app_id: str, tenant_id: str, scopes: str, status: str })
const key = object({ kid: str, alg: str, state: str, created_at: str, retire_at: nullableStr })
const audit = object({
  id: str, at: str, actor: str, actor_user_id: nullableStr, action: str, app_id: nullableStr, client_id: nullableStr, tenant_id: nullableStr, object_id: str,
  address: nullableStr, details: { type: 'object', additionalProperties: true },
})

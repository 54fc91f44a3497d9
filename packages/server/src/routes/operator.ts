import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { Type } from 'typebox'
import {
  AuthorizationPageError,
  OperationError,
  approveApp,
  consoleActor,
  isLookupKey,
  listReviewQueue,
  redeliverEvent,
  retryEventNow,
  rejectApp,
  securityEventKinds,
  suspendAccount,
  suspendApp,
  unsuspendAccount,
  unsuspendApp,
  type Actor,
  type App,
  type OutboxEvent,
  type Tenant,
  type User,
} from '@fieldgate/core'
import type { PageKit } from '../plugins/pages.js'
import {
  appDetailPage,
  appsPage,
  auditPage,
  deliveriesPage,
  deliveryPage,
  grantsPage,
  mailPage,
  overviewPage,
  reviewPage,
  securityPage,
  tenantDetailPage,
  tenantsPage,
  userDetailPage,
  usersPage,
  type AppDetail,
  type ConsoleFrame,
  type GrantRow,
  type Owned,
  type Paging,
} from '../pages/operator.js'
import type { FieldError } from '../pages/form.js'

const perPage = 50

/** A listing's query: a search, a page number, and the filters some listings have. Anything else is refused (400). */
const listQuery = Type.Object({
  q: Type.Optional(Type.String({ maxLength: 200 })),
  page: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000 })),
  notice: Type.Optional(Type.Unknown()),
})
const securityQuery = Type.Object({ ...listQuery.properties, kind: Type.Optional(Type.Union([Type.Literal(''), ...securityEventKinds.map((k) => Type.Literal(k))])) })
const mailQuery = Type.Object({ ...listQuery.properties, state: Type.Optional(Type.Union(['', 'local', 'pending', 'sent', 'failed'].map((s) => Type.Literal(s)))) })
/** Narrowing to one app (its client_id) or one tenant (its id): what the app and tenant pages link to. */
const scoped = { app: Type.Optional(Type.String({ maxLength: 100 })), tenant: Type.Optional(Type.String({ maxLength: 100 })) }
const grantsQuery = Type.Object({ ...listQuery.properties, ...scoped, status: Type.Optional(Type.Union(['', 'active', 'revoked'].map((s) => Type.Literal(s)))) })
const deliveriesQuery = Type.Object({
  ...listQuery.properties,
  app: scoped.app,
  state: Type.Optional(Type.Union(['', 'pending', 'delivered', 'failed'].map((s) => Type.Literal(s)))),
})
const usersQuery = Type.Object({ ...listQuery.properties, tenant: scoped.tenant })
const clientIdParams = Type.Object({ clientId: Type.String({ maxLength: 100 }) })
const eventIdParams = Type.Object({ eventId: Type.String({ maxLength: 100 }) })
const idParams = Type.Object({ id: Type.String({ maxLength: 100 }) })
const eventParams = Type.Object({ clientId: Type.String({ maxLength: 100 }), eventId: Type.String({ maxLength: 100 }) })

/** What a console page may say after a redirect, by name: a page never echoes text from its URL. */
const notices = {
  approved: 'Approved: the partner was told.',
  rejected: 'Rejected: the partner was told why.',
  suspended: 'Suspended: every token is refused, and the partner was told why.',
  unsuspended: 'The suspension is lifted.',
  redelivered: 'The event will be delivered again.',
  waiting: 'The event is already waiting to be delivered.',
  retrying: 'The event will be attempted again now.',
  busy: 'The event is being delivered right now, or was delivered already.',
} as const
const noticeOf = (value: unknown): string | undefined => Object.entries(notices).find(([name]) => name === value)?.[1]

/**
 * The operator console (`/operator`): tenants, users, apps with their owners and grants, the review
 * queue, Data API deliveries, the audit log, security events and mail, with search and paging.
 * Only operators see it: to anyone else it does not exist (404). Decisions call the same operations
 * as the CLI and the admin API, as the signed-in operator (consoleActor), so the audit log names them.
 */
export function operatorRoutes(fastify: FastifyInstance, kit: PageKit): void {
  const { ctx } = kit
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>()
  const s = ctx.storage

  /** The signed-in operator and their actor, or undefined when the reply is already a redirect to sign in. */
  const operator = async (request: FastifyRequest, reply: FastifyReply): Promise<{ user: User; actor: Actor } | undefined> => {
    const user = await kit.user(request, reply)
    if (!user) return undefined
    if (!user.operator) throw new AuthorizationPageError('There is no such page.', 404)
    return { user, actor: consoleActor(user, request.ip) }
  }
  const frame = (request: FastifyRequest, reply: FastifyReply, user: User, notice?: unknown): ConsoleFrame => ({ csrf: kit.csrf(request, reply), user, notice: noticeOf(notice) })
  /** One more row than the page shows, to know whether there is a next page. */
  const paging = <T>(path: string, q: { q?: string | undefined; page?: number | undefined }, rows: T[], keep?: Record<string, string>): { rows: T[]; paging: Paging } => ({
    rows: rows.slice(0, perPage),
    paging: { path, q: q.q ?? '', page: q.page ?? 1, hasNext: rows.length > perPage, ...(keep ? { keep } : {}) },
  })
  const window = (q: { q?: string | undefined; page?: number | undefined }) => ({
    limit: perPage + 1,
    offset: ((q.page ?? 1) - 1) * perPage,
    ...(q.q?.trim() ? { query: q.q.trim() } : {}),
  })
  const owned = (apps: App[]): Promise<Owned[]> => Promise.all(apps.map(async (a) => ({ app: a, owner: a.ownerUserId ? await s.getUser(a.ownerUserId) : undefined })))
  const findApp = async (clientId: string): Promise<App> => {
    const found = isLookupKey(clientId) ? await s.getAppByClientId(clientId) : undefined
    if (!found) throw new AuthorizationPageError('There is no app with that client_id.', 404)
    return found
  }
  const findTenant = async (id: string): Promise<Tenant> => {
    const tenant = /^[0-9a-f-]{36}$/.test(id) ? await s.getTenant(id) : undefined
    if (!tenant) throw new AuthorizationPageError('There is no such tenant.', 404)
    return tenant
  }
  /** Each distinct app or tenant of a page read once: a page names at most `perPage` of them. */
  const lookup = async <T>(ids: string[], get: (id: string) => Promise<T | undefined>): Promise<Map<string, T | undefined>> =>
    new Map(await Promise.all([...new Set(ids)].map(async (id) => [id, await get(id)] as const)))
  const withParties = async (grants: Awaited<ReturnType<typeof s.listGrants>>): Promise<GrantRow[]> => {
    const [apps, tenants] = await Promise.all([
      lookup(
        grants.map((g) => g.appId),
        (id) => s.getApp(id),
      ),
      lookup(
        grants.map((g) => g.tenantId),
        (id) => s.getTenant(id),
      ),
    ])
    return grants.map((grant) => ({ grant, app: apps.get(grant.appId), tenant: tenants.get(grant.tenantId) }))
  }
  /** The app and tenant pages show this many grants, members and deliveries, and link to the full listing. */
  const firstPage = 10

  app.get('/operator', async (request, reply) => {
    const op = await operator(request, reply)
    if (!op) return reply
    const counted = { limit: 500 }
    const [pending, apps, tenants, users, events] = await Promise.all([
      s.listApps({ review: 'pending', ...counted }),
      s.listApps(counted),
      s.listTenants(counted),
      s.listUsers(counted),
      s.listSecurityEvents({ limit: 10 }),
    ])
    return kit.render(
      reply,
      200,
      overviewPage({ ...frame(request, reply, op.user), pending: pending.length, apps: apps.length, tenants: tenants.length, users: users.length, events }),
    )
  })

  // ---- review ----

  const showReview = async (
    request: FastifyRequest,
    reply: FastifyReply,
    op: { user: User; actor: Actor },
    q: { q?: string; page?: number; notice?: unknown },
    status = 200,
    error?: { clientId: string } & FieldError,
  ) => {
    const { rows, paging: p } = paging('/operator/review', q, await listReviewQueue(ctx, op.actor, window(q)))
    return kit.render(reply, status, reviewPage({ ...frame(request, reply, op.user, q.notice), queue: await owned(rows), paging: p, ...(error ? { error } : {}) }))
  }

  app.get('/operator/review', { schema: { querystring: listQuery } }, async (request, reply) => {
    const op = await operator(request, reply)
    return op ? showReview(request, reply, op, request.query) : reply
  })

  // ---- apps ----

  app.get('/operator/apps', { schema: { querystring: listQuery } }, async (request, reply) => {
    const op = await operator(request, reply)
    if (!op) return reply
    const { rows, paging: p } = paging('/operator/apps', request.query, await s.listApps(window(request.query)))
    return kit.render(reply, 200, appsPage({ ...frame(request, reply, op.user, request.query.notice), apps: await owned(rows), paging: p }))
  })

  const showApp = async (request: FastifyRequest, reply: FastifyReply, user: User, found: App, notice?: unknown, status = 200, error?: AppDetail['error']) => {
    // A first page of each, one row more to know whether to say there are more: 100,000 installs read as fast as ten.
    const [owner, grants, events, audit] = await Promise.all([
      found.ownerUserId ? s.getUser(found.ownerUserId) : undefined,
      s.listGrants({ appId: found.id, limit: firstPage + 1 }),
      s.listEvents({ appId: found.id, limit: firstPage + 1 }),
      s.listAudit({ appIds: [found.id], limit: 50 }),
    ])
    const deliveries = await Promise.all(events.slice(0, firstPage).map(async (event) => ({ event, attempts: await s.listAttempts(event.id) })))
    return kit.render(
      reply,
      status,
      appDetailPage({
        ...frame(request, reply, user, notice),
        app: found,
        owner,
        grants: await withParties(grants.slice(0, firstPage)),
        moreGrants: grants.length > firstPage,
        deliveries,
        moreDeliveries: events.length > firstPage,
        audit,
        ...(error ? { error } : {}),
      }),
    )
  }

  app.get('/operator/apps/:clientId', { schema: { params: clientIdParams, querystring: listQuery } }, async (request, reply) => {
    const op = await operator(request, reply)
    return op ? showApp(request, reply, op.user, await findApp(request.params.clientId), request.query.notice) : reply
  })

  /** A decision on an app: the operation, then back where it was made; a refused one is shown beside its field there. */
  const decide = (verb: keyof typeof appDecisions) =>
    app.post(`/operator/apps/:clientId/${verb}`, { schema: { params: clientIdParams } }, async (request, reply) => {
      const form = kit.form(request)
      const op = await operator(request, reply)
      if (!op) return reply
      const found = await findApp(request.params.clientId)
      const back = form.back === 'review' ? 'review' : 'app'
      try {
        await appDecisions[verb](op.actor, found.clientId, form.reason)
      } catch (err) {
        if (!(err instanceof OperationError) || err.code === 'forbidden') throw err
        const error = { message: err.message, field: err.field ?? 'reason' }
        if (back === 'review') return showReview(request, reply, op, {}, 400, { clientId: found.clientId, ...error })
        return showApp(request, reply, op.user, found, undefined, 400, { ...error, form: verb === 'approve' || verb === 'reject' ? 'review' : 'suspension' })
      }
      const notice = appNotices[verb]
      return reply.redirect(back === 'review' ? `/operator/review?notice=${notice}` : `/operator/apps/${encodeURIComponent(found.clientId)}?notice=${notice}`, 303)
    })
  const appDecisions = {
    approve: (actor: Actor, clientId: string, reason?: string) => approveApp(ctx, actor, { clientId, ...(reason?.trim() ? { reason } : {}) }),
    reject: (actor: Actor, clientId: string, reason?: string) => rejectApp(ctx, actor, { clientId, reason: reason ?? '' }),
    suspend: (actor: Actor, clientId: string, reason?: string) => suspendApp(ctx, actor, { clientId, reason: reason ?? '' }),
    unsuspend: (actor: Actor, clientId: string) => unsuspendApp(ctx, actor, { clientId }),
  }
  const appNotices = { approve: 'approved', reject: 'rejected', suspend: 'suspended', unsuspend: 'unsuspended' } as const
  for (const verb of Object.keys(appDecisions) as (keyof typeof appDecisions)[]) decide(verb)

  /** Redeliver (delivered or failed) and Retry now (waiting), for any app's event, back to its deliveries. */
  const onEvent = (verb: 'redeliver' | 'retry', act: typeof redeliverEvent, done: keyof typeof notices, not: keyof typeof notices) =>
    app.post(`/operator/apps/:clientId/events/:eventId/${verb}`, { schema: { params: eventParams } }, async (request, reply) => {
      kit.form(request)
      const op = await operator(request, reply)
      if (!op) return reply
      const found = await findApp(request.params.clientId)
      const acted = await act(ctx, op.actor, { eventId: request.params.eventId, appId: found.id })
      return reply.redirect(`/operator/apps/${encodeURIComponent(found.clientId)}?notice=${acted.queued ? done : not}`, 303)
    })
  onEvent('redeliver', redeliverEvent, 'redelivered', 'waiting')
  onEvent('retry', retryEventNow, 'retrying', 'busy')

  // ---- grants ----

  app.get('/operator/grants', { schema: { querystring: grantsQuery } }, async (request, reply) => {
    const op = await operator(request, reply)
    if (!op) return reply
    const q = request.query
    const [forApp, forTenant] = await Promise.all([q.app ? findApp(q.app) : undefined, q.tenant ? findTenant(q.tenant) : undefined])
    const status = grantStatuses.find((g) => g === q.status)
    const grants = await s.listGrants({ ...window(q), ...(forApp ? { appId: forApp.id } : {}), ...(forTenant ? { tenantId: forTenant.id } : {}), ...(status ? { status } : {}) })
    const keep = given({ app: forApp?.clientId, tenant: forTenant?.id, status })
    const { rows, paging: p } = paging('/operator/grants', q, grants, keep)
    return kit.render(reply, 200, grantsPage({ ...frame(request, reply, op.user), grants: await withParties(rows), forApp, forTenant, status: status ?? '', paging: p }))
  })

  // ---- Data API deliveries ----

  app.get('/operator/deliveries', { schema: { querystring: deliveriesQuery } }, async (request, reply) => {
    const op = await operator(request, reply)
    if (!op) return reply
    const q = request.query
    const forApp = q.app ? await findApp(q.app) : undefined
    const state = eventStates.find((e) => e === q.state)
    const events = await s.listEvents({ ...window({ page: q.page }), ...(forApp ? { appId: forApp.id } : {}), ...(state ? { state } : {}) })
    const keep = given({ app: forApp?.clientId, state })
    const { rows, paging: p } = paging('/operator/deliveries', { page: q.page }, events, keep)
    const apps = await lookup(
      rows.map((e) => e.appId),
      (id) => s.getApp(id),
    )
    return kit.render(
      reply,
      200,
      deliveriesPage({ ...frame(request, reply, op.user), events: rows.map((event) => ({ event, app: apps.get(event.appId) })), forApp, state: state ?? '', paging: p }),
    )
  })

  const findEvent = async (eventId: string): Promise<{ event: OutboxEvent; app: App }> => {
    const event = isLookupKey(eventId) ? await s.getEvent(eventId) : undefined
    const owner = event ? await s.getApp(event.appId) : undefined
    if (!event || !owner) throw new AuthorizationPageError('There is no such event.', 404)
    return { event, app: owner }
  }

  app.get('/operator/deliveries/:eventId', { schema: { params: eventIdParams, querystring: listQuery } }, async (request, reply) => {
    const op = await operator(request, reply)
    if (!op) return reply
    const { event, app: owner } = await findEvent(request.params.eventId)
    const delivery = { event, attempts: await s.listAttempts(event.id) }
    return kit.render(reply, 200, deliveryPage({ ...frame(request, reply, op.user, request.query.notice), app: owner, delivery }))
  })

  /** The same actions from the deliveries listing, back to the event's page. */
  const onListedEvent = (verb: 'redeliver' | 'retry', act: typeof redeliverEvent, done: keyof typeof notices, not: keyof typeof notices) =>
    app.post(`/operator/deliveries/:eventId/${verb}`, { schema: { params: eventIdParams } }, async (request, reply) => {
      kit.form(request)
      const op = await operator(request, reply)
      if (!op) return reply
      const { event } = await findEvent(request.params.eventId)
      const acted = await act(ctx, op.actor, { eventId: event.id, appId: event.appId })
      return reply.redirect(`/operator/deliveries/${encodeURIComponent(event.id)}?notice=${acted.queued ? done : not}`, 303)
    })
  onListedEvent('redeliver', redeliverEvent, 'redelivered', 'waiting')
  onListedEvent('retry', retryEventNow, 'retrying', 'busy')

  // ---- tenants ----

  app.get('/operator/tenants', { schema: { querystring: listQuery } }, async (request, reply) => {
    const op = await operator(request, reply)
    if (!op) return reply
    const { rows, paging: p } = paging('/operator/tenants', request.query, await s.listTenants(window(request.query)))
    return kit.render(reply, 200, tenantsPage({ ...frame(request, reply, op.user), tenants: rows, paging: p }))
  })

  app.get('/operator/tenants/:id', { schema: { params: idParams } }, async (request, reply) => {
    const op = await operator(request, reply)
    if (!op) return reply
    const tenant = await findTenant(request.params.id)
    const [members, grants] = await Promise.all([s.listMembers(tenant.id, { limit: firstPage + 1 }), s.listGrants({ tenantId: tenant.id, limit: firstPage + 1 })])
    return kit.render(
      reply,
      200,
      tenantDetailPage({
        ...frame(request, reply, op.user),
        tenant,
        members: members.slice(0, firstPage),
        moreMembers: members.length > firstPage,
        grants: await withParties(grants.slice(0, firstPage)),
        moreGrants: grants.length > firstPage,
      }),
    )
  })

  // ---- users ----

  app.get('/operator/users', { schema: { querystring: usersQuery } }, async (request, reply) => {
    const op = await operator(request, reply)
    if (!op) return reply
    const forTenant = request.query.tenant ? await findTenant(request.query.tenant) : undefined
    const users = await s.listUsers({ ...window(request.query), ...(forTenant ? { tenantId: forTenant.id } : {}) })
    const { rows, paging: p } = paging('/operator/users', request.query, users, forTenant ? { tenant: forTenant.id } : undefined)
    return kit.render(reply, 200, usersPage({ ...frame(request, reply, op.user), users: rows, forTenant, paging: p }))
  })

  const findUser = async (id: string): Promise<User> => {
    const person = /^[0-9a-f-]{36}$/.test(id) ? await s.getUser(id) : undefined
    if (!person) throw new AuthorizationPageError('There is no such user.', 404)
    return person
  }
  const showUser = async (request: FastifyRequest, reply: FastifyReply, user: User, person: User, notice?: unknown, status = 200, error?: FieldError) => {
    const [memberships, apps, events] = await Promise.all([
      s.listMemberships(person.id),
      s.listApps({ ownerUserId: person.id }),
      s.listSecurityEvents({ userId: person.id, limit: 20 }),
    ])
    const withTenants = await Promise.all(memberships.map(async (membership) => ({ membership, tenant: await s.getTenant(membership.tenantId) })))
    return kit.render(reply, status, userDetailPage({ ...frame(request, reply, user, notice), person, memberships: withTenants, apps, events, ...(error ? { error } : {}) }))
  }

  app.get('/operator/users/:id', { schema: { params: idParams, querystring: listQuery } }, async (request, reply) => {
    const op = await operator(request, reply)
    return op ? showUser(request, reply, op.user, await findUser(request.params.id), request.query.notice) : reply
  })

  for (const verb of ['suspend', 'unsuspend'] as const)
    app.post(`/operator/users/:id/${verb}`, { schema: { params: idParams } }, async (request, reply) => {
      const form = kit.form(request)
      const op = await operator(request, reply)
      if (!op) return reply
      const person = await findUser(request.params.id)
      try {
        if (verb === 'suspend') await suspendAccount(ctx, op.actor, { email: person.email, reason: form.reason ?? '' })
        else await unsuspendAccount(ctx, op.actor, { email: person.email })
      } catch (err) {
        if (!(err instanceof OperationError) || err.code === 'forbidden') throw err
        return showUser(request, reply, op.user, person, undefined, 400, { message: err.message, ...(err.field ? { field: err.field } : {}) })
      }
      return reply.redirect(`/operator/users/${person.id}?notice=${verb === 'suspend' ? 'suspended' : 'unsuspended'}`, 303)
    })

  // ---- logs ----

  app.get('/operator/audit', { schema: { querystring: listQuery } }, async (request, reply) => {
    const op = await operator(request, reply)
    if (!op) return reply
    const { rows, paging: p } = paging('/operator/audit', request.query, await s.listAudit(window(request.query)))
    return kit.render(reply, 200, auditPage({ ...frame(request, reply, op.user), entries: rows, paging: p }))
  })

  app.get('/operator/security', { schema: { querystring: securityQuery } }, async (request, reply) => {
    const op = await operator(request, reply)
    if (!op) return reply
    const kind = request.query.kind || undefined
    const events = await s.listSecurityEvents({ ...window(request.query), ...(kind ? { kinds: [kind] } : {}) })
    const { rows, paging: p } = paging('/operator/security', request.query, events, kind ? { kind } : undefined)
    return kit.render(reply, 200, securityPage({ ...frame(request, reply, op.user), events: rows, kinds: securityEventKinds, kind: kind ?? '', paging: p }))
  })

  app.get('/operator/mail', { schema: { querystring: mailQuery } }, async (request, reply) => {
    const op = await operator(request, reply)
    if (!op) return reply
    const state = mailStates.find((m) => m === request.query.state)
    const mail = await s.listMail({ ...window(request.query), ...(state ? { state } : {}) })
    const { rows, paging: p } = paging('/operator/mail', request.query, mail, state ? { state } : undefined)
    return kit.render(reply, 200, mailPage({ ...frame(request, reply, op.user), mail: rows, smtp: ctx.config.smtpUrl !== undefined, state: state ?? '', paging: p }))
  })
}

const mailStates = ['local', 'pending', 'sent', 'failed'] as const

/** The filters a listing's links keep: those that were given. */
const given = (filters: Record<string, string | undefined>): Record<string, string> =>
  Object.fromEntries(Object.entries(filters).filter((f): f is [string, string] => f[1] !== undefined))
const grantStatuses = ['active', 'revoked'] as const
const eventStates = ['pending', 'delivered', 'failed'] as const

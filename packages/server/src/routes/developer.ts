import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { Type } from 'typebox'
import {
  OperationError,
  appCategories,
  resendVerification,
  adminTenants,
  createApp,
  deleteApp,
  ensurePartnerSandbox,
  findOwnApp,
  installApp,
  installRedirect,
  operationStatus,
  redeliverEvent,
  retryEventNow,
  revealSecret,
  sendTestEvent,
  rotateSecret,
  scopeDescriptions,
  stashSecret,
  updateApp,
  type App,
  type AppFields,
  type OutboxEvent,
  type Params,
  type User,
} from '@fieldgate/core'
import { readParams } from '../plugins/body.js'
import type { PageKit } from '../plugins/pages.js'
import { activityPerPage, appPage, deliveriesPerPage, developerHome, newAppPage, secretPage, secretShownPage, type AppFormValues } from '../pages/developer.js'
import type { FieldError } from '../pages/form.js'

/**
 * Notices an app page shows after a form's redirect (POST/redirect/GET), named in its query: the page
 * never echoes text from the URL.
 */
const notices = {
  saved: 'Saved.',
  submitted: 'Saved. Your changes wait for review by the platform.',
  installed: 'Installed on your sandbox.',
  redelivered: 'The event will be delivered again.',
  waiting: 'The event is already waiting to be delivered.',
  retrying: 'The event will be attempted again now.',
  busy: 'The event is being delivered right now, or was delivered already.',
  test_sent: 'A test event is on its way to your Data API URL.',
  verified: 'Your email address is confirmed: you can create apps.',
  resent: 'We sent a new link to your address. It works for 24 hours.',
  deleted: 'The app is deleted: it is uninstalled everywhere and its tokens are refused.',
  created_public: 'The app is created. It is a public client: it has no secret, and uses PKCE and refresh tokens.',
} as const
type Notice = keyof typeof notices
const isNotice = (value: unknown): value is Notice => typeof value === 'string' && Object.hasOwn(notices, value)

// A page ignores what it does not understand in its query: an odd `notice` or `h` shows no notice or no secret.
const pageQuery = Type.Object({
  notice: Type.Optional(Type.Unknown()),
  h: Type.Optional(Type.Unknown()),
  state: Type.Optional(Type.Unknown()),
  events: Type.Optional(Type.Unknown()),
  activity: Type.Optional(Type.Unknown()),
})

const eventStates = ['pending', 'delivered', 'failed'] as const
const eventState = (value: unknown): OutboxEvent['state'] | undefined => eventStates.find((s) => s === value)
/** A list's starting row from the query: a whole number up to 10000, else the first page. */
const offsetOf = (value: unknown): number => (typeof value === 'string' && /^\d{1,5}$/.test(value) ? Math.min(Number(value), 10_000) : 0)

/**
 * The developer portal (FieldEdge's "Apps → Create New OAuth App"): a signed-in partner creates apps,
 * sees the secret once, edits, rotates, deletes, and installs a sandbox app on their own sandbox
 * tenant. A partner only ever sees and changes their own apps. Every form that changes something
 * answers with a 303 redirect, so reloading the page after it repeats nothing; a new secret is shown
 * through a one-time handle (core/secret-handles.ts). A form the core refuses is shown again (400),
 * having changed nothing.
 */
export function developerRoutes(fastify: FastifyInstance, kit: PageKit): void {
  const { ctx } = kit
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>()

  const showHome = async (request: FastifyRequest, reply: FastifyReply, user: User, status: number, say: { notice?: string; error?: string }) => {
    const sandbox = await ensurePartnerSandbox(ctx, kit.actor(request, user))
    const apps = await ctx.storage.listApps({ ownerUserId: user.id })
    // The policy decides whether an unconfirmed address holds back apps (apps.ts requireVerifiedPartner).
    const confirmFirst = user.emailVerifiedAt === null && ctx.config.signup !== 'open'
    return kit.render(reply, status, developerHome({ csrf: kit.csrf(request, reply), user, sandbox, apps, confirmFirst, ...say }))
  }

  app.get('/developer', { schema: { querystring: pageQuery } }, async (request, reply) => {
    const user = await kit.user(request, reply)
    if (!user) return reply
    const { notice } = request.query
    return showHome(request, reply, user, 200, isNotice(notice) ? { notice: notices[notice] } : {})
  })

  /** "Send the link again", for a partner whose address is not confirmed yet. */
  app.post('/developer/verify-email', async (request, reply) => {
    kit.form(request)
    const user = await kit.user(request, reply, '/developer')
    if (!user) return reply
    try {
      await resendVerification(ctx, kit.actor(request, user))
    } catch (err) {
      if (err instanceof OperationError && err.code === 'conflict') return showHome(request, reply, user, 409, { error: err.message })
      throw err
    }
    return reply.redirect('/developer?notice=resent', 303)
  })

  const showNew = async (request: FastifyRequest, reply: FastifyReply, user: User, status: number, values: AppFormValues, error?: FieldError) => {
    await ensurePartnerSandbox(ctx, kit.actor(request, user))
    const tenants = await adminTenants(ctx, user)
    return kit.render(reply, status, newAppPage({ csrf: kit.csrf(request, reply), user, values, tenants, ...(error ? { error } : {}) }))
  }

  /** Keeps the new secret for one view by this browser and sends the person to it. */
  const toSecret = async (request: FastifyRequest, reply: FastifyReply, app: App, clientSecret: string, heading: string, note: string) => {
    const browserId = kit.browser.id(request, reply)
    const handle = await stashSecret(ctx.storage, { app, clientSecret, browserId, heading, note }, kit.masterKey, ctx.now())
    return reply.redirect(`/developer/apps/${app.clientId}/secret?${new URLSearchParams({ h: handle })}`, 303)
  }

  app.get('/developer/apps/new', async (request, reply) => {
    const user = await kit.user(request, reply)
    if (!user) return reply
    return showNew(request, reply, user, 200, {})
  })

  app.post('/developer/apps', async (request, reply) => {
    const form = kit.form(request)
    const user = await kit.user(request, reply, '/developer/apps/new')
    if (!user) return reply
    const values = formValues(form)
    try {
      const kind = values.kind === 'private' ? 'private' : 'public'
      // A private app belongs to the tenant chosen; a public one tests on the partner's sandbox, where
      // createApp installs it at once, so the target_id the next page shows answers tokens straight away.
      const where = kind === 'private' ? { tenantId: values.tenantId ?? '' } : { environment: values.environment === 'live' ? 'live' : 'sandbox' }
      const created = await createApp(ctx, kit.actor(request, user), { ...appFields(form), name: form.name ?? '', kind, ...where })
      const note = created.sandboxTenant ? `Test it on your sandbox: target_id ${created.sandboxTenant.id}.` : ''
      if (created.clientSecret === null) return toApp(reply, created.app, 'created_public')
      return toSecret(request, reply, created.app, created.clientSecret, `${created.app.name} is created`, note)
    } catch (err) {
      if (err instanceof OperationError) return showNew(request, reply, user, operationStatus[err.code], values, fieldError(err))
      throw err
    }
  })

  /** The app, if the signed-in person owns it; another partner's app is as good as absent. */
  const ownedApp = async (request: FastifyRequest, reply: FastifyReply, user: User): Promise<App | undefined> => {
    const found = await findOwnApp(ctx, kit.actor(request, user), readParams(request.params).clientId ?? '')
    if (found) return found
    await kit.error(request, reply, 404, 'No such app', 'You have no app with that client ID.')
    return undefined
  }

  /** A form posted about one of the signed-in partner's own apps: CSRF first, then the person, then the app. */
  const onOwnApp =
    (handler: (c: { request: FastifyRequest; reply: FastifyReply; user: User; app: App; form: Params }) => Promise<FastifyReply>) =>
    async (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> => {
      const form = kit.form(request)
      const user = await kit.user(request, reply)
      if (!user) return reply
      const found = await ownedApp(request, reply, user)
      return found ? handler({ request, reply, user, app: found, form }) : reply
    }

  /** Where the page's lists stand: the deliveries' state filter and page, the activity's page. */
  interface Lists {
    state?: OutboxEvent['state'] | undefined
    events?: number
    activity?: number
  }

  const showApp = async (
    request: FastifyRequest,
    reply: FastifyReply,
    user: User,
    found: App,
    status = 200,
    extra: { notice?: string; error?: FieldError } = {},
    lists: Lists = {},
  ) => {
    const sandbox = await ensurePartnerSandbox(ctx, kit.actor(request, user))
    const secretHints = (await ctx.storage.listLiveSecrets(found.id, ctx.now())).sort((a, b) => b.createdAt - a.createdAt)
    // One row more than a page tells whether a next page exists.
    const activity = lists.activity ?? 0
    const entries = await ctx.storage.listAudit({ appIds: [found.id], limit: activityPerPage + 1, offset: activity })
    // A partner sees what customers did to its app, not who they are.
    const audit = entries.slice(0, activityPerPage).map((e) => (e.actorUserId && e.actorUserId !== user.id ? { ...e, actor: 'a tenant admin' } : e))
    const offset = lists.events ?? 0
    const events = await ctx.storage.listEvents({ appId: found.id, limit: deliveriesPerPage + 1, offset, ...(lists.state ? { state: lists.state } : {}) })
    const deliveries = await Promise.all(events.slice(0, deliveriesPerPage).map(async (event) => ({ event, attempts: await ctx.storage.listAttempts(event.id) })))
    const page = appPage({
      csrf: kit.csrf(request, reply),
      user,
      app: found,
      secretHints,
      sandbox,
      audit,
      deliveries,
      deliveryView: { state: lists.state, offset, more: events.length > deliveriesPerPage },
      activityView: { offset: activity, more: entries.length > activityPerPage },
      ...extra,
    })
    return kit.render(reply, status, page, kit.installTarget(found))
  }

  app.get('/developer/apps/:clientId', { schema: { querystring: pageQuery } }, async (request, reply) => {
    const user = await kit.user(request, reply)
    if (!user) return reply
    const found = await ownedApp(request, reply, user)
    const q = request.query
    const lists = { state: eventState(q.state), events: offsetOf(q.events), activity: offsetOf(q.activity) }
    return found ? showApp(request, reply, user, found, 200, isNotice(q.notice) ? { notice: notices[q.notice] } : {}, lists) : reply
  })

  /** The one view of a new secret; a reload, or another browser, finds it gone. */
  app.get('/developer/apps/:clientId/secret', { schema: { querystring: pageQuery } }, async (request, reply) => {
    const user = await kit.user(request, reply)
    if (!user) return reply
    const found = await ownedApp(request, reply, user)
    if (!found) return reply
    const { h } = request.query
    const shown = typeof h === 'string' ? await revealSecret(ctx.storage, h, kit.browser.id(request, reply), kit.masterKey, ctx.now()) : { state: 'unknown' as const }
    const frame = { csrf: kit.csrf(request, reply), user, app: found }
    if (shown.state === 'show' && shown.handle.appId === found.id) {
      return kit.render(
        reply,
        200,
        secretPage({ ...frame, clientSecret: shown.clientSecret, heading: shown.handle.heading, ...(shown.handle.note ? { note: shown.handle.note } : {}) }),
      )
    }
    return kit.render(reply, 410, secretShownPage(frame))
  })

  app.post(
    '/developer/apps/:clientId',
    onOwnApp(async ({ request, reply, user, app: found, form }) => {
      try {
        const updated = await updateApp(ctx, kit.actor(request, user), { clientId: found.clientId, fields: appFields(form) })
        return toApp(reply, updated, updated.review === 'pending' ? 'submitted' : 'saved')
      } catch (err) {
        if (err instanceof OperationError) return showApp(request, reply, user, found, operationStatus[err.code], { error: fieldError(err) })
        throw err
      }
    }),
  )

  app.post(
    '/developer/apps/:clientId/rotate-secret',
    onOwnApp(async ({ request, reply, user, app: found, form }) => {
      const grace = Number(form.grace || '86400')
      const r = await rotateSecret(ctx, kit.actor(request, user), { clientId: found.clientId, graceSeconds: grace })
      const until = grace === 0 ? 'The old secret stopped working now.' : `The old secret keeps working until ${new Date(r.oldSecretsExpireAt).toISOString()}.`
      return toSecret(request, reply, found, r.clientSecret, 'New client secret', until)
    }),
  )

  app.post(
    '/developer/apps/:clientId/delete',
    onOwnApp(async ({ request, reply, user, app: found, form }) => {
      if (form.confirm !== 'on') return showApp(request, reply, user, found, 400, { error: { message: 'Tick the box to confirm the deletion.' } })
      await deleteApp(ctx, kit.actor(request, user), { clientId: found.clientId })
      return reply.redirect('/developer?notice=deleted', 303)
    }),
  )

  app.post(
    '/developer/apps/:clientId/install-sandbox',
    onOwnApp(async ({ request, reply, user, app: found }) => {
      const actor = kit.actor(request, user)
      const sandbox = await ensurePartnerSandbox(ctx, actor)
      // The partner installs their own app on their own sandbox: the scopes they set are the ones they see.
      await installApp(ctx, actor, { clientId: found.clientId, tenantId: sandbox.id, shownScopes: found.scopes })
      if (!found.installUrl) return toApp(reply, found, 'installed')
      return reply.redirect(await installRedirect(ctx.storage, found, sandbox, kit.masterKey, ctx.now()), 303)
    }),
  )

  /** Redeliver (delivered or failed) and Retry now (waiting): one of the app's own events, back to its deliveries. */
  const onOwnEvent = (act: typeof redeliverEvent, done: Notice, not: Notice) =>
    onOwnApp(async ({ request, reply, user, app: found }) => {
      const eventId = readParams(request.params).eventId ?? ''
      const acted = await act(ctx, kit.actor(request, user), { eventId, appId: found.id }).catch((err: unknown) => {
        if (err instanceof OperationError && err.code === 'not_found') return undefined
        throw err
      })
      if (!acted) return kit.error(request, reply, 404, 'No such event', 'This app has no event with that id.')
      return toApp(reply, found, acted.queued ? done : not, '#data-api')
    })

  app.post('/developer/apps/:clientId/events/:eventId/redeliver', onOwnEvent(redeliverEvent, 'redelivered', 'waiting'))
  app.post('/developer/apps/:clientId/events/:eventId/retry', onOwnEvent(retryEventNow, 'retrying', 'busy'))

  app.post(
    '/developer/apps/:clientId/test-event',
    onOwnApp(async ({ request, reply, user, app: found }) => {
      try {
        await sendTestEvent(ctx, kit.actor(request, user), { clientId: found.clientId })
      } catch (err) {
        if (err instanceof OperationError) return showApp(request, reply, user, found, operationStatus[err.code], { error: fieldError(err) })
        throw err
      }
      return toApp(reply, found, 'test_sent', '#data-api')
    }),
  )
}

/** POST/redirect/GET: back to the app's page, which shows `notice`. */
const toApp = (reply: FastifyReply, app: App, notice: Notice, anchor = ''): FastifyReply => reply.redirect(`/developer/apps/${app.clientId}?notice=${notice}${anchor}`, 303)

/** The core's message, beside the field it is about. */
const fieldError = (err: OperationError): FieldError => ({ message: err.message, ...(err.field ? { field: err.field } : {}) })

/** The editable fields of the app form, as the core validates them. */
function appFields(form: Params): AppFields {
  const scopes = Object.keys(scopeDescriptions).filter((s) => form[`scope:${s}`] === 'on')
  return {
    name: form.name ?? '',
    description: form.description ?? '',
    installUrl: blank(form.install_url),
    redirectUris: (form.redirect_uris ?? '')
      .split(/\r?\n/)
      .map((u) => u.trim())
      .filter(Boolean),
    contactEmail: blank(form.contact_email),
    dataApiUrl: blank(form.data_api_url),
    // Blank: the server's default lifetime for the app's kind. Anything else the core validates.
    tokenTtl: blank(form.token_ttl) === null ? null : Number(form.token_ttl),
    scopes: scopes.join(' '),
    listed: form.listed === 'on',
    logoUrl: blank(form.logo_url),
    shortDescription: form.short_description ?? '',
    categories: appCategories.filter((c) => form[`category:${c}`] === 'on'),
    publisher: blank(form.publisher),
    supportUrl: blank(form.support_url),
    privacyPolicyUrl: blank(form.privacy_policy_url),
  }
}

function formValues(form: Params): AppFormValues {
  const fields = appFields(form)
  return {
    name: fields.name,
    kind: form.kind ?? 'public',
    environment: form.environment ?? 'sandbox',
    description: fields.description,
    installUrl: fields.installUrl ?? '',
    redirectUris: form.redirect_uris ?? '',
    contactEmail: fields.contactEmail ?? '',
    dataApiUrl: fields.dataApiUrl ?? '',
    tokenTtl: form.token_ttl ?? '',
    scopes: fields.scopes!.split(' ').filter(Boolean),
    listed: fields.listed ?? false,
    logoUrl: form.logo_url ?? '',
    shortDescription: fields.shortDescription ?? '',
    categories: fields.categories ?? [],
    publisher: form.publisher ?? '',
    supportUrl: form.support_url ?? '',
    privacyPolicyUrl: form.privacy_policy_url ?? '',
    ...(form.tenant_id ? { tenantId: form.tenant_id } : {}),
  }
}

const blank = (value: string | undefined): string | null => (value === undefined || value.trim() === '' ? null : value.trim())

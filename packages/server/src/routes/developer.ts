import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import {
  AdminError, createApp, isLookupKey, deleteApp, ensurePartnerSandbox, installApp, installRedirect, rotateSecret, scopeDescriptions,
  updateApp, type App, type AppFields, type CoreContext, type Params, type User,
} from '@fieldgate/core'
import { adminTenants, type PageKit } from '../plugins/pages.js'
import { appPage, developerHome, newAppPage, secretPage, type AppFormValues } from '../pages/developer.js'

/**
 * The developer portal (FieldEdge's "Apps → Create New OAuth App"): a signed-in partner creates apps,
 * sees the secret once, edits, rotates, deletes, and installs a sandbox app on their own sandbox
 * tenant. A partner only ever sees and changes their own apps.
 */
export function developerRoutes(app: FastifyInstance, kit: PageKit): void {
  const { ctx } = kit

  app.get('/developer', async (request, reply) => {
    const user = await kit.user(request, reply)
    if (!user) return reply
    const sandbox = await ensurePartnerSandbox(ctx.storage, user, { actor: kit.actor(request, user) })
    const apps = await ctx.storage.listApps({ ownerUserId: user.id })
    return kit.render(reply, 200, developerHome({ csrf: kit.csrf(request, reply), user, sandbox, apps }))
  })

  const showNew = async (request: FastifyRequest, reply: FastifyReply, user: User, status: number, values: AppFormValues, error?: string) => {
    await ensurePartnerSandbox(ctx.storage, user)
    const tenants = await adminTenants(ctx, user)
    return kit.render(reply, status, newAppPage({ csrf: kit.csrf(request, reply), user, values, tenants, ...(error ? { error } : {}) }))
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
      const sandbox = await ensurePartnerSandbox(ctx.storage, user)
      const kind = values.kind === 'private' ? 'private' : 'public'
      if (kind === 'public' && !values.installUrl) throw new AdminError('a marketplace (public) app needs an install URL')
      const tenantId = kind === 'private' ? await ownTenant(user, values.tenantId) : sandbox.id
      const environment = kind === 'private' ? undefined : values.environment === 'live' ? 'live' : 'sandbox'
      const created = await createApp(ctx.storage, {
        ...appFields(form), name: form.name ?? '', kind, ownerUserId: user.id, installOnSandbox: false,
        // A live public app has no sandbox tenant; a sandbox one tests on the partner's.
        ...(environment === 'live' ? { environment } : { tenantId }),
      }, { actor: kit.actor(request, user), masterKey: kit.masterKey, now: ctx.now() })
      return kit.render(reply, 201, secretPage({
        csrf: kit.csrf(request, reply), user, app: created.app, clientSecret: created.clientSecret, heading: `${created.app.name} is created`,
        ...(created.app.kind === 'public' && created.app.environment === 'sandbox' ? { note: `Test it on your sandbox: target_id ${sandbox.id}.` } : {}),
      }))
    } catch (err) {
      if (err instanceof AdminError) return showNew(request, reply, user, 400, values, err.message)
      throw err
    }
  })

  /** The app, if the signed-in person owns it; another partner's app is as good as absent. */
  const ownedApp = async (request: FastifyRequest, reply: FastifyReply, user: User): Promise<App | undefined> => {
    const clientId = (request.params as { clientId: string }).clientId
    const found = isLookupKey(clientId) ? await ctx.storage.getAppByClientId(clientId) : undefined
    if (found && found.ownerUserId === user.id) return found
    await kit.error(request, reply, 404, 'No such app', 'You have no app with that client ID.')
    return undefined
  }

  /** A form posted about one of the signed-in partner's own apps: CSRF first, then the person, then the app. */
  const onOwnApp = (handler: (c: { request: FastifyRequest; reply: FastifyReply; user: User; app: App; form: Params }) => Promise<FastifyReply>) =>
    async (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> => {
      const form = kit.form(request)
      const user = await kit.user(request, reply)
      if (!user) return reply
      const found = await ownedApp(request, reply, user)
      return found ? handler({ request, reply, user, app: found, form }) : reply
    }

  const showApp = async (request: FastifyRequest, reply: FastifyReply, user: User, found: App, status = 200, extra: { notice?: string; error?: string } = {}) => {
    const sandbox = await ensurePartnerSandbox(ctx.storage, user)
    const secretHints = (await ctx.storage.listLiveSecrets(found.id, ctx.now())).sort((a, b) => b.createdAt - a.createdAt)
    // A partner sees what customers did to its app, not who they are.
    const audit = (await ctx.storage.listAudit({ appIds: [found.id], limit: 50 }))
      .map((e) => (e.actorUserId && e.actorUserId !== user.id ? { ...e, actor: 'a tenant admin' } : e))
    const events = await ctx.storage.listEvents({ appId: found.id, limit: 20 })
    const deliveries = await Promise.all(events.map(async (event) => ({ event, attempts: await ctx.storage.listAttempts(event.id) })))
    return kit.render(reply, status, appPage({ csrf: kit.csrf(request, reply), user, app: found, secretHints, sandbox, audit, deliveries, ...extra }), kit.installTarget(found))
  }

  app.get('/developer/apps/:clientId', async (request, reply) => {
    const user = await kit.user(request, reply)
    if (!user) return reply
    const found = await ownedApp(request, reply, user)
    return found ? showApp(request, reply, user, found) : reply
  })

  app.post('/developer/apps/:clientId', onOwnApp(async ({ request, reply, user, app: found, form }) => {
    try {
      const updated = await updateApp(ctx.storage, found.clientId, appFields(form), { actor: kit.actor(request, user), now: ctx.now() })
      ctx.cache.apply({ kind: 'app', ref: updated.id })
      return showApp(request, reply, user, updated, 200, { notice: 'Saved.' })
    } catch (err) {
      if (err instanceof AdminError) return showApp(request, reply, user, found, 400, { error: err.message })
      throw err
    }
  }))

  app.post('/developer/apps/:clientId/rotate-secret', onOwnApp(async ({ request, reply, user, app: found, form }) => {
    const grace = Number(form.grace || '86400')
    const r = await rotateSecret(ctx.storage, found.clientId, grace, { actor: kit.actor(request, user), masterKey: kit.masterKey, now: ctx.now() })
    ctx.cache.apply({ kind: 'app', ref: found.id })
    const until = grace === 0 ? 'The old secret stopped working now.' : `The old secret keeps working until ${new Date(r.oldSecretsExpireAt).toISOString()}.`
    return kit.render(reply, 200, secretPage({ csrf: kit.csrf(request, reply), user, app: found, clientSecret: r.clientSecret, heading: 'New client secret', note: until }))
  }))

  app.post('/developer/apps/:clientId/delete', onOwnApp(async ({ request, reply, user, app: found, form }) => {
    if (form.confirm !== 'on') return showApp(request, reply, user, found, 400, { error: 'Tick the box to confirm the deletion.' })
    const { grantIds } = await deleteApp(ctx.storage, found.clientId, { actor: kit.actor(request, user), now: ctx.now() })
    forgetApp(ctx, found.id, grantIds)
    return reply.redirect('/developer', 303)
  }))

  app.post('/developer/apps/:clientId/install-sandbox', onOwnApp(async ({ request, reply, user, app: found }) => {
    const sandbox = await ensurePartnerSandbox(ctx.storage, user)
    // The partner installs their own app on their own sandbox: the scopes they set are the ones they see.
    const { grant } = await installApp(ctx.storage, { app: found, tenant: sandbox, user, shownScopes: found.scopes }, { actor: kit.actor(request, user), now: ctx.now() })
    ctx.cache.apply({ kind: 'grant', ref: grant.id })
    if (!found.installUrl) return showApp(request, reply, user, found, 200, { notice: `Installed on your sandbox (target_id ${sandbox.id}).` })
    return reply.redirect(await installRedirect(ctx.storage, found, sandbox, kit.masterKey, ctx.now()), 303)
  }))

  app.post('/developer/apps/:clientId/events/:eventId/redeliver', onOwnApp(async ({ request, reply, user, app: found }) => {
    const { eventId } = request.params as { eventId: string }
    const event = isLookupKey(eventId) ? await ctx.storage.getEvent(eventId) : undefined
    if (event?.appId !== found.id) return kit.error(request, reply, 404, 'No such event', 'This app has no event with that id.')
    const queued = await ctx.storage.redeliver(event.id, ctx.now())
    return showApp(request, reply, user, found, 200, { notice: queued ? `Event ${event.id} will be delivered again.` : `Event ${event.id} is already waiting to be delivered.` })
  }))

  /** A private app belongs to a tenant its creator administers. */
  const ownTenant = async (user: User, tenantId: string | undefined): Promise<string> => {
    const tenant = (await adminTenants(ctx, user)).find((t) => t.id === tenantId)
    if (!tenant) throw new AdminError('choose a tenant you own or administer for a private app')
    return tenant.id
  }
}

/** This process stops honouring a deleted app at once; the others do on their next change-feed read. */
export function forgetApp(ctx: CoreContext, appId: string, grantIds: string[]): void {
  ctx.cache.apply({ kind: 'app', ref: appId })
  for (const id of grantIds) ctx.cache.apply({ kind: 'grant', ref: id })
}

/** The editable fields of the app form, as the core validates them. */
function appFields(form: Params): AppFields {
  const scopes = Object.keys(scopeDescriptions).filter((s) => form[`scope:${s}`] === 'on')
  return {
    name: form.name ?? '',
    description: form.description ?? '',
    installUrl: blank(form.install_url),
    redirectUris: (form.redirect_uris ?? '').split(/\r?\n/).map((u) => u.trim()).filter(Boolean),
    contactEmail: blank(form.contact_email),
    dataApiUrl: blank(form.data_api_url),
    scopes: scopes.join(' '),
    listed: form.listed === 'on',
  }
}

function formValues(form: Params): AppFormValues {
  const fields = appFields(form)
  return {
    name: fields.name, kind: form.kind ?? 'public', environment: form.environment ?? 'sandbox', description: fields.description,
    installUrl: fields.installUrl ?? '', redirectUris: form.redirect_uris ?? '', contactEmail: fields.contactEmail ?? '',
    dataApiUrl: fields.dataApiUrl ?? '', scopes: fields.scopes!.split(' ').filter(Boolean), listed: fields.listed ?? false,
    ...(form.tenant_id ? { tenantId: form.tenant_id } : {}),
  }
}

const blank = (value: string | undefined): string | null => (value === undefined || value.trim() === '' ? null : value.trim())

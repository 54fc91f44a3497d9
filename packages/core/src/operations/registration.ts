import { randomUUID } from 'node:crypto'
import { actingUser, auditEntry, type Actor } from '../audit.js'
import type { CoreContext, OperationContext } from '../context.js'
import { InvalidClientMetadata, InvalidRedirectUri } from '../errors.js'
import type { App, AppSecret } from '../model.js'
import { OperationError, invalid, notFound } from '../operation-error.js'
import { formatScope, parseScope, scopeDescriptions } from '../scopes.js'
import type { InitialAccessToken } from '../storage.js'
import { hashSecret, newClientId, newClientSecret, randomValue, sameHash, secretHint } from '../secrets.js'
import { isLookupKey } from '../client-auth.js'
import { registeredClientFor, requireOperator, requireRegistrant } from './access.js'
import { endApp, newClientSettings } from './apps.js'
import { oneLine, optionalEmail, optionalHttpsUrl, requireRedirectUri } from './validate.js'

/*
 * Clients that register themselves (docs/registration.md): RFC 7591 dynamic registration, RFC 7592
 * management with the registration access token, and the operator's initial access tokens. A registered
 * client is a `public`-kind app that nobody reviewed (approvedAt null), never listed, owned by nobody,
 * in the environment the operator chose, with refresh tokens; it reaches a farm only through its
 * farmer's consent, and the consent page says it is unreviewed.
 */

/**
 * RFC 7591 §2 client metadata, as a registration request or a client metadata document carries it: the
 * protocol's own names. Fields this server does not know are dropped by the edge (§2: ignored).
 * `tos_uri`, `software_id` and `software_version` are accepted and ignored: nothing here shows or
 * checks them, and §3.2.1 lets the server leave out what it did not register.
 */
export interface ClientMetadata {
  redirect_uris?: readonly string[]
  token_endpoint_auth_method?: string
  grant_types?: readonly string[]
  response_types?: readonly string[]
  client_name?: string
  client_uri?: string
  logo_uri?: string
  scope?: string
  contacts?: readonly string[]
  policy_uri?: string
}

/** What a registration keeps of the metadata, in the App's words. */
export interface RegisteredMetadata {
  publicClient: boolean
  name: string
  redirectUris: string[]
  scopes: string[]
  /** `client_uri`: the client's home page, kept as the app's support URL. */
  supportUrl: string | null
  logoUrl: string | null
  privacyPolicyUrl: string | null
  contactEmail: string | null
}

/** RFC 7591 §2: the only token endpoint authentication methods Fieldgate has. */
export const registrationAuthMethods = ['none', 'client_secret_basic', 'client_secret_post'] as const

/**
 * The scopes a registered client may ask for: the catalogue a person can consent to. Never
 * `fieldgate:introspect`, the resource servers' scope, which only a private app of the operator's holds.
 */
export const registrableScopes = (): string[] => Object.keys(scopeDescriptions)

const maxRedirectUris = 10

/**
 * RFC 7591 §2 metadata, checked (§3.2.2 errors). Defaults: `authorization_code` (refresh tokens always
 * come with it), response type `code`, and, with no `scope`, every registrable scope: nothing is granted
 * without the farmer's consent to what the authorization request names, and a client that steps up
 * (incremental consent, RFC 6750 `insufficient_scope`) can only ask within what it registered.
 * `unknownScopes: 'ignore'` is for metadata documents, written once for every server they are used at.
 */
export function checkedMetadata(m: ClientMetadata, opts: { unknownScopes: 'refuse' | 'ignore'; publicClientOnly?: boolean }): RegisteredMetadata {
  const publicClient = authMethod(m.token_endpoint_auth_method ?? (opts.publicClientOnly ? 'none' : 'client_secret_basic')) === 'none'
  if (opts.publicClientOnly && !publicClient) throw new InvalidClientMetadata('token_endpoint_auth_method must be none')
  grantTypes(m.grant_types)
  if (m.response_types !== undefined && (m.response_types.length !== 1 || m.response_types[0] !== 'code')) {
    throw new InvalidClientMetadata('response_types must be ["code"]: the authorization code is the only response type')
  }
  return {
    publicClient,
    name: field(() => oneLine(m.client_name, 'client_name', 'name', 200)) || 'Unnamed app',
    redirectUris: redirectUris(m.redirect_uris, publicClient),
    scopes: scopes(m.scope, opts.unknownScopes),
    supportUrl: field(() => optionalHttpsUrl(m.client_uri, 'client_uri', 'support_url')),
    logoUrl: field(() => optionalHttpsUrl(m.logo_uri, 'logo_uri', 'logo_url')),
    privacyPolicyUrl: field(() => optionalHttpsUrl(m.policy_uri, 'policy_uri', 'privacy_policy_url')),
    contactEmail: (m.contacts ?? []).map((c) => emailOrNull(c)).find((c) => c !== null) ?? null,
  }
}

/** A shared validation rule's refusal, in RFC 7591's words. */
function field<T>(check: () => T): T {
  try {
    return check()
  } catch (err) {
    if (err instanceof OperationError) throw new InvalidClientMetadata(err.message)
    throw err
  }
}

const emailOrNull = (value: string): string | null => {
  try {
    return optionalEmail(value)
  } catch {
    return null
  }
}

function authMethod(value: string): (typeof registrationAuthMethods)[number] {
  const method = registrationAuthMethods.find((m) => m === value)
  if (method) return method
  if (value === 'private_key_jwt')
    throw new InvalidClientMetadata('token_endpoint_auth_method private_key_jwt is not supported: use none (PKCE), client_secret_basic or client_secret_post')
  throw new InvalidClientMetadata(`token_endpoint_auth_method must be one of ${registrationAuthMethods.join(', ')}`)
}

/**
 * Only the authorization code, with its refresh tokens. `client_credentials` is refused: a client that
 * registered itself has no tenant of its own to act on, only the farms whose people connect it.
 */
function grantTypes(grants: readonly string[] | undefined): void {
  if (grants === undefined) return
  const refused = grants.filter((g) => g !== 'authorization_code' && g !== 'refresh_token')
  if (refused.includes('client_credentials'))
    throw new InvalidClientMetadata('grant_types: client_credentials is not available to a registered client, which has no tenant of its own')
  if (refused.length) throw new InvalidClientMetadata(`grant_types may be authorization_code and refresh_token, not ${refused.join(', ')}`)
  if (!grants.includes('authorization_code')) throw new InvalidClientMetadata('grant_types must include authorization_code')
}

/** RFC 7591 §2 and RFC 9700 §4.1: https, loopback http on any port, or a native app's private-use scheme (public clients). */
function redirectUris(uris: readonly string[] | undefined, publicClient: boolean): string[] {
  if (uris === undefined || uris.length === 0) throw new InvalidRedirectUri('redirect_uris is required for the authorization code grant')
  if (uris.length > maxRedirectUris) throw new InvalidRedirectUri(`at most ${maxRedirectUris} redirect_uris`)
  return [
    ...new Set(
      uris.map((uri) => {
        try {
          if (uri.length > 2000) throw invalid(`redirect URI ${uri.slice(0, 60)}… is longer than 2000 characters`)
          return requireRedirectUri(uri, publicClient)
        } catch (err) {
          if (err instanceof OperationError) throw new InvalidRedirectUri(err.message)
          throw err
        }
      }),
    ),
  ]
}

function scopes(scope: string | undefined, unknown: 'refuse' | 'ignore'): string[] {
  const allowed = registrableScopes()
  let asked: string[]
  try {
    asked = parseScope(scope)
  } catch {
    throw new InvalidClientMetadata('scope must be space-separated scope names')
  }
  const foreign = asked.filter((s) => !allowed.includes(s))
  if (foreign.length && unknown === 'refuse') throw new InvalidClientMetadata(`unknown scope ${foreign.join(', ')}: the scopes are ${allowed.join(', ')}`)
  const known = asked.filter((s) => allowed.includes(s))
  return known.length ? known : allowed
}

/** A new registered client's row: a public-kind app nobody reviewed, owned by nobody, with refresh tokens. */
export function registeredApp(
  ctx: Pick<CoreContext, 'config'>,
  meta: RegisteredMetadata,
  fields: { clientId: string; registration: 'dynamic' | 'metadata_document'; now: number },
): App {
  return {
    id: randomUUID(),
    clientId: fields.clientId,
    kind: 'public',
    environment: ctx.config.registration.environment,
    tenantId: null,
    ownerUserId: null,
    installUrl: null,
    dataApiUrl: null,
    tokenTtl: null,
    createdAt: fields.now,
    description: '',
    listed: false,
    shortDescription: '',
    categories: [],
    publisher: null,
    // Never reviewed: approvedAt stays null. `approved` only keeps it out of the review queue.
    review: 'approved',
    reviewReason: null,
    approvedAt: null,
    proposed: null,
    suspendedAt: null,
    suspendedReason: null,
    suspendedWithAccount: false,
    ...newClientSettings(meta.publicClient),
    ...withMetadata(meta),
    registration: fields.registration,
  }
}

/** The app's fields that its metadata sets; a registered client always gets refresh tokens. */
export const withMetadata = (
  meta: RegisteredMetadata,
): Pick<App, 'name' | 'redirectUris' | 'scopes' | 'supportUrl' | 'logoUrl' | 'privacyPolicyUrl' | 'contactEmail' | 'refreshTokens'> => ({
  name: meta.name,
  redirectUris: meta.redirectUris,
  scopes: meta.scopes,
  supportUrl: meta.supportUrl,
  logoUrl: meta.logoUrl,
  privacyPolicyUrl: meta.privacyPolicyUrl,
  contactEmail: meta.contactEmail,
  refreshTokens: true,
})

/** What a registration answers (RFC 7591 §3.2.1): the app, and the secrets shown this once. */
export interface Registration {
  app: App
  /** Null for a public client (`none`). */
  clientSecret: string | null
  registrationAccessToken: string
}

/** Recognisable prefixes, as client secrets have, so secret scanners can tell what leaked. */
export const registrationTokenPrefix = 'fgr_'
export const initialAccessTokenPrefix = 'fgi_'

/**
 * RFC 7591 §3.1: registers a client. Who may is `requireRegistrant` (the policy, and the initial access
 * token under `token`). Commits the app, its secret (a confidential client) and the audit entry together.
 */
export async function registerClient(ctx: CoreContext, actor: Actor, input: { metadata: ClientMetadata; initialAccessToken?: string | undefined }): Promise<Registration> {
  const grantedBy = await requireRegistrant(ctx, actor, input.initialAccessToken)
  const meta = checkedMetadata(input.metadata, { unknownScopes: 'refuse' })
  const now = ctx.now()
  const registrationAccessToken = registrationTokenPrefix + randomValue(32)
  const app: App = {
    ...registeredApp(ctx, meta, { clientId: newClientId(), registration: 'dynamic', now }),
    registrationTokenHash: hashSecret(registrationAccessToken),
  }
  const clientSecret = meta.publicClient ? null : newClientSecret(app.environment)
  const about = { objectId: app.id, appId: app.id, clientId: app.clientId }
  await ctx.storage.createApp(app, clientSecret === null ? undefined : registeredSecret(app, clientSecret, now), undefined, {
    audit: [
      auditEntry(actor, now, 'client.registered', about, {
        registration: 'dynamic',
        name: app.name,
        environment: app.environment,
        public_client: app.publicClient,
        redirect_uris: app.redirectUris,
        scopes: app.scopes,
        initial_access_token: grantedBy?.id ?? null,
      }),
    ],
  })
  return { app, clientSecret, registrationAccessToken }
}

/** A registered client's secret: hashed; never sealed, since it signs no install redirect (it has no install URL). */
const registeredSecret = (app: App, secret: string, now: number): AppSecret => ({
  id: randomUUID(),
  appId: app.id,
  secretHash: hashSecret(secret),
  hint: secretHint(secret),
  createdAt: now,
  expiresAt: null,
  secretEnc: null,
})

/** RFC 7592 §2.1: the client as registered, to the holder of its registration access token. */
export async function readRegistration(ctx: OperationContext, input: { clientId: string; registrationAccessToken: string | undefined }): Promise<App> {
  return registeredClientFor(ctx, input.clientId, input.registrationAccessToken)
}

/**
 * RFC 7592 §2.2: the metadata is replaced as sent (an omitted field is cleared, or back to its default),
 * with the rules of a registration. `client_id` must be the client's; a `client_secret`, if sent, must be
 * its current one. Nothing rotates: the secret and the registration access token stay as they were (the
 * RFC lets the server choose; a client that lost neither has no reason to learn new ones). Neither can
 * the client become public or confidential: that is a new registration.
 */
export async function updateRegistration(
  ctx: CoreContext,
  actor: Actor,
  input: { clientId: string; registrationAccessToken: string | undefined; metadata: ClientMetadata & { client_id?: string; client_secret?: string } },
): Promise<App> {
  const app = await registeredClientFor(ctx, input.clientId, input.registrationAccessToken)
  const { metadata } = input
  if (metadata.client_id !== app.clientId) throw new InvalidClientMetadata('client_id must be the client_id of the client being updated (RFC 7592 §2.2)')
  const meta = checkedMetadata(
    { ...metadata, token_endpoint_auth_method: metadata.token_endpoint_auth_method ?? (app.publicClient ? 'none' : 'client_secret_basic') },
    { unknownScopes: 'refuse' },
  )
  if (meta.publicClient !== app.publicClient) throw new InvalidClientMetadata('token_endpoint_auth_method cannot change between none and a client secret: register a new client')
  if (metadata.client_secret !== undefined) await requireCurrentSecret(ctx, app, metadata.client_secret)
  const updated: App = { ...app, ...withMetadata(meta) }
  const changed = (['name', 'redirectUris', 'scopes', 'supportUrl', 'logoUrl', 'privacyPolicyUrl', 'contactEmail'] as const).filter(
    (k) => JSON.stringify(app[k]) !== JSON.stringify(updated[k]),
  )
  const about = { objectId: app.id, appId: app.id, clientId: app.clientId }
  await ctx.storage.updateApp(updated, { audit: [auditEntry(actor, ctx.now(), 'client.updated', about, { changed, scopes: formatScope(updated.scopes) })] })
  ctx.cache.apply({ kind: 'app', ref: app.id })
  return updated
}

async function requireCurrentSecret(ctx: OperationContext, app: App, presented: string): Promise<void> {
  const hash = hashSecret(presented)
  const live = await ctx.storage.listLiveSecrets(app.id, ctx.now())
  let matched = false
  for (const s of live) matched = sameHash(s.secretHash, hash) || matched
  if (!matched) throw new InvalidClientMetadata('client_secret is not the current secret of this client: leave it out, or send the one registration gave')
}

/** RFC 7592 §2.3: the client deletes itself; its grants, and so every token it holds, end at once. */
export async function deleteRegistration(ctx: OperationContext, actor: Actor, input: { clientId: string; registrationAccessToken: string | undefined }): Promise<void> {
  const app = await registeredClientFor(ctx, input.clientId, input.registrationAccessToken)
  await endApp(ctx, actor, app, 'client.deleted')
}

// ---- initial access tokens (the `token` policy) ----

/**
 * An operator makes an initial access token (RFC 7591 §3): shown once, stored hashed. It registers any
 * number of clients until `expiresInDays` have passed (none: it never expires) or it is revoked.
 */
export async function createInitialAccessToken(
  ctx: OperationContext,
  actor: Actor,
  input: { note?: string; expiresInDays?: number },
): Promise<{ token: InitialAccessToken; secret: string }> {
  requireOperator(actor, 'make initial access tokens')
  const days = input.expiresInDays
  if (days !== undefined && (!Number.isInteger(days) || days < 1 || days > 3650)) throw invalid('expires-days must be a whole number of days from 1 to 3650')
  const now = ctx.now()
  const secret = initialAccessTokenPrefix + randomValue(32)
  const token: InitialAccessToken = {
    id: randomUUID(),
    tokenHash: hashSecret(secret),
    note: oneLine(input.note, 'note', 'name', 200),
    createdBy: actingUser(actor)?.email ?? (actor.kind === 'operator' ? actor.name : 'visitor'),
    createdAt: now,
    expiresAt: days === undefined ? null : now + days * 86_400_000,
    revokedAt: null,
  }
  const audit = auditEntry(actor, now, 'registration_token.created', { objectId: token.id }, { note: token.note, expires_at: token.expiresAt })
  await ctx.storage.saveInitialAccessToken(token, { audit: [audit] })
  return { token, secret }
}

export async function listInitialAccessTokens(ctx: OperationContext, actor: Actor): Promise<InitialAccessToken[]> {
  requireOperator(actor, 'list initial access tokens')
  return ctx.storage.listInitialAccessTokens()
}

/** Revoked at once: registrations already made with it stay. */
export async function revokeInitialAccessToken(ctx: OperationContext, actor: Actor, input: { id: string }): Promise<void> {
  requireOperator(actor, 'revoke initial access tokens')
  const now = ctx.now()
  const audit = auditEntry(actor, now, 'registration_token.revoked', { objectId: input.id })
  if (!isLookupKey(input.id) || !(await ctx.storage.revokeInitialAccessToken(input.id, now, { audit: [audit] }))) throw notFound(`no live initial access token ${input.id}`)
}

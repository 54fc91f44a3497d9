import { adminTenants } from '../operations/access.js'
import { connectApp } from '../operations/grants.js'
import { registrableScopes } from '../operations/registration.js'
import { actingUser, auditEntry, type Actor } from '../audit.js'
import { isLookupKey } from '../client-auth.js'
import { ClientMetadataError, findClient } from '../client-metadata.js'
import type { CoreContext, Params } from '../context.js'
import { checkedResource } from '../audiences.js'
import { InvalidRequest, InvalidScope, OAuthError, UnsupportedResponseType } from '../errors.js'
import { isRegisteredClient, type App, type Grant, type Tenant } from '../model.js'
import { isLoopbackHost } from '../operations/validate.js'
import { missingFrom, parseScope, sameScopes } from '../scopes.js'
import { hashSecret, randomValue } from '../secrets.js'

/** A checked authorization request (RFC 6749 §4.1.1, RFC 7636 §4.3), ready for the person's decision. */
export interface AuthorizationRequest {
  app: App
  /** Where the answer goes: the registered URI the request named, or the app's only one. */
  redirectUri: string
  /** The request's own redirect_uri parameter, if it had one (the code remembers it, §4.1.3). */
  requestedRedirectUri: string | null
  scopes: string[]
  state: string | undefined
  codeChallenge: string | null
  /** RFC 8707: the API the token will be for; null for Fieldgate's own. */
  resource: string | null
  /** RFC 9449 §10: the DPoP key the code is bound to. */
  dpopJkt: string | null
  /** RFC 9126: the hash of the pushed request's request_uri, used up when the person decides. */
  pushedUriHash: string | null
}

/**
 * A request that cannot be answered at the redirect URI (unknown client, unregistered redirect URI):
 * RFC 6749 §4.1.2.1 says tell the person, never redirect, or Fieldgate becomes an open redirector.
 */
export class AuthorizationPageError extends Error {
  constructor(
    message: string,
    readonly status = 400,
  ) {
    super(message)
  }
}

/** An error for the client, delivered to its redirect URI with `state` (§4.1.2.1). */
export class AuthorizationRedirectError extends Error {
  constructor(
    readonly location: string,
    readonly error: OAuthError,
  ) {
    super(error.description)
  }
}

/** The parameters a consent form carries back unchanged, so the decision re-checks the same request. */
export const authorizationParameters = [
  'response_type',
  'client_id',
  'redirect_uri',
  'scope',
  'state',
  'code_challenge',
  'code_challenge_method',
  'resource',
  'dpop_jkt',
  'request_uri',
] as const

/** RFC 9126 §2.2: the request_uri Fieldgate hands out for a pushed request. */
export const requestUriPrefix = 'urn:ietf:params:oauth:request_uri:'
const jktSyntax = /^[A-Za-z0-9_-]{43}$/

// RFC 7636 §4.2: the S256 challenge is BASE64URL(SHA256(verifier)), 43 characters.
const s256Challenge = /^[A-Za-z0-9_-]{43}$/
const maxState = 2048

/**
 * RFC 6749 §4.1.1 and §3.1.2.3: the client and its redirect URI first (errors shown to the person),
 * then everything else (errors sent to the client once the person has signed in, see `signedIn`).
 *
 * `signedIn`: RFC 9700 §4.11.2 — anyone can register an app, so an error redirected before anyone signed
 * in would make this server an open redirector to that app's redirect URI. Until then errors are a page,
 * and always for a client that registered itself.
 */
export async function validateAuthorizationRequest(ctx: CoreContext, query: Params, signedIn: boolean, opts: { pushing?: boolean } = {}): Promise<AuthorizationRequest> {
  const app = await requireClient(ctx, query.client_id)
  const { params, pushedUriHash } = opts.pushing ? { params: query, pushedUriHash: null } : await pushedParameters(ctx, app, query)
  const redirectUri = requireRedirectUri(app, params.redirect_uri)
  if (params.state !== undefined && params.state.length > maxState) throw new AuthorizationPageError(`state is longer than ${maxState} characters`)
  const partial = { app, redirectUri, state: params.state }
  // A client that registered itself is anyone's: its redirect URI gets an error only from the person's
  // own decision, never from a link (RFC 9700 §4.11.2). A pushed request's errors go back as JSON.
  const redirects = opts.pushing === true || (signedIn && !isRegisteredClient(app))
  const fail = (error: OAuthError): never => {
    if (!redirects) throw new AuthorizationPageError(`${app.name} sent you here with a request this server cannot answer: ${error.description}`)
    throw new AuthorizationRedirectError(authorizationResponse(ctx, partial, error.toJSON()), error)
  }
  // RFC 6749 §3.1.1: response_type is required; the platforms' documents leave it out, and `code` is the only one there is.
  if ((params.response_type ?? 'code') !== 'code') fail(new UnsupportedResponseType())
  const scopes = requestedScopes(app, params.scope, fail)
  const codeChallenge = pkceChallenge(params, fail)
  // OAuth 2.1 §4.1.1 and RFC 9700 §2.1.1: a public client has nothing but PKCE to tie the code to itself.
  if (app.publicClient && codeChallenge === null) fail(new InvalidRequest('a public client must send code_challenge (PKCE with S256)'))
  const resource = tryOAuth(() => checkedResource(ctx.config, ctx.gateway, params.resource), fail)
  if (params.dpop_jkt !== undefined && !jktSyntax.test(params.dpop_jkt)) fail(new InvalidRequest('dpop_jkt must be a base64url SHA-256 JWK thumbprint'))
  return { ...partial, requestedRedirectUri: params.redirect_uri ?? null, scopes, codeChallenge, resource, dpopJkt: params.dpop_jkt ?? null, pushedUriHash }
}

function tryOAuth<T>(step: () => T, fail: (e: OAuthError) => never): T {
  try {
    return step()
  } catch (err) {
    if (err instanceof OAuthError) return fail(err)
    throw err
  }
}

/**
 * RFC 9126 §4: with a request_uri, the request is the one the client pushed, and only client_id may
 * stand beside it. An app that requires pushed requests (§5) is refused any other way in.
 */
async function pushedParameters(ctx: CoreContext, app: App, query: Params): Promise<{ params: Params; pushedUriHash: string | null }> {
  const uri = query.request_uri
  if (uri === undefined) {
    if (app.requirePar) throw new AuthorizationPageError(`${app.name} must push its authorization request first (RFC 9126): the link that brought you here is not one it made.`)
    return { params: query, pushedUriHash: null }
  }
  const uriHash = uri.startsWith(requestUriPrefix) && isLookupKey(uri) ? hashSecret(uri) : undefined
  const pushed = uriHash === undefined ? undefined : await ctx.storage.getPushedRequest(uriHash, ctx.now())
  if (!pushed || pushed.appId !== app.id)
    throw new AuthorizationPageError(`This sign-in link from ${app.name} has expired or was already used: go back to the app and start again.`)
  return { params: { ...pushed.params, client_id: app.clientId }, pushedUriHash: uriHash! }
}

async function requireClient(ctx: CoreContext, clientId: string | undefined): Promise<App> {
  if (!clientId) throw new AuthorizationPageError('The link that brought you here has no client_id: the app that sent you is misconfigured.')
  // An https client_id may be a client metadata document's URL: fetched here when new or stale (client-metadata.ts).
  const app = await findClient(ctx, clientId, 'authorize').catch((err: unknown) => {
    if (err instanceof ClientMetadataError) throw new AuthorizationPageError(`The app that sent you here (${hostOf(clientId)}) could not be verified: ${err.message}.`)
    throw err
  })
  if (!app) throw new AuthorizationPageError('The app that sent you here is not known to this server.')
  if (app.suspendedAt !== null) throw new AuthorizationPageError(`${app.name} is suspended: it cannot be connected.`, 403)
  // A client that registered itself is never reviewed: the consent page says so, and the person decides.
  if (app.approvedAt === null && !isRegisteredClient(app))
    throw new AuthorizationPageError(`${app.name} is waiting for review: it cannot be connected until the platform approves it.`, 403)
  return app
}

/**
 * RFC 9700 §4.1.3: exact string comparison against the registered URIs; no patterns, no normalisation.
 * The one exception is RFC 8252 §7.3: a native app listens on a loopback port the system picks, so on
 * a loopback http URI the port may differ (OAuth 2.1 §8.4.2), never anything else.
 */
function requireRedirectUri(app: App, requested: string | undefined): string {
  if (requested !== undefined) {
    if (app.redirectUris.includes(requested) || app.redirectUris.some((registered) => sameLoopbackUri(registered, requested))) return requested
    throw new AuthorizationPageError(`The app asked to send you to an address it has not registered: ${requested.slice(0, 200)}`)
  }
  if (app.redirectUris.length === 1) return app.redirectUris[0]!
  throw new AuthorizationPageError(
    app.redirectUris.length === 0 ? 'The app that sent you here has no redirect URI registered.' : 'The app that sent you here must say which of its redirect URIs to use.',
  )
}

const hostOf = (url: string): string => (URL.canParse(url) ? new URL(url).host : 'unknown')

function sameLoopbackUri(registered: string, requested: string): boolean {
  if (!registered.startsWith('http://') || !requested.startsWith('http://')) return false
  const a = URL.canParse(registered) ? new URL(registered) : undefined
  const b = URL.canParse(requested) ? new URL(requested) : undefined
  if (!a || !b || !isLoopbackHost(a.hostname)) return false
  b.port = a.port
  return a.href === b.href && !/[#\s]/.test(requested)
}

/**
 * No scope asks for every scope the app is registered for (RFC 6749 §3.3 lets the server pick a default).
 * A client that registered itself may ask for any scope a person can consent to: the scope it declared
 * is its default, not a ceiling, since an MCP client declares what its first challenge named and steps up
 * from there (incremental consent), and consent, not a declaration nobody reviewed, is what grants.
 */
function requestedScopes(app: App, scope: string | undefined, fail: (e: OAuthError) => never): string[] {
  let scopes: string[]
  try {
    scopes = parseScope(scope)
  } catch (err) {
    return fail(err as OAuthError)
  }
  if (scopes.length === 0) return app.scopes
  const unknown = missingFrom(scopes, isRegisteredClient(app) ? registrableScopes() : app.scopes)
  if (unknown.length) fail(new InvalidScope(`the app is not registered for: ${unknown.join(' ')}`))
  return scopes
}

/** RFC 7636 with RFC 9700 §2.1.1: S256 only; `plain` (also the default method) is refused. */
function pkceChallenge(params: Params, fail: (e: OAuthError) => never): string | null {
  const challenge = params.code_challenge
  if (challenge === undefined) {
    if (params.code_challenge_method !== undefined) fail(new InvalidRequest('code_challenge_method without code_challenge'))
    return null
  }
  if (params.code_challenge_method !== 'S256') fail(new InvalidRequest('code_challenge_method must be S256'))
  if (!s256Challenge.test(challenge)) fail(new InvalidRequest('code_challenge must be 43 base64url characters'))
  return challenge
}

/** The redirect URI with the response parameters, `state` as sent, and `iss` (RFC 9207) added to its query. */
export function authorizationResponse(ctx: CoreContext, req: Pick<AuthorizationRequest, 'redirectUri' | 'state'>, response: Record<string, string>): string {
  const url = new URL(req.redirectUri)
  for (const [name, value] of Object.entries(response)) url.searchParams.append(name, value)
  if (req.state !== undefined) url.searchParams.append('state', req.state)
  url.searchParams.append('iss', ctx.config.issuer)
  return url.href
}

/**
 * The tenants a person may connect this app to: those where they are owner or admin, of the app's
 * environment, and for a private app only its own tenant.
 */
export async function consentableTenants(ctx: CoreContext, userId: string, app: App): Promise<Tenant[]> {
  return (await adminTenants(ctx, { id: userId })).filter((t) => t.environment === app.environment && (app.kind !== 'private' || t.id === app.tenantId))
}

/** What the person chose on the consent page, and what that page showed them. */
export interface Consent {
  userId: string
  tenantId: string
  /** The scopes the consent page listed (the edge checks they came back unchanged): exactly these are granted. */
  shownScopes: readonly string[]
  /** Who consented, from where: for the audit entry. */
  actor: Actor
}

/**
 * The request asks for other scopes than the consent page showed: with no `scope`, it asks for the app's
 * scopes as they are now, and its partner changed them after the page was shown. The person has not seen
 * what Allow would grant, so nothing is granted and the page is shown again.
 */
export class ConsentOutdated extends Error {
  constructor() {
    super('the app changed the scopes it asks for after the consent page was shown')
  }
}

/** Per tenant, the scopes the app already holds there (its active grant), so consent can show what is new. */
export async function grantedScopes(ctx: CoreContext, app: App, tenants: readonly Tenant[]): Promise<Map<string, string[]>> {
  const granted = new Map<string, string[]>()
  for (const t of tenants) granted.set(t.id, (await ctx.storage.findActiveGrant(app.id, t.id))?.scopes ?? [])
  return granted
}

/**
 * Allow: the connection (Grant) is made or widened with exactly the scopes the person was shown, and a
 * single-use code bound to everything the token request must match goes back to the client.
 */
export async function approveAuthorization(ctx: CoreContext, req: AuthorizationRequest, consent: Consent): Promise<string> {
  if (!sameScopes(consent.shownScopes, req.scopes)) throw new ConsentOutdated()
  const tenant = (await consentableTenants(ctx, consent.userId, req.app)).find((t) => t.id === consent.tenantId)
  if (!tenant) throw new AuthorizationPageError('You cannot connect apps to that farm.', 403)
  const now = ctx.now()
  // RFC 9126 §4: a pushed request is answered once.
  if (req.pushedUriHash !== null && !(await ctx.storage.usePushedRequest(req.pushedUriHash, now))) {
    throw new AuthorizationPageError(`This sign-in link from ${req.app.name} has expired or was already used: go back to the app and start again.`)
  }
  // The audit entry commits with the grant, as an install's does: a crash leaves both or neither.
  const audit = (grant: Grant) => ({ audit: [consentAudit(req, consent.actor, grant, now)] })
  const { grant } = await connectApp(ctx, req.app, tenant.id, req.scopes, audit)
  ctx.security.record({ ...consentBy(req, consent.actor), kind: 'consent.given', tenantId: tenant.id, details: { scopes: req.scopes } })
  const code = randomValue(32)
  await ctx.storage.saveCode({
    codeHash: hashSecret(code),
    appId: req.app.id,
    tenantId: tenant.id,
    userId: consent.userId,
    grantId: grant.id,
    redirectUri: req.requestedRedirectUri,
    scopes: req.scopes,
    codeChallenge: req.codeChallenge,
    resource: req.resource,
    dpopJkt: req.dpopJkt,
    expiresAt: now + ctx.config.codeTtl * 1000,
    consumedAt: null,
    createdAt: now,
  })
  return authorizationResponse(ctx, req, { code })
}

/** What the person allowed (`scopes`) and what the connection holds after it (`grant_scopes`). */
const consentAudit = (req: AuthorizationRequest, actor: Actor, grant: Grant, now: number) =>
  auditEntry(
    actor,
    now,
    'consent.granted',
    { objectId: grant.id, appId: req.app.id, tenantId: grant.tenantId },
    {
      client_id: req.app.clientId,
      scopes: req.scopes,
      grant_scopes: grant.scopes,
    },
  )

/** Who decided on which app, for the security event of a consent. */
const consentBy = (req: AuthorizationRequest, actor: Actor) => {
  const user = actingUser(actor)
  return { clientId: req.app.clientId, userId: user?.id ?? null, email: user?.email ?? null, address: actor.address ?? null }
}

/** Deny: RFC 6749 §4.1.2.1 access_denied; nothing is stored but the security event. */
export function denyAuthorization(ctx: CoreContext, req: AuthorizationRequest, actor: Actor): string {
  ctx.security.record({ ...consentBy(req, actor), kind: 'consent.denied', details: { scopes: req.scopes } })
  return authorizationResponse(ctx, req, { error: 'access_denied', error_description: 'The user denied the request' })
}

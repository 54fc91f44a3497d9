import { createHmac } from 'node:crypto'
import * as client from 'openid-client'
import { createRemoteJWKSet, decodeJwt, jwtVerify, type JWTPayload } from 'jose'
import { seal, unseal, type UpstreamProvider } from '@fieldgate/core'

/**
 * Fieldgate as a relying party of the platform's own OpenID Connect providers, through openid-client:
 * discovery (lazy, on first use, retried after a failure), the authorization code flow with PKCE S256,
 * state and nonce, the ID token and UserInfo checks, RP-initiated logout URLs, and back-channel logout
 * tokens (OpenID Connect Back-Channel Logout 1.0 §2.6) verified with jose against the provider's keys.
 */

/** The provider could not be reached, or its metadata is not what it should be (say, another issuer). */
export class UpstreamUnavailable extends Error {
  constructor(
    readonly provider: UpstreamProvider,
    readonly reason: 'unreachable' | 'wrong_issuer',
  ) {
    super(`${provider.name} is not available (${reason})`)
    this.name = 'UpstreamUnavailable'
  }
}

/** What the browser carries between the start of a sign-in and its callback, sealed. */
export interface Transaction {
  provider: string
  state: string
  nonce: string
  codeVerifier: string
  returnTo: string
  expiresAt: number
}

export const transactionCookie = 'fg_upstream'
/** Long enough to sign in at the provider (a password, a second factor), short enough to be no standing credential. */
export const transactionTtlSeconds = 600

const backchannelEvent = 'http://schemas.openid.net/event/backchannel-logout'

export class Upstreams {
  private readonly configs = new Map<string, Promise<client.Configuration>>()
  private readonly keySets = new Map<string, ReturnType<typeof createRemoteJWKSet>>()
  private readonly transactionKey: Buffer
  /** The providers' origins, and those of the endpoints their metadata named once discovered. */
  private readonly origins = new Set<string>()

  constructor(
    readonly providers: readonly UpstreamProvider[],
    /** Our own issuer: the callback URLs start with it. */
    private readonly issuer: string,
    masterKey: Buffer,
  ) {
    // A key of its own: a sealed transaction is never a sealed secret, nor the other way round.
    this.transactionKey = createHmac('sha256', masterKey).update('fieldgate upstream transaction v1').digest()
    for (const p of providers) this.origins.add(new URL(p.issuer).origin)
  }

  find(id: string | undefined): UpstreamProvider | undefined {
    return this.providers.find((p) => p.id === id)
  }

  /** The callback registered at the provider: `/login/oidc/callback` for the variables' one. */
  redirectUri(provider: UpstreamProvider): string {
    return `${this.issuer}${callbackPath(provider)}`
  }

  /** Where the provider sends the browser after RP-initiated logout (registered as a post_logout_redirect_uri). */
  get postLogoutRedirectUri(): string {
    return `${this.issuer}/login/oidc/signed-out`
  }

  /** Origins a sign-in form may end at (Chrome applies form-action to the redirect that follows a POST). */
  formTargets(): string[] {
    return [...this.origins]
  }

  /** The provider's metadata, discovered on first use; a failure is not remembered, so the next try discovers again. */
  configuration(provider: UpstreamProvider): Promise<client.Configuration> {
    let found = this.configs.get(provider.id)
    if (!found) {
      found = this.discover(provider)
      this.configs.set(provider.id, found)
      found.catch(() => this.configs.delete(provider.id))
    }
    return found
  }

  private async discover(provider: UpstreamProvider): Promise<client.Configuration> {
    const insecure = new URL(provider.issuer).protocol === 'http:'
    try {
      const config = await client.discovery(new URL(provider.issuer), provider.clientId, { client_secret: provider.clientSecret }, client.ClientSecretPost(provider.clientSecret), {
        timeout: 10,
        ...(insecure ? { execute: [client.allowInsecureRequests] } : {}),
      })
      const meta = config.serverMetadata()
      for (const endpoint of [meta.authorization_endpoint, meta.end_session_endpoint]) if (endpoint) this.origins.add(new URL(endpoint).origin)
      return config
    } catch (err) {
      // openid-client compares the metadata's issuer with the one configured (OpenID Connect Discovery §4.3).
      const wrongIssuer = err instanceof Error && 'code' in err && err.code === 'OAUTH_JSON_ATTRIBUTE_COMPARISON_FAILED'
      throw new UpstreamUnavailable(provider, wrongIssuer ? 'wrong_issuer' : 'unreachable')
    }
  }

  /** A new sign-in: the provider's authorization URL and the transaction to seal into the browser. */
  async start(provider: UpstreamProvider, returnTo: string, now: number): Promise<{ url: URL; transaction: Transaction }> {
    const config = await this.configuration(provider)
    const transaction: Transaction = {
      provider: provider.id,
      state: client.randomState(),
      nonce: client.randomNonce(),
      codeVerifier: client.randomPKCECodeVerifier(),
      returnTo,
      expiresAt: now + transactionTtlSeconds * 1000,
    }
    const url = client.buildAuthorizationUrl(config, {
      redirect_uri: this.redirectUri(provider),
      scope: provider.scopes.join(' '),
      code_challenge: await client.calculatePKCECodeChallenge(transaction.codeVerifier),
      code_challenge_method: 'S256',
      state: transaction.state,
      nonce: transaction.nonce,
    })
    return { url, transaction }
  }

  /**
   * The callback: checks state, the code exchange (PKCE), the ID token (issuer, audience, signature,
   * nonce), and merges the UserInfo claims (same `sub`) under the ID token's.
   */
  async finish(
    provider: UpstreamProvider,
    transaction: Transaction,
    callbackUrl: URL,
  ): Promise<{ issuer: string; claims: Record<string, unknown> & { sub: string }; idToken: string }> {
    const config = await this.configuration(provider)
    const tokens = await client.authorizationCodeGrant(config, callbackUrl, {
      pkceCodeVerifier: transaction.codeVerifier,
      expectedState: transaction.state,
      expectedNonce: transaction.nonce,
      idTokenExpected: true,
    })
    const idClaims = tokens.claims()
    if (!idClaims || !tokens.id_token) throw new client.ClientError('the provider returned no ID token')
    let userInfo: Record<string, unknown> = {}
    if (config.serverMetadata().userinfo_endpoint) userInfo = { ...(await client.fetchUserInfo(config, tokens.access_token, idClaims.sub)) }
    return { issuer: config.serverMetadata().issuer, claims: { ...userInfo, ...idClaims, sub: idClaims.sub }, idToken: tokens.id_token }
  }

  /** The transaction sealed under its own key, bound to the browser's id: another browser's cookie opens nothing here. */
  seal(transaction: Transaction, browserId: string): string {
    return seal(JSON.stringify(transaction), `upstream:${browserId}`, this.transactionKey)
  }

  /** The transaction, if it was sealed here for this browser and has not expired. */
  open(sealed: string | undefined, browserId: string | undefined, now: number): Transaction | undefined {
    if (!sealed || !browserId || sealed.length > 4096) return undefined
    let value: unknown
    try {
      value = JSON.parse(unseal(sealed, `upstream:${browserId}`, this.transactionKey))
    } catch {
      return undefined
    }
    return isTransaction(value) && value.expiresAt > now ? value : undefined
  }

  /** RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0 §2), when the provider has an end_session_endpoint. */
  async endSessionUrl(provider: UpstreamProvider, idToken: string): Promise<URL | undefined> {
    const config = await this.configuration(provider).catch(() => undefined)
    if (!config?.serverMetadata().end_session_endpoint) return undefined
    return client.buildEndSessionUrl(config, { id_token_hint: idToken, post_logout_redirect_uri: this.postLogoutRedirectUri })
  }

  /**
   * A logout token, verified per Back-Channel Logout 1.0 §2.6: the provider its `iss` names, that
   * provider's signature, our client id as `aud`, a recent `iat`, the back-channel logout event, `sub`
   * or `sid`, and no `nonce`. Returns what it names; throws on anything else.
   */
  async verifyLogoutToken(token: string): Promise<{ issuer: string; subject?: string; sid?: string }> {
    const unverified = decodeJwt(token)
    const provider = this.providers.find((p) => issuerMatches(p, unverified.iss))
    if (!provider) throw new Error('no provider has that issuer')
    const config = await this.configuration(provider)
    const meta = config.serverMetadata()
    if (!meta.jwks_uri) throw new Error('the provider publishes no keys')
    let keys = this.keySets.get(provider.id)
    if (!keys) {
      keys = createRemoteJWKSet(new URL(meta.jwks_uri))
      this.keySets.set(provider.id, keys)
    }
    const { payload } = await jwtVerify(token, keys, { issuer: meta.issuer, audience: provider.clientId, maxTokenAge: '5m', typ: undefined })
    return logoutClaims(payload, meta.issuer)
  }
}

function logoutClaims(payload: JWTPayload, issuer: string): { issuer: string; subject?: string; sid?: string } {
  const events = payload.events
  if (typeof events !== 'object' || events === null || !(backchannelEvent in events)) throw new Error('not a logout token: no back-channel logout event')
  if ('nonce' in payload) throw new Error('a logout token carries no nonce')
  const sid = typeof payload.sid === 'string' ? payload.sid : undefined
  const subject = typeof payload.sub === 'string' ? payload.sub : undefined
  if (sid === undefined && subject === undefined) throw new Error('a logout token names sub or sid')
  return { issuer, ...(subject !== undefined ? { subject } : {}), ...(sid !== undefined ? { sid } : {}) }
}

const issuerMatches = (provider: UpstreamProvider, iss: string | undefined): boolean => iss !== undefined && provider.issuer.replace(/\/+$/, '') === iss.replace(/\/+$/, '')

export const callbackPath = (provider: UpstreamProvider): string => (provider.id === 'default' ? '/login/oidc/callback' : `/login/oidc/${provider.id}/callback`)

function isTransaction(v: unknown): v is Transaction {
  if (typeof v !== 'object' || v === null) return false
  const t = new Map(Object.entries(v))
  return ['provider', 'state', 'nonce', 'codeVerifier', 'returnTo'].every((k) => typeof t.get(k) === 'string') && typeof t.get('expiresAt') === 'number'
}

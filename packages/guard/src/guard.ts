import { createHash } from 'node:crypto'
import { createRemoteJWKSet, customFetch, decodeProtectedHeader, jwtVerify, type JWTPayload } from 'jose'
import { dpopHeaderOf, presentedToken, schemeAndTokenOf, type HeaderSource } from './bearer.js'
import { DpopVerifier, type DpopOptions } from './dpop.js'
import { GuardError, GuardUpstreamError, expiredToken, invalidDpopProof, invalidToken, missingScope, revokedToken, type TokenScheme } from './errors.js'

/** The fetch the guard uses for discovery, the JWKS and introspection (globalThis.fetch by default). */
export type FetchLike = (input: string, init?: RequestInit) => Promise<Response>

export interface GuardOptions {
  /** Fieldgate's issuer, exactly as its tokens' `iss` says (no trailing slash unless the tokens have one). */
  issuer: string
  /** The audience the JWTs must name: Fieldgate's FIELDGATE_AUDIENCE, by default `${issuer}/api`. */
  audience: string
  /** Where the signing keys are published; read from the issuer's metadata when left out. */
  jwksUri?: string
  /**
   * Needed only to accept opaque (64 hex) tokens; without it they are refused as invalid_token.
   * Fieldgate's introspection answers a client about its own tokens only, so these are the credentials
   * of the app whose opaque tokens this service accepts.
   */
  introspection?: { endpoint?: string; clientId: string; clientSecret: string }
  /** How long an active introspection result is reused (never past the token's exp). 0 turns the cache off. Default 1000. */
  opaqueCacheMs?: number
  /**
   * Introspect every token, JWTs too (after their signature checks out here), so a revoked grant or a
   * suspended app cuts its caller off within `opaqueCacheMs`, as on Fieldgate's own API, rather than at
   * the JWT's `exp`. Needs `introspection`, with resource-server credentials (`fieldgate:introspect`).
   * Default false.
   */
  introspectAll?: boolean
  /** RFC 9449 DPoP-bound tokens: the proof's time window and replay memory. */
  dpop?: DpopOptions
  /** Leeway for exp and nbf when this host's clock and Fieldgate's differ. Default 0, as Fieldgate itself. */
  clockToleranceSec?: number
  /** Least time between two JWKS fetches caused by an unknown kid, so forged kids cannot make the guard hammer Fieldgate. Default 30000. */
  jwksCooldownMs?: number
  /** The JWKS is fetched again after this long even without an unknown kid. Default 600000. */
  jwksMaxAgeMs?: number
  /** Per HTTP request to Fieldgate. Default 5000. */
  timeoutMs?: number
  fetch?: FetchLike
}

/** Who is calling, as the token says. */
export interface Principal {
  readonly kind: 'jwt' | 'opaque'
  readonly clientId: string
  readonly tenantId: string
  readonly grantId: string
  readonly scopes: readonly string[]
  /** The client itself for client-credentials tokens; the person who consented for code-flow tokens. */
  readonly subject: string
  /** When the token expires, in milliseconds since the epoch; Fieldgate's opaque connection tokens have none. */
  readonly expiresAt?: number
  /** The verified JWT claims, or the introspection response. */
  readonly claims: Readonly<Record<string, unknown>>
  /** RFC 9449: the thumbprint of the key a DPoP-bound token is bound to (`cnf.jkt`); absent for a bearer token. */
  readonly jkt?: string
}

/** The request a token came with, for a DPoP-bound token's proof (RFC 9449 §4.3): its method and absolute URL. */
export interface ProtectedRequest {
  /** node:http's `req.headers`, a fetch `Headers`, or any plain object of header values. */
  headers: HeaderSource
  method: string
  /** The request's absolute URL as the client addressed it, e.g. `new URL(req.url, 'https://api.example.com')`. */
  url: string | URL
}

export interface Guard {
  /**
   * Checks a token, given bare or as a whole `Authorization` header. Resolves with the principal or
   * rejects with a GuardError (the caller's fault: answer it) or a GuardUpstreamError (Fieldgate could
   * not be asked: answer 503 and log it).
   */
  authenticate(authorizationHeaderOrToken: string | undefined | null, request?: { method: string; url: string | URL; dpop?: string | null }): Promise<Principal>
  /**
   * Checks the token of a request as Fieldgate's own API does: `Authorization: Bearer` or the
   * `access_token` query parameter (RFC 6750), or `Authorization: DPoP` with the request's DPoP proof
   * (RFC 9449 §7), which must be by the key the token is bound to. A DPoP-bound token is refused as a
   * bearer token, and an unbound one with the DPoP scheme.
   */
  authenticateRequest(request: ProtectedRequest): Promise<Principal>
  /** Throws the 403 missing_scope GuardError unless the principal holds `scope`. */
  requireScope(principal: Principal, scope: string): void
  /** Drops a cached introspection result at once, e.g. when this service learns the token was revoked. */
  forget(token: string): void
}

/** RFC 9068 §4 allows only asymmetric algorithms; these are the ones Fieldgate signs with (EdDSA: Ed25519, RFC 8037). */
const algorithms = ['RS256', 'PS256', 'ES256', 'EdDSA']

/** The claims Fieldgate's own guard requires; a token without them is refused the same way here. */
const stringClaims = ['sub', 'client_id', 'scope', 'tenant_id', 'grant_id', 'jti'] as const

/** jose error codes that mean "this token is no good", as opposed to "the keys could not be had". */
const tokenFaults = new Set([
  'ERR_JWS_INVALID',
  'ERR_JWT_INVALID',
  'ERR_JWS_SIGNATURE_VERIFICATION_FAILED',
  'ERR_JWT_CLAIM_VALIDATION_FAILED',
  'ERR_JOSE_ALG_NOT_ALLOWED',
  'ERR_JOSE_NOT_SUPPORTED',
  'ERR_JWKS_NO_MATCHING_KEY',
  'ERR_JWKS_MULTIPLE_MATCHING_KEYS',
])

const isOpaque = (token: string): boolean => /^[0-9a-f]{64}$/.test(token)

/** Bounds the introspection cache; a burst of distinct tokens must not grow memory without end. */
const maxCacheEntries = 10_000

const describe = (err: unknown): string => (err instanceof Error ? err.message : String(err))

/** A promise made on first use and shared; a failure is not kept, so the next call tries again. */
function lazily<T>(make: () => Promise<T>): () => Promise<T> {
  let pending: Promise<T> | undefined
  return () =>
    (pending ??= make().catch((err: unknown) => {
      pending = undefined
      throw err
    }))
}

async function readJson(res: Response, what: string): Promise<Record<string, unknown> | undefined> {
  let text: string
  try {
    text = await res.text()
  } catch (err) {
    throw new GuardUpstreamError(`${what}: reading the response failed: ${describe(err)}`, { cause: err })
  }
  try {
    const body: unknown = JSON.parse(text)
    return body !== null && typeof body === 'object' && !Array.isArray(body) ? (body as Record<string, unknown>) : undefined
  } catch {
    return undefined
  }
}

export function createGuard(options: GuardOptions): Guard {
  const { issuer, audience } = options
  if (!issuer || !audience) throw new TypeError('createGuard needs issuer and audience')
  if (options.introspectAll && !options.introspection) throw new TypeError('introspectAll needs introspection credentials')
  const fetchImpl: FetchLike = options.fetch ?? ((input, init) => fetch(input, init))
  const timeoutMs = options.timeoutMs ?? 5000
  const opaqueCacheMs = options.opaqueCacheMs ?? 1000
  const clockTolerance = options.clockToleranceSec ?? 0
  const introspection = options.introspection

  const get = async (url: string, what: string): Promise<Record<string, unknown>> => {
    let res: Response
    try {
      res = await fetchImpl(url, { headers: { accept: 'application/json' }, redirect: 'manual', signal: AbortSignal.timeout(timeoutMs) })
    } catch (err) {
      throw new GuardUpstreamError(`${what} at ${url} could not be fetched: ${describe(err)}`, { cause: err })
    }
    const body = await readJson(res, `${what} at ${url}`)
    if (res.status !== 200 || !body) throw new GuardUpstreamError(`${what} at ${url} answered ${res.status}${body ? '' : ' without a JSON object'}`)
    return body
  }

  /** RFC 8414, read once and only if an endpoint was not configured; its issuer must be ours (§3.3). */
  const metadata = lazily(async () => {
    const url = `${issuer.replace(/\/+$/, '')}/.well-known/oauth-authorization-server`
    const doc = await get(url, 'the authorization server metadata')
    if (doc.issuer !== issuer) throw new GuardUpstreamError(`the metadata at ${url} is for issuer ${String(doc.issuer)}, not ${issuer}`)
    return doc
  })

  const endpoint = async (configured: string | undefined, name: 'jwks_uri' | 'introspection_endpoint'): Promise<string> => {
    if (configured) return configured
    const value = (await metadata())[name]
    if (typeof value !== 'string' || !value) throw new GuardUpstreamError(`the metadata of ${issuer} has no ${name}`)
    return value
  }

  /**
   * jose's remote key set keeps the keys in memory and fetches again when a token names a kid it does not
   * have (at most once per cooldown): that is how a rotation is followed. Fieldgate publishes the next key
   * before it signs with it, so usually the cached set already has it.
   */
  const keySet = lazily(async () => {
    const uri = await endpoint(options.jwksUri, 'jwks_uri')
    const set = createRemoteJWKSet(new URL(uri), {
      timeoutDuration: timeoutMs,
      cooldownDuration: options.jwksCooldownMs ?? 30_000,
      cacheMaxAge: options.jwksMaxAgeMs ?? 600_000,
      [customFetch]: fetchImpl,
    })
    return { uri, set }
  })

  async function verifyJwt(token: string): Promise<Principal> {
    // A token that is not even a JWS, or names no kid or a foreign algorithm, costs no network at all.
    let header: ReturnType<typeof decodeProtectedHeader>
    try {
      header = decodeProtectedHeader(token)
    } catch {
      throw invalidToken()
    }
    if (typeof header.kid !== 'string' || typeof header.alg !== 'string' || !algorithms.includes(header.alg)) throw invalidToken()
    const { uri, set } = await keySet()
    let payload: JWTPayload
    try {
      // Signature first (pinned to the JWK's own alg by jose's key selection), then typ, iss, aud, exp, nbf:
      // so expiry is only ever reported for a token whose signature holds.
      payload = (
        await jwtVerify(token, set, {
          issuer,
          audience,
          typ: 'at+jwt',
          algorithms,
          clockTolerance,
          requiredClaims: ['exp', 'iat', ...stringClaims],
        })
      ).payload
    } catch (err) {
      if (err instanceof GuardError) throw err
      const code = (err as { code?: unknown } | null)?.code
      if (code === 'ERR_JWT_EXPIRED') throw expiredToken()
      if (typeof code === 'string' && tokenFaults.has(code)) throw invalidToken()
      throw new GuardUpstreamError(`the JSON Web Key Set at ${uri} could not be used: ${describe(err)}`, { cause: err })
    }
    for (const name of stringClaims) if (typeof payload[name] !== 'string') throw invalidToken()
    // RFC 7800 §3.1: a confirmation to honour; the one Fieldgate issues is DPoP's jkt (RFC 9449 §6.1).
    const jkt = payload.cnf === undefined ? undefined : dpopConfirmation(payload.cnf)
    if (jkt === null) throw invalidToken()
    const c = payload as JWTPayload & Record<(typeof stringClaims)[number], string> & { exp: number }
    return Object.freeze({
      kind: 'jwt',
      clientId: c.client_id,
      tenantId: c.tenant_id,
      grantId: c.grant_id,
      scopes: parseScope(c.scope),
      subject: c.sub,
      expiresAt: c.exp * 1000,
      claims: Object.freeze({ ...payload }),
      ...(jkt === undefined ? {} : { jkt }),
    })
  }

  /**
   * RFC 7662 with client_secret_basic (RFC 6749 §2.3.1: id and secret form-encoded before base64): the
   * answer for an active token, or revokedToken.
   */
  async function introspect(token: string): Promise<{ url: string; body: Record<string, unknown> }> {
    if (!introspection) throw new Error('unreachable: no introspection configured')
    const url = await endpoint(introspection.endpoint, 'introspection_endpoint')
    const basic = Buffer.from(`${encodeURIComponent(introspection.clientId)}:${encodeURIComponent(introspection.clientSecret)}`).toString('base64')
    let res: Response
    try {
      res = await fetchImpl(url, {
        method: 'POST',
        headers: { authorization: `Basic ${basic}`, 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
        body: new URLSearchParams({ token, token_type_hint: 'access_token' }).toString(),
        redirect: 'manual',
        signal: AbortSignal.timeout(timeoutMs),
      })
    } catch (err) {
      throw new GuardUpstreamError(`introspection at ${url} failed: ${describe(err)}`, { cause: err })
    }
    const body = await readJson(res, `introspection at ${url}`)
    if (res.status === 401) {
      throw new GuardUpstreamError(
        `introspection at ${url} refused the guard's client credentials (401 ${String(body?.error ?? '')}): check introspection.clientId and clientSecret`,
      )
    }
    if (res.status !== 200 || !body) throw new GuardUpstreamError(`introspection at ${url} answered ${res.status} ${String(body?.error ?? '')}`.trimEnd())
    if (body.active !== true) throw revokedToken()
    if (typeof body.iss === 'string' && body.iss !== issuer) throw new GuardUpstreamError(`introspection at ${url} speaks for issuer ${body.iss}, not ${issuer}`)
    // RFC 8707 §2, RFC 7662 §2.2: introspection answers for any audience and names it; this API takes only its own.
    if (![body.aud].flat().includes(audience)) throw invalidToken()
    return { url, body }
  }

  /** An opaque token's principal, from what introspection answered (with RFC 9449 §6.2's cnf when bound). */
  async function introspectOpaque(token: string): Promise<Principal> {
    const { url, body } = await introspect(token)
    const { client_id: clientId, tenant_id: tenantId, grant_id: grantId, scope, sub, exp } = body
    if (typeof clientId !== 'string' || typeof tenantId !== 'string' || typeof grantId !== 'string' || typeof scope !== 'string') {
      throw new GuardUpstreamError(`introspection at ${url} answered active without client_id, tenant_id, grant_id and scope`)
    }
    const jkt = body.cnf === undefined ? undefined : dpopConfirmation(body.cnf)
    return Object.freeze({
      kind: 'opaque',
      clientId,
      tenantId,
      grantId,
      scopes: parseScope(scope),
      subject: typeof sub === 'string' ? sub : clientId,
      ...(typeof exp === 'number' ? { expiresAt: exp * 1000 } : {}),
      claims: Object.freeze({ ...body }),
      ...(typeof jkt === 'string' ? { jkt } : {}),
    })
  }

  // Keyed by a hash, so the cache holds no usable token.
  const cache = new Map<string, { principal: Principal; until: number }>()
  const inflight = new Map<string, Promise<Principal>>()
  const keyOf = (token: string) => createHash('sha256').update(token).digest('base64url')

  function remember(key: string, principal: Principal): void {
    const now = Date.now()
    const until = Math.min(now + opaqueCacheMs, principal.expiresAt ?? Infinity)
    if (until <= now) return
    if (cache.size >= maxCacheEntries) {
      for (const [k, v] of cache) if (v.until <= now) cache.delete(k)
      // Still full: drop the oldest (a Map iterates in insertion order).
      if (cache.size >= maxCacheEntries) cache.delete(cache.keys().next().value!)
    }
    cache.set(key, { principal, until })
  }

  /**
   * Only active results are cached, and briefly: a revoked token is refused within opaqueCacheMs, an
   * inactive one is asked about again every time. Concurrent checks of one token share one request.
   */
  function verifyOpaque(token: string): Promise<Principal> {
    if (!introspection) return Promise.reject(invalidToken())
    return introspected(token, introspectOpaque)
  }

  /** introspectAll: a JWT whose signature and claims check out here, still active at Fieldgate. */
  const verifyJwtAndIntrospect = (token: string): Promise<Principal> =>
    introspected(token, async (t) => {
      const principal = await verifyJwt(t)
      await introspect(t)
      return principal
    })

  async function introspected(token: string, check: (token: string) => Promise<Principal>): Promise<Principal> {
    const key = keyOf(token)
    const hit = cache.get(key)
    if (hit) {
      if (hit.until > Date.now()) return hit.principal
      cache.delete(key)
    }
    const running = inflight.get(key)
    if (running) return running
    const pending: Promise<Principal> = check(token).then(
      (principal) => {
        // forget() during the request removed it from inflight: then the result is not kept either.
        if (inflight.get(key) === pending) {
          inflight.delete(key)
          remember(key, principal)
        }
        return principal
      },
      (err: unknown) => {
        if (inflight.get(key) === pending) inflight.delete(key)
        throw err
      },
    )
    inflight.set(key, pending)
    return pending
  }

  const principalOf = (token: string): Promise<Principal> => (isOpaque(token) ? verifyOpaque(token) : options.introspectAll ? verifyJwtAndIntrospect(token) : verifyJwt(token))

  const dpop = new DpopVerifier(options.dpop)

  /** The token as it was presented (RFC 9449 §7): the scheme must fit its binding, a bound one's proof its key. */
  async function check(token: string, scheme: TokenScheme, request: { method: string; url: string | URL; dpop?: string | null } | undefined): Promise<Principal> {
    // Fieldgate refuses longer tokens before looking at them; so does the guard.
    if (token.length > 8192) throw invalidToken('The access token is invalid', scheme)
    let principal: Principal
    try {
      principal = await principalOf(token)
    } catch (err) {
      if (scheme === 'DPoP' && err instanceof GuardError && err.error === 'invalid_token') throw invalidToken(err.description, 'DPoP')
      throw err
    }
    if (scheme === 'Bearer') {
      if (principal.jkt !== undefined) throw invalidToken('The access token is DPoP-bound: send it with the DPoP scheme and a DPoP proof')
      return principal
    }
    if (principal.jkt === undefined) throw invalidToken('The access token is not DPoP-bound: send it with the Bearer scheme', 'DPoP')
    const proof = request?.dpop
    if (!request || proof === undefined || proof === null) throw invalidDpopProof('A DPoP proof is required with a DPoP-bound access token')
    const url = String(request.url)
    if (!URL.canParse(url)) throw new TypeError("the guard needs the request's absolute URL to check a DPoP proof's htu")
    const jkt = await dpop.verify({ proof, method: request.method, url, accessToken: token })
    if (jkt !== principal.jkt) throw invalidToken('The DPoP proof is not signed with the key the access token is bound to', 'DPoP')
    return principal
  }

  return {
    authenticate(authorizationHeaderOrToken, request) {
      try {
        const { token, scheme } = schemeAndTokenOf(authorizationHeaderOrToken)
        return check(token, scheme, request)
      } catch (err) {
        return Promise.reject(err)
      }
    },
    authenticateRequest(request) {
      try {
        const { token, scheme } = presentedToken(request.headers, request.url)
        return check(token, scheme, { method: request.method, url: request.url, dpop: dpopHeaderOf(request.headers) ?? null })
      } catch (err) {
        return Promise.reject(err)
      }
    },
    requireScope,
    forget(token) {
      const key = keyOf(token)
      cache.delete(key)
      inflight.delete(key)
    },
  }
}

const parseScope = (scope: string): string[] => Object.freeze(scope.split(' ').filter(Boolean)) as string[]

/** Throws the 403 missing_scope GuardError unless the principal holds `scope`, in the challenge of the token's scheme. */
export function requireScope(principal: Principal, scope: string): void {
  if (!principal.scopes.includes(scope)) throw missingScope(scope, principal.jkt === undefined ? 'Bearer' : 'DPoP')
}

/** RFC 9449 §6.1 `cnf: {"jkt": …}`: its thumbprint, or null for a confirmation the guard cannot honour. */
function dpopConfirmation(cnf: unknown): string | null {
  if (typeof cnf !== 'object' || cnf === null || Object.keys(cnf).length !== 1 || !('jkt' in cnf)) return null
  return typeof cnf.jkt === 'string' && cnf.jkt !== '' ? cnf.jkt : null
}

import { createHash } from 'node:crypto'
import fastifyRateLimit from '@fastify/rate-limit'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { Redis } from 'ioredis'
import { OAuthError, requestClient, type App, type Config, type CoreContext, type Params, type TokenRequest } from '@fieldgate/core'
import { bearerToken } from './bearer.js'

/**
 * Rate limits, counted by @fastify/rate-limit: in Redis when REDIS_URL is set (every process and
 * instance of a deployment shares one budget), in memory otherwise.
 *
 * - Token endpoints: per client address (every request) and per client (only requests whose client
 *   authenticated: counting a claimed client_id would let anyone spend another client's budget).
 * - Registration endpoints: per client address, with a budget of their own.
 * - Protected API: per access token (keyed by its SHA-256, never the token) and per client, after
 *   `requireBearer`, so only accepted tokens count.
 *
 * Every counted response carries the draft RateLimit headers of its most constrained limit
 * (`ratelimit-limit`, `ratelimit-remaining`, `ratelimit-reset`); an exceeded limit answers 429 with
 * `Retry-After` and an OAuth-style body. A counter store that fails (Redis down) lets requests through
 * unlimited and logs a warning: rate limiting never takes the server down.
 */

/** 429 in the shape of every other error (errors.ts sends `headers`, the status and the JSON body). */
export class RateLimited extends OAuthError {
  constructor(what: string, max: number, windowSeconds: number, retryAfter: number) {
    super('rate_limited', `more than ${max} requests in ${windowSeconds} s ${what}; retry in ${retryAfter} s`, 429)
    this.headers['retry-after'] = String(retryAfter)
  }
}

type Check = ReturnType<FastifyInstance['createRateLimit']>
type Hook = (request: FastifyRequest, reply: FastifyReply) => Promise<void>

interface Limit {
  /** Named in the 429 description: "… per access token". */
  readonly what: string
  readonly max: number
  readonly check: Check
}

interface Limits {
  readonly windowSeconds: number
  readonly perToken: Limit | undefined
  readonly perClient: Limit | undefined
  readonly tokenPerClient: Limit | undefined
  readonly tokenPerAddress: Limit | undefined
  readonly registerPerAddress: Limit | undefined
  /** Throttled warning when a count could not be made (the store failed). */
  readonly storeFailed: () => void
}

declare module 'fastify' {
  interface FastifyInstance {
    fieldgateRateLimits: Limits
    /** This process's Redis client when REDIS_URL is set: rate limits and sign-in attempts count there. */
    fieldgateRedis: Redis | undefined
  }
}

// The key of the per-client token limit, known once the client authenticated.
const authenticatedClient = new WeakMap<FastifyRequest, string>()
// Entries kept per limit by the in-memory store (least recently used go first).
const MEMORY_KEYS = 10_000

/**
 * Sets up the counters on the root instance; call before registering routes. With `redisUrl`, opens
 * this process's one Redis client (closed with the app) and waits briefly for it: an unreachable Redis
 * is logged, not fatal.
 */
export async function registerRateLimits(app: FastifyInstance, config: Config): Promise<void> {
  const { windowSeconds } = config.rateLimits
  const redis = config.redisUrl ? await openRedis(app, config.redisUrl) : undefined
  app.decorate('fieldgateRedis', redis)
  let lastWarning = 0
  const storeFailed = () => {
    if (Date.now() - lastWarning < 60_000) return
    lastWarning = Date.now()
    app.log.warn('rate-limit counters are unavailable: requests are served without rate limits until they come back')
  }

  // One plugin registration per limit, each in its own scope: its own counters and Redis namespace.
  const limit = async (name: keyof Omit<Config['rateLimits'], 'windowSeconds'>, what: string, keyGenerator?: (request: FastifyRequest) => string): Promise<Limit | undefined> => {
    const max = config.rateLimits[name]
    if (max === 0) return undefined
    let check: Check | undefined
    await app.register(async (scope) => {
      await scope.register(fastifyRateLimit, {
        global: false,
        max,
        timeWindow: windowSeconds * 1000,
        skipOnError: true,
        ...(keyGenerator ? { keyGenerator } : {}),
        ...(redis ? { redis, nameSpace: `${config.rateLimitPrefix}rl:${name}:` } : { cache: MEMORY_KEYS }),
      })
      check = scope.createRateLimit()
    })
    return { what, max, check: check! }
  }

  app.decorate('fieldgateRateLimits', {
    windowSeconds,
    perToken: await limit('perToken', 'per access token', (request) => createHash('sha256').update(bearerToken(request)).digest('base64url')),
    perClient: await limit('perClient', 'per client', (request) => request.principal.clientId),
    tokenPerClient: await limit('tokenPerClient', 'per client at the token endpoint', (request) => authenticatedClient.get(request) ?? ''),
    // The plugin's own key: the client address, IPv6 grouped per /64.
    tokenPerAddress: await limit('tokenPerAddress', 'per client address at the token endpoint'),
    registerPerAddress: await limit('registerPerAddress', 'per client address at the registration endpoint'),
    storeFailed,
  } satisfies Limits)
}

const requests = new WeakMap<FastifyRequest, TokenRequest>()

/**
 * The request as a client-authenticated endpoint reads it, with its client authenticated at most once
 * however many steps ask (the per-client limit, then the endpoint). A request that cannot be read is
 * not kept: the endpoint reads it again and answers the error.
 */
export function clientRequest(ctx: CoreContext, request: FastifyRequest, read: (request: FastifyRequest) => Params): TokenRequest {
  const known = requests.get(request)
  if (known) return known
  const params = read(request)
  const authorization = request.headers.authorization
  let client: Promise<App> | undefined
  const req: TokenRequest = { params, authorization, client: () => (client ??= requestClient(ctx, { params, authorization })) }
  requests.set(request, req)
  return req
}

/**
 * Hooks for a token endpoint route: spread into its options. `read` gives the request's client
 * credentials as the endpoint will read them (a request it cannot read is not counted per client).
 */
export function tokenLimits(app: FastifyInstance, ctx: CoreContext, read: (request: FastifyRequest) => Params): { onRequest: Hook; preHandler: Hook } {
  const limits = limitsOf(app)
  return {
    onRequest: async (request, reply) => {
      await apply(limits, [limits.tokenPerAddress], request, reply)
    },
    preHandler: async (request, reply) => {
      if (!limits.tokenPerClient) return
      let clientId: string
      try {
        // The endpoint gets this same authentication (clientRequest): the secret is checked once.
        const client = await requestClient(ctx, clientRequest(ctx, request, read))
        // A public client proves nothing by naming itself: anyone could spend its budget and lock out its
        // users, so it is counted per address only.
        if (client.publicClient) return
        clientId = client.clientId
      } catch {
        return // the endpoint answers the failure itself; only the per-address limit counted it
      }
      authenticatedClient.set(request, clientId)
      await apply(limits, [limits.tokenPerClient], request, reply)
    },
  }
}

/**
 * The onRequest hook of the registration endpoints (RFC 7591, RFC 7592): per client address, before
 * the body is read, as the token endpoint's; a registration writes a row, so its budget is far smaller.
 */
export function registrationLimits(app: FastifyInstance): Hook {
  const limits = limitsOf(app)
  return (request, reply) => apply(limits, [limits.registerPerAddress], request, reply)
}

/**
 * The preHandler for routes behind a bearer token: add it right after `requireBearer(ctx)`. Counts the
 * call per access token and per client.
 */
export function principalLimits(app: FastifyInstance): Hook {
  const limits = limitsOf(app)
  return async (request, reply) => {
    if (!request.principal) throw new Error('principalLimits must come after requireBearer')
    await apply(limits, [limits.perToken, limits.perClient], request, reply)
  }
}

/**
 * Counts the request against each limit in turn. The first exceeded answers 429; otherwise the
 * response gets the RateLimit headers of the limit with the fewest requests left (also against what an
 * earlier hook of the same request already set).
 */
async function apply(limits: Limits, list: readonly (Limit | undefined)[], request: FastifyRequest, reply: FastifyReply): Promise<void> {
  for (const limit of list) {
    if (!limit) continue
    const result = await limit.check(request)
    if (result.isAllowed) continue
    // A count always has a running window; none means the store failed and skipOnError let it through.
    if (result.ttl <= 0) {
      limits.storeFailed()
      continue
    }
    if (result.isExceeded) {
      reply.headers({ 'ratelimit-limit': result.max, 'ratelimit-remaining': 0, 'ratelimit-reset': result.ttlInSeconds })
      throw new RateLimited(limit.what, result.max, limits.windowSeconds, result.ttlInSeconds)
    }
    const shown = reply.getHeader('ratelimit-remaining')
    if (shown === undefined || result.remaining < Number(shown)) {
      reply.headers({ 'ratelimit-limit': result.max, 'ratelimit-remaining': result.remaining, 'ratelimit-reset': result.ttlInSeconds })
    }
  }
}

function limitsOf(app: FastifyInstance): Limits {
  if (!app.hasDecorator('fieldgateRateLimits')) throw new Error('registerRateLimits must run before the routes that use rate limits')
  return app.fieldgateRateLimits
}

async function openRedis(app: FastifyInstance, url: string): Promise<Redis> {
  const where = redisHost(url)
  const redis = new Redis(url, {
    // Fail fast instead of queueing while disconnected: the request goes on without the limit.
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    commandTimeout: 1000,
    connectTimeout: 2000,
  })
  let up: boolean | undefined
  redis.on('error', (err: Error) => {
    if (up === false) return // logged when it went down; ioredis keeps reconnecting
    up = false
    app.log.warn({ reason: err.message, redis: where }, 'Redis for rate limits is unreachable: requests are served without rate limits while it is down')
  })
  redis.on('ready', () => {
    if (up === false) app.log.info({ redis: where }, 'Redis for rate limits is back')
    up = true
  })
  app.addHook('onClose', async () => {
    if (redis.status === 'ready') await redis.quit().catch(() => redis.disconnect())
    else redis.disconnect()
  })
  // Give it a moment, so a healthy Redis counts from the first request; a failing one does not hold up the start.
  await new Promise<void>((resolve) => {
    const done = () => {
      clearTimeout(timer)
      redis.off('ready', done)
      redis.off('error', done)
      resolve()
    }
    const timer = setTimeout(done, 2000)
    redis.once('ready', done)
    redis.once('error', done)
  })
  return redis
}

/** Where Redis is, for logs: host and port, never the password. */
function redisHost(url: string): string {
  try {
    const u = new URL(url)
    return `${u.hostname}:${u.port || 6379}`
  } catch {
    return 'REDIS_URL'
  }
}

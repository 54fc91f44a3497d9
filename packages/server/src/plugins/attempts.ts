import { createHash, createHmac, hkdfSync } from 'node:crypto'
import { isIPv4 } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { Redis } from 'ioredis'
import { AttemptLimiter, accountSlowdownMs, signInWait, type AttemptCounter, type AttemptWindow, type CoreContext, type SignInWait } from '@fieldgate/core'

/**
 * The counter of failed `name` sign-ins (e.g. per account from one address): in Redis when the
 * deployment has one (the rate limits' client, see rate-limit.ts), else in this process's memory.
 */
export function attemptCounter(app: FastifyInstance, prefix: string, name: string, windowMs: number): AttemptCounter {
  const redis = app.fieldgateRedis
  if (!redis) return new AttemptLimiter(windowMs)
  let lastWarning = 0
  const failed = (err: unknown) => {
    if (Date.now() - lastWarning < 60_000) return
    lastWarning = Date.now()
    app.log.warn({ reason: err instanceof Error ? err.message : String(err) }, 'Redis cannot count sign-in attempts: this process counts them alone until it is back')
  }
  // v2: a hash per key (count and latest failure); the v1 keys were plain counters.
  return new RedisAttemptCounter(redis, `${prefix}signin:v2:${name}:`, windowMs, failed)
}

/**
 * The address a sign-in is counted for: IPv4 as is (also when IPv4-mapped), IPv6 by its /64, as the
 * rate limits count it, since one host usually holds a whole /64.
 */
export function addressKey(ip: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip)?.[1]
  if (mapped) return mapped
  if (isIPv4(ip) || !ip.includes(':')) return ip
  const [head = '', tail = ''] = ip.split('::')
  const left = head === '' ? [] : head.split(':')
  const right = tail === '' ? [] : tail.split(':')
  const groups = ip.includes('::') ? [...left, ...Array<string>(Math.max(0, 8 - left.length - right.length)).fill('0'), ...right] : left
  return `${groups
    .slice(0, 4)
    .map((g) => g.toLowerCase().replace(/^0+(?=.)/, ''))
    .join(':')}::/64`
}

/** Counts a failure and starts the window on the first, in one round trip (atomic in Redis). */
const RECORD = `local n = redis.call('HINCRBY', KEYS[1], 'n', 1)
redis.call('HSET', KEYS[1], 'last', ARGV[2])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return n`

/** The count, the latest failure and the milliseconds left in the window, in one round trip. */
const READ = `local v = redis.call('HMGET', KEYS[1], 'n', 'last')
return {v[1], v[2], redis.call('PTTL', KEYS[1])}`

/**
 * Failed sign-ins counted in Redis, so every process and instance shares one count per key. Keys hold
 * a SHA-256 of what they count (no email or address in Redis). While Redis fails, this process counts
 * in memory instead: guessing stays bounded, never unlimited, and sign-in stays up.
 */
export class RedisAttemptCounter implements AttemptCounter {
  private readonly local: AttemptLimiter

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly windowMs: number,
    private readonly onFailure: (err: unknown) => void,
  ) {
    this.local = new AttemptLimiter(windowMs)
  }

  async read(key: string, now: number): Promise<AttemptWindow | undefined> {
    try {
      const reply: unknown = await this.redis.eval(READ, 1, this.keyOf(key))
      return windowOf(reply, now)
    } catch (err) {
      this.onFailure(err)
      return this.local.read(key, now)
    }
  }

  async record(key: string, now: number): Promise<void> {
    try {
      await this.redis.eval(RECORD, 1, this.keyOf(key), this.windowMs, now)
    } catch (err) {
      this.onFailure(err)
      await this.local.record(key, now)
    }
  }

  async reset(key: string): Promise<void> {
    await this.local.reset(key)
    await this.redis.del(this.keyOf(key)).catch(this.onFailure)
  }

  private keyOf(key: string): string {
    return this.prefix + createHash('sha256').update(key).digest('base64url')
  }
}

/** READ's reply as a window; none when the key is gone or has no expiry (which RECORD always sets). */
function windowOf(reply: unknown, now: number): AttemptWindow | undefined {
  if (!Array.isArray(reply)) return undefined
  const [count = NaN, last = NaN, ttl = NaN] = reply.map((v: unknown) => Number(v ?? NaN))
  if (!Number.isFinite(count) || !(ttl > 0)) return undefined
  return { count, lastAt: Number.isFinite(last) ? last : now, endsAt: now + ttl }
}

/** One sign-in (or sign-up) as the limits see it: its keys, and what logs may name. */
export interface Attempt {
  readonly request: FastifyRequest
  readonly now: number
  readonly pair: string
  readonly address: string
  readonly account: string
  /** A keyed hash of the email: logs correlate attempts on one account without naming it. */
  readonly accountTag: string
}

/**
 * The sign-in limits of config.ts (signInLimits; the policy is core's signInWait and
 * accountSlowdownMs) over three counters, with a log line for every failure, throttle and success.
 * Log lines carry the request id (request.log), the address and the account's tag; never the email
 * or the password.
 */
export class SignInGuard {
  private readonly pairs: AttemptCounter
  private readonly addresses: AttemptCounter
  private readonly accounts: AttemptCounter
  private readonly tagKey: Buffer

  constructor(
    app: FastifyInstance,
    private readonly ctx: CoreContext,
    masterKey: Buffer,
  ) {
    const { rateLimitPrefix, signInLimits } = ctx.config
    const windowMs = signInLimits.windowSeconds * 1000
    this.pairs = attemptCounter(app, rateLimitPrefix, 'account+address', windowMs)
    this.addresses = attemptCounter(app, rateLimitPrefix, 'address', windowMs)
    this.accounts = attemptCounter(app, rateLimitPrefix, 'account', windowMs)
    this.tagKey = Buffer.from(hkdfSync('sha256', masterKey, Buffer.alloc(0), 'fieldgate log tag v1', 32))
  }

  attempt(request: FastifyRequest, email: string): Attempt {
    const address = addressKey(request.ip)
    return {
      request,
      now: this.ctx.now(),
      pair: `${email} ${address}`,
      address,
      account: email,
      accountTag: createHmac('sha256', this.tagKey).update(email).digest('base64url').slice(0, 16),
    }
  }

  /** Whether this address must wait before trying this account (or any account) again. */
  async throttled(a: Attempt, what: 'sign-in' | 'sign-up' = 'sign-in'): Promise<SignInWait | undefined> {
    const [pair, address] = await Promise.all([what === 'sign-in' ? this.pairs.read(a.pair, a.now) : undefined, this.addresses.read(a.address, a.now)])
    const wait = signInWait(this.ctx.config.signInLimits, a.now, pair, address)
    if (!wait) return undefined
    a.request.log.warn({ event: `${what}.throttled`, ...this.who(a), limit: wait.limit, retryAfter: wait.seconds }, `${what} throttled`)
    // One event a minute per account and address: a script hammering the form leaves a line, not thousands.
    this.ctx.security.record(
      { kind: 'sign_in.throttled', email: a.account || null, address: a.request.ip, details: { limit: wait.limit, form: what } },
      { once: `throttled ${a.pair}` },
    )
    return wait
  }

  /** Holds an attempt on an account guessed at from many addresses (never refuses it). */
  async slowDown(a: Attempt): Promise<void> {
    const ms = accountSlowdownMs(this.ctx.config.signInLimits, await this.accounts.read(a.account, a.now))
    if (ms === 0) return
    a.request.log.warn({ event: 'sign-in.slowed', ...this.who(a), ms }, 'sign-in slowed: many failures on this account')
    await sleep(ms)
  }

  async failed(a: Attempt): Promise<void> {
    await Promise.all([this.pairs.record(a.pair, a.now), this.addresses.record(a.address, a.now), this.accounts.record(a.account, a.now)])
    a.request.log.info({ event: 'sign-in.failed', ...this.who(a) }, 'sign-in failed: the email and password do not match')
    this.ctx.security.record({ kind: 'sign_in.failed', email: a.account, address: a.request.ip })
  }

  /** Forgets this address's failures on the account; the address budget and account count stay. */
  async succeeded(a: Attempt, userId: string): Promise<void> {
    await this.pairs.reset(a.pair)
    a.request.log.info({ event: 'sign-in.succeeded', ...this.who(a), userId }, 'signed in')
  }

  /** A sign-up spends the address's budget, so one address cannot create or probe accounts without end. */
  async signedUp(a: Attempt): Promise<void> {
    await this.addresses.record(a.address, a.now)
  }

  private who(a: Attempt): { account: string; address: string } {
    return { account: a.accountTag, address: a.request.ip }
  }
}

import { createHash } from 'node:crypto'
import type { FastifyInstance } from 'fastify'
import type { Redis } from 'ioredis'
import { AttemptLimiter, type AttemptCounter } from '@fieldgate/core'

/**
 * The counter of `name` attempts (e.g. sign-ins per account): in Redis when the deployment has one
 * (the rate limits' client, see rate-limit.ts), else in this process's memory.
 */
export function attemptCounter(app: FastifyInstance, prefix: string, name: string, limit: number, windowMs: number): AttemptCounter {
  const redis = app.fieldgateRedis
  if (!redis) return new AttemptLimiter(limit, windowMs)
  let lastWarning = 0
  const failed = (err: unknown) => {
    if (Date.now() - lastWarning < 60_000) return
    lastWarning = Date.now()
    app.log.warn({ reason: (err as Error).message }, 'Redis cannot count sign-in attempts: this process counts them alone until it is back')
  }
  return new RedisAttemptCounter(redis, `${prefix}signin:${name}:`, limit, windowMs, failed)
}

/** INCR that starts the window on the first attempt, in one round trip (atomic in Redis). */
const RECORD = `local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return n`

/**
 * Sign-in attempts counted in Redis, so every process and instance shares one count per account and
 * address. Keys hold a SHA-256 of what they count (no email or address in Redis). While Redis fails,
 * this process counts in memory instead: guessing stays bounded, never unlimited, and sign-in stays up.
 */
export class RedisAttemptCounter implements AttemptCounter {
  private readonly local: AttemptLimiter

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly limit: number,
    private readonly windowMs: number,
    private readonly onFailure: (err: unknown) => void,
  ) {
    this.local = new AttemptLimiter(limit, windowMs)
  }

  async wait(key: string, now: number): Promise<number> {
    try {
      const [count, ttl] = await Promise.all([this.redis.get(this.keyOf(key)), this.redis.pttl(this.keyOf(key))])
      return Number(count ?? 0) >= this.limit && ttl > 0 ? Math.max(1, Math.ceil(ttl / 1000)) : 0
    } catch (err) {
      this.onFailure(err)
      return this.local.wait(key, now)
    }
  }

  async record(key: string, now: number): Promise<void> {
    try {
      await this.redis.eval(RECORD, 1, this.keyOf(key), this.windowMs)
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

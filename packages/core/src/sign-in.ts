import { hash as argon2Hash, verify as argon2Verify } from '@node-rs/argon2'
import type { CoreContext } from './context.js'
import type { User } from './model.js'
import { hashSecret, randomValue } from './secrets.js'

/** Argon2id (RFC 9106), the library's defaults; the same call hashes new passwords in admin.ts. */
export const hashPassword = (password: string): Promise<string> => argon2Hash(password, { algorithm: 2 })

// Verified against when the email is unknown, so a missing account costs the same time as a wrong password.
let decoy: Promise<string> | undefined

/** The user, if the email and password match; undefined otherwise, in the same time either way. */
export async function checkPassword(ctx: CoreContext, email: string, password: string): Promise<User | undefined> {
  const user = email.length <= 320 ? await ctx.storage.getUserByEmail(email.trim().toLowerCase()) : undefined
  decoy ??= hashPassword(randomValue(16))
  const ok = await argon2Verify(user?.passwordHash ?? await decoy, password).catch(() => false)
  return ok && user ? user : undefined
}

/** A new session: the cookie value goes to the browser, its hash to the store. */
export async function startSession(ctx: CoreContext, userId: string): Promise<string> {
  const value = randomValue(32)
  const now = ctx.now()
  await ctx.storage.createSession({ idHash: hashSecret(value), userId, createdAt: now, expiresAt: now + ctx.config.sessionTtl * 1000 })
  return value
}

export async function sessionUser(ctx: CoreContext, cookie: string | undefined): Promise<User | undefined> {
  if (!cookie || cookie.length > 100) return undefined
  const session = await ctx.storage.getSession(hashSecret(cookie), ctx.now())
  return session && ctx.storage.getUser(session.userId)
}

export async function endSession(ctx: CoreContext, cookie: string | undefined): Promise<void> {
  if (cookie && cookie.length <= 100) await ctx.storage.deleteSession(hashSecret(cookie))
}

/**
 * Sign-in attempts counted per key (an account, a client address) in fixed windows. In memory by
 * default; shared by every process and instance through Redis where it is configured (server
 * plugins/attempts.ts), so guessing gets no more tries from a deployment of several.
 */
export interface AttemptCounter {
  /** Seconds until `key` may try again at `now`; 0 while it has attempts left. */
  wait(key: string, now: number): Promise<number>
  record(key: string, now: number): Promise<void>
  reset(key: string): Promise<void>
}

/** An AttemptCounter in this process's memory, bounded to `maxKeys` keys. */
export class AttemptLimiter implements AttemptCounter {
  private readonly windows = new Map<string, { start: number; count: number }>()

  constructor(private readonly limit: number, private readonly windowMs: number, private readonly maxKeys = 100_000) {}

  async wait(key: string, now: number): Promise<number> {
    const w = this.windows.get(key)
    if (w === undefined || now - w.start >= this.windowMs || w.count < this.limit) return 0
    return Math.max(1, Math.ceil((w.start + this.windowMs - now) / 1000))
  }

  async record(key: string, now: number): Promise<void> {
    const w = this.windows.get(key)
    if (w && now - w.start < this.windowMs) {
      w.count++
      return
    }
    if (this.windows.size >= this.maxKeys) this.prune(now)
    this.windows.set(key, { start: now, count: 1 })
  }

  async reset(key: string): Promise<void> {
    this.windows.delete(key)
  }

  private prune(now: number): void {
    for (const [key, w] of this.windows) if (now - w.start >= this.windowMs) this.windows.delete(key)
    if (this.windows.size >= this.maxKeys) this.windows.clear()
  }
}

import { hash as argon2Hash, verify as argon2Verify } from '@node-rs/argon2'
import type { CoreContext } from './context.js'
import type { User } from './model.js'
import { hashSecret, randomValue } from './secrets.js'

/** Argon2id (RFC 9106), the library's defaults; the same call hashes new passwords in operations/tenants.ts. */
export const hashPassword = (password: string): Promise<string> => argon2Hash(password, { algorithm: 2 })

// Verified against when the email is unknown, so a missing account costs the same time as a wrong password.
let decoy: Promise<string> | undefined

/** The user, if the email and password match; undefined otherwise, in the same time either way. */
export async function checkPassword(ctx: CoreContext, email: string, password: string): Promise<User | undefined> {
  const user = email.length <= 320 ? await ctx.storage.getUserByEmail(email.trim().toLowerCase()) : undefined
  decoy ??= hashPassword(randomValue(16))
  const ok = await argon2Verify(user?.passwordHash ?? (await decoy), password).catch(() => false)
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
  const user = session && (await ctx.storage.getUser(session.userId))
  // A suspended account's sessions end when it is suspended; one racing that is refused here.
  return user?.suspendedAt === null ? user : undefined
}

export async function endSession(ctx: CoreContext, cookie: string | undefined): Promise<void> {
  if (cookie && cookie.length <= 100) await ctx.storage.deleteSession(hashSecret(cookie))
}

/**
 * Failed sign-ins counted per key (an account from an address, an address, an account) in fixed
 * windows that start at the first failure. In memory by default; shared by every process and instance
 * through Redis where it is configured (server plugins/attempts.ts), so guessing gets no more tries
 * from a deployment of several.
 */
export interface AttemptWindow {
  /** Failures since the window started. */
  readonly count: number
  /** When the latest failure was (ms). */
  readonly lastAt: number
  /** When the window ends and the count is forgotten (ms). */
  readonly endsAt: number
}

export interface AttemptCounter {
  /** The running window of `key`, or undefined when it has no failures counted. */
  read(key: string, now: number): Promise<AttemptWindow | undefined>
  record(key: string, now: number): Promise<void>
  reset(key: string): Promise<void>
}

/** An AttemptCounter in this process's memory, bounded to `maxKeys` keys. */
export class AttemptLimiter implements AttemptCounter {
  private readonly windows = new Map<string, { start: number; count: number; lastAt: number }>()

  constructor(
    private readonly windowMs: number,
    private readonly maxKeys = 100_000,
  ) {}

  async read(key: string, now: number): Promise<AttemptWindow | undefined> {
    const w = this.windows.get(key)
    if (w === undefined || now - w.start >= this.windowMs) return undefined
    return { count: w.count, lastAt: w.lastAt, endsAt: w.start + this.windowMs }
  }

  async record(key: string, now: number): Promise<void> {
    const w = this.windows.get(key)
    if (w && now - w.start < this.windowMs) {
      w.count++
      w.lastAt = now
      return
    }
    if (this.windows.size >= this.maxKeys) this.prune(now)
    this.windows.set(key, { start: now, count: 1, lastAt: now })
  }

  async reset(key: string): Promise<void> {
    this.windows.delete(key)
  }

  private prune(now: number): void {
    for (const [key, w] of this.windows) if (now - w.start >= this.windowMs) this.windows.delete(key)
    if (this.windows.size >= this.maxKeys) this.windows.clear()
  }
}

export type SignInLimits = CoreContext['config']['signInLimits']

/** Why an address may not try now, and for how many seconds. */
export interface SignInWait {
  readonly seconds: number
  readonly limit: 'address' | 'account+address'
}

const secondsUntil = (at: number, now: number): number => Math.max(0, Math.ceil((at - now) / 1000))

/**
 * Whether a sign-in from an address may go ahead. Only limits keyed by the address can refuse (OWASP
 * Authentication Cheat Sheet, "account lockout"): its budget of failures over every account, and a
 * delay per account from this address that doubles with each failure past the free ones. So someone
 * guessing from one address throttles that address only, and the owner elsewhere always gets in.
 */
export function signInWait(limits: SignInLimits, now: number, pair: AttemptWindow | undefined, address: AttemptWindow | undefined): SignInWait | undefined {
  if (address && address.count >= limits.perAddress) return { seconds: Math.max(1, secondsUntil(address.endsAt, now)), limit: 'address' }
  if (!pair || pair.count < limits.perAccountAddress) return undefined
  const delayMs = Math.min(limits.maxDelaySeconds, limits.delaySeconds * 2 ** (pair.count - limits.perAccountAddress)) * 1000
  const seconds = secondsUntil(Math.min(pair.lastAt + delayMs, pair.endsAt), now)
  return seconds > 0 ? { seconds, limit: 'account+address' } : undefined
}

/**
 * How long to hold a sign-in for an account guessed at from many addresses: a fixed pause before the
 * password is checked, never a refusal, so it slows guessing without locking the owner out.
 */
export const accountSlowdownMs = (limits: SignInLimits, account: AttemptWindow | undefined): number => (account && account.count >= limits.perAccount ? limits.slowdownMs : 0)

import { createHash, randomBytes } from 'node:crypto'
import type { App, SecretHandle } from './model.js'
import { seal, unseal } from './secrets.js'
import type { Storage } from './storage.js'

/**
 * A new client secret is shown once, after a redirect (POST/redirect/GET), so reloading the page never
 * repeats the action that made it. The redirect carries a random handle; the store keeps only its hash,
 * the browser it was made for, and the secret sealed under the master key, for a few minutes. The first
 * view consumes it; a reload finds it already shown.
 */
export const secretHandleTtlMs = 5 * 60_000

const sha256 = (value: string): string => createHash('sha256').update(value).digest('base64url')

export interface StashInput {
  app: App
  clientSecret: string
  /** The browser's id cookie: only that browser can open the handle. */
  browserId: string
  heading: string
  note: string
}

/** Stores the secret for one view and returns the handle to put in the redirect URL. */
export async function stashSecret(storage: Storage, input: StashInput, masterKey: Buffer, now: number): Promise<string> {
  const handle = randomBytes(24).toString('base64url')
  const idHash = sha256(handle)
  await storage.saveSecretHandle({
    idHash,
    browserHash: sha256(input.browserId),
    appId: input.app.id,
    heading: input.heading,
    note: input.note,
    // Sealed with the handle's hash as associated data: a sealed secret cannot be moved to another handle.
    secretEnc: seal(input.clientSecret, idHash, masterKey),
    createdAt: now,
    expiresAt: now + secretHandleTtlMs,
    shownAt: null,
  })
  return handle
}

export type RevealedSecret = { state: 'show'; handle: SecretHandle; clientSecret: string } | { state: 'already-shown'; handle: SecretHandle } | { state: 'unknown' }

/** The secret the first time; `already-shown` after that; `unknown` when expired, another browser's, or made up. */
export async function revealSecret(storage: Storage, handle: string, browserId: string, masterKey: Buffer, now: number): Promise<RevealedSecret> {
  if (!/^[A-Za-z0-9_-]{32}$/.test(handle)) return { state: 'unknown' }
  const idHash = sha256(handle)
  const taken = await storage.takeSecretHandle(idHash, sha256(browserId), now)
  if (!taken) return { state: 'unknown' }
  if (!taken.first) return { state: 'already-shown', handle: taken.handle }
  return { state: 'show', handle: taken.handle, clientSecret: unseal(taken.handle.secretEnc, idHash, masterKey) }
}

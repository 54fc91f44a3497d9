import type { Alongside } from './alongside.js'

/**
 * An RFC 7591 §3 initial access token: what a client must present at /oauth/register under the `token`
 * policy. An operator makes it (CLI, admin API) and hands it to a developer or an agent's configuration;
 * it registers any number of clients until it expires or is revoked. Only its SHA-256 is stored.
 */
export interface InitialAccessToken {
  id: string
  tokenHash: string
  /** What the operator said it is for, shown in the list. */
  note: string
  /** Who made it, as the audit log names actors. */
  createdBy: string
  createdAt: number
  /** Null: it never expires. */
  expiresAt: number | null
  revokedAt: number | null
}

/** Initial access tokens for the `token` registration policy. */
export interface RegistrationStore {
  saveInitialAccessToken(token: InitialAccessToken, also?: Alongside): Promise<void>
  /** The token whose hash this is, expired or revoked or not; the caller judges it. */
  findInitialAccessToken(tokenHash: string): Promise<InitialAccessToken | undefined>
  /** Newest first. */
  listInitialAccessTokens(): Promise<InitialAccessToken[]>
  /** Marks it revoked at `now`; false when there is no such token or it was already revoked. */
  revokeInitialAccessToken(id: string, now: number, also?: Alongside): Promise<boolean>
}

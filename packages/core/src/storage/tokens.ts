import type { AuthorizationCode, OpaqueToken, OpaqueTokenRecord, PushedRequest, RefreshToken, Rotation } from '../model.js'

/** What a code exchange or a refresh stores: an opaque access token (a JWT is not stored), a refresh token. */
export interface IssuedTokens {
  accessToken?: OpaqueToken
  refreshToken?: RefreshToken
}

/**
 * Authorization codes, pushed requests, and the opaque and refresh tokens issued from codes. Every call
 * that revokes opaque tokens appends a `grant` change for their grant in the same transaction: processes
 * cache opaque tokens and drop them on that change.
 */
export interface TokenStore {
  saveCode(code: AuthorizationCode): Promise<void>
  getCode(codeHash: string): Promise<AuthorizationCode | undefined>
  /**
   * Atomic single use: marks the code consumed and stores the tokens issued from it, in one transaction.
   * Returns false, storing nothing, when the code was already used or has expired. Among concurrent
   * redemptions exactly one wins (a conditional update whose row count decides).
   */
  redeemCode(codeHash: string, now: number, issued: IssuedTokens): Promise<boolean>
  /**
   * Revokes every token issued from a code: opaque tokens, and the refresh-token family the code began
   * (its family id is the code's hash) with the access tokens refreshed from it. Returns how many opaque
   * and refresh tokens were still active.
   */
  revokeTokensFromCode(codeHash: string, now: number): Promise<number>

  /** The token with its grant as it is now, revoked or not; undefined for an unknown hash. */
  findOpaqueToken(tokenHash: string): Promise<OpaqueTokenRecord | undefined>
  /** Returns the token if this call revoked it, undefined if it was unknown or already revoked. */
  revokeOpaqueToken(tokenHash: string, now: number): Promise<OpaqueToken | undefined>

  findRefreshToken(tokenHash: string): Promise<RefreshToken | undefined>
  /**
   * One refresh, atomically (OAuth 2.1 §4.3.1, RFC 9700 §4.14.2): if the token is live (unused,
   * unrevoked, unexpired at `now`) it is marked used and `issued` stored: `rotated`. If it was already
   * used, the whole family and the opaque access tokens refreshed from it are revoked: `reused`. Anything
   * else stores nothing: `invalid`. Exactly one of concurrent uses of a token rotates it.
   */
  rotateRefreshToken(tokenHash: string, now: number, issued: IssuedTokens): Promise<Rotation>
  /** Revokes a family and the opaque access tokens refreshed from it (RFC 7009 §2.1); returns the refresh tokens ended. */
  revokeRefreshFamily(familyId: string, now: number): Promise<number>

  /** Stores a pushed request; drops those that expired by its `createdAt`. */
  savePushedRequest(request: PushedRequest): Promise<void>
  /** The pushed request, if it is unused and has not expired at `now`. */
  getPushedRequest(uriHash: string, now: number): Promise<PushedRequest | undefined>
  /** Marks it used if it was unused and unexpired: exactly one of concurrent calls gets true. */
  usePushedRequest(uriHash: string, now: number): Promise<boolean>
}

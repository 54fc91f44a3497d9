import type { AuthorizationCode, OpaqueToken, OpaqueTokenRecord } from '../model.js'

/** Authorization codes and the opaque tokens issued from them. */
export interface TokenStore {
  saveCode(code: AuthorizationCode): Promise<void>
  getCode(codeHash: string): Promise<AuthorizationCode | undefined>
  /**
   * Atomic single use: marks the code consumed and stores the token issued from it, in one transaction.
   * Returns false, storing nothing, when the code was already used or has expired. Among concurrent
   * redemptions exactly one wins (a conditional update whose row count decides).
   */
  redeemCode(codeHash: string, now: number, token: OpaqueToken): Promise<boolean>
  /** Revokes every token issued from a code; returns how many were still active. */
  revokeTokensFromCode(codeHash: string, now: number): Promise<number>

  /** The token with its grant as it is now, revoked or not; undefined for an unknown hash. */
  findOpaqueToken(tokenHash: string): Promise<OpaqueTokenRecord | undefined>
  /** Returns the token if this call revoked it, undefined if it was unknown or already revoked. */
  revokeOpaqueToken(tokenHash: string, now: number): Promise<OpaqueToken | undefined>
}

/**
 * DPoP proofs already accepted (RFC 9449 §11.1): one row per proof, keyed by a hash of its key's
 * thumbprint and its `jti`, kept until the proof is too old to be accepted anyway. Shared by every
 * instance on the store, so a proof replayed to another instance is refused too.
 */
export interface ProofStore {
  /**
   * Remembers a proof until `expiresAt` (epoch ms). Returns false, changing nothing, when it was
   * remembered before: of concurrent calls with one hash exactly one gets true (the primary key decides).
   */
  rememberProof(jtiHash: string, expiresAt: number): Promise<boolean>
  /** Forgets proofs whose `expiresAt` is before `now`; returns how many. */
  forgetExpiredProofs(now: number): Promise<number>
}

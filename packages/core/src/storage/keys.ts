import type { SigningKeyRecord } from '../model.js'

/** The signing keys tokens are signed with, through their rotation states. */
export interface SigningKeyStore {
  listSigningKeys(): Promise<SigningKeyRecord[]>
  /**
   * Inserts new keys and moves existing ones between states in one transaction; appends a `keys` change.
   * With `basedOn` (the kid and state of every key the change was planned from) it is a compare-and-set:
   * nothing is written and it returns false when another process changed the keys in between.
   */
  saveSigningKeys(insert: SigningKeyRecord[], update: Pick<SigningKeyRecord, 'kid' | 'state' | 'retireAt'>[], basedOn?: Pick<SigningKeyRecord, 'kid' | 'state'>[]): Promise<boolean>
}

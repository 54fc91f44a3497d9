import type { Change } from '../model.js'

/** The change feed: what other processes must drop from their caches, in commit order. */
export interface ChangeStore {
  changesSince(seq: number, limit?: number): Promise<Change[]>
  /** The changes with these sequence numbers that exist now (gaps the feed is waiting on). */
  changesIn(seqs: number[]): Promise<Change[]>
  latestChangeSeq(): Promise<number>
  /**
   * Calls `wake` soon after any process commits a change, where the engine can signal it (PostgreSQL
   * LISTEN/NOTIFY; SQLite never calls it). Returns the function that stops watching. Followers poll
   * all the same, so a signal lost to a dropped connection costs one poll interval, nothing more.
   */
  watchChanges(wake: () => void, onError: (err: unknown) => void): () => Promise<void>
}

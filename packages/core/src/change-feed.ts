import type { Change } from './model.js'
import type { Storage } from './storage.js'

/**
 * Polls the store's change feed and hands each new change to a listener; one per process.
 * PostgreSQL hands out sequence numbers before commit, so a change can appear after later ones were
 * read, however many. Every number skipped below the cursor is remembered as a gap and asked for again
 * on each poll until it appears or `gapMs` has passed (a rolled-back transaction leaves a gap forever).
 */
export class ChangeFeed {
  private timer: NodeJS.Timeout | undefined
  private cursor = 0
  private stopped = false
  /** A poll is running; a wake during it asks for another right after. */
  private polling = false
  private wokenWhilePolling = false
  /** Missing sequence numbers below the cursor, with when they were first missed. */
  private readonly gaps = new Map<number, number>()
  private primed = false

  constructor(
    private readonly storage: Storage,
    private readonly intervalMs: number,
    private readonly onChange: (change: Change) => void | Promise<void>,
    private readonly onError: (err: unknown) => void,
    private readonly gapMs = 60_000,
    private readonly maxGaps = 10_000,
  ) {}

  /** Follows changes after `cursor`: read it before loading whatever the changes invalidate. */
  start(cursor: number): void {
    this.cursor = cursor
    this.schedule()
  }

  /** Reads everything new now; also what each tick does. */
  async poll(): Promise<void> {
    const now = Date.now()
    if (!this.primed) {
      // Transactions in flight when this process started hold numbers just below its cursor.
      const floor = Math.max(0, this.cursor - 100)
      const present = new Set((await this.storage.changesSince(floor, 100)).map((c) => c.seq))
      for (let seq = floor + 1; seq <= this.cursor; seq++) if (!present.has(seq)) this.gaps.set(seq, now)
      this.primed = true
    }
    for (const change of await this.storage.changesIn([...this.gaps.keys()])) {
      this.gaps.delete(change.seq)
      await this.onChange(change)
    }
    for (const [seq, since] of this.gaps) if (now - since > this.gapMs) this.gaps.delete(seq)
    for (;;) {
      const changes = await this.storage.changesSince(this.cursor, 500)
      for (const change of changes) {
        for (let seq = this.cursor + 1; seq < change.seq && this.gaps.size < this.maxGaps; seq++) this.gaps.set(seq, now)
        await this.onChange(change)
        this.cursor = change.seq
      }
      if (changes.length < 500) return
    }
  }

  /**
   * Polls now instead of at the next tick: the store signalled a commit (Storage.watchChanges). Wakes
   * during a poll coalesce into one more poll, so a burst of changes costs at most two reads.
   */
  wake(): void {
    if (this.stopped) return
    if (this.polling) {
      this.wokenWhilePolling = true
      return
    }
    clearTimeout(this.timer)
    this.tick()
  }

  stop(): void {
    this.stopped = true
    clearTimeout(this.timer)
  }

  private tick(): void {
    this.polling = true
    this.poll()
      .catch(this.onError)
      .finally(() => {
        this.polling = false
        if (this.wokenWhilePolling && !this.stopped) {
          this.wokenWhilePolling = false
          this.tick()
        } else {
          this.schedule()
        }
      })
  }

  private schedule(): void {
    if (this.stopped) return
    this.timer = setTimeout(() => this.tick(), this.intervalMs)
    this.timer.unref()
  }
}

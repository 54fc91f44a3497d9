import type { Change } from './model.js'
import type { Storage } from './storage.js'

/**
 * Polls the store's change feed and hands each new change to a listener; one per process.
 * PostgreSQL sequence values can commit out of order, so each poll looks back `lookback` sequence
 * numbers and skips changes it has already handled.
 */
export class ChangeFeed {
  private timer: NodeJS.Timeout | undefined
  private cursor = 0
  private stopped = false
  private readonly seen = new Set<number>()
  private readonly lookback = 100

  constructor(
    private readonly storage: Storage,
    private readonly intervalMs: number,
    private readonly onChange: (change: Change) => void | Promise<void>,
    private readonly onError: (err: unknown) => void,
  ) {}

  /** Follows changes after `cursor`: read it before loading whatever the changes invalidate. */
  start(cursor: number): void {
    this.cursor = cursor
    this.schedule()
  }

  /** Reads everything new now; also what each tick does. */
  async poll(): Promise<void> {
    for (;;) {
      const floor = Math.max(0, this.cursor - this.lookback)
      const changes = await this.storage.changesSince(floor, 500)
      const before = this.cursor
      for (const change of changes) {
        if (this.seen.has(change.seq)) continue
        await this.onChange(change)
        this.seen.add(change.seq)
        this.cursor = Math.max(this.cursor, change.seq)
      }
      for (const seq of this.seen) if (seq <= this.cursor - this.lookback) this.seen.delete(seq)
      if (changes.length < 500 || this.cursor === before) return
    }
  }

  stop(): void {
    this.stopped = true
    clearTimeout(this.timer)
  }

  private schedule(): void {
    if (this.stopped) return
    this.timer = setTimeout(() => {
      this.poll().catch(this.onError).finally(() => this.schedule())
    }, this.intervalMs)
    this.timer.unref()
  }
}

/**
 * A bounded map that forgets entries not used lately first, with tags: each entry names the records it
 * was read from (an app, a grant, a tenant), and `dropTag` forgets every entry of one in time
 * proportional to that tag's entries, not the cache's size. Eviction is CLOCK, LRU's usual
 * approximation: a hit only marks its entry, and the oldest entry (a Map keeps insertion order) goes
 * unless marked, in which case it is unmarked and moved to the end. Hits, the hot path, stay a lookup.
 */
export class TaggedLru<V> {
  private readonly entries = new Map<string, { value: V; tags: readonly string[]; used: boolean }>()
  private readonly tagged = new Map<string, Set<string>>()

  constructor(readonly capacity: number) {
    if (!(capacity >= 1)) throw new RangeError('a cache holds at least one entry')
  }

  get size(): number {
    return this.entries.size
  }

  get(key: string): V | undefined {
    const entry = this.entries.get(key)
    if (entry === undefined) return undefined
    entry.used = true
    return entry.value
  }

  set(key: string, value: V, tags: readonly string[]): void {
    this.delete(key)
    this.entries.set(key, { value, tags, used: false })
    for (const tag of tags) {
      const keys = this.tagged.get(tag)
      if (keys === undefined) this.tagged.set(tag, new Set([key]))
      else keys.add(key)
    }
    while (this.entries.size > this.capacity) this.evictOne()
  }

  delete(key: string): void {
    const entry = this.entries.get(key)
    if (entry === undefined) return
    this.entries.delete(key)
    for (const tag of entry.tags) {
      const keys = this.tagged.get(tag)
      keys?.delete(key)
      if (keys?.size === 0) this.tagged.delete(tag)
    }
  }

  /** One step of the clock: the oldest entry goes, or, used since it was last passed, gets another round. */
  private evictOne(): void {
    for (const [key, entry] of this.entries) {
      if (!entry.used) {
        this.delete(key)
        return
      }
      entry.used = false
      this.entries.delete(key)
      this.entries.set(key, entry)
    }
  }

  dropTag(tag: string): void {
    const keys = this.tagged.get(tag)
    if (keys === undefined) return
    for (const key of [...keys]) this.delete(key)
  }
}

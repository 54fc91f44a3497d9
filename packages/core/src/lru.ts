/**
 * A bounded map that forgets its least recently used entry first, with tags: each entry names the
 * records it was read from (an app, a grant, a tenant), and `dropTag` forgets every entry of one in
 * time proportional to that tag's entries, not the cache's size. A Map keeps insertion order, so moving
 * an entry to its end on each hit keeps the oldest first.
 */
export class TaggedLru<V> {
  private readonly entries = new Map<string, { value: V; tags: readonly string[] }>()
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
    this.entries.delete(key)
    this.entries.set(key, entry)
    return entry.value
  }

  set(key: string, value: V, tags: readonly string[]): void {
    this.delete(key)
    this.entries.set(key, { value, tags })
    for (const tag of tags) {
      const keys = this.tagged.get(tag)
      if (keys === undefined) this.tagged.set(tag, new Set([key]))
      else keys.add(key)
    }
    if (this.entries.size <= this.capacity) return
    const oldest = this.entries.keys().next()
    if (!oldest.done) this.delete(oldest.value)
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

  dropTag(tag: string): void {
    const keys = this.tagged.get(tag)
    if (keys === undefined) return
    for (const key of [...keys]) this.delete(key)
  }
}

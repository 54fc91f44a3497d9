/**
 * A bounded map that forgets entries not used lately first, with tags: each entry names the records it
 * was read from (an app, a grant, a tenant), and `dropTag` forgets every entry of one in time
 * proportional to that tag's entries, not the cache's size. Eviction is CLOCK, LRU's usual
 * approximation: entries sit in a ring of `capacity` slots, a hit only marks its slot, and a new entry
 * takes the first slot the clock hand finds unmarked, unmarking those it passes. Hits, the hot path,
 * stay a lookup; a miss that evicts allocates nothing but its entry (a Map used as the queue instead
 * made each eviction walk the holes its deletions left at the front).
 */
export class TaggedLru<V> {
  private readonly slotOf = new Map<string, number>()
  private readonly keys: (string | undefined)[] = []
  private readonly values: (V | undefined)[] = []
  private readonly tagsOf: (readonly string[] | undefined)[] = []
  private readonly used: Uint8Array
  /** Slots emptied by `delete`, taken before the clock evicts anything. */
  private readonly free: number[] = []
  private hand = 0
  /** Tag to its key, or to its keys when more than one entry has it (most tags name one entry). */
  private readonly tagged = new Map<string, string | Set<string>>()

  constructor(readonly capacity: number) {
    if (!(capacity >= 1)) throw new RangeError('a cache holds at least one entry')
    this.used = new Uint8Array(capacity)
  }

  get size(): number {
    return this.slotOf.size
  }

  get(key: string): V | undefined {
    const slot = this.slotOf.get(key)
    if (slot === undefined) return undefined
    this.used[slot] = 1
    return this.values[slot]
  }

  set(key: string, value: V, tags: readonly string[]): void {
    this.delete(key)
    const slot = this.free.pop() ?? (this.keys.length < this.capacity ? this.keys.length : this.evict())
    this.keys[slot] = key
    this.values[slot] = value
    this.tagsOf[slot] = tags
    this.used[slot] = 0
    this.slotOf.set(key, slot)
    for (const tag of tags) this.tag(tag, key)
  }

  delete(key: string): void {
    const slot = this.slotOf.get(key)
    if (slot === undefined) return
    this.empty(slot)
    this.free.push(slot)
  }

  dropTag(tag: string): void {
    const keys = this.tagged.get(tag)
    if (keys === undefined) return
    if (typeof keys === 'string') this.delete(keys)
    else for (const key of [...keys]) this.delete(key)
  }

  /** Turns the clock until it finds a slot not used since it last passed, empties it, and answers it. */
  private evict(): number {
    for (;;) {
      const slot = this.hand
      this.hand = (slot + 1) % this.capacity
      if (this.used[slot] === 1) this.used[slot] = 0
      else {
        this.empty(slot)
        return slot
      }
    }
  }

  private empty(slot: number): void {
    const key = this.keys[slot]
    if (key === undefined) return
    this.slotOf.delete(key)
    for (const tag of this.tagsOf[slot] ?? []) this.untag(tag, key)
    this.keys[slot] = undefined
    this.values[slot] = undefined
    this.tagsOf[slot] = undefined
  }

  private tag(tag: string, key: string): void {
    const keys = this.tagged.get(tag)
    if (keys === undefined) this.tagged.set(tag, key)
    else if (typeof keys === 'string') {
      if (keys !== key) this.tagged.set(tag, new Set([keys, key]))
    } else keys.add(key)
  }

  private untag(tag: string, key: string): void {
    const keys = this.tagged.get(tag)
    if (keys === key) this.tagged.delete(tag)
    else if (typeof keys === 'object') {
      keys.delete(key)
      if (keys.size === 0) this.tagged.delete(tag)
    }
  }
}

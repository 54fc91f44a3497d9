/**
 * Collects the calls made in one turn of the event loop and answers them all with one `load`: on
 * PostgreSQL a lookup that misses the process's cache is a round trip and a statement parsed and
 * planned, and fifty requests in flight each paying that cost more than one query for fifty keys.
 */
export function batched<K, V>(load: (keys: K[]) => Promise<V[]>, most = 500): (key: K) => Promise<V> {
  const waiting: { key: K; answer: (value: V) => void; fail: (err: unknown) => void }[] = []
  const flush = () => {
    const batch = waiting.splice(0, most)
    if (waiting.length > 0) setImmediate(flush)
    load(batch.map((w) => w.key)).then(
      (values) => {
        for (const [i, w] of batch.entries()) w.answer(values[i] as V)
      },
      (err: unknown) => {
        for (const w of batch) w.fail(err)
      },
    )
  }
  return (key) =>
    new Promise<V>((answer, fail) => {
      if (waiting.length === 0) setImmediate(flush)
      waiting.push({ key, answer, fail })
    })
}

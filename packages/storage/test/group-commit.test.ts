import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import Sqlite from 'better-sqlite3'
import type { ApiRecord, Storage, Tenant } from '@fieldgate/core'
import { openSqlite } from '../src/index.js'

/**
 * Group commit on the embedded store (sqlite-dialect.ts): concurrent transactions share one COMMIT,
 * yet each is acknowledged only once it is committed, and one that fails takes only itself back.
 * A second connection to the same file stands in for another process: what it sees is committed.
 */
describe('SQLite group commit', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fg-group-'))
  let store: Storage
  let other: Sqlite.Database
  let tenant: Tenant

  before(async () => {
    store = openSqlite(dir)
    await store.migrate()
    tenant = await store.createTenant({ id: randomUUID(), name: 'Farm', environment: 'live', marketplaceId: randomUUID(), createdAt: 1 })
    other = new Sqlite(join(dir, 'fieldgate.db'))
  })
  after(async () => {
    other.close()
    await store.close()
    rmSync(dir, { recursive: true, force: true })
  })

  const record = (id: string = randomUUID()): ApiRecord => ({
    id,
    tenantId: tenant.id,
    kind: 'alert',
    data: { title: id },
    createdByClientId: null,
    createdByUserId: null,
    createdAt: 2,
  })
  const committed = (id: string) => other.prepare('select count(*) as n from records where id = ?').get(id) as { n: number }
  // Frames in the write-ahead log since it was emptied: each COMMIT writes the pages it changed again.
  const walFrames = () => (other.pragma('wal_checkpoint(PASSIVE)') as { log: number }[])[0]?.log ?? 0
  const emptyWal = async () => {
    await store.getTenant(tenant.id)
    other.pragma('wal_checkpoint(TRUNCATE)')
  }

  it('acknowledges each of 50 concurrent writes only once another connection sees it', async () => {
    const records = Array.from({ length: 50 }, () => record())
    const seenAtAck = await Promise.all(
      records.map(async (r) => {
        await store.createRecord(r)
        return committed(r.id).n
      }),
    )
    assert.deepEqual(
      seenAtAck,
      records.map(() => 1),
    )
  })

  it('writes 50 concurrent transactions with a fraction of the commits of 50 in a row', async () => {
    await emptyWal()
    for (let i = 0; i < 50; i++) await store.createRecord(record())
    const oneByOne = walFrames()
    await emptyWal()
    await Promise.all(Array.from({ length: 50 }, () => store.createRecord(record())))
    const together = walFrames()
    assert.ok(together * 5 < oneByOne, `50 concurrent writes took ${together} WAL frames, 50 in a row ${oneByOne}`)
  })

  it('groups writes made outside a transaction too, each still answered as alone (a replayed proof is refused)', async () => {
    const jtis = Array.from({ length: 50 }, () => randomUUID())
    await emptyWal()
    for (const jti of jtis.slice(0, 25)) assert.equal(await store.rememberProof(jti, 10), true)
    const oneByOne = walFrames()
    await emptyWal()
    const answers = await Promise.all([...jtis.slice(25), jtis[25]!, jtis[0]!].map((jti) => store.rememberProof(jti, 10)))
    const together = walFrames()
    assert.deepEqual(answers, [...Array(25).fill(true), false, false], 'the second of a jti in one group, and one already stored, are replays')
    assert.ok(together * 5 < oneByOne, `25 concurrent writes took ${together} WAL frames, 25 in a row ${oneByOne}`)
    const stored = other.prepare('select count(*) as n from dpop_proofs').get() as { n: number }
    assert.equal(stored.n, 50)
  })

  it('rolls back only the member that failed; the rest of its group lands', async () => {
    const taken = record()
    await store.createRecord(taken)
    const fresh = Array.from({ length: 10 }, () => record())
    const results = await Promise.allSettled([
      ...fresh.slice(0, 5).map((r) => store.createRecord(r)),
      store.createRecord(record(taken.id)),
      ...fresh.slice(5).map((r) => store.createRecord(r)),
    ])
    assert.deepEqual(
      results.map((r) => r.status),
      [...Array(5).fill('fulfilled'), 'rejected', ...Array(5).fill('fulfilled')],
    )
    for (const r of fresh) assert.equal(committed(r.id).n, 1, r.id)
    const stored = await store.getRecord(tenant.id, 'alert', taken.id)
    assert.deepEqual(stored?.data, taken.data, 'the duplicate changed nothing of the first')
  })

  it('lets a read of a table the open group wrote see only what is committed, and a write outside waits for nothing', async () => {
    const r = record()
    const writing = store.createRecord(r)
    // Queued behind the transaction: by the time it runs, the group holding r has to commit first.
    const read = store.getRecord(tenant.id, 'alert', r.id)
    const renamed = store.renameTenant(tenant.id, 'Farm 2')
    assert.equal((await read)?.id, r.id)
    assert.equal(committed(r.id).n, 1, 'the read saw the record only once it was committed')
    await Promise.all([writing, renamed])
    assert.equal((other.prepare('select name from tenants where id = ?').get(tenant.id) as { name: string }).name, 'Farm 2')
  })
})

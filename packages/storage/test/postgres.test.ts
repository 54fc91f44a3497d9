import assert from 'node:assert/strict'
import { randomBytes, randomUUID } from 'node:crypto'
import { after, it } from 'node:test'
import pg from 'pg'
import { ChangeFeed, type Change } from '@fieldgate/core'
import { openPostgres } from '../src/index.js'
import { PreparedStatements, preparingPool } from '../src/prepared.js'
import { app as fixtureApp, secret, storageContract, until } from './contract.js'

const url = process.env.DATABASE_URL

if (!url) {
  it('PostgreSQL contract', { skip: 'DATABASE_URL is not set: PostgreSQL contract tests need a server' }, () => {})
} else {
  // A random schema prefix per run; each area of the contract gets its own schema under it.
  const prefix = `fg_test_${randomBytes(6).toString('hex')}`
  let schemas = 0
  const dropSchemas = async (...names: string[]) => {
    const client = new pg.Client({ connectionString: url })
    await client.connect()
    try {
      for (const name of names) await client.query(`DROP SCHEMA IF EXISTS ${name} CASCADE`)
    } finally {
      await client.end()
    }
  }
  const newSchema = () => `${prefix}_${++schemas}`

  // Safety net for schemas left behind by a failed test.
  after(() => dropSchemas(...Array.from({ length: schemas }, (_, i) => `${prefix}_${i + 1}`)))

  // Each area's schema is dropped as soon as its store closes, so runs leave nothing behind.
  storageContract('PostgreSQL', async () => {
    const schema = newSchema()
    const store = openPostgres(url, { schema })
    const close = store.close.bind(store)
    store.close = async () => {
      await close()
      await dropSchemas(schema)
    }
    return store
  })

  it('migrates a fresh schema while another schema of the database is migrated', async () => {
    const [one, two] = [newSchema(), newSchema()]
    const first = openPostgres(url, { schema: one })
    const second = openPostgres(url, { schema: two })
    try {
      await first.migrate()
      await second.migrate()
      const tenant = { id: randomUUID(), name: 'Second', environment: 'live' as const, marketplaceId: randomUUID(), createdAt: 1 }
      await second.createTenant(tenant)
      assert.deepEqual(await second.listTenants(), [tenant])
      assert.deepEqual(await first.listTenants(), [])
    } finally {
      await Promise.all([first.close(), second.close()])
      await dropSchemas(one, two)
    }
  })

  it('migrates and watches a store whose schema comes from search_path in the URL, beside schemas migrated before', async () => {
    const [earlier, mine] = [newSchema(), newSchema()]
    const first = openPostgres(url, { schema: earlier })
    const admin = new pg.Client({ connectionString: url })
    const viaUrl = new URL(url)
    viaUrl.searchParams.set('options', `-c search_path=${mine}`)
    const store = openPostgres(viaUrl.href)
    let stop = async (): Promise<void> => {}
    try {
      await first.migrate()
      await admin.connect()
      await admin.query(`CREATE SCHEMA ${mine}`)
      await store.migrate()
      const tables = await admin.query(`SELECT table_name FROM information_schema.tables WHERE table_schema = $1 AND table_name LIKE 'kysely_%' ORDER BY 1`, [mine])
      assert.deepEqual(
        tables.rows.map((r: { table_name: string }) => r.table_name),
        ['kysely_migration', 'kysely_migration_lock'],
      )
      assert.deepEqual(await store.listTenants(), [])

      // Its listener knows the schema too: a change committed there wakes it.
      let wakes = 0
      stop = store.watchChanges(
        () => {
          wakes++
        },
        () => {},
      )
      for (const started = Date.now(); wakes === 0; await new Promise((r) => setTimeout(r, 10))) {
        if (Date.now() - started > 5000) assert.fail('no wake after LISTEN')
      }
      await admin.query(`INSERT INTO ${mine}.changes (kind, ref, created_at) VALUES ('grant', 'x', 1)`)
      for (const started = Date.now(); wakes === 1; await new Promise((r) => setTimeout(r, 10))) {
        if (Date.now() - started > 5000) assert.fail('a change in the search_path schema woke nobody')
      }
    } finally {
      await stop()
      await admin.end().catch(() => {})
      await Promise.all([first.close(), store.close()])
      await dropSchemas(earlier, mine)
    }
  })

  it('the change feed sees a change that commits after more than 500 later ones', async () => {
    const schema = newSchema()
    const store = openPostgres(url, { schema })
    const late = new pg.Client({ connectionString: url, options: `-c search_path=${schema}` })
    try {
      await store.migrate()
      const seen: Change[] = []
      const feed = new ChangeFeed(
        store,
        1_000_000,
        (c) => {
          seen.push(c)
        },
        (err) => {
          throw err
        },
      )
      feed.start(await store.latestChangeSeq())
      await late.connect()
      await late.query('BEGIN')
      await late.query(`INSERT INTO changes (kind, ref, created_at) VALUES ('grant', 'late', 1)`)
      const app = fixtureApp()
      await store.createApp(app, secret(app.id))
      for (let i = 0; i < 520; i++) await store.updateApp({ ...app, name: `A${i}` })
      await feed.poll()
      assert.equal(seen.length, 520)
      assert.equal(
        seen.some((c) => c.ref === 'late'),
        false,
      )
      await late.query('COMMIT')
      await feed.poll()
      assert.deepEqual(
        seen.filter((c) => c.ref === 'late').map((c) => c.kind),
        ['grant'],
        'seen once, after it committed',
      )
      await feed.poll()
      assert.equal(seen.length, 521, 'nothing twice')
      feed.stop()
    } finally {
      await late.end().catch(() => {})
      await store.close()
      await dropSchemas(schema)
    }
  })

  it('wakes a watcher when a change commits in its schema, not in another, and listens again after its connection drops', { timeout: 30_000 }, async () => {
    const [mine, other] = [newSchema(), newSchema()]
    const watched = openPostgres(url, { schema: mine })
    const writer = openPostgres(url, { schema: mine })
    const elsewhere = openPostgres(url, { schema: other })
    const admin = new pg.Client({ connectionString: url })
    let wakes = 0
    const errors: unknown[] = []
    const stop = watched.watchChanges(
      () => {
        wakes++
      },
      (err) => errors.push(err),
    )
    try {
      await Promise.all([watched.migrate(), elsewhere.migrate()])
      await until(() => wakes === 1, 'the wake that follows LISTEN')
      const app = fixtureApp()
      const appSecret = secret(app.id)
      await elsewhere.createApp(app, appSecret)
      await elsewhere.updateApp({ ...app, name: 'elsewhere' })
      await writer.createApp(app, appSecret)
      const started = Date.now()
      await writer.updateApp({ ...app, name: 'B' })
      await until(() => wakes === 2, 'a wake for the commit')
      const latency = Date.now() - started
      assert.ok(latency < 1000, `woken ${latency} ms after the commit`)
      assert.equal(wakes, 2, "the other schema's commit woke nobody")

      // Cut the listener's connection from the server side: it reconnects and wakes once for what it missed.
      await admin.connect()
      const cut = await admin.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1`, [`fieldgate listener ${mine}`])
      assert.equal(cut.rowCount, 1)
      await until(() => wakes === 3, 'the wake after listening again')
      assert.ok(errors.length >= 1, 'the drop was reported')
      await writer.updateApp({ ...app, name: 'C' })
      await until(() => wakes === 4, 'a wake after reconnecting')
    } finally {
      await stop()
      await admin.end().catch(() => {})
      await Promise.all([watched.close(), writer.close(), elsewhere.close()])
      await dropSchemas(mine, other)
    }
  })

  it('runs the statements it keeps prepared by their names, and only those', async () => {
    const pool = new pg.Pool({ connectionString: url, max: 1 })
    const prepared = new PreparedStatements()
    const kept = 'SELECT $1::int + 1 AS n'
    prepared.keep(kept)
    prepared.keep(kept)
    assert.throws(() => prepared.keep('SELECT * FROM pg_class'), /must name its columns/)
    const client = await preparingPool(pool, prepared).connect()
    try {
      assert.deepEqual((await client.query(kept, [1])).rows, [{ n: 2 }])
      assert.deepEqual((await client.query(kept, [41])).rows, [{ n: 42 }])
      assert.deepEqual((await client.query('SELECT $1::int AS n', [7])).rows, [{ n: 7 }])
      const statements = await client.query<{ name: string; statement: string }>('SELECT name, statement FROM pg_prepared_statements', [])
      assert.deepEqual(statements.rows, [{ name: 'fieldgate_1', statement: kept }])
      // Kysely counts a write's rows from its command and rowCount.
      await client.query('CREATE TEMP TABLE prepared_probe (n int)', [])
      const written = await client.query('INSERT INTO prepared_probe VALUES (1), (2)', [])
      assert.equal(written.command, 'INSERT')
      assert.equal(written.rowCount, 2)
    } finally {
      client.release()
      await pool.end()
    }
  })
}

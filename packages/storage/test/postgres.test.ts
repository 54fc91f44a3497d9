import assert from 'node:assert/strict'
import { randomBytes, randomUUID } from 'node:crypto'
import { after, it } from 'node:test'
import pg from 'pg'
import { openPostgres } from '../src/index.js'
import { storageContract } from './contract.js'

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
}

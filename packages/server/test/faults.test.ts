/**
 * kill -9 of a `fieldgate serve` process while many writes of one kind are in flight (code
 * redemptions, app creations, marketplace installs), then the store is read row by row: every
 * acknowledged change is there, and every stored change is whole (with its secret, grant, token,
 * install row, outbox events and audit entry), whether it was acknowledged or not. After each kill a
 * new server on the same store must serve and deliver the outbox events left pending.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { rmSync } from 'node:fs'
import { describe } from 'node:test'
import { cliActor, createApp, createTenant, createUser, hashSecret, loadConfig, type App, type Tenant } from '@fieldgate/core'
import { openRuntime, type Runtime } from '@fieldgate/server'
import {
  databaseUrl,
  dropSchema,
  eachEngine,
  freePort,
  postForm,
  postJson,
  silentLogger,
  spawnServe,
  tempDir,
  waitUntil,
  type Engine,
  type Res,
  type ServerProcess,
} from './helpers.js'
import { Person, hiddenFields } from './person.js'
import { Receiver, killHard, postgresReader, randomInt, readyz, sqliteReader, urlWithSchema, type SqlReader } from './faults-helpers.js'

const adminToken = `faults-admin-${randomBytes(24).toString('hex')}`
const INSTALL = 'https://partner.example/install'
const CALLBACK = 'https://partner.example/callback'
/** Requests of one kind fired at once in a round. */
const BURST = 24
const kinds = ['create', 'redeem', 'install'] as const
type Kind = (typeof kinds)[number]

interface Store {
  engine: Engine
  dataDir: string
  schema: string | undefined
  runtime: Runtime
  sql: SqlReader
  env: Record<string, string>
}

interface Fixture {
  store: Store
  receiver: Receiver
  dataApiUrl: string
  tenant: Tenant
  /** An owner of `tenant`, who consents and installs through the pages. */
  email: string
  codeApp: { app: App; clientSecret: string }
  /** Changes of each kind stored before this round (the counts run over the whole store). */
  storedBefore: Map<Kind, number>
}

/** One outcome per request: acknowledged with what it returned, answered otherwise, or cut off by the kill. */
type Outcome<T> = { acked: true; value: T } | { acked: false; answered?: string }

describe('kill -9 during writes: each change is stored whole with its outbox events, or not at all', () => {
  eachEngine(
    'rounds of code redemptions, app creations and installs, each ended by SIGKILL',
    async (engine) => {
      const started = performance.now()
      const store = await openStoreFor(engine)
      const receiver = new Receiver()
      let server: ServerProcess | undefined
      try {
        const fixture = await prepare(store, receiver)
        const port = await freePort()
        server = await spawnServe(port, store.env)
        const figures = { rounds: 0, acked: 0, storedUnacked: 0, lost: 0 }
        for (const kind of [...kinds, ...kinds]) {
          const round = await runRound(kind, fixture, server)
          figures.rounds++
          figures.acked += round.acked
          figures.lost += round.lost
          figures.storedUnacked += round.storedUnacked
          await checkWhole(store.sql)
          server = await spawnServe(port, store.env)
          assert.equal(await readyz(server.origin), 200)
          await allDelivered(store, receiver)
        }
        console.log(
          `# ${engine}: ${figures.rounds} kills, ${figures.acked} acknowledged writes checked, ${figures.lost} cut off ` +
            `(${figures.storedUnacked} of them stored whole anyway), ${receiver.ids.size} events delivered, ${Math.round(performance.now() - started)} ms`,
        )
      } finally {
        if (server) await killHard(server)
        await closeStore(store)
        await receiver.close()
      }
    },
    { timeout: 240_000 },
  )
})

async function openStoreFor(engine: Engine): Promise<Store> {
  const dataDir = tempDir('fg-faults-')
  const schema = engine === 'postgres' ? `fg_faults_${randomBytes(6).toString('hex')}` : undefined
  const config = loadConfig({}, { dataDir, logLevel: 'silent', ...(schema ? { databaseUrl } : {}) })
  const runtime = await openRuntime(config, silentLogger(), { prepare: true, follow: false, ...(schema ? { schema } : {}) })
  const sql = schema ? await postgresReader(databaseUrl!, schema) : sqliteReader(dataDir)
  const env: Record<string, string> = {
    FIELDGATE_DATA_DIR: dataDir,
    FIELDGATE_ADMIN_TOKEN: adminToken,
    FIELDGATE_WEBHOOK_ALLOW_PRIVATE_TARGETS: '1',
    FIELDGATE_WEBHOOK_POLL_MS: '50',
    FIELDGATE_WEBHOOK_TIMEOUT_MS: '800',
    FIELDGATE_WEBHOOK_LEASE_MS: '2500',
    FIELDGATE_WEBHOOK_BASE_DELAY_MS: '100',
    FIELDGATE_WEBHOOK_MAX_DELAY_MS: '400',
    FIELDGATE_RATE_LIMIT_TOKEN_PER_ADDRESS: '0',
    FIELDGATE_RATE_LIMIT_TOKEN_PER_CLIENT: '0',
    ...(schema ? { DATABASE_URL: urlWithSchema(databaseUrl!, schema) } : {}),
  }
  return { engine, dataDir, schema, runtime, sql, env }
}

async function closeStore(store: Store): Promise<void> {
  await store.sql.close().catch(() => {})
  await store.runtime.close().catch(() => {})
  if (store.schema) await dropSchema(databaseUrl!, store.schema).catch(() => {})
  rmSync(store.dataDir, { recursive: true, force: true })
}

async function prepare(store: Store, receiver: Receiver): Promise<Fixture> {
  const dataApiUrl = await receiver.listen()
  const tenant = await createTenant(store.runtime.ctx, cliActor, { name: 'Faults farm', environment: 'sandbox' })
  const email = `owner-${randomBytes(4).toString('hex')}@faults.example`
  await createUser(store.runtime.ctx, cliActor, { email, password: Person.password, tenantId: tenant.id, role: 'owner' })
  const codeApp = await createApp(store.runtime.ctx, cliActor, {
    name: 'Code app',
    kind: 'public',
    environment: 'sandbox',
    scopes: 'api',
    redirectUris: [CALLBACK],
    dataApiUrl,
  })
  return { store, receiver, dataApiUrl, tenant, email, codeApp, storedBefore: new Map() }
}

/** Fires BURST requests of `kind`, SIGKILLs the server after a random number of them were answered. */
async function runRound(kind: Kind, f: Fixture, server: ServerProcess): Promise<{ acked: number; lost: number; storedUnacked: number }> {
  const sends = await prepareBurst(kind, f, server.origin)
  const killAfter = randomInt(1, BURST - 4)
  let answered = 0
  let killing: Promise<void> | undefined
  const outcomes = await Promise.all(
    sends.map(async (send) => {
      try {
        const value = await send()
        if (++answered === killAfter) killing = delay(randomInt(0, 15)).then(() => killHard(server))
        return value
      } catch {
        return { acked: false } as Outcome<string>
      }
    }),
  )
  await killing
  await killHard(server) // when the burst ended before the kill
  // Before the kill every request is answered as asked; after it, none is answered at all.
  assert.deepEqual(
    outcomes.flatMap((o) => (!o.acked && o.answered ? [o.answered] : [])),
    [],
    `${kind}: no request was refused`,
  )
  const stored = await checkAcknowledged(kind, f, outcomes)
  const acked = outcomes.filter((o) => o.acked).length
  return { acked, lost: outcomes.length - acked, storedUnacked: stored - acked }
}

const delay = (ms: number) => new Promise((r) => setTimeout(r, ms))

type Send = () => Promise<Outcome<string>>

/** Everything a burst needs is made first, while the server is up; the sends are then all writes. */
async function prepareBurst(kind: Kind, f: Fixture, origin: string): Promise<Send[]> {
  const ok = (res: Res, status: number, value: () => string): Outcome<string> => {
    if (res.status !== status) return { acked: false, answered: `${res.status} ${res.text.slice(0, 200)}` }
    return { acked: true, value: value() }
  }
  if (kind === 'create') {
    return Array.from({ length: BURST }, (_, i) => async () => {
      const body =
        i % 2
          ? { name: `Created ${i}`, kind: 'private', tenant_id: f.tenant.id, data_api_url: f.dataApiUrl }
          : { name: `Created ${i}`, kind: 'public', environment: 'sandbox', data_api_url: f.dataApiUrl }
      const res = await postJson(`${origin}/admin/v1/apps`, body, { authorization: `Bearer ${adminToken}` })
      return ok(res, 201, () => `${res.json.client_id} ${res.json.client_secret}`)
    })
  }
  const person = new Person({ url: (p) => origin + p }, f.email)
  assert.equal((await person.signIn()).status, 303)
  if (kind === 'redeem') {
    const codes: string[] = []
    for (let i = 0; i < BURST; i++) {
      const location = await person.decide({ client_id: f.codeApp.app.clientId, scope: 'api', state: `s${i}` }, 'allow', f.tenant.id)
      codes.push(location.searchParams.get('code')!)
    }
    return codes.map((code) => async () => {
      const res = await postForm(`${origin}/oauth/token`, {
        grant_type: 'authorization_code',
        code,
        client_id: f.codeApp.app.clientId,
        client_secret: f.codeApp.clientSecret,
      })
      return ok(res, 200, () => `${code} ${res.json.access_token}`)
    })
  }
  const apps = []
  for (let i = 0; i < BURST; i++) {
    apps.push(
      (
        await createApp(f.store.runtime.ctx, cliActor, {
          name: `Listed ${i}`,
          kind: 'public',
          environment: 'sandbox',
          installUrl: INSTALL,
          listed: true,
          dataApiUrl: f.dataApiUrl,
        })
      ).app,
    )
  }
  // Each app's own page: its Install form carries the scopes shown there, bound to that app and tenant.
  const forms: Record<string, string>[] = []
  for (const app of apps) forms.push(hiddenFields((await person.get(`/marketplace/apps/${app.clientId}?tenant=${f.tenant.id}`)).text))
  return apps.map((app, i) => async () => {
    const res = await person.post(`/marketplace/apps/${app.clientId}/install`, { ...forms[i], tenant_id: f.tenant.id })
    return ok(res, 303, () => app.clientId)
  })
}

/**
 * Every acknowledged change of the burst is stored (its secret authenticates, its token is the
 * code's, its install is there); returns how many of the burst are stored, acknowledged or not.
 */
async function checkAcknowledged(kind: Kind, f: Fixture, outcomes: Outcome<string>[]): Promise<number> {
  const { sql } = f.store
  for (const o of outcomes) {
    if (!o.acked) continue
    const [a, b] = o.value.split(' ')
    if (kind === 'create') {
      const rows = await sql.all('SELECT s.secret_hash FROM apps a JOIN app_secrets s ON s.app_id = a.id WHERE a.client_id = ?', [a])
      assert.deepEqual(
        rows.map((r) => r.secret_hash),
        [hashSecret(b!)],
        `acknowledged app ${a} is stored with its secret`,
      )
    } else if (kind === 'redeem') {
      const rows = await sql.all('SELECT c.consumed_at FROM opaque_tokens t JOIN authorization_codes c ON c.code_hash = t.code_hash WHERE t.token_hash = ?', [hashSecret(b!)])
      assert.equal(rows.length, 1, 'an acknowledged redemption stored its token')
      assert.notEqual(rows[0]!.consumed_at, null, 'and consumed its code')
    } else {
      const rows = await sql.all('SELECT i.state FROM installs i JOIN grants g ON g.id = i.grant_id JOIN apps a ON a.id = g.app_id WHERE a.client_id = ? AND g.tenant_id = ?', [
        a,
        f.tenant.id,
      ])
      assert.equal(rows.length, 1, `acknowledged install of ${a} is stored`)
    }
  }
  const counts: Record<Kind, [string, unknown[]]> = {
    create: ["SELECT count(*) AS n FROM apps WHERE name LIKE 'Created %'", []],
    redeem: ['SELECT count(*) AS n FROM authorization_codes WHERE consumed_at IS NOT NULL', []],
    install: ['SELECT count(*) AS n FROM installs i JOIN grants g ON g.id = i.grant_id WHERE g.tenant_id = ?', [f.tenant.id]],
  }
  const [query, params] = counts[kind]
  const total = Number((await f.store.sql.all(query, params))[0]!.n)
  const before = f.storedBefore.get(kind) ?? 0
  f.storedBefore.set(kind, total)
  return total - before
}

/** Rows that break wholeness, by rule; every list must be empty. */
const wholeness: Record<string, string> = {
  'an app without a secret': 'SELECT a.id FROM apps a WHERE NOT EXISTS (SELECT 1 FROM app_secrets s WHERE s.app_id = a.id)',
  'an app without its app.created audit entry': "SELECT a.id FROM apps a WHERE NOT EXISTS (SELECT 1 FROM audit_entries e WHERE e.object_id = a.id AND e.action = 'app.created')",
  'a private or sandbox marketplace app without its grant on its tenant':
    "SELECT a.id FROM apps a WHERE (a.kind = 'private' OR a.environment = 'sandbox') AND NOT EXISTS (SELECT 1 FROM grants g WHERE g.app_id = a.id AND g.tenant_id = a.tenant_id)",
  'a tenant nobody belongs to and no app stands on (left by a creation cut short)':
    'SELECT t.id FROM tenants t WHERE NOT EXISTS (SELECT 1 FROM apps a WHERE a.tenant_id = t.id) AND NOT EXISTS (SELECT 1 FROM memberships m WHERE m.tenant_id = t.id)',
  'a grant of an app with a Data API URL without its grant.created event':
    "SELECT g.id FROM grants g JOIN apps a ON a.id = g.app_id WHERE a.data_api_url IS NOT NULL AND NOT EXISTS (SELECT 1 FROM events e WHERE e.type = 'grant.created' AND e.body LIKE '%' || g.id || '%')",
  'an install without its app.installed event':
    "SELECT i.grant_id FROM installs i WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.type = 'app.installed' AND e.body LIKE '%' || i.grant_id || '%')",
  'an install without its app.installed audit entry':
    "SELECT i.grant_id FROM installs i WHERE NOT EXISTS (SELECT 1 FROM audit_entries e WHERE e.object_id = i.grant_id AND e.action = 'app.installed')",
  'a marketplace grant on a customer tenant without its install row':
    'SELECT g.id FROM grants g JOIN apps a ON a.id = g.app_id WHERE a.listed = 1 AND g.tenant_id <> a.tenant_id AND NOT EXISTS (SELECT 1 FROM installs i WHERE i.grant_id = g.id)',
  'a consumed code without its token':
    'SELECT c.code_hash FROM authorization_codes c WHERE c.consumed_at IS NOT NULL AND NOT EXISTS (SELECT 1 FROM opaque_tokens t WHERE t.code_hash = c.code_hash)',
  'a token from a code that is not consumed': 'SELECT t.token_hash FROM opaque_tokens t JOIN authorization_codes c ON c.code_hash = t.code_hash WHERE c.consumed_at IS NULL',
}

async function checkWhole(sql: SqlReader): Promise<void> {
  const broken: Record<string, number> = {}
  for (const [rule, query] of Object.entries(wholeness)) {
    const rows = await sql.all(query)
    if (rows.length) broken[rule] = rows.length
  }
  assert.deepEqual(broken, {}, 'every stored change is whole')
}

/** The restarted server delivers what the killed one left pending: nothing pending, every event received. */
async function allDelivered(store: Store, receiver: Receiver): Promise<void> {
  await waitUntil(async () => (await store.runtime.storage.countPendingEvents()) === 0, 20_000, 100).catch(async (err: Error) => {
    const stuck = await store.sql.all("SELECT type, attempts, last_error FROM events WHERE state = 'pending' LIMIT 5")
    throw new Error(`${err.message}: events still pending, e.g. ${JSON.stringify(stuck)}`)
  })
  const ids = (await store.sql.all("SELECT id FROM events WHERE state = 'delivered'")).map((r) => String(r.id))
  assert.deepEqual(
    ids.filter((id) => !receiver.ids.has(id)),
    [],
    'every delivered event reached the receiver',
  )
  const failed = await store.sql.all("SELECT id FROM events WHERE state <> 'delivered'")
  assert.deepEqual(failed, [], 'no event failed')
}

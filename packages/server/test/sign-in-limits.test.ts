import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { Writable } from 'node:stream'
import { after, describe, it } from 'node:test'
import { cliActor, ConfigError, createUser, defaults, loadConfig, type ConfigOverrides } from '@fieldgate/core'
import { signInFrom, type Answer } from './from-address.js'
import { sleep, startServer, type TestServer } from './helpers.js'
import { Person } from './person.js'

/**
 * Sign-in limits that cannot shut the owner out: wrong passwords from address A (127.0.0.2) throttle
 * A, while the owner at B (127.0.0.3) signs in at once; every failure, throttle and success is logged
 * with its request id, without the email or the password.
 */

const A = '127.0.0.2'
const B = '127.0.0.3'

interface LogLine {
  level: number
  msg: string
  reqId?: string
  event?: string
  account?: string
  address?: string
  userId?: string
  limit?: string
  retryAfter?: number
  ms?: number
}

describe('sign-in limits', () => {
  const servers: TestServer[] = []
  after(async () => {
    for (const s of servers) await s.close()
  })

  async function start(signInLimits: ConfigOverrides['signInLimits'] = {}): Promise<{ server: TestServer; log: () => LogLine[]; raw: () => string }> {
    const lines: string[] = []
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(chunk.toString())
        done()
      },
    })
    const server = await startServer({ log: sink, overrides: { signInLimits } })
    servers.push(server)
    const raw = () => lines.join('')
    const log = () =>
      raw()
        .split('\n')
        .filter((l) => l.trim() !== '')
        .map((l) => JSON.parse(l) as LogLine)
    return { server, log, raw }
  }

  async function victim(server: TestServer): Promise<{ email: string; id: string }> {
    const email = `victim-${randomBytes(4).toString('hex')}@farm.example`
    const user = await createUser(server.runtime.ctx, cliActor, { email, password: Person.password })
    return { email, id: user.id }
  }

  it('an account hammered with wrong passwords from A: the owner signs in from B at once, A is throttled, all of it logged', async () => {
    // The defaults, but a first delay long enough that a slow machine cannot outwait it between two requests.
    const { server, log, raw } = await start({ delaySeconds: 30 })
    const { email, id } = await victim(server)
    const statuses: number[] = []
    let last: Answer | undefined
    for (let i = 0; i < 12; i++) {
      last = await signInFrom(server.origin, A, email, `wrong password ${i}`)
      statuses.push(last.status)
    }
    const free = defaults.signInLimits.perAccountAddress
    assert.deepEqual(statuses, [...Array<number>(free).fill(401), ...Array<number>(12 - free).fill(429)], 'free failures, then A waits')
    assert.ok(Number(last!.headers['retry-after']) >= 1, 'with Retry-After')
    assert.match(last!.text, /Too many failed sign-ins to this account from your address/)
    assert.equal((await signInFrom(server.origin, A, email, Person.password)).status, 429, 'A is throttled even with the right password')

    const owner = await signInFrom(server.origin, B, email, Person.password)
    assert.equal(owner.status, 303, `the owner at B signs in: ${owner.status}`)
    assert.match(String(owner.headers['set-cookie']), /fg_session=/)

    const lines = log()
    const failed = lines.filter((l) => l.event === 'sign-in.failed')
    const throttled = lines.filter((l) => l.event === 'sign-in.throttled')
    const succeeded = lines.filter((l) => l.event === 'sign-in.succeeded')
    assert.equal(failed.length, free)
    assert.equal(throttled.length, 12 - free + 1)
    assert.equal(succeeded.length, 1)
    for (const l of [...failed, ...throttled]) assert.equal(l.address, A)
    assert.equal(throttled[0]!.limit, 'account+address')
    assert.ok(throttled[0]!.retryAfter! >= 1)
    assert.equal(succeeded[0]!.address, B)
    assert.equal(succeeded[0]!.userId, id)
    const reqIds = new Set([...failed, ...throttled, ...succeeded].map((l) => l.reqId))
    assert.equal(reqIds.size, failed.length + throttled.length + 1, 'each line names its own request')
    for (const r of reqIds) assert.match(r ?? '', /^[\w.-]{8,}$/)
    assert.equal(owner.headers['x-request-id'], succeeded[0]!.reqId, 'the id the response carries')
    assert.equal(new Set([...failed, ...succeeded].map((l) => l.account)).size, 1, 'one tag for the account, in every line')
    assert.ok(!raw().includes(email), 'no email in the log')
    assert.ok(!raw().includes('wrong password') && !raw().includes(Person.password), 'no password in the log')
  })

  it('the delay per account and address doubles with each failure past the free ones', async () => {
    const { server } = await start({ perAccountAddress: 2, delaySeconds: 1 })
    const { email } = await victim(server)
    for (let i = 0; i < 2; i++) assert.equal((await signInFrom(server.origin, A, email, 'wrong')).status, 401)
    const first = await signInFrom(server.origin, A, email, 'wrong')
    assert.equal(first.status, 429)
    assert.equal(first.headers['retry-after'], '1')
    await sleep(1100)
    assert.equal((await signInFrom(server.origin, A, email, 'wrong')).status, 401, 'one more try once the wait is over')
    const second = await signInFrom(server.origin, A, email, 'wrong')
    assert.equal(second.status, 429)
    assert.equal(second.headers['retry-after'], '2')
  })

  it('an address that spends its budget of failures over many accounts gets 429 for any account; others do not', async () => {
    const { server, log } = await start({ perAddress: 4 })
    const { email } = await victim(server)
    for (let i = 0; i < 4; i++) assert.equal((await signInFrom(server.origin, A, `nobody-${i}@farm.example`, 'wrong')).status, 401)
    const blocked = await signInFrom(server.origin, A, email, Person.password)
    assert.equal(blocked.status, 429)
    assert.ok(Number(blocked.headers['retry-after']) > 1)
    assert.match(blocked.text, /Too many failed attempts from your address/)
    assert.equal((await signInFrom(server.origin, B, email, Person.password)).status, 303)
    assert.equal(log().filter((l) => l.event === 'sign-in.throttled' && l.limit === 'address').length, 1)
  })

  it('an account guessed at from many addresses is slowed for everyone, never refused', async () => {
    const { server, log } = await start({ perAccount: 3, slowdownMs: 400 })
    const { email } = await victim(server)
    for (const from of ['127.0.0.4', '127.0.0.5', '127.0.0.6']) assert.equal((await signInFrom(server.origin, from, email, 'wrong')).status, 401)
    const started = performance.now()
    const owner = await signInFrom(server.origin, B, email, Person.password)
    const took = performance.now() - started
    assert.equal(owner.status, 303)
    assert.ok(took >= 400, `held ${Math.round(took)} ms`)
    const slowed = log().filter((l) => l.event === 'sign-in.slowed')
    assert.equal(slowed.length, 1)
    assert.equal(slowed[0]!.ms, 400)
  })

  it('on Redis, two servers share the counts: A throttled at both, the owner at B signs in at either', {
    skip: process.env.REDIS_URL ? false : 'REDIS_URL is not set (CI sets REDIS_URL=redis://127.0.0.1:6379)',
  }, async () => {
    const shared = {
      redisUrl: process.env.REDIS_URL!,
      rateLimitPrefix: `fieldgate-test:${randomBytes(8).toString('hex')}:`,
      signInLimits: { perAccountAddress: 2, delaySeconds: 30 },
    }
    const one = await startServer({ overrides: shared })
    servers.push(one)
    const two = await startServer({ dataDir: one.dataDir, overrides: { ...shared, issuer: one.issuer } })
    servers.push(two)
    const { email } = await victim(one)
    assert.equal((await signInFrom(one.origin, A, email, 'wrong')).status, 401)
    assert.equal((await signInFrom(two.origin, A, email, 'wrong')).status, 401)
    for (const s of [one, two]) assert.equal((await signInFrom(s.origin, A, email, Person.password)).status, 429, 'A has used its free failures across both')
    for (const s of [one, two]) assert.equal((await signInFrom(s.origin, B, email, Person.password)).status, 303, 'the owner at B')
  })

  it('settings: defaults, environment, validation with clear errors', () => {
    assert.deepEqual(loadConfig({}).signInLimits, {
      windowSeconds: 900,
      perAccountAddress: 5,
      delaySeconds: 1,
      maxDelaySeconds: 300,
      perAddress: 50,
      perAccount: 20,
      slowdownMs: 1000,
    })
    const e = loadConfig({
      FIELDGATE_SIGN_IN_WINDOW: '600',
      FIELDGATE_SIGN_IN_PER_ACCOUNT_ADDRESS: '3',
      FIELDGATE_SIGN_IN_DELAY: '2',
      FIELDGATE_SIGN_IN_MAX_DELAY: '60',
      FIELDGATE_SIGN_IN_PER_ADDRESS: '100',
      FIELDGATE_SIGN_IN_PER_ACCOUNT: '40',
      FIELDGATE_SIGN_IN_SLOWDOWN_MS: '0',
    }).signInLimits
    assert.deepEqual(e, { windowSeconds: 600, perAccountAddress: 3, delaySeconds: 2, maxDelaySeconds: 60, perAddress: 100, perAccount: 40, slowdownMs: 0 })
    assert.ok(Object.isFrozen(e))
    for (const [name, value] of [
      ['FIELDGATE_SIGN_IN_WINDOW', '0'],
      ['FIELDGATE_SIGN_IN_PER_ADDRESS', '0'],
      ['FIELDGATE_SIGN_IN_DELAY', '0'],
      ['FIELDGATE_SIGN_IN_MAX_DELAY', '0'],
      ['FIELDGATE_SIGN_IN_SLOWDOWN_MS', '60000'],
      ['FIELDGATE_SIGN_IN_PER_ACCOUNT', 'ten'],
    ] as const) {
      assert.throws(
        () => loadConfig({ [name]: value }),
        (err: unknown) => err instanceof ConfigError && err.message.includes(name),
        `${name}=${value}`,
      )
    }
  })
})

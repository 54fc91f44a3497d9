import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { describe, it } from 'node:test'
import {
  ConfigError,
  InvalidClient,
  InvalidRequest,
  InvalidScope,
  decryptPrivateJwk,
  encryptPrivateJwk,
  generateSigningKey,
  loadConfig,
  parseMasterKey,
  parseScope,
  planBootstrap,
  planRotation,
  readClientCredentials,
  secretHint,
  newClientSecret,
  hashSecret,
  sameHash,
} from '../src/index.js'

const masterKey = randomBytes(32)
const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`

describe('scopes (RFC 6749 §3.3)', () => {
  it('splits on spaces, drops empties and duplicates, keeps order', () => {
    assert.deepEqual(parseScope('maps:write  fields:read:all maps:write'), ['maps:write', 'fields:read:all'])
    assert.deepEqual(parseScope(undefined), [])
    assert.deepEqual(parseScope(''), [])
  })
  it('rejects characters outside scope-token', () => {
    assert.throws(() => parseScope('api "quoted"'), InvalidScope)
    assert.throws(() => parseScope('back\\slash'), InvalidScope)
    assert.throws(() => parseScope('tab\there'), InvalidScope)
  })
})

describe('client authentication parameters (RFC 6749 §2.3.1)', () => {
  it('reads Basic credentials, form-urlencoded inside', () => {
    const c = readClientCredentials(basic('app:1', 's3cr=t+x'), {})
    assert.deepEqual(c, { clientId: 'app:1', clientSecret: 's3cr=t+x', method: 'client_secret_basic' })
  })
  it('reads body credentials', () => {
    assert.equal(readClientCredentials(undefined, { client_id: 'a', client_secret: 'b' }).method, 'client_secret_post')
  })
  it('refuses two methods at once', () => {
    assert.throws(() => readClientCredentials(basic('a', 'b'), { client_secret: 'b' }), InvalidRequest)
    assert.throws(() => readClientCredentials(basic('a', 'b'), { client_id: 'other' }), InvalidRequest)
  })
  it('answers malformed Basic with invalid_client and a Basic challenge', () => {
    for (const header of ['Basic !!!', 'Basic ' + Buffer.from('nocolon').toString('base64'), 'Basic ' + Buffer.from('id:').toString('base64')]) {
      assert.throws(
        () => readClientCredentials(header, {}),
        (err: unknown) => err instanceof InvalidClient && err.status === 401 && /^Basic/.test(err.headers['www-authenticate'] ?? ''),
      )
    }
  })
  it('answers missing credentials with invalid_client without a challenge', () => {
    for (const params of [{}, { client_id: '' }, { client_id: 'a', client_secret: '' }] as Record<string, string>[]) {
      assert.throws(
        () => readClientCredentials(undefined, params),
        (err: unknown) => err instanceof InvalidClient && !err.headers['www-authenticate'],
      )
    }
  })
  it('reads a client_id alone as a public client (`none`, OAuth 2.1 §2.4), never with Basic', () => {
    assert.deepEqual(readClientCredentials(undefined, { client_id: 'a' }), { clientId: 'a', method: 'none' })
    assert.equal(readClientCredentials(basic('a', 'b'), { client_id: 'a' }).method, 'client_secret_basic')
  })
})

describe('secrets', () => {
  it('carry their environment in a prefix and 256 bits of randomness', () => {
    const live = newClientSecret('live')
    assert.match(live, /^fgs_live_[A-Za-z0-9_-]{43}$/)
    assert.match(newClientSecret('sandbox'), /^fgs_sandbox_/)
    assert.notEqual(newClientSecret('live'), live)
    assert.equal(secretHint(live), `fgs_live_…${live.slice(-4)}`)
  })
  it('hash one way and compare equal hashes only', () => {
    const s = newClientSecret('live')
    assert.ok(sameHash(hashSecret(s), hashSecret(s)))
    assert.ok(!sameHash(hashSecret(s), hashSecret(s + 'x')))
    assert.ok(!hashSecret(s).includes(s.slice(9)))
  })
})

describe('signing keys', () => {
  it('encrypt private keys bound to their kid', async () => {
    const record = await generateSigningKey('RS256', 'active', masterKey, Date.now())
    const jwk = decryptPrivateJwk(record.privateJwkEnc, record.kid, masterKey)
    assert.equal(jwk.kty, 'RSA')
    assert.ok(jwk.d, 'private part present')
    assert.ok(!record.privateJwkEnc.includes(jwk.d!), 'ciphertext does not contain the key')
    assert.throws(() => decryptPrivateJwk(record.privateJwkEnc, 'another-kid', masterKey), /cannot be decrypted/)
    assert.throws(() => decryptPrivateJwk(record.privateJwkEnc, record.kid, randomBytes(32)), /cannot be decrypted/)
    assert.equal(JSON.parse(record.publicJwk).d, undefined, 'public JWK has no private part')
    const sealed = encryptPrivateJwk({ kty: 'oct', k: 'x' }, 'k1', masterKey)
    const tampered = sealed.slice(0, -2) + (sealed.endsWith('A') ? 'BB' : 'AA')
    assert.throws(() => decryptPrivateJwk(tampered, 'k1', masterKey))
  })

  it('bootstrap creates an active and a published next key, once', async () => {
    const now = Date.now()
    const first = await planBootstrap([], 'RS256', masterKey, now)
    assert.deepEqual(first.insert.map((k) => k.state).sort(), ['active', 'next'])
    const again = await planBootstrap(first.insert, 'RS256', masterKey, now)
    assert.equal(again.insert.length, 0)
  })

  it('rotation promotes next, retires active after the longest token life, publishes a new next', async () => {
    const now = 1_000_000
    const keys = (await planBootstrap([], 'RS256', masterKey, now)).insert
    const active = keys.find((k) => k.state === 'active')!
    const next = keys.find((k) => k.state === 'next')!
    const plan = await planRotation(keys, 'RS256', masterKey, now + 5000, 3600)
    assert.deepEqual(
      plan.update.find((u) => u.kid === next.kid),
      { kid: next.kid, state: 'active', retireAt: null },
    )
    assert.deepEqual(
      plan.update.find((u) => u.kid === active.kid),
      { kid: active.kid, state: 'retiring', retireAt: now + 5000 + 3600_000 },
    )
    assert.equal(plan.insert.length, 1)
    assert.equal(plan.insert[0]!.state, 'next')
    // A retiring key past its time is retired on the next rotation.
    const after = keys.map((k) => ({ ...k, ...plan.update.find((u) => u.kid === k.kid) }))
    const later = await planRotation([...after, ...plan.insert], 'RS256', masterKey, now + 5000 + 3600_000, 3600)
    assert.equal(later.update.find((u) => u.kid === active.kid)?.state, 'retired')
  })

  it('rotation without a next key only publishes one', async () => {
    const active = await generateSigningKey('RS256', 'active', masterKey, 1)
    const plan = await planRotation([active], 'RS256', masterKey, 2, 3600)
    assert.equal(plan.update.length, 0)
    assert.equal(plan.insert[0]!.state, 'next')
  })

  it('master keys are 32 bytes, hex or base64', () => {
    assert.equal(parseMasterKey('ab'.repeat(32)).length, 32)
    assert.equal(parseMasterKey(randomBytes(32).toString('base64')).length, 32)
    assert.throws(() => parseMasterKey('short'), /32 bytes/)
  })
})

describe('config', () => {
  it('has documented defaults and is frozen', () => {
    const c = loadConfig({})
    assert.equal(c.port, 4400)
    assert.equal(c.issuer, 'http://127.0.0.1:4400')
    assert.equal(c.audience, 'http://127.0.0.1:4400/api')
    assert.deepEqual(c.tokenTtl, { public: 28000, private: 3600 })
    assert.ok(Object.isFrozen(c))
  })
  it('validates at start', () => {
    assert.throws(() => loadConfig({ FIELDGATE_SIGNING_ALG: 'none' }), ConfigError)
    assert.throws(() => loadConfig({ FIELDGATE_PORT: 'eighty' }), ConfigError)
    assert.throws(() => loadConfig({ FIELDGATE_ISSUER: 'ftp://x' }), ConfigError)
    assert.equal(loadConfig({ FIELDGATE_ISSUER: 'https://auth.example.com/' }).issuer, 'https://auth.example.com')
  })
})

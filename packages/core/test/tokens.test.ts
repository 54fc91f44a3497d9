/**
 * The pure parts under the protocol steps: compact JWS (RFC 7515) with its algorithm pinned per key and
 * only canonical base64url accepted, RFC 9068 access-token validation on a key ring, opaque token shape,
 * scope helpers, and the resource API's read and write rules.
 */
import assert from 'node:assert/strict'
import { generateKeyPairSync, randomBytes, sign } from 'node:crypto'
import { describe, it } from 'node:test'
import {
  InsufficientScope,
  InvalidToken,
  KeyRing,
  decryptPrivateJwk,
  echo,
  generateSigningKey,
  formatScope,
  isOpaqueToken,
  listFilter,
  missingFrom,
  newOpaqueToken,
  planBootstrap,
  readable,
  requireWrite,
  resourceKinds,
  sameScopes,
  signAccessToken,
  verifyAccessToken,
  type AccessTokenClaims,
  type ApiRecord,
  type Principal,
} from '../src/index.js'
import { signCompact, verifyCompact } from '../src/tokens/jws.js'

describe('compact JWS', () => {
  const es = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 })
  const keyFor = (kid: unknown) => (kid === 'es' ? { alg: 'ES256', key: es.publicKey } : kid === 'rs' ? { alg: 'RS256', key: rsa.publicKey } : undefined)

  it('round-trips ES256, RS256 and PS256', () => {
    const pss = (kid: unknown) => (kid === 'ps' ? { alg: 'PS256', key: rsa.publicKey } : undefined)
    assert.deepEqual(verifyCompact(signCompact({ alg: 'ES256', kid: 'es' }, { a: 1 }, es.privateKey), keyFor)?.payload, { a: 1 })
    assert.deepEqual(verifyCompact(signCompact({ alg: 'RS256', kid: 'rs' }, { b: 2 }, rsa.privateKey), keyFor)?.payload, { b: 2 })
    assert.deepEqual(verifyCompact(signCompact({ alg: 'PS256', kid: 'ps' }, { c: 3 }, rsa.privateKey), pss)?.payload, { c: 3 })
    assert.throws(() => signCompact({ alg: 'HS256' }, {}, es.privateKey), /unsupported/)
  })

  it('refuses an algorithm other than the one pinned for the kid, an unknown kid, crit, and a bad signature', () => {
    const token = signCompact({ alg: 'ES256', kid: 'es' }, { a: 1 }, es.privateKey)
    assert.equal(verifyCompact(signCompact({ alg: 'PS256', kid: 'rs' }, { a: 1 }, rsa.privateKey), keyFor), undefined, 'PS256 under an RS256 kid')
    assert.equal(verifyCompact(signCompact({ alg: 'ES256', kid: 'nobody' }, { a: 1 }, es.privateKey), keyFor), undefined)
    assert.equal(verifyCompact(signCompact({ alg: 'ES256', kid: 'es', crit: ['exp'] }, { a: 1 }, es.privateKey), keyFor), undefined)
    const [h, p, s] = token.split('.') as [string, string, string]
    const otherPayload = Buffer.from(JSON.stringify({ a: 2 })).toString('base64url')
    assert.equal(verifyCompact(`${h}.${otherPayload}.${s}`, keyFor), undefined)
    assert.equal(verifyCompact(`${h}.${p}.${s.slice(0, -4)}AAAA`, keyFor), undefined)
  })

  const ed = generateKeyPairSync('ed25519')
  const mixed = (kid: unknown) => (kid === 'ed' ? { alg: 'EdDSA', key: ed.publicKey } : keyFor(kid))
  /** A compact JWS over this header and payload, signed by `signWith`: forgeries signCompact would refuse to make. */
  const forge = (header: object, payload: object, signWith: (input: Buffer) => Buffer): string => {
    const input = `${Buffer.from(JSON.stringify(header)).toString('base64url')}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}`
    return `${input}.${signWith(Buffer.from(input)).toString('base64url')}`
  }

  it('round-trips EdDSA with Ed25519 (RFC 8037 §3.1): 64-byte signatures over the message itself', () => {
    const token = signCompact({ alg: 'EdDSA', kid: 'ed' }, { e: 5 }, ed.privateKey)
    assert.deepEqual(verifyCompact(token, mixed)?.payload, { e: 5 })
    assert.equal(Buffer.from(token.split('.')[2]!, 'base64url').length, 64)
    // RFC 8032 signs the input as it is; a node:crypto Ed25519 signature made by hand is the same token.
    const [h, p] = token.split('.') as [string, string]
    assert.equal(sign(null, Buffer.from(`${h}.${p}`), ed.privateKey).toString('base64url'), token.split('.')[2])
    const [, , s] = token.split('.') as [string, string, string]
    const other = Buffer.from(JSON.stringify({ e: 6 })).toString('base64url')
    assert.equal(verifyCompact(`${h}.${other}.${s}`, mixed), undefined, 'another payload')
    assert.equal(verifyCompact(signCompact({ alg: 'EdDSA', kid: 'ed' }, { e: 5 }, generateKeyPairSync('ed25519').privateKey), mixed), undefined, 'another Ed25519 key')
  })

  it('refuses alg confusion between Ed25519 and RSA: by the kid, and by the key itself', () => {
    // The header names the other algorithm than the one pinned for its kid (RFC 8725 §2.1).
    const edUnderRsaKid = signCompact({ alg: 'EdDSA', kid: 'rs' }, { a: 1 }, ed.privateKey)
    const rsUnderEdKid = signCompact({ alg: 'RS256', kid: 'ed' }, { a: 1 }, rsa.privateKey)
    assert.equal(verifyCompact(edUnderRsaKid, mixed), undefined, 'EdDSA under an RSA kid')
    assert.equal(verifyCompact(rsUnderEdKid, mixed), undefined, 'RS256 under an Ed25519 kid')
    // A key pinned to an algorithm of another key type (a ring gone wrong): node:crypto would verify an RSA
    // signature over a null digest, so only the key-type check stops these.
    const rsaAsEdDSA = (kid: unknown) => (kid === 'x' ? { alg: 'EdDSA', key: rsa.publicKey } : undefined)
    const byRsaKey = forge({ alg: 'EdDSA', kid: 'x' }, { a: 1 }, (input) => sign(null, input, rsa.privateKey))
    assert.equal(verifyCompact(byRsaKey, rsaAsEdDSA), undefined, 'EdDSA with an RSA key')
    const edAsRS256 = (kid: unknown) => (kid === 'x' ? { alg: 'RS256', key: ed.publicKey } : undefined)
    const byEdKey = forge({ alg: 'RS256', kid: 'x' }, { a: 1 }, (input) => sign(null, input, ed.privateKey))
    assert.equal(verifyCompact(byEdKey, edAsRS256), undefined, 'RS256 with an Ed25519 key')
    assert.throws(() => signCompact({ alg: 'EdDSA' }, {}, rsa.privateKey), /unsupported JWS algorithm EdDSA for a rsa key/)
    assert.throws(() => signCompact({ alg: 'RS256' }, {}, ed.privateKey), /unsupported JWS algorithm RS256 for a ed25519 key/)
    assert.throws(() => signCompact({ alg: 'ES256' }, {}, ed.privateKey), /unsupported/)
  })

  it('accepts only the canonical spelling of each part, and only JSON objects', () => {
    const token = signCompact({ alg: 'ES256', kid: 'es' }, { a: 1 }, es.privateKey)
    const [h, p, s] = token.split('.') as [string, string, string]
    // The last character of a 64-byte signature carries 4 unused bits; flipping one keeps the bytes.
    const last = s.at(-1)!
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
    const twin = alphabet[alphabet.indexOf(last) ^ 1]!
    assert.deepEqual(Buffer.from(s.slice(0, -1) + twin, 'base64url'), Buffer.from(s, 'base64url'), 'the twin decodes to the same bytes')
    assert.equal(verifyCompact(`${h}.${p}.${s.slice(0, -1)}${twin}`, keyFor), undefined)
    for (const bad of [`${h}.${p}`, `${h}.${p}.${s}.x`, `${h}=.${p}.${s}`, `${h}.${p}.${s}=`, `${h}.${p}.${s.replace(/-/g, '+')}`]) {
      if (bad === token) continue
      assert.equal(verifyCompact(bad, keyFor), undefined, bad.slice(-20))
    }
    const arrayPayload = signCompact({ alg: 'ES256', kid: 'es' }, [1, 2], es.privateKey)
    assert.equal(verifyCompact(arrayPayload, keyFor), undefined)
  })
})

describe('access tokens on a key ring (RFC 9068)', async () => {
  const masterKey = randomBytes(32)
  const ring = KeyRing.load((await planBootstrap([], 'ES256', masterKey, Date.now())).insert, masterKey)
  const now = Date.now()
  const expect = { issuer: 'https://i.example', audience: 'https://i.example/api', now }
  const claims = (over: Partial<AccessTokenClaims> = {}): AccessTokenClaims => ({
    iss: expect.issuer,
    aud: expect.audience,
    sub: 'c',
    client_id: 'c',
    scope: 'api',
    tenant_id: 't',
    grant_id: 'g',
    jti: randomBytes(8).toString('hex'),
    iat: Math.floor(now / 1000),
    exp: Math.floor(now / 1000) + 60,
    ...over,
  })

  it('verifies what the ring signs, and remembers the verification per token string', async () => {
    const token = await signAccessToken(ring, claims())
    assert.equal(verifyAccessToken(ring, token, expect).client_id, 'c')
    assert.ok(ring.verified.has(token))
    assert.equal(ring.jwks().keys.length, 2, 'active and next are published')
  })

  it('checks expiry and nbf on every call, after the signature; iss and aud against the expectation', async () => {
    const token = await signAccessToken(ring, claims())
    assert.throws(
      () => verifyAccessToken(ring, token, { ...expect, now: now + 61_000 }),
      (e: unknown) => e instanceof InvalidToken && e.description === 'The access token expired',
    )
    const notYet = await signAccessToken(ring, claims({ nbf: Math.floor(now / 1000) + 30 }))
    assert.throws(() => verifyAccessToken(ring, notYet, expect), InvalidToken)
    assert.equal(verifyAccessToken(ring, notYet, { ...expect, now: now + 31_000 }).client_id, 'c')
    for (const over of [{ iss: 'https://other.example' }, { aud: 'https://i.example/other' }]) {
      assert.throws(() => verifyAccessToken(ring, signCompactClaims(claims(over)), expect), InvalidToken)
    }
    function signCompactClaims(c: AccessTokenClaims): string {
      return signCompact({ alg: ring.signing.alg, kid: ring.signing.kid, typ: 'at+jwt' }, c, ring.signing.key as never)
    }
    const jwtTyp = signCompact({ alg: ring.signing.alg, kid: ring.signing.kid, typ: 'JWT' }, claims(), ring.signing.key as never)
    assert.throws(() => verifyAccessToken(ring, jwtTyp, expect), InvalidToken, 'typ must be at+jwt')
    const appTyp = signCompact({ alg: ring.signing.alg, kid: ring.signing.kid, typ: 'application/AT+JWT' }, claims(), ring.signing.key as never)
    assert.equal(verifyAccessToken(ring, appTyp, expect).sub, 'c', 'the media-type spelling, in any case')
    const noTenant = { ...claims() } as Record<string, unknown>
    delete noTenant.tenant_id
    assert.throws(
      () => verifyAccessToken(ring, signCompact({ alg: ring.signing.alg, kid: ring.signing.kid, typ: 'at+jwt' }, noTenant, ring.signing.key as never), expect),
      InvalidToken,
    )
  })
})

describe('Ed25519 signing keys on a key ring', async () => {
  const masterKey = randomBytes(32)
  const now = Date.now()

  it('makes Ed25519 keys for EdDSA, sealed at rest, published as OKP JWKs, and signs and verifies with them', async () => {
    const record = await generateSigningKey('EdDSA', 'active', masterKey, now)
    assert.equal(record.alg, 'EdDSA')
    const published = JSON.parse(record.publicJwk) as Record<string, unknown>
    assert.deepEqual(Object.keys(published).sort(), ['alg', 'crv', 'kid', 'kty', 'use', 'x'])
    assert.deepEqual([published.kty, published.crv, published.alg, published.use, published.kid], ['OKP', 'Ed25519', 'EdDSA', 'sig', record.kid])
    // Sealed under the master key like every other signing key: readable with it, bound to the kid, and not without it.
    const sealed = decryptPrivateJwk(record.privateJwkEnc, record.kid, masterKey)
    assert.deepEqual([sealed.kty, sealed.crv, sealed.x, typeof sealed.d], ['OKP', 'Ed25519', published.x, 'string'])
    assert.ok(!record.privateJwkEnc.includes(sealed.d!))
    assert.throws(() => decryptPrivateJwk(record.privateJwkEnc, record.kid, randomBytes(32)), /cannot be decrypted/)
    const ring = KeyRing.load([record], masterKey)
    assert.deepEqual(ring.algorithms, ['EdDSA'])
    const [jwk] = ring.jwks().keys
    assert.equal(jwk?.d, undefined)
    const claims: AccessTokenClaims = {
      iss: 'https://i.example',
      aud: 'https://i.example/api',
      sub: 'c',
      client_id: 'c',
      scope: 'api',
      tenant_id: 't',
      grant_id: 'g',
      jti: 'j',
      iat: Math.floor(now / 1000),
      exp: Math.floor(now / 1000) + 60,
    }
    const token = await signAccessToken(ring, claims)
    assert.equal(JSON.parse(Buffer.from(token.split('.')[0]!, 'base64url').toString()).alg, 'EdDSA')
    assert.equal(verifyAccessToken(ring, token, { issuer: 'https://i.example', audience: 'https://i.example/api', now }).sub, 'c')
  })

  it('verifies with RSA and Ed25519 keys side by side, and refuses a stored key whose type is not its algorithm', async () => {
    const rs = await generateSigningKey('RS256', 'retiring', masterKey, now)
    const edActive = await generateSigningKey('EdDSA', 'active', masterKey, now)
    assert.deepEqual(KeyRing.load([rs, edActive], masterKey).algorithms.sort(), ['EdDSA', 'RS256'])
    assert.throws(() => KeyRing.load([{ ...rs, alg: 'EdDSA' }, edActive], masterKey), /signing key .* is a rsa key, which cannot sign EdDSA/)
    assert.throws(() => KeyRing.load([{ ...edActive, alg: 'RS256' }], masterKey), /is a ed25519 key, which cannot sign RS256/)
  })
})

describe('opaque tokens', () => {
  it('are 64 lower-case hex, stored only as their hash', () => {
    const { value, token } = newOpaqueToken({
      grantId: 'g',
      appId: 'a',
      tenantId: 't',
      userId: null,
      codeHash: null,
      createdAt: 1,
      expiresAt: null,
      resource: null,
      jkt: null,
      familyId: null,
      scopes: null,
    })
    assert.ok(isOpaqueToken(value))
    assert.notEqual(token.tokenHash, value)
    assert.ok(!token.tokenHash.includes(value))
    assert.equal(token.revokedAt, null)
    for (const v of [value.toUpperCase(), value.slice(1), `${value}0`, 'g'.repeat(64)]) assert.equal(isOpaqueToken(v), false, v)
  })
})

describe('scope helpers and echo', () => {
  it('compare scope sets whatever the order', () => {
    assert.equal(sameScopes(['a', 'b'], ['b', 'a']), true)
    assert.equal(sameScopes(['a'], ['a', 'b']), false)
    assert.equal(sameScopes([], []), true)
    assert.deepEqual(missingFrom(['a', 'b', 'c'], ['b']), ['a', 'c'])
    assert.equal(formatScope(['a', 'b']), 'a b')
  })

  it('echo keeps an error_description within RFC 6749 §5.2 and 64 characters', () => {
    assert.equal(echo('ok-value_1'), 'ok-value_1')
    assert.equal(echo('a"b\\c\u00e9\n'), 'a?b?c??')
    assert.equal(echo('x'.repeat(100)).length, 64)
  })
})

describe('resource API rules', () => {
  const principal = (scopes: string[], clientId = 'me'): Principal => ({ clientId, tenantId: 't', grantId: 'g', scopes, jkt: null, introspection: {} })
  const record = (createdByClientId: string | null) => ({ id: 'r', tenantId: 't', kind: 'field', createdByClientId }) as unknown as ApiRecord

  it('needs the write scope of the kind to create', () => {
    requireWrite(principal(['maps:write']), resourceKinds.field)
    assert.throws(
      () => requireWrite(principal(['fields:read:all']), resourceKinds.field),
      (e: unknown) => e instanceof InsufficientScope,
    )
    assert.throws(() => requireWrite(principal(['api']), resourceKinds.alert), InsufficientScope)
  })

  it('tenant-wide kinds need their read scope; own kinds show the caller its own unless it may read all', () => {
    assert.deepEqual(listFilter(principal(['api']), resourceKinds.lead), {})
    assert.throws(() => listFilter(principal(['maps:write']), resourceKinds.lead), InsufficientScope)
    assert.deepEqual(listFilter(principal(['maps:write']), resourceKinds.field), { createdByClientId: 'me' })
    assert.deepEqual(listFilter(principal(['fields:read:all']), resourceKinds.field), {})
    assert.deepEqual(listFilter(principal(['fields:read:all']), resourceKinds.alert), { createdByClientId: 'me' }, 'read-all is for fields only')
  })

  it("reading another's field without fields:read:all names that scope; another's alert is simply absent", () => {
    assert.equal(readable(principal(['maps:write']), resourceKinds.field, record('me'))?.id, 'r')
    assert.throws(
      () => readable(principal(['maps:write']), resourceKinds.field, record('other')),
      (e: unknown) => e instanceof InsufficientScope && /fields:read:all/.test(e.description),
    )
    assert.equal(readable(principal(['fields:read:all']), resourceKinds.field, record(null))?.id, 'r')
    assert.equal(readable(principal(['alerts:write']), resourceKinds.alert, record('other')), undefined)
    assert.equal(readable(principal(['api']), resourceKinds.lead, undefined), undefined)
  })
})

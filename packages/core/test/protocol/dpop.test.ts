/**
 * RFC 9449 DPoP in core, on a real SQLite store with a clock the test moves: verifyDpopProof as the
 * token endpoint calls it (400 errors, no ath, the key's RFC 7638 thumbprint back), server nonces across
 * their time steps, the iat window at its edges, replay memory and its forgetting, htu normalisation,
 * and authenticateAccessToken's rules for bound tokens. Proofs are made here with node:crypto alone.
 */
import assert from 'node:assert/strict'
import { createHash, generateKeyPairSync, randomUUID, sign } from 'node:crypto'
import { after, before, describe, it } from 'node:test'
import {
  InvalidDpopProof,
  OAuthError,
  UseDpopNonce,
  accessTokenHash,
  authenticateAccessToken,
  currentDpopNonce,
  approveAuthorization,
  introspectionEndpoint,
  normalizeHtu,
  personActor,
  validateAuthorizationRequest,
  signAccessToken,
  tokenEndpoint,
  verifyDpopProof,
  type AccessTokenClaims,
  type CoreContext,
  type DpopProofCheck,
} from '@fieldgate/core'
import { openContext, person, privateApp, publicApp, type TestContext } from './context.js'

let t: TestContext
let ctx: CoreContext
before(async () => {
  t = await openContext()
  ctx = t.ctx
})
after(() => t.close())

const HTU = 'https://auth.fieldgate.test/oauth/token'

function es256Key() {
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  const jwk = publicKey.export({ format: 'jwk' })
  // RFC 7638 §3.2, by hand: crv, kty, x, y in that order.
  const jkt = createHash('sha256').update(`{"crv":"${jwk.crv}","kty":"${jwk.kty}","x":"${jwk.x}","y":"${jwk.y}"}`).digest('base64url')
  return { jwk, jkt, privateKey }
}

type Key = ReturnType<typeof es256Key>

const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url')

function proof(key: Key, claims: Record<string, unknown> = {}, header: Record<string, unknown> = {}): string {
  const input = `${b64({ typ: 'dpop+jwt', alg: 'ES256', jwk: key.jwk, ...header })}.${b64({ jti: randomUUID(), htm: 'POST', htu: HTU, iat: Math.floor(ctx.now() / 1000), ...claims })}`
  return `${input}.${sign('sha256', Buffer.from(input), { key: key.privateKey, dsaEncoding: 'ieee-p1363' }).toString('base64url')}`
}

const check = (p: string, over: Partial<DpopProofCheck> = {}) => verifyDpopProof(ctx, { proof: p, method: 'POST', url: HTU, ...over })

async function refused<E extends OAuthError>(p: Promise<unknown>, type: new (...args: never[]) => E): Promise<E> {
  const err = await p.then(
    () => assert.fail('accepted'),
    (e: unknown) => e,
  )
  assert.ok(err instanceof type, `not a ${type.name}: ${String(err)}`)
  return err
}

describe('verifyDpopProof at the token endpoint', () => {
  it("returns the key's RFC 7638 thumbprint, and refuses with a 400 invalid_dpop_proof and no challenge", async () => {
    const key = es256Key()
    assert.equal(await check(proof(key)), key.jkt)
    const err = await refused(check(proof(key, { htm: 'GET' })), InvalidDpopProof)
    assert.equal(err.status, 400)
    assert.equal(err.error, 'invalid_dpop_proof')
    assert.equal(err.headers['www-authenticate'], undefined)
    assert.deepEqual(err.toJSON(), { error: 'invalid_dpop_proof', error_description: 'The DPoP proof htm is not the method of this request' })
  })

  it('does not look at ath where no access token comes with the proof', async () => {
    const key = es256Key()
    assert.equal(await check(proof(key, { ath: 'anything' })), key.jkt)
  })

  it('requires ath to be the hash of the access token when one is given, and refuses then as a resource does (401)', async () => {
    const key = es256Key()
    const token = 'an-access-token'
    assert.equal(accessTokenHash(token), createHash('sha256').update(token).digest('base64url'))
    assert.equal(await check(proof(key, { ath: accessTokenHash(token) }), { accessToken: token }), key.jkt)
    const err = await refused(check(proof(key), { accessToken: token }), InvalidDpopProof)
    assert.equal(err.status, 401)
    assert.match(err.headers['www-authenticate'] ?? '', /DPoP algs="[^"]+", error="invalid_dpop_proof"/)
  })

  it('takes iat up to 60 s old and 5 s ahead, and no further', async () => {
    const key = es256Key()
    const now = Math.floor(ctx.now() / 1000)
    assert.equal(await check(proof(key, { iat: now - 59 })), key.jkt)
    assert.equal(await check(proof(key, { iat: now + 4 })), key.jkt)
    await refused(check(proof(key, { iat: now - 61 })), InvalidDpopProof)
    await refused(check(proof(key, { iat: now + 6 })), InvalidDpopProof)
  })

  it('remembers a jti per key: the same jti with another key is another proof', async () => {
    const [one, two] = [es256Key(), es256Key()]
    const jti = randomUUID()
    await check(proof(one, { jti }))
    assert.equal(await check(proof(two, { jti })), two.jkt)
    const err = await refused(check(proof(one, { jti })), InvalidDpopProof)
    assert.match(err.description, /used before/)
  })

  it('forgets accepted proofs once they are too old to be accepted anyway', async () => {
    const key = es256Key()
    await check(proof(key))
    const rows = async () => ctx.storage.forgetExpiredProofs(ctx.now())
    assert.equal(await rows(), 0, 'nothing has expired yet')
    t.advance(66_000)
    assert.ok((await rows()) >= 1, 'expired past max age and the future leeway')
  })
})

describe('DPoP nonces', () => {
  it('requires our nonce when asked: use_dpop_nonce (400 at the token endpoint) with the nonce in DPoP-Nonce', async () => {
    const key = es256Key()
    const err = await refused(check(proof(key), { requireNonce: true }), UseDpopNonce)
    assert.equal(err.status, 400)
    assert.equal(err.error, 'use_dpop_nonce')
    assert.equal(err.headers['dpop-nonce'], currentDpopNonce(ctx))
    assert.equal(err.headers['www-authenticate'], undefined)
    assert.equal(await check(proof(key, { nonce: err.nonce }), { requireNonce: true }), key.jkt)
    await refused(check(proof(key, { nonce: 'made-up' }), { requireNonce: true }), UseDpopNonce)
    await refused(check(proof(key, { nonce: 42 }), { requireNonce: true }), UseDpopNonce)
  })

  it('at a resource: 401 with use_dpop_nonce in the DPoP challenge and DPoP-Nonce', async () => {
    const key = es256Key()
    const err = await refused(check(proof(key, { ath: accessTokenHash('x') }), { requireNonce: true, accessToken: 'x' }), UseDpopNonce)
    assert.equal(err.status, 401)
    assert.match(err.headers['www-authenticate'] ?? '', /DPoP algs="[^"]+", error="use_dpop_nonce"/)
    assert.equal(err.headers['dpop-nonce'], currentDpopNonce(ctx))
  })

  it('a nonce lasts its 5-minute step and the next, then is refused with a fresh one', async () => {
    const key = es256Key()
    const nonce = currentDpopNonce(ctx)
    t.advance(5 * 60_000)
    assert.notEqual(currentDpopNonce(ctx), nonce, 'the step moved on')
    assert.equal(await check(proof(key, { nonce }), { requireNonce: true }), key.jkt)
    t.advance(5 * 60_000)
    const err = await refused(check(proof(key, { nonce }), { requireNonce: true }), UseDpopNonce)
    assert.equal(err.nonce, currentDpopNonce(ctx))
  })

  it('is an HMAC under the master key: another deployment’s nonce is no nonce here', async () => {
    const elsewhere = currentDpopNonce({ masterKey: Buffer.alloc(32, 7), now: ctx.now })
    assert.notEqual(elsewhere, currentDpopNonce(ctx))
    await refused(check(proof(es256Key(), { nonce: elsewhere }), { requireNonce: true }), UseDpopNonce)
  })

  it('is not required unless FIELDGATE_DPOP_NONCE is on or the caller asks', async () => {
    assert.equal(ctx.config.dpop.nonce, false)
    const key = es256Key()
    assert.equal(await check(proof(key)), key.jkt)
  })
})

describe('htu normalisation (RFC 9449 §4.3 point 9)', () => {
  it('compares scheme and host in any case, without the default port, query or fragment', () => {
    const n = 'https://auth.fieldgate.test/oauth/token'
    assert.equal(normalizeHtu('HTTPS://Auth.FieldGate.test:443/oauth/token?x=1#f'), n)
    assert.equal(normalizeHtu('https://auth.fieldgate.test/oauth/./x/../token'), n)
    assert.equal(normalizeHtu('https://auth.fieldgate.test/%6fauth/token'), n, 'an unreserved character percent-encoded')
    assert.equal(normalizeHtu('https://auth.fieldgate.test/a%2fb'), 'https://auth.fieldgate.test/a%2Fb', 'a reserved one stays encoded, in upper case')
    assert.equal(normalizeHtu('http://h.test'), 'http://h.test/')
    assert.notEqual(normalizeHtu('https://auth.fieldgate.test:8443/oauth/token'), n)
    assert.notEqual(normalizeHtu('https://auth.fieldgate.test/OAUTH/token'), n, 'the path is case-sensitive')
    assert.equal(normalizeHtu('ftp://h.test/x'), undefined)
    assert.equal(normalizeHtu('/oauth/token'), undefined)
  })
})

describe('bound tokens at the resource (authenticateAccessToken)', () => {
  async function boundJwt(jkt: string): Promise<{ token: string; clientId: string; secret: string }> {
    const { app, secret } = await privateApp(ctx)
    const res = await tokenEndpoint(ctx, { params: { grant_type: 'client_credentials', client_id: app.clientId, client_secret: secret }, authorization: undefined })
    const claims = JSON.parse(Buffer.from(res.accessToken.split('.')[1]!, 'base64url').toString()) as AccessTokenClaims
    return { token: await signAccessToken(ctx.keys, { ...claims, jti: randomUUID(), cnf: { jkt } }), clientId: app.clientId, secret }
  }
  const API = 'https://auth.fieldgate.test/api/rest/v2/workorders'

  it('holds a bound JWT to its key: DPoP with a proof by it passes; as Bearer (the default), by another key, or without a proof, not', async () => {
    const key = es256Key()
    const { token } = await boundJwt(key.jkt)
    const presented = (p: string | undefined) => authenticateAccessToken(ctx, token, { scheme: 'DPoP', proof: p, method: 'GET', url: API })
    const principal = await presented(proof(key, { htm: 'GET', htu: API, ath: accessTokenHash(token) }))
    assert.equal(principal.jkt, key.jkt)
    assert.equal(principal.introspection.token_type, 'DPoP')
    const asBearer = await refused(authenticateAccessToken(ctx, token), OAuthError)
    assert.equal(asBearer.error, 'invalid_token')
    const other = es256Key()
    const wrongKey = await refused(presented(proof(other, { htm: 'GET', htu: API, ath: accessTokenHash(token) })), OAuthError)
    assert.equal(wrongKey.error, 'invalid_token')
    assert.match(wrongKey.headers['www-authenticate'] ?? '', /DPoP algs="[^"]+", error="invalid_token"/)
    const none = await refused(presented(undefined), InvalidDpopProof)
    assert.equal(none.status, 401)
  })

  it('refuses a JWT whose cnf is not a DPoP jkt: a binding it cannot honour', async () => {
    const { token } = await boundJwt('x')
    const claims = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as AccessTokenClaims
    const mtls = await signAccessToken(ctx.keys, { ...claims, jti: randomUUID(), cnf: { 'x5t#S256': 'abc' } as unknown as { jkt: string } })
    await refused(authenticateAccessToken(ctx, mtls), OAuthError)
    await refused(authenticateAccessToken(ctx, mtls, { scheme: 'DPoP', proof: undefined, method: 'GET', url: API }), OAuthError)
  })

  it("introspection tells a bound token's client token_type DPoP and cnf.jkt, with no proof asked", async () => {
    const key = es256Key()
    const { token, clientId, secret } = await boundJwt(key.jkt)
    const answer = await introspectionEndpoint(ctx, { params: { token, client_id: clientId, client_secret: secret }, authorization: undefined })
    assert.equal(answer.active, true)
    assert.equal(answer.active && answer.token_type, 'DPoP')
    assert.deepEqual(answer.active && answer.cnf, { jkt: key.jkt })
  })

  it('holds an opaque connection token bound by the code grant to its key, and introspection names the key', async () => {
    const key = es256Key()
    const { app, secret } = await publicApp(ctx)
    const p = await person(ctx)
    const req = await validateAuthorizationRequest(ctx, { client_id: app.clientId }, true)
    const location = await approveAuthorization(ctx, req, { userId: p.user.id, tenantId: p.tenant.id, shownScopes: req.scopes, actor: personActor(p.user, '127.0.0.1') })
    const code = new URL(location).searchParams.get('code')!
    // The grant as the token endpoint runs it once a proof by `key` checked out (RFC 9449 §5).
    const issued = await ctx.grants.get('authorization_code')!.handler(ctx, app, { code }, { dialect: 'connection', jkt: key.jkt })
    assert.equal(issued.tokenType, 'DPoP')
    const token = issued.accessToken
    const asBearer = await refused(authenticateAccessToken(ctx, token), OAuthError)
    assert.match(asBearer.description, /DPoP-bound/)
    const principal = await authenticateAccessToken(ctx, token, {
      scheme: 'DPoP',
      proof: proof(key, { htm: 'GET', htu: API, ath: accessTokenHash(token) }),
      method: 'GET',
      url: API,
    })
    assert.equal(principal.jkt, key.jkt)
    const answer = await introspectionEndpoint(ctx, { params: { token, client_id: app.clientId, client_secret: secret }, authorization: undefined })
    assert.equal(answer.active && answer.token_type, 'DPoP')
    assert.deepEqual(answer.active && answer.cnf, { jkt: key.jkt })
  })
})

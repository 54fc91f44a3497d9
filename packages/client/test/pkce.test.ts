/**
 * PKCE (RFC 7636) and the encodings under it: checked against node:crypto and the RFC's own worked
 * example, never against the SDK itself.
 */
import assert from 'node:assert/strict'
import { createHash, createHmac, randomBytes as nodeRandomBytes } from 'node:crypto'
import { describe, it } from 'node:test'
import { base64url, concatBytes, hex, hmacSha256, sha256, timingSafeEqual, utf8 } from '../src/encoding.js'
import { createPkce, pkceChallenge, randomState } from '../src/pkce.js'

const base64urlChars = /^[A-Za-z0-9_-]+$/

describe('PKCE S256 (RFC 7636)', () => {
  it('matches the worked example of Appendix B', async () => {
    assert.equal(await pkceChallenge('dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk'), 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM')
  })

  it('makes a 43-character base64url verifier whose challenge is BASE64URL(SHA256(verifier))', async () => {
    const pkce = await createPkce()
    assert.equal(pkce.codeChallengeMethod, 'S256')
    assert.equal(pkce.codeVerifier.length, 43)
    assert.match(pkce.codeVerifier, base64urlChars)
    assert.equal(pkce.codeChallenge, createHash('sha256').update(pkce.codeVerifier).digest('base64url'))
    assert.equal(pkce.codeChallenge.length, 43)
  })

  it('never repeats a verifier or a state', async () => {
    const verifiers = new Set<string>()
    const states = new Set<string>()
    for (let i = 0; i < 200; i++) {
      verifiers.add((await createPkce()).codeVerifier)
      states.add(randomState())
    }
    assert.equal(verifiers.size, 200)
    assert.equal(states.size, 200)
  })

  it('makes a state of 128 bits: 22 base64url characters', () => {
    const state = randomState()
    assert.equal(state.length, 22)
    assert.match(state, base64urlChars)
    assert.equal(Buffer.from(state, 'base64url').length, 16)
  })
})

describe('encoding on Web Crypto', () => {
  it('base64url agrees with Node for every length around the padding boundaries', () => {
    for (let n = 0; n <= 40; n++) {
      const bytes = nodeRandomBytes(n)
      assert.equal(base64url(bytes), bytes.toString('base64url'), `length ${n}`)
    }
    assert.equal(base64url(new Uint8Array([0xfb, 0xff, 0xfe])), '-__-', 'the URL-safe alphabet, no padding')
  })

  it('hex, sha256 and HMAC-SHA256 agree with node:crypto', async () => {
    const bytes = nodeRandomBytes(33)
    assert.equal(hex(bytes), bytes.toString('hex'))
    assert.equal(hex(new Uint8Array([0, 1, 255])), '0001ff', 'two digits per byte, leading zeros kept')
    const text = 'héllo 😀 world'
    assert.equal(hex(await sha256(utf8(text))), createHash('sha256').update(text).digest('hex'))
    const key = 'fgs_sandbox_clé'
    assert.equal(hex(await hmacSha256(key, utf8(text))), createHmac('sha256', key).update(text).digest('hex'))
  })

  it('concatenates byte arrays in order', () => {
    assert.deepEqual([...concatBytes(new Uint8Array([1, 2]), new Uint8Array([]), new Uint8Array([3]))], [1, 2, 3])
    assert.equal(concatBytes().length, 0)
  })

  it('compares strings: equal only when equal, different lengths at once', () => {
    assert.equal(timingSafeEqual('abc', 'abc'), true)
    assert.equal(timingSafeEqual('', ''), true)
    assert.equal(timingSafeEqual('abc', 'abd'), false)
    assert.equal(timingSafeEqual('abc', 'Abc'), false)
    assert.equal(timingSafeEqual('abc', 'abcd'), false)
    assert.equal(timingSafeEqual('é', 'e'), false)
  })
})

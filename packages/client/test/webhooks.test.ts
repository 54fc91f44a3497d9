/**
 * The receiver's checks: Data API delivery signatures and marketplace install links, each signed here
 * with node:crypto exactly as the README describes the scheme, so the SDK is checked against the
 * scheme, not against itself.
 */
import assert from 'node:assert/strict'
import { createHmac } from 'node:crypto'
import { describe, it } from 'node:test'
import { FieldgateError } from '../src/errors.js'
import { completionUrl, readInstallRequest, signQuery, verifyInstallRequest } from '../src/marketplace.js'
import { readWebhook, verifyWebhookSignature } from '../src/webhooks.js'

const secret = 'fgs_sandbox_webhook-secret'
const now = Date.parse('2026-05-01T10:00:00Z')
const t = Math.floor(now / 1000)
const sign = (s: string, ts: number, body: string) => createHmac('sha256', s).update(`${ts}.${body}`).digest('hex')
const event = { id: 'evt_1', type: 'record.created', created_at: '2026-05-01T10:00:00Z', client_id: 'c', farm_id: 'f', tenant_id: 'f', data: { kind: 'field' } }
const body = JSON.stringify(event)

describe('verifyWebhookSignature', () => {
  const verify = (signature: string | null, over: Partial<Parameters<typeof verifyWebhookSignature>[0]> = {}) =>
    verifyWebhookSignature({ body, signature, secret, now: () => now, ...over })

  it('accepts t and a v1 over t.body, as text or bytes', async () => {
    const header = `t=${t},v1=${sign(secret, t, body)}`
    assert.deepEqual(await verify(header), { valid: true, timestamp: t })
    assert.deepEqual(await verify(header, { body: Buffer.from(body) }), { valid: true, timestamp: t })
    assert.deepEqual(await verify(header, { body: new TextEncoder().encode(body).buffer }), { valid: true, timestamp: t })
    assert.deepEqual(await verify(`t=${t}, v1=${sign(secret, t, body).toUpperCase()}`), { valid: true, timestamp: t }, 'spaces and upper-case hex')
  })

  it('accepts any v1 under any secret held during a rotation, and skips unknown schemes', async () => {
    const header = `t=${t},v1=${sign('old-secret', t, body)},v2=whatever,v1=${sign('new-secret', t, body)}`
    assert.equal((await verify(header, { secret: ['new-secret'] })).valid, true)
    assert.equal((await verify(header, { secret: ['old-secret', 'other'] })).valid, true)
    assert.deepEqual(await verify(header, { secret: ['neither'] }), { valid: false, reason: 'mismatch' })
  })

  it('refuses a changed body, another secret, a missing header, a malformed one and a stale one', async () => {
    const header = `t=${t},v1=${sign(secret, t, body)}`
    assert.deepEqual(await verify(header, { body: body.replace('field', 'fielD') }), { valid: false, reason: 'mismatch' })
    assert.deepEqual(await verify(header, { body: JSON.stringify(JSON.parse(body), null, 1) }), { valid: false, reason: 'mismatch' }, 're-serialized')
    assert.deepEqual(await verify(header, { secret: 'other' }), { valid: false, reason: 'mismatch' })
    assert.deepEqual(await verify(null), { valid: false, reason: 'missing' })
    assert.deepEqual(await verify(''), { valid: false, reason: 'missing' })
    for (const bad of [`v1=${sign(secret, t, body)}`, `t=${t}`, `t=${t},t=${t},v1=x`, `t=abc,v1=x`, `t=${t},junk`, `t=-1,v1=x`]) {
      assert.deepEqual(await verify(bad), { valid: false, reason: 'malformed' }, bad)
    }
    const old = t - 301
    assert.deepEqual(await verify(`t=${old},v1=${sign(secret, old, body)}`), { valid: false, reason: 'stale' })
    const future = t + 301
    assert.deepEqual(await verify(`t=${future},v1=${sign(secret, future, body)}`), { valid: false, reason: 'stale' })
    assert.equal((await verify(`t=${old},v1=${sign(secret, old, body)}`, { toleranceSeconds: 600 })).valid, true)
  })
})

describe('readWebhook', () => {
  const header = (b: string) => `t=${t},v1=${sign(secret, t, b)}`

  it('returns the event once verified, checking the event id header', async () => {
    assert.deepEqual(await readWebhook({ body, signature: header(body), secret, now: () => now, eventId: 'evt_1' }), event)
    await assert.rejects(
      readWebhook({ body, signature: header(body), secret, now: () => now, eventId: 'evt_2' }),
      (e: unknown) => e instanceof FieldgateError && e.code === 'invalid_response',
    )
  })

  it('says invalid_signature with the reason, and invalid_response for a signed body that is no event', async () => {
    await assert.rejects(
      readWebhook({ body, signature: header('other'), secret, now: () => now }),
      (e: unknown) => e instanceof FieldgateError && e.code === 'invalid_signature' && e.description === 'mismatch',
    )
    for (const b of ['not json', '[1]', '{"id":1,"type":"x"}', 'null']) {
      await assert.rejects(readWebhook({ body: b, signature: header(b), secret, now: () => now }), (e: unknown) => e instanceof FieldgateError && e.code === 'invalid_response', b)
    }
  })
})

describe('marketplace install links', () => {
  /** The scheme: every parameter but hmac, sorted by name, form-urlencoded, HMAC-SHA256 in hex. */
  function fieldgateSigns(params: Record<string, string>, s = secret): string {
    const q = new URLSearchParams(Object.entries(params).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
    return new URLSearchParams({ ...params, hmac: createHmac('sha256', s).update(q.toString()).digest('hex') }).toString()
  }
  const install = { target: 'Green Acres', target_id: 'tenant-9', timestamp: String(t) }

  it('verifies and reads what Fieldgate signed, as a URL, a query string or parameters', async () => {
    const query = fieldgateSigns(install)
    assert.equal(await verifyInstallRequest(`https://partner.example/install?${query}`, secret, { now: () => now }), true)
    assert.equal(await verifyInstallRequest(query, [`wrong`, secret], { now: () => now }), true)
    assert.deepEqual(await readInstallRequest(new URLSearchParams(query), secret, { now: () => now }), { target: 'Green Acres', targetId: 'tenant-9', timestamp: t })
  })

  it('refuses a changed parameter, another secret, a stale or odd timestamp, no hmac', async () => {
    const ok = new URLSearchParams(fieldgateSigns(install))
    const changed = new URLSearchParams(ok)
    changed.set('target_id', 'tenant-10')
    assert.equal(await verifyInstallRequest(changed, secret, { now: () => now }), false)
    assert.equal(await verifyInstallRequest(ok, 'other', { now: () => now }), false)
    assert.equal(await verifyInstallRequest(ok, secret, { now: () => now + 301_000 }), false)
    assert.equal(await verifyInstallRequest(fieldgateSigns({ ...install, timestamp: `${t}.0` }), secret, { now: () => now }), false)
    const noHmac = new URLSearchParams(ok)
    noHmac.delete('hmac')
    assert.equal(await verifyInstallRequest(noHmac, secret, { now: () => now }), false)
    await assert.rejects(readInstallRequest(changed, secret, { now: () => now }), (e: unknown) => e instanceof FieldgateError && e.code === 'invalid_signature')
    await assert.rejects(
      readInstallRequest(fieldgateSigns({ target_id: 'x', timestamp: String(t) }), secret, { now: () => now }),
      (e: unknown) => e instanceof FieldgateError && e.code === 'invalid_signature',
      'no target',
    )
  })

  it('signs a query and a completion link the way Fieldgate checks them', async () => {
    const signed = await signQuery(new URLSearchParams({ b: '2', a: '1 +', hmac: 'stale' }), secret, () => now)
    assert.equal(signed.get('timestamp'), String(t))
    const expected = new URLSearchParams(fieldgateSigns({ a: '1 +', b: '2', timestamp: String(t) })).get('hmac')
    assert.equal(signed.get('hmac'), expected)
    assert.equal(signed.getAll('hmac').length, 1)

    const link = new URL(
      await completionUrl({
        issuer: 'https://auth.example/base/',
        clientId: 'c1',
        targetId: 'tenant-9',
        status: 'error',
        errorDescription: 'no sensors',
        clientSecret: secret,
        now: () => now,
      }),
    )
    assert.equal(link.origin + link.pathname, 'https://auth.example/base/marketplace/complete')
    const { hmac, ...rest } = Object.fromEntries(link.searchParams)
    assert.deepEqual(rest, { client_id: 'c1', target_id: 'tenant-9', status: 'error', error_description: 'no sensors', timestamp: String(t) })
    assert.equal(hmac, new URLSearchParams(fieldgateSigns(rest)).get('hmac'))
  })
})

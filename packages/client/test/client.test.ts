/**
 * FieldgateClient and the API calls against a scripted server on loopback: tokens fetched once and
 * reused, one retry with a fresh token after invalid_token, where the token goes, cursor pages.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { FieldgateClient } from '../src/client.js'
import { FieldgateError } from '../src/errors.js'
import { TokenCache } from '../src/token-cache.js'
import { Loopback } from './loopback.js'

let server: Loopback
before(async () => {
  server = await Loopback.start()
})
after(() => server.close())

const expired = { status: 401, headers: { 'www-authenticate': 'Bearer error="invalid_token"' }, body: { error: 'invalid_token' } }
const tokenAnswer = (t: string) => ({ status: 200, body: { access_token: t, token_type: 'Bearer', expires_in: 3600 } })
const fieldedge = () =>
  new FieldgateClient({ baseUrl: server.origin, dialect: 'fieldedge', clientId: 'c', clientSecret: 's', targetId: 'tenant-1', retry: { baseDelayMs: 1, random: () => 0 } })

describe('FieldgateClient', () => {
  it('fetches one token for many concurrent calls and sends it as a Bearer header', async () => {
    server.answer(tokenAnswer('tok-1'), { status: 200, body: { results: [], next_cursor: null } })
    const client = fieldedge()
    await Promise.all(Array.from({ length: 5 }, () => client.api.leads.list({ limit: 5 })))
    const tokenCalls = server.received.filter((r) => r.url === '/oauth/token')
    assert.equal(tokenCalls.length, 1)
    const apiCalls = server.received.filter((r) => r.url.startsWith('/api/v1/leads'))
    assert.equal(apiCalls.length, 5)
    for (const r of apiCalls) {
      assert.equal(r.headers.authorization, 'Bearer tok-1')
      assert.equal(r.url, '/api/v1/leads?limit=5')
    }
  })

  it('after invalid_token drops that token, gets a new one and retries once', async () => {
    server.answer(tokenAnswer('old'), expired, tokenAnswer('new'), { status: 200, body: { id: 'l1' } })
    const client = fieldedge()
    assert.deepEqual(await client.api.leads.get('l1'), { id: 'l1' })
    assert.deepEqual(
      server.received.map((r) => [r.url, r.headers.authorization ?? null]),
      [
        ['/oauth/token', null],
        ['/api/v1/leads/l1', 'Bearer old'],
        ['/oauth/token', null],
        ['/api/v1/leads/l1', 'Bearer new'],
      ],
    )
  })

  it('reports a second refusal instead of looping', async () => {
    server.answer(tokenAnswer('a'), expired, tokenAnswer('b'), expired, tokenAnswer('c'), { status: 200 })
    const err = await fieldedge()
      .api.fields.list()
      .catch((e: unknown) => e)
    assert.ok(err instanceof FieldgateError && err.code === 'invalid_token')
    assert.equal(server.received.length, 4)
  })

  it('does not retry a create on 5xx, but retries a read', async () => {
    server.answer(tokenAnswer('t'), { status: 500 }, { status: 201, body: { id: 'x' } })
    const client = fieldedge()
    const err = await client.api.alerts.create({ title: 'frost' }).catch((e: unknown) => e)
    assert.ok(err instanceof FieldgateError && err.code === 'server_error')
    assert.deepEqual(JSON.parse(server.received[1]!.body), { title: 'frost' })
    assert.equal(server.received[1]!.headers['content-type'], 'application/json')
    server.answer({ status: 500 }, { status: 200, body: { id: 'x' } })
    assert.deepEqual(await client.api.alerts.get('x'), { id: 'x' })
    assert.equal(server.received.length, 2)
  })

  it('Field Nation with tokenIn query sends ?access_token= and no Authorization', async () => {
    server.answer(tokenAnswer('fn-tok'), { status: 200, body: { results: [], next_cursor: null } })
    const client = new FieldgateClient({ baseUrl: server.origin, dialect: 'fieldnation', clientId: 'c', clientSecret: 's', tokenIn: 'query' })
    await client.api.workOrders.list()
    const call = server.received[1]!
    assert.equal(server.received[0]!.url, '/authentication/api/oauth/token')
    assert.equal(new URL(call.url, server.origin).searchParams.get('access_token'), 'fn-tok')
    assert.equal(call.headers.authorization, undefined)
    assert.throws(() => client.withTarget('t2'), TypeError)
  })

  it('walks cursor pages until next_cursor is null', async () => {
    server.answer(
      tokenAnswer('t'),
      { status: 200, body: { results: [{ id: 3 }, { id: 2 }], next_cursor: 'c2' } },
      { status: 200, body: { results: [{ id: 1 }], next_cursor: null } },
    )
    const ids: unknown[] = []
    for await (const r of fieldedge().api.customers.all({ limit: 2 })) ids.push((r as unknown as { id: number }).id)
    assert.deepEqual(ids, [3, 2, 1])
    assert.deepEqual(
      server.received.slice(1).map((r) => r.url),
      ['/api/v1/customers?limit=2', '/api/v1/customers?limit=2&cursor=c2'],
    )
  })

  it('withTarget shares the cache but keeps a token per tenant', async () => {
    server.answer(tokenAnswer('t1'), tokenAnswer('t2'))
    const cache = new TokenCache()
    const one = new FieldgateClient({ baseUrl: server.origin, dialect: 'fieldedge', clientId: 'c', clientSecret: 's', targetId: 'tenant-1', cache })
    const two = one.withTarget('tenant-2')
    assert.equal(await one.getAccessToken(), 't1')
    assert.equal(await two.getAccessToken(), 't2')
    assert.equal(await one.getAccessToken(), 't1')
    assert.equal(two.cache, cache)
    assert.deepEqual(
      server.received.map((r) => JSON.parse(r.body).target_id),
      ['tenant-1', 'tenant-2'],
    )
  })
})

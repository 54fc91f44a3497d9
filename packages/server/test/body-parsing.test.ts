import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { InvalidRequest } from '@fieldgate/core'
import { parseForm, parseStrictJson, readParams } from '../src/plugins/body.js'

describe('request bodies (RFC 6749 §3.2: no repeated parameters)', () => {
  it('parses JSON and rejects repeated keys at any depth, escapes included', () => {
    assert.deepEqual(parseStrictJson('{"a":"1","b":{"a":"2"},"c":["a","a"]}'), { a: '1', b: { a: '2' }, c: ['a', 'a'] })
    assert.throws(() => parseStrictJson('{"a":"1","a":"2"}'), InvalidRequest)
    assert.throws(() => parseStrictJson('{"x":{"k":1,"k":2}}'), InvalidRequest)
    assert.throws(() => parseStrictJson('{"a":"1","\\u0061":"2"}'), InvalidRequest)
    assert.throws(() => parseStrictJson('[{"a":1},{"b":1,"b":2}]'), InvalidRequest)
    assert.deepEqual(parseStrictJson('{"q":"a \\" , \\"a\\":"}'), { q: 'a " , "a":' })
    assert.throws(() => parseStrictJson('{"a":'), InvalidRequest)
    assert.equal(parseStrictJson('   '), undefined)
  })
  it('parses forms and rejects repeated fields', () => {
    assert.deepEqual(parseForm('a=1&b=x+y&c=%26'), { a: '1', b: 'x y', c: '&' })
    assert.throws(() => parseForm('a=1&a=2'), InvalidRequest)
  })
  it('accepts only flat objects of strings as OAuth parameters, safely', () => {
    assert.deepEqual(readParams({ a: 'b' }), { a: 'b' })
    assert.deepEqual(readParams(undefined), {})
    assert.throws(() => readParams(['a']), InvalidRequest)
    assert.throws(() => readParams({ a: 1 }), InvalidRequest)
    assert.throws(() => readParams({ a: ['x', 'y'] }), InvalidRequest)
    assert.throws(() => readParams('text'), InvalidRequest)
    const p = readParams(JSON.parse('{"__proto__":"x","client_id":"c"}'))
    assert.equal(Object.getPrototypeOf(p), Object.prototype)
    assert.equal(p.client_id, 'c')
  })
})

/**
 * The fuzzing harness of issue 7's security sweep, shared by the `fuzz-*.test.ts` files (one per
 * concern: operations and metadata, tokens, the data APIs, authorization and consent, the sign-in and
 * connected-apps pages, the developer portal, the marketplace, the admin API). fast-check sends each
 * route malformed and oversized JSON, duplicate keys, repeated form fields, unicode edge cases (lone
 * surrogates, NUL, RTL marks, emoji, combining marks), wrong content types, odd query strings and
 * random Authorization headers and cookies, and checks that nothing answers 5xx, that errors keep their
 * shape (JSON with an `error` string from the API, a page from the pages) and that no request changes
 * the store.
 *
 * Each file runs one real server on loopback with rate limits off (so fuzz does not turn into 429s), a
 * private app, a public sandbox app with an opaque connection token from the code flow, and a signed-in
 * person with a CSRF token, so forms get past the CSRF check and into the handlers.
 *
 * "No state change": every run snapshots the store before and after its request (tenants, users, mail,
 * apps, grants, live secrets, the audit log, outbox events, signing keys, the change feed, work orders and records)
 * and the two must be equal, so a failure shrinks to the one request that changed something. Write
 * routes are only ever sent bodies that are invalid by construction (a required field dropped, an
 * unknown field added, a NUL in a text field, a grace period out of range, no valid CSRF token on a form
 * that would act on any valid post), so a change is never legitimate. Requests that may succeed without
 * writing (client-credentials tokens, introspection, reads, consent pages) are checked like the rest.
 *
 * Every registered route has a property (checked against Fastify's route table): `areaOf` gives each
 * route one file, and each file checks that its properties are exactly its area's routes. The
 * PostgreSQL variant runs when DATABASE_URL is set. FUZZ_RUNS (default 40 per property) and FUZZ_SEED /
 * FUZZ_PATH (from a failure report) tune and replay runs.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import http from 'node:http'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { after, before, describe, it } from 'node:test'
import fc from 'fast-check'
import { cliActor, resourceKinds, storeContext, createApp, createUser, type Storage } from '@fieldgate/core'
import { resourceRoutes } from '../../src/routes/resources.js'
import {
  basicAuth,
  bearer,
  databaseUrl,
  getToken,
  postForm,
  privateApp,
  publicSandboxApp,
  request,
  startServer,
  type Engine,
  type PrivateFixture,
  type PublicFixture,
  type TestServer,
} from '../helpers.js'
import { Person, csrfOf } from '../person.js'

// ---------------------------------------------------------------------------------------------------
// Generators that know nothing of the server
// ---------------------------------------------------------------------------------------------------

export type Params = Record<string, unknown>

/** Characters and snippets that break naive code: NUL, lone surrogates, bidi controls, BOM, emoji, escapes. */
export const EDGE_PIECES = [
  '\u0000',
  '\ud800',
  '\udbff',
  '\udc00',
  '\udfff',
  '\ud83d',
  '\u200b',
  '\u200e',
  '\u200f',
  '\u202e',
  '\u2066',
  '\u061c',
  '\ufeff',
  '\ufffd',
  '\uffff',
  '\ufffe',
  '\u00a0',
  '\u2028',
  '\u2029',
  '\u0085',
  '😀',
  '👩‍👩‍👧‍👦',
  '🏳️‍🌈',
  'e\u0301',
  '\u0301\u0308\u0334',
  '𝕏',
  'İ',
  'ß',
  'ﬃ',
  'ﷺ',
  '\t',
  '\n',
  '\r\n',
  '\x7f',
  '\x1b',
  '\b',
  '"',
  '\\',
  "'",
  '`',
  '%',
  '%00',
  '%zz',
  '%E0%A4',
  '%ED%A0%80',
  '%C0%AF',
  '&',
  '=',
  '+',
  ';',
  ',',
  '#',
  '?',
  '/',
  '../',
  '<script>',
  // biome-ignore lint/suspicious/noTemplateCurlyInString: a literal template marker is fuzz input
  '${x}',
  '{{x}}',
  '__proto__',
  'constructor',
  ' ',
  'null',
  'undefined',
  'NaN',
  '-1',
  '1e309',
  '0x10',
  '\\u0000',
]

export const oneChar = (unit: 'grapheme-ascii' | 'binary' | 'grapheme') => fc.string({ unit, minLength: 1, maxLength: 1 })
export const edgeUnit = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...EDGE_PIECES) },
  { weight: 4, arbitrary: oneChar('grapheme-ascii') },
  { weight: 2, arbitrary: oneChar('binary') },
  { weight: 1, arbitrary: oneChar('grapheme') },
)
/** Long runs at and around the limits the schemas set (64, 100, 200, 320, 500, 1000, 2000 characters). */
export const longText = fc
  .tuple(fc.constantFrom('x', 'é', '😀', '\u0000', '\ud800', '\u202e', ' '), fc.constantFrom(64, 101, 199, 200, 201, 320, 321, 500, 501, 1000, 1001, 2000, 2001, 4096))
  .map(([unit, n]) => unit.repeat(n))
export const edgeString = fc.oneof({ weight: 9, arbitrary: fc.string({ unit: edgeUnit, maxLength: 20 }) }, { weight: 1, arbitrary: longText })
export const scalar = fc.oneof({ weight: 6, arbitrary: edgeString }, fc.integer(), fc.double(), fc.boolean(), fc.constant(null))
export const anyValue: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 8, arbitrary: scalar },
  { weight: 1, arbitrary: fc.array(scalar, { maxLength: 3 }) },
  { weight: 1, arbitrary: fc.dictionary(edgeString, scalar, { maxKeys: 2 }) },
)
/** A parameter value: mostly a string (what OAuth parameters are), sometimes anything, sometimes a real value. */
export const paramValue = (real: readonly string[] = []) =>
  fc.oneof({ weight: 7, arbitrary: edgeString }, { weight: 1, arbitrary: anyValue }, ...(real.length ? [{ weight: 3, arbitrary: fc.constantFrom(...real) }] : []))

/** Named fields (each optional) over a few junk keys; the named ones win. */
export function paramsOf(fields: Record<string, fc.Arbitrary<unknown>>, junk = true): fc.Arbitrary<Params> {
  return fc
    .tuple(fc.record(fields, { requiredKeys: [] }), junk ? fc.dictionary(edgeString, anyValue, { maxKeys: 2 }) : fc.constant({}))
    .map(([known, extra]) => ({ ...extra, ...(known as Params) }))
}
export const fieldsOf = (names: readonly string[], real: Record<string, readonly string[]> = {}) => Object.fromEntries(names.map((n) => [n, paramValue(real[n] ?? [])]))

/** A copy of `p` with an own property `key`, even `__proto__`. */
export function withKey(p: Params, key: string, value: unknown): Params {
  const q = { ...p }
  Object.defineProperty(q, key, { value, enumerable: true, writable: true, configurable: true })
  return q
}
export function withoutKey(p: Params, key: string): Params {
  const q = { ...p }
  delete q[key]
  return q
}

/**
 * Percent-encodes any JS string, lone surrogates included (as their WTF-8 bytes, which are not UTF-8:
 * a decoder must cope). encodeURIComponent itself throws on them.
 */
export function wtf8(s: string): string {
  let out = ''
  for (const ch of s) {
    try {
      out += encodeURIComponent(ch)
    } catch {
      const cp = ch.charCodeAt(0)
      out += [0xe0 | (cp >> 12), 0x80 | ((cp >> 6) & 0x3f), 0x80 | (cp & 0x3f)].map((b) => `%${b.toString(16).toUpperCase()}`).join('')
    }
  }
  return out
}
/** Every byte as %XX: the same parameter as plain encoding, spelled differently. */
export const pctAll = (s: string) => [...Buffer.from(s)].map((b) => `%${b.toString(16).padStart(2, '0')}`).join('')

export const asText = (v: unknown): string => (typeof v === 'string' ? v : (JSON.stringify(v) ?? ''))
export const formPairs = (p: Params): [string, string][] => Object.entries(p).map(([k, v]) => [k, asText(v)])
export const jsonText = (v: unknown): string => JSON.stringify(v) ?? 'null'
export const parsesAsJson = (text: string): boolean => {
  try {
    JSON.parse(text)
    return true
  } catch {
    return false
  }
}
/** What the server must refuse as JSON: not blank (a blank body is no body) and not JSON. */
export const invalidJson = (text: string) => text.trim() !== '' && !parsesAsJson(text)

// ---- request bodies ----

export interface Body {
  ct: string | undefined
  data: string | Uint8Array
  /** The body cannot be accepted whatever else the request says: the answer must be 4xx. */
  mustReject: boolean
  family: string
  /** Emails a successful sign-up would create: checked not to come into existence. */
  emails: string[]
}

export const JSON_TYPES = ['application/json', 'application/json; charset=utf-8', 'Application/JSON', 'application/json;charset=UTF-8']
export const FORM_TYPES = ['application/x-www-form-urlencoded', 'application/x-www-form-urlencoded; charset=utf-8', 'APPLICATION/X-WWW-FORM-URLENCODED']
export const WRONG_TYPES = [
  'text/plain',
  'text/plain; charset=utf-8',
  'application/xml',
  'text/html',
  'multipart/form-data; boundary=fuzz',
  'application/octet-stream',
  'application/jsonx',
  'application/vnd.api+json',
  'application/json-patch+json',
  'application/x-www-form-urlencodedx',
  'json',
  'application/json, text/plain',
  'application',
  '*/*',
  'x/y',
  '',
]
export const MALFORMED_JSON = [
  '{',
  '}',
  '[',
  ']',
  '{"a":1,}',
  '[1,]',
  "{'a':'b'}",
  '{a:1}',
  '{"a":NaN}',
  '{"a":Infinity}',
  '{"a":undefined}',
  '{"a":1}/*c*/',
  '// c\n{}',
  '\ufeff{}',
  '{"a":"\u0001"}',
  '{"a":"\\x41"}',
  '"\\',
  '{"a":"',
  '{} {}',
  '}{',
  '{"a" 1}',
  '01',
  '1.',
  '.5',
  '+1',
  '-',
  '0x10',
  '1e',
  '"\\u12"',
  '{"a":1]',
  'nul',
  'tru',
  '{"__proto__":}',
  '\u0000',
  '{"a":1}\u0000',
  '{"a":"\ud800"',
  '{"\\ud800":}',
  '[' + '{'.repeat(50),
  '{"a":"\n"}',
  '{"a":01}',
  '{"a":-}',
  '{,}',
  '{"a":1,,"b":2}',
  '{"a"::1}',
]
export const BAD_UTF8 = [[0xc0, 0x80], [0xed, 0xa0, 0x80], [0xff], [0xfe, 0xff], [0xe0, 0xa4], [0xf4, 0x90, 0x80, 0x80], [0x80], [0xc3]]

export const emailsIn = (p: Params): string[] => (typeof p.email === 'string' ? [p.email] : [])
export const body = (ct: string | undefined, data: string | Uint8Array, family: string, mustReject = false, emails: string[] = []): Body => ({
  ct,
  data,
  mustReject,
  family,
  emails,
})

export const jsonBody = (params: fc.Arbitrary<Params>) => fc.tuple(params, fc.constantFrom(...JSON_TYPES)).map(([p, ct]) => body(ct, JSON.stringify(p), 'json', false, emailsIn(p)))

export const formBody = (params: fc.Arbitrary<Params>) =>
  fc.tuple(params, fc.constantFrom(...FORM_TYPES), fc.boolean()).map(([p, ct, byHand]) =>
    body(
      ct,
      byHand
        ? formPairs(p)
            .map(([k, v]) => `${wtf8(k)}=${wtf8(v)}`)
            .join('&')
        : new URLSearchParams(formPairs(p)).toString(),
      byHand ? 'form (WTF-8)' : 'form',
      false,
      emailsIn(p),
    ),
  )

export const keyOf = (hints: readonly string[]) => (hints.length ? fc.oneof({ weight: 3, arbitrary: fc.constantFrom(...hints) }, edgeString) : edgeString)
export const escapeKey = (key: string) => `"${[...Array(key.length).keys()].map((i) => `\\u${key.charCodeAt(i).toString(16).padStart(4, '0')}`).join('')}"`

/** JSON text with a key twice: at the top, escaped differently, nested, inside an array, spaced out. */
export const duplicateKeyJson = (params: fc.Arbitrary<Params>, hints: readonly string[]) =>
  fc
    .tuple(params, keyOf(hints), anyValue, anyValue, fc.constantFrom('top', 'escaped', 'nested', 'array', 'spaced'), fc.constantFrom(...JSON_TYPES))
    .map(([p, key, v1, v2, where, ct]) => {
      const entries = Object.entries(p)
        .filter(([k]) => k !== key)
        .map(([k, v]) => `${JSON.stringify(k)}:${jsonText(v)}`)
      const first = `${JSON.stringify(key)}:${jsonText(v1)}`
      const second = `${where === 'escaped' ? escapeKey(key) : JSON.stringify(key)}:${jsonText(v2)}`
      let data: string
      if (where === 'nested') data = `{${[...entries, `"zz_outer":{${first},${second}}`].join(',')}}`
      else if (where === 'array') data = `[{${[first, ...entries, second].join(',')}}]`
      else if (where === 'spaced') data = ` {\n  ${[first, ...entries, second].join(' ,\n\t ')}\r\n} `
      else data = `{${[first, ...entries, second].join(',')}}`
      return body(ct, data, `json-duplicate-key (${where})`, true)
    })

/** Lone surrogates replaced by U+FFFD, as UTF-8 encoding does. */
export const wellFormed = (s: string) => s.replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, '\ufffd')

/**
 * A form with a field twice, the second time perhaps spelled with every byte percent-encoded. The key
 * is well-formed: a lone surrogate spelled as WTF-8 (three invalid bytes, three U+FFFD) and as UTF-8
 * (one U+FFFD) would be two different names, not a repetition.
 */
export const repeatedFieldForm = (params: fc.Arbitrary<Params>, hints: readonly string[]) =>
  fc
    .tuple(params, keyOf(hints).map(wellFormed), fc.array(edgeString, { minLength: 2, maxLength: 3 }), fc.boolean(), fc.constantFrom(...FORM_TYPES))
    .map(([p, key, values, spelled, ct]) => {
      const pairs = formPairs(p)
        .filter(([k]) => k !== key)
        .map(([k, v]) => `${wtf8(k)}=${wtf8(v)}`)
      const repeats = values.map((v, i) => `${spelled && i > 0 ? pctAll(key) : wtf8(key)}=${wtf8(v)}`)
      return body(ct, [repeats[0], ...pairs, ...repeats.slice(1)].join('&'), 'form-repeated-field', true)
    })

/** Broken JSON: classics, valid JSON cut short, valid JSON with a character spliced in. */
export const malformedJson = (params: fc.Arbitrary<Params>) =>
  fc
    .tuple(
      fc.oneof(
        fc.constantFrom(...MALFORMED_JSON),
        fc.tuple(params, fc.nat()).map(([p, n]) => {
          const text = JSON.stringify(p)
          return text.slice(0, n % text.length)
        }),
        fc.tuple(params, fc.nat(), fc.constantFrom(',', ':', '{', '}', '[', ']', '"', '\\', "'", 'x', '\u0000', '\u0001', '\n')).map(([p, n, c]) => {
          const text = JSON.stringify(p)
          const at = n % (text.length + 1)
          return text.slice(0, at) + c + text.slice(at)
        }),
      ),
      fc.constantFrom(...JSON_TYPES),
    )
    .filter(([text]) => invalidJson(text))
    .map(([text, ct]) => body(ct, text, 'malformed-json', true))

/** A plausible body under a content type the server does not read. */
export const wrongContentType = (params: fc.Arbitrary<Params>) =>
  fc
    .tuple(params, fc.constantFrom(...WRONG_TYPES), fc.boolean())
    .map(([p, ct, asJson]) => body(ct, asJson ? JSON.stringify(p) : new URLSearchParams(formPairs(p)).toString() || 'x=1', 'wrong-content-type', true))

/** Bodies a few hundred bytes either side of the limit, and far over it; padding in 1-, 2-, 4- and 6-byte units. */
export const oversized = (params: fc.Arbitrary<Params>, limit: number, padKeys: readonly string[]) =>
  fc
    .tuple(
      params,
      fc.constantFrom('x', 'é', '😀', '\u0000', '\ud800'),
      fc.oneof({ weight: 4, arbitrary: fc.integer({ min: -300, max: 300 }).map((d) => limit + d) }, { weight: 1, arbitrary: fc.constantFrom(4 * limit, 1 << 20) }),
      fc.boolean(),
      fc.constantFrom(...padKeys),
    )
    .map(([p, unit, target, asJson, padKey]) => {
      const encode = (pad: string) => (asJson ? JSON.stringify(withKey(p, padKey, pad)) : new URLSearchParams(formPairs(withKey(p, padKey, pad))).toString())
      const base = Buffer.byteLength(encode(''))
      const per = Buffer.byteLength(encode(unit)) - base
      const data = encode(unit.repeat(Math.max(0, Math.floor((target - base) / per))))
      const bytes = Buffer.byteLength(data)
      return body(asJson ? 'application/json' : 'application/x-www-form-urlencoded', data, `oversized (${bytes} bytes)`, bytes > limit)
    })

/** Random bytes with invalid UTF-8 mixed in, as JSON or as a form. */
export const rawBytes = fc
  .tuple(
    fc.array(fc.oneof(fc.uint8Array({ minLength: 1, maxLength: 12 }), fc.constantFrom(...BAD_UTF8.map((b) => Uint8Array.from(b)))), { minLength: 1, maxLength: 8 }),
    fc.constantFrom(...JSON_TYPES, ...FORM_TYPES),
  )
  .map(([chunks, ct]) => {
    const data = Uint8Array.from(chunks.flatMap((c) => [...c]))
    const isJson = ct.toLowerCase().includes('json')
    return body(ct, data, 'raw-bytes', isJson && invalidJson(Buffer.from(data).toString('utf8')))
  })

/** Deeply nested JSON under the size limit. */
export const deepJson = fc
  .tuple(fc.integer({ min: 1, max: 2500 }), fc.boolean(), fc.constantFrom(...JSON_TYPES))
  .map(([n, arrays, ct]) => body(ct, arrays ? '['.repeat(n) + ']'.repeat(n) : `{"zz_deep":${'{"a":'.repeat(n)}1${'}'.repeat(n)}}`, 'deep-json'))

/** `arb` one time in `1 + of`; null otherwise. */
export const rarely = <T>(arb: fc.Arbitrary<T>, of = 5): fc.Arbitrary<T | null> => fc.oneof({ weight: of, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: arb })

export const noBody = fc.constantFrom(
  body(undefined, '', 'no body'),
  body('application/json', '', 'empty JSON'),
  body('application/json', ' \n\t ', 'blank JSON'),
  body('application/x-www-form-urlencoded', '', 'empty form'),
)

export interface BodyOptions {
  /** Field names: where duplicates and padding go. */
  hints: readonly string[]
  /** Only bodies the server must refuse: for routes that act on any body they can read. */
  rejectOnly?: boolean
  /** A missing or blank body is harmless here. */
  allowEmpty?: boolean
  /** The key oversized bodies pad: a field of the route, or `zz_pad` where a known field must keep its value. */
  padKeys?: readonly string[]
}

export function bodies(params: fc.Arbitrary<Params>, limit: number, o: BodyOptions): fc.Arbitrary<Body> {
  const rejected = [
    duplicateKeyJson(params, o.hints),
    repeatedFieldForm(params, o.hints),
    malformedJson(params),
    wrongContentType(params),
    oversized(params, limit, ['zz_pad']).filter((b) => b.mustReject),
    rawBytes.filter((b) => b.mustReject),
  ]
  if (o.rejectOnly) return fc.oneof(...rejected)
  return fc.oneof(
    { weight: 4, arbitrary: jsonBody(params) },
    { weight: 4, arbitrary: formBody(params) },
    ...rejected.map((arbitrary) => ({ weight: 1, arbitrary })),
    { weight: 1, arbitrary: oversized(params, limit, o.padKeys ?? ['zz_pad']) },
    { weight: 1, arbitrary: rawBytes },
    { weight: 1, arbitrary: deepJson },
    ...(o.allowEmpty ? [{ weight: 1, arbitrary: noBody }] : []),
  )
}

// ---- query strings, path segments, headers ----

export const QUERY_JUNK = [
  '%00',
  '%',
  '%zz',
  '%E0%A4',
  '%ED%A0%80',
  '%C0%AF',
  '%FF',
  '=',
  '==',
  '&',
  '&&',
  'a',
  'a=',
  '=a',
  '+',
  '%2B',
  '%26',
  '%3D',
  ';',
  'a;b=c',
  '[]=1',
  'a[b]=1',
  'a[]=1&a[]=2',
  '__proto__=1',
  '__proto__[x]=1',
  'constructor[prototype][x]=1',
  'toString=1',
  'hasOwnProperty=1',
  '%u0041=1',
  '%%',
  '%25',
  'é=é',
  '😀=😀',
  'x=\u202e',
  'limit=-1',
  'limit=1e3',
  'limit=%00',
  'limit=0x10',
  'cursor=%00',
]

/**
 * Odd query strings: known names with edge values (and real ones), junk segments, a parameter
 * repeated, and sometimes a long value (up to 12 KB; a few go over Node's 16 KiB header limit and get
 * its 431, which has its own cases below).
 */
export function queryOf(names: readonly string[], real: readonly string[] = []): fc.Arbitrary<string> {
  const name = names.length ? fc.oneof({ weight: 3, arbitrary: fc.constantFrom(...names) }, edgeString.map(wtf8)) : edgeString.map(wtf8)
  const value = fc.oneof(
    { weight: 4, arbitrary: edgeString.map(wtf8) },
    { weight: 1, arbitrary: fc.constantFrom('%00', '%zz', '%', '%ED%A0%80', '%C0%AF', '') },
    ...(real.length ? [{ weight: 3, arbitrary: fc.constantFrom(...real.map(encodeURIComponent)) }] : []),
  )
  return fc
    .tuple(
      fc.array(fc.oneof({ weight: 3, arbitrary: fc.tuple(name, value).map(([k, v]) => `${k}=${v}`) }, { weight: 2, arbitrary: fc.constantFrom(...QUERY_JUNK) }), {
        minLength: 1,
        maxLength: 6,
      }),
      rarely(fc.tuple(fc.constantFrom(...(names.length ? names : ['x'])), value, value), 3),
      rarely(fc.integer({ min: 1000, max: 12_000 }), 8),
    )
    .map(([segments, repeated, long]) => {
      const parts = [...segments]
      if (repeated) parts.push(`${repeated[0]}=${repeated[1]}`, `${repeated[0]}=${repeated[2]}`)
      if (long !== null) parts.push(`${names[0] ?? 'x'}=${'%E2%80%AE'.repeat(Math.floor(long / 9))}`)
      return '?' + parts.join('&')
    })
}

/** A path segment: edge characters percent-encoded (WTF-8), raw junk encodings, lengths around the 100-character parameter limit. */
export const edgeSegment = fc.oneof(
  { weight: 5, arbitrary: edgeString.map(wtf8).filter((s) => s !== '' && !/^(\.|%2e){1,2}$/i.test(s)) },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      '%zz',
      '%',
      '%00',
      '%2F',
      '%ED%A0%80',
      '%C0%AF',
      'a%00b',
      '%E2%80%AE',
      '%F0%9F%98%80',
      '%3F',
      '%23',
      'x'.repeat(100),
      'x'.repeat(101),
      'x'.repeat(5000),
    ),
  },
  { weight: 1, arbitrary: fc.uuid() },
)

/** Header values a client can send: printable Latin-1 and tab (node:http and fetch refuse NUL, CR, LF, other controls and code points over 255). */
export const headerChar = fc.oneof(fc.integer({ min: 0x20, max: 0x7e }), fc.integer({ min: 0xa0, max: 0xff }), fc.constant(0x09)).map((c) => String.fromCharCode(c))
export const headerText = fc.string({ unit: headerChar, maxLength: 40 })
export const b64url = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url')

/** JWTs with the wrong algorithm (none, HS256), strange kids and claims, no or junk signatures. */
export const forgedJwt = (kids: readonly string[]) =>
  fc
    .tuple(
      fc.record(
        {
          alg: fc.oneof(fc.constantFrom('none', 'None', 'HS256', 'RS256', 'PS256', 'ES256', 'EdDSA', ''), edgeString),
          kid: fc.oneof(fc.constantFrom(...kids, '../../etc/passwd', ''), edgeString),
          typ: fc.constantFrom('JWT', 'at+jwt', 'x'),
          crit: fc.constantFrom(['exp'], ['x'], []),
        },
        { requiredKeys: ['alg'] },
      ),
      fc.record(
        { iss: edgeString, aud: edgeString, exp: fc.oneof(fc.integer(), edgeString), sub: edgeString, client_id: edgeString, scope: edgeString, tenant_id: edgeString },
        { requiredKeys: [] },
      ),
      fc.constantFrom('', 'AAAA', 'x'.repeat(342), '..', '%'),
    )
    .map(([header, payload, sig]) => `${b64url(header)}.${b64url(payload)}.${sig}`)

export function junkAuthorization(f: Fixture): fc.Arbitrary<string> {
  const realTokens = [f.privToken, f.pubToken, f.opaque, f.adminToken]
  const mutate = ([t, how, n]: [string, string, number]) => {
    const at = n % t.length
    if (how === 'flip') return t.slice(0, at) + (t[at] === 'A' ? 'B' : 'A') + t.slice(at + 1)
    if (how === 'cut') return t.slice(0, at)
    if (how === 'grow') return t + 'A'
    if (how === 'twice') return `${t}, Bearer ${t}`
    return t.toUpperCase() === t ? t.toLowerCase() : t.toUpperCase()
  }
  return fc.oneof(
    headerText,
    fc
      .tuple(fc.constantFrom('Bearer ', 'bearer ', 'BEARER  ', 'Bearer', 'Basic ', 'basic ', 'Basic', 'Digest ', 'Bearer Bearer ', 'Bearer\t', 'Token ', 'Bearer ,'), headerText)
      .map(([a, b]) => a + b),
    fc.tuple(edgeString, edgeString).map(([id, secret]) => 'Basic ' + Buffer.from(`${id}:${secret}`).toString('base64')),
    fc
      .tuple(fc.constantFrom(f.priv.clientId, f.pub.clientId), fc.constantFrom('%zz', '%', '%E0%A4', '%ED%A0%80', '', ':', '+', f.priv.clientSecret.slice(0, -1)))
      .map(([id, secret]) => 'Basic ' + Buffer.from(`${id}:${secret}`).toString('base64')),
    fc.uint8Array({ maxLength: 40 }).map((b) => 'Basic ' + Buffer.from(b).toString('base64')),
    fc.tuple(fc.constantFrom(...realTokens), fc.constantFrom('flip', 'cut', 'grow', 'twice', 'case'), fc.nat()).map((x) => 'Bearer ' + mutate(x)),
    forgedJwt(f.kids).map((t) => 'Bearer ' + t),
  )
}

// ---------------------------------------------------------------------------------------------------
// The server, its fixtures and the state that must not move
// ---------------------------------------------------------------------------------------------------

export const CALLBACK = 'https://partner.example/callback'
export const INSTALL_URL = 'https://partner.example/install'
export const ALL_SCOPES = 'api fields:read:all maps:write vehicles:write sensors:write alerts:write'

export interface Fixture {
  server: TestServer
  storage: Storage
  limit: number
  adminToken: string
  priv: PrivateFixture
  pub: PublicFixture
  /** The signed-in person's own marketplace app (the developer portal acts on it). */
  own: { clientId: string }
  /** Signed in; an operator too, so the operator console's routes reach their handlers. */
  person: Person
  userId: string
  /** The person's cookies, as a Cookie header. */
  cookie: string
  csrf: string
  privToken: string
  pubToken: string
  /** An opaque connection token from the code flow (public app on the person's farm). */
  opaque: string
  kids: string[]
  tenantIds: string[]
  grantIds: string[]
}

export interface Req {
  method: string
  path: string
  query: string
  headers: Record<string, string>
  body: Body | undefined
}

export type Kind = 'api' | 'page' | 'plain'

export interface Spec {
  method: 'GET' | 'POST' | 'DELETE' | 'PUT' | 'PATCH' | 'OPTIONS'
  /** The route as Fastify knows it. */
  route: string
  kind: Kind
  build(f: Fixture): fc.Arbitrary<Req>
  /** Why this route's generator keeps its input from doing anything (shown in the test name). */
  note?: string
}

/** The store as far as a request could change it. The reads run at once: on PostgreSQL they are most of a run's time. */
export async function snapshot(f: Fixture): Promise<unknown> {
  const s = f.storage
  const now = Date.now()
  const all = <T>(items: readonly T[], read: (item: T) => Promise<unknown>) => Promise.all(items.map(read))
  const appsAndSecrets = async () => {
    const apps = await s.listApps()
    return [apps, await all(apps, async (a) => (await s.listLiveSecrets(a.id, now)).map((x) => [x.id, x.expiresAt ?? null]))] as const
  }
  const [[apps, secrets], tenants, users, mail, grants, fixtureGrants, audit, events, keys, changes, workOrders, records] = await Promise.all([
    appsAndSecrets(),
    s.listTenants(),
    s.listUsers({ limit: 500 }),
    s.listMail({ limit: 500 }).then((l) => l.map((m) => [m.id, m.state])),
    s.listGrants(),
    all(f.grantIds, async (id) => (await s.getGrant(id))?.status),
    s.listAudit({ limit: 1000 }).then((l) => l.map((e) => e.id)),
    s.listEvents({ limit: 1000 }).then((l) => l.map((e) => e.id)),
    s.listSigningKeys().then((l) => l.map((k) => [k.kid, k.state])),
    s.latestChangeSeq(),
    all(f.tenantIds, async (t) => (await s.listRecords(t, resourceKinds.workOrder.kind, { limit: 1000 })).length),
    all(
      f.tenantIds.flatMap((t) => resourceRoutes.map((r) => [t, r.resource.kind] as const)),
      async ([t, kind]) => (await s.listRecords(t, kind, { limit: 1000 })).length,
    ),
  ])
  return { tenants, users, mail, apps, secrets, grants, fixtureGrants, audit, events, keys, changes, workOrders, records }
}

export interface RawRes {
  status: number
  /** Lower-case names; repeated headers joined with ', '. */
  headers: Record<string, string>
  text: string
  /** Bytes of the status line and header block, as sent (node:http only). */
  headerBytes: number
}

/**
 * One request. Through node:http with its response header limit raised, so a response whose headers
 * are over fetch's 16 KiB limit is still read and judged (see the redirect property below); bodies far
 * over the limit go through fetch, which copes with a server that answers 413 and closes mid-upload.
 */
export async function send(f: Fixture, req: Req): Promise<RawRes> {
  const headers: Record<string, string> = { ...req.headers }
  const withBody = req.body !== undefined && req.method !== 'GET' && req.method !== 'HEAD'
  if (withBody && req.body!.ct !== undefined) headers['content-type'] = req.body!.ct
  const data = withBody && req.body!.data.length > 0 ? req.body!.data : undefined
  if (data !== undefined && Buffer.byteLength(data) > 64 * 1024) {
    const res = await fetch(f.server.url(req.path + req.query), { method: req.method, headers, body: data, redirect: 'manual', signal: AbortSignal.timeout(15_000) })
    return { status: res.status, headers: Object.fromEntries(res.headers), text: await res.text(), headerBytes: -1 }
  }
  if (req.method !== 'GET' && req.method !== 'HEAD') headers['content-length'] = String(data === undefined ? 0 : Buffer.byteLength(data))
  return sendRaw(f, req.method, req.path + req.query, headers, data)
}

export function sendRaw(f: Fixture, method: string, path: string, headers: Record<string, string> = {}, data?: string | Uint8Array): Promise<RawRes> {
  // Normalised (non-ASCII percent-encoded) as fetch would send it.
  const url = new URL(path, f.server.origin)
  return new Promise((resolve, reject) => {
    const request = http.request(
      { host: url.hostname, port: url.port, method, path: url.pathname + url.search, headers, agent: false, maxHeaderSize: 1 << 20, timeout: 15_000 },
      (res) => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('error', reject)
        res.on('end', () => {
          const headerBytes = `HTTP/1.1 ${res.statusCode} ${res.statusMessage}\r\n`.length + res.rawHeaders.reduce((n, h) => n + Buffer.byteLength(h) + 2, 0) + 2
          const flat = Object.fromEntries(Object.entries(res.headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(', ') : String(v)]))
          resolve({ status: res.statusCode!, headers: flat, text: Buffer.concat(chunks).toString('utf8'), headerBytes })
        })
      },
    )
    request.on('timeout', () => request.destroy(new Error('timed out')))
    request.on('error', reject)
    request.end(data)
  })
}

export const describeReq = (req: Req, res: RawRes) =>
  `${req.method} ${req.path.slice(0, 200)}${req.query.slice(0, 200)} [${req.body?.family ?? 'no body'}] → ${res.status} ${res.text.slice(0, 300)}`

/** A path Fastify refuses before routing: a segment that does not percent-decode, or one over its 100-character parameter limit. */
export const unroutable = (path: string) =>
  path.split('/').some((s) => {
    try {
      decodeURIComponent(s)
      return s.length > 100
    } catch {
      return true
    }
  })

/** About what the request line and headers weigh on the wire (with a margin for the client's own Host, Connection, …). */
export const requestHeaderBytes = (f: Fixture, req: Req) => {
  const url = new URL(req.path + req.query, f.server.origin)
  return `${req.method} ${url.pathname}${url.search} HTTP/1.1\r\n`.length + Object.entries(req.headers).reduce((n, [k, v]) => n + k.length + v.length + 4, 0) + 300
}

export function checkResponse(f: Fixture, spec: Spec, req: Req, res: RawRes): void {
  const what = describeReq(req, res)
  assert.ok(res.status < 500, `5xx: ${what}`)
  assert.ok(res.status >= 200, `no final status: ${what}`)
  const type = res.headers['content-type'] ?? ''
  // biome-ignore lint/suspicious/noExplicitAny: a test reads whatever JSON the server sent and asserts on it
  let json: any
  if (type.includes('json') && res.text !== '') {
    assert.ok(parsesAsJson(res.text), `a JSON content type with a body that is not JSON: ${what}`)
    json = JSON.parse(res.text)
  }
  // Refusals before any route: headers over 16 KiB (431, from Node, before there is a request id) and
  // a path that cannot be routed (400, 414, JSON: no route says it is a page). Each only where the
  // request really is so.
  const tooLarge = res.status === 431
  if (tooLarge) assert.ok(requestHeaderBytes(f, req) > 16 * 1024 - 1024, `431 for ${requestHeaderBytes(f, req)} bytes of request headers: ${what}`)
  const badPath = (res.status === 400 || res.status === 414) && json?.error_description === 'the request path is malformed'
  if (badPath) assert.ok(unroutable(req.path), `a framework error for a routable path: ${what}`)
  if (!tooLarge) {
    // Every response carries a request id (issue 7), and an id a caller sent is echoed only if plain.
    const id = res.headers['x-request-id']
    assert.ok(id && /^[A-Za-z0-9._-]{1,64}$/.test(id), `no or unsafe x-request-id ${JSON.stringify(id)}: ${what}`)
    // The server's parser drops leading and trailing spaces and tabs (HTTP whitespace, not JS's wider trim).
    const sent = req.headers['x-request-id']?.replace(/^[ \t]+|[ \t]+$/g, '')
    if (sent !== undefined && /^[A-Za-z0-9._-]{1,64}$/.test(sent)) assert.equal(id, sent, what)
  }
  if (req.body?.mustReject && req.method !== 'GET' && req.method !== 'HEAD') assert.ok(res.status >= 400, `an unreadable body was accepted: ${what}`)
  if (res.status >= 300 && res.status < 400) {
    assert.equal(spec.kind === 'api', false, `an API route redirected: ${what}`)
    const location = res.headers.location ?? assert.fail(`a redirect without Location: ${what}`)
    // Only to a path on this server or to a redirect URI the client registered: never an open redirect.
    assert.ok(/^\/(?![/\\])/.test(location) || location.startsWith(CALLBACK + '?') || location.startsWith(INSTALL_URL + '?'), `redirect to ${location}: ${what}`)
  }
  if (res.status >= 400 && req.method !== 'HEAD') {
    const pageError = spec.kind === 'page' && req.method === spec.method && !tooLarge && !badPath
    if (pageError) {
      // A person never sees JSON or a stack trace: errors on pages are pages.
      assert.match(type, /^text\/html/, `a page answered an error without a page: ${what}`)
      assert.match(res.text, /^<!doctype html>/i, what)
      assert.doesNotMatch(res.text, /\n\s+at .*\(.*:\d+:\d+\)/, `a stack trace on a page: ${what}`)
    } else {
      assert.match(type, /^application\/json/, `an error that is not JSON: ${what}`)
      assert.equal(typeof json?.error, 'string', `an error without an error string: ${what}`)
    }
  }
  if (spec.kind === 'api' && res.status < 300 && req.method !== 'HEAD' && res.text !== '') {
    assert.match(type, /^application\/json/, `an API success that is not JSON: ${what}`)
  }
}

// ---------------------------------------------------------------------------------------------------
// Building requests
// ---------------------------------------------------------------------------------------------------

export const xRequestId = rarely(fc.oneof(headerText, fc.constantFrom('plain-id.1', 'a'.repeat(64), 'a'.repeat(65), '../x', 'id with space')), 6)

export function req(o: {
  method: Spec['method']
  path: fc.Arbitrary<string> | string
  auth: fc.Arbitrary<Record<string, string>>
  query?: fc.Arbitrary<string>
  body?: fc.Arbitrary<Body | undefined>
  /** Another method on the same path now and then (404, or HEAD on a GET route). Off where another route answers that method. */
  otherMethods?: boolean
}): fc.Arbitrary<Req> {
  const method =
    o.otherMethods === false
      ? fc.constant(o.method)
      : fc.oneof({ weight: 12, arbitrary: fc.constant(o.method) }, { weight: 1, arbitrary: fc.constantFrom('PUT', 'PATCH', 'OPTIONS', 'HEAD') })
  return fc.record({
    method,
    path: typeof o.path === 'string' ? fc.constant(o.path) : o.path,
    query: o.query ? fc.option(o.query, { nil: '', freq: 3 }) : fc.constant(''),
    headers: fc.tuple(o.auth, xRequestId).map(([a, id]) => (id === null ? a : { ...a, 'x-request-id': id })),
    body: o.body ?? fc.constant(undefined),
  }) as fc.Arbitrary<Req>
}

export const noAuth = fc.constant({} as Record<string, string>)

/** Authorization for a Bearer route: a real token most of the time, or none, or junk. */
export const bearerAuth = (f: Fixture, tokens = [f.privToken, f.pubToken, f.opaque]) =>
  fc.oneof(
    { weight: 5, arbitrary: fc.constantFrom(...tokens).map((t) => ({ authorization: `Bearer ${t}` })) },
    { weight: 1, arbitrary: noAuth },
    { weight: 2, arbitrary: junkAuthorization(f).map((a) => ({ authorization: a })) },
  )

/** Authorization for the admin API: the admin token mostly; junk (never the token after trimming) or none otherwise. */
export const isAdmin = (f: Fixture, header: string) => /^bearer /i.test(header) && header.slice(7).trim() === f.adminToken
export const junkAdminAuth = (f: Fixture) =>
  fc.oneof(
    {
      weight: 3,
      arbitrary: junkAuthorization(f)
        .filter((a) => !isAdmin(f, a))
        .map((a) => ({ authorization: a })),
    },
    { weight: 1, arbitrary: noAuth },
  )
export const adminAuth = (f: Fixture) =>
  fc.oneof(
    { weight: 5, arbitrary: fc.constantFrom(`Bearer ${f.adminToken}`, `bearer ${f.adminToken}`, `Bearer   ${f.adminToken}  `).map((a) => ({ authorization: a })) },
    { weight: 2, arbitrary: junkAdminAuth(f) },
  )

/** Client authentication at the token endpoints: Basic with real or junk credentials, or none. */
export const clientAuth = (f: Fixture) =>
  fc.oneof(
    { weight: 3, arbitrary: noAuth },
    { weight: 2, arbitrary: fc.constantFrom(basicAuth(f.priv.clientId, f.priv.clientSecret), basicAuth(f.pub.clientId, f.pub.clientSecret)).map((a) => ({ authorization: a })) },
    { weight: 2, arbitrary: junkAuthorization(f).map((a) => ({ authorization: a })) },
  )

/** The person's browser most of the time; none; junk cookies; the person's with a junk session besides. */
export const pageAuth = (f: Fixture) =>
  fc.oneof(
    { weight: 6, arbitrary: fc.constant({ cookie: f.cookie }) },
    { weight: 1, arbitrary: noAuth },
    { weight: 1, arbitrary: headerText.map((c) => ({ cookie: c })) },
    { weight: 1, arbitrary: fc.tuple(headerText, headerText).map(([b, s]) => ({ cookie: `fg_browser=${b}; fg_session=${s}` })) },
    { weight: 1, arbitrary: headerText.map((j) => ({ cookie: `${f.cookie}; fg_session=${j}; fg_browser=${j}` })) },
  )

/** A form's CSRF field: the real token mostly, sometimes a forgery of it. */
export const csrfField = (f: Fixture) => fc.oneof({ weight: 6, arbitrary: fc.constant(f.csrf) }, { weight: 1, arbitrary: forgedCsrf(f) })
/** Never this browser's token: missing (undefined), empty, altered, or random. */
export const forgedCsrf = (f: Fixture) =>
  fc.oneof(
    fc.constantFrom(
      undefined,
      '',
      f.csrf + 'x',
      f.csrf.slice(1),
      f.csrf.toUpperCase(),
      ` ${f.csrf}`,
      f.csrf.replace(/./, (c) => (c === 'A' ? 'B' : 'A')),
      'A'.repeat(f.csrf.length),
    ),
    edgeString,
  )
export const withCsrf = (csrf: fc.Arbitrary<string | undefined>, params: fc.Arbitrary<Params>) =>
  fc.tuple(params, csrf).map(([p, c]) => (c === undefined ? withoutKey(p, 'csrf') : withKey(p, 'csrf', c)))

// ---- write routes: bodies invalid by construction ----

export interface WriteSchema {
  /** Text fields (strings with the no-NUL pattern); the rest are other types. */
  text: readonly string[]
  other?: readonly string[]
  required: readonly string[]
}

/**
 * Params for a route with a closed JSON schema that would create something if valid: each gets one
 * violation that holds as JSON and as a form (ajv coerces types, so a wrong type is not enough): a
 * required field dropped, an unknown field added, or a NUL in a required text field.
 */
export function invalidFor(schema: WriteSchema, real: Record<string, readonly string[]> = {}): fc.Arbitrary<Params> {
  const names = [...schema.text, ...(schema.other ?? [])]
  const requiredText = schema.required.filter((n) => schema.text.includes(n))
  const violations = ['extra', ...(schema.required.length ? ['drop'] : []), ...(requiredText.length ? ['nul'] : [])]
  return fc.tuple(paramsOf(fieldsOf(names, real), false), fc.constantFrom(...violations), fc.nat(), edgeString, anyValue).map(([p, how, n, key, v]) => {
    if (how === 'drop') return withoutKey(p, schema.required[n % schema.required.length]!)
    if (how === 'nul') {
      const field = requiredText[n % requiredText.length]!
      return withKey(p, field, `${asText(p[field] ?? 'x').slice(0, 50)}\u0000${key.slice(0, 10)}`)
    }
    return withKey(p, `zz_${key}`, v)
  })
}

// ---------------------------------------------------------------------------------------------------
// Helpers for the route specs
// ---------------------------------------------------------------------------------------------------

/** A GET route: odd query strings and Authorization headers / cookies. */
export const getRoute = (
  route: string,
  kind: Kind,
  o: {
    auth?: (f: Fixture) => fc.Arbitrary<Record<string, string>>
    names?: readonly string[]
    real?: (f: Fixture) => readonly string[]
    path?: (f: Fixture) => fc.Arbitrary<string>
  } = {},
): Spec => ({
  method: 'GET',
  route,
  kind,
  build: (f) =>
    req({
      method: 'GET',
      path: o.path ? o.path(f) : route,
      query: queryOf(o.names ?? [], o.real ? o.real(f) : []),
      auth: o.auth
        ? o.auth(f)
        : fc.oneof(
            noAuth,
            junkAuthorization(f).map((a) => ({ authorization: a })),
          ),
    }),
})

/** A page form: the person's browser (mostly) and a CSRF token (mostly real), fields as given. */
export const pageForm = (f: Fixture, o: { path: fc.Arbitrary<string> | string; params: fc.Arbitrary<Params>; hints: readonly string[]; csrf?: fc.Arbitrary<string | undefined> }) =>
  req({
    method: 'POST',
    path: o.path,
    auth: pageAuth(f),
    body: bodies(withCsrf(o.csrf ?? csrfField(f), o.params), f.limit, { hints: ['csrf', ...o.hints], allowEmpty: true, padKeys: ['zz_pad'] }),
  })

/** Everything Fastify routes, from printRoutes' tree: `METHOD /path` (HEAD left out: it is GET's). */
export function registeredRoutes(server: TestServer): Set<string> {
  const found = new Set<string>()
  const stack: string[] = []
  for (const line of server.app.printRoutes({ commonPrefix: false }).split('\n')) {
    const m = /^((?:│ {3}| {4})*)[├└]── (.*) \(([A-Z, ]+)\)$/.exec(line)
    if (!m) continue
    const depth = m[1]!.length / 4
    stack.length = depth
    const parent = stack[depth - 1] ?? ''
    // printRoutes shows `/x/*` as a `*` under `/x`, its slash dropped.
    const path = parent + (m[2] === '*' && !parent.endsWith('/') ? '/*' : m[2]!)
    stack.push(path)
    for (const method of m[3]!.split(', ')) if (method !== 'HEAD') found.add(`${method} ${path.replace(/^\/\//, '/')}`)
  }
  return found
}

// ---------------------------------------------------------------------------------------------------
// Which file fuzzes which route
// ---------------------------------------------------------------------------------------------------

/** The fuzz files, one per concern: `fuzz-<area>.test.ts` fuzzes the routes `areaOf` gives its area. */
export const AREAS = ['ops', 'token', 'api', 'authorize', 'pages', 'developer', 'marketplace', 'operator', 'admin'] as const
export type Area = (typeof AREAS)[number]

const resourcePaths = new Set(resourceRoutes.flatMap((r) => [r.path, `${r.path}/:id`]))

/**
 * Where a route (`METHOD /path`, as Fastify knows it) is fuzzed. Total: a route nobody thought of falls
 * to `ops`, whose file then fails for a registered route without a property, as the single file did.
 */
export function areaOf(route: string): Area {
  const path = route.slice(route.indexOf(' ') + 1)
  if (path.startsWith('/admin/')) return 'admin'
  if (resourcePaths.has(path) || path.startsWith('/api/rest/v2/')) return 'api'
  if (/^\/(oauth\/(token|introspect|revoke|par)|authentication\/|v1\/token\.|v1\/permissions$)/.test(path)) return 'token'
  if (path === '/authorize' || path === '/oauth/authorize' || path === '/consent') return 'authorize'
  if (path === '/developer' || path.startsWith('/developer/')) return 'developer'
  if (path === '/marketplace' || path.startsWith('/marketplace/')) return 'marketplace'
  if (path === '/operator' || path.startsWith('/operator/')) return 'operator'
  if (path === '/' || /^\/(login|signup|logout|connected-apps|verify-email|forgot-password|reset-password|invitations)(\/|$)/.test(path) || path.startsWith('/tenants/'))
    return 'pages'
  return 'ops'
}

// ---------------------------------------------------------------------------------------------------
// The suite
// ---------------------------------------------------------------------------------------------------

/** Runs per property; FUZZ_RUNS overrides, FUZZ_SEED replays a reported failure (with its `path` in FUZZ_PATH). */
export const DEFAULT_RUNS = Number(process.env.FUZZ_RUNS) || 40
export const replay = process.env.FUZZ_SEED ? { seed: Number(process.env.FUZZ_SEED), ...(process.env.FUZZ_PATH ? { path: process.env.FUZZ_PATH } : {}) } : {}

/**
 * One fuzz file: `describe(title)` on SQLite and, when DATABASE_URL is set, PostgreSQL (skipped with
 * "DATABASE_URL is not set" otherwise), each with its own server and fixtures, a test that the file's
 * properties are exactly the registered routes of its area, one property per spec, then `extra` (tests
 * of their own, given the fixture once `before` has made it).
 */
export function fuzzFile(area: Area, title: string, specs: readonly Spec[], extra?: (fixture: () => Fixture) => void): void {
  describe(`${title} (SQLite)`, () => fuzzSuite('sqlite', area, specs, extra))
  if (databaseUrl) describe(`${title} (PostgreSQL)`, () => fuzzSuite('postgres', area, specs, extra))
  else describe(`${title} (PostgreSQL)`, { skip: 'DATABASE_URL is not set' }, () => {})
}

function fuzzSuite(engine: Engine, area: Area, specs: readonly Spec[], extra?: (fixture: () => Fixture) => void): void {
  let f: Fixture

  before(async () => {
    const adminToken = randomBytes(32).toString('base64url')
    const server = await startServer({
      engine,
      overrides: {
        adminToken,
        rateLimits: { windowSeconds: 60, perToken: 0, perClient: 0, tokenPerClient: 0, tokenPerAddress: 0 },
        // The sign-in limiter is in memory and would answer 429 to most sign-in fuzz: out of the way too.
        signInLimits: { windowSeconds: 60, perAccountAddress: 1_000_000, perAccount: 1_000_000, perAddress: 1_000_000 },
      },
    })
    try {
      const storage = server.storage
      const priv = await privateApp(storage, { scopes: ALL_SCOPES })
      const pub = await publicSandboxApp(storage, { scopes: ALL_SCOPES, redirectUris: [CALLBACK], listed: true, installUrl: INSTALL_URL })
      const email = `fuzz-${randomBytes(4).toString('hex')}@farm.example`
      const user = await createUser(storeContext(storage), cliActor, { email, password: Person.password, tenantId: priv.tenant.id, role: 'owner', operator: true })
      const person = new Person(server, email)
      assert.equal((await person.signIn()).status, 303)
      assert.equal((await person.get('/developer')).status, 200) // makes the person's sandbox tenant, once
      const sandboxId = (await storage.getUser(user.id))!.sandboxTenantId!
      const own = await createApp(storeContext(storage), cliActor, {
        name: 'Own app',
        kind: 'public',
        environment: 'sandbox',
        ownerUserId: user.id,
        tenantId: sandboxId,
        installOnSandbox: false,
        installUrl: INSTALL_URL,
        redirectUris: [CALLBACK],
        scopes: 'fields:read:all',
      })
      // The code flow: the public app connected to the person's farm, with an opaque token.
      const location = await person.decide({ client_id: pub.clientId, scope: 'fields:read:all', state: 's' }, 'allow', priv.tenant.id)
      const exchanged = await postForm(server.url('/v1/token.exchange'), { code: location.searchParams.get('code')!, client_id: pub.clientId, client_secret: pub.clientSecret })
      assert.equal(exchanged.status, 200, exchanged.text)
      const opaque = exchanged.json.access_token as string
      const connection = await storage.findActiveGrant(pub.app.id, priv.tenant.id)
      const csrf = csrfOf(await person.get('/connected-apps'))
      f = {
        server,
        storage,
        limit: server.config.bodyLimit,
        adminToken,
        priv,
        pub,
        own: { clientId: own.app.clientId },
        person,
        userId: user.id,
        cookie: `fg_browser=${person.cookie('fg_browser')}; fg_session=${person.cookie('fg_session')}`,
        csrf,
        privToken: await getToken(server, priv),
        pubToken: await getToken(server, pub, { target_id: pub.sandboxTenant.id }),
        opaque,
        kids: (await storage.listSigningKeys()).map((k) => k.kid),
        tenantIds: [priv.tenant.id, pub.sandboxTenant.id, sandboxId],
        grantIds: [priv.grant.id, pub.grant.id, connection!.id],
      }
    } catch (err) {
      await server.close()
      throw err
    }
  })
  after(() => f?.server.close())

  /** What every property leaves as it was: the person signed in, every token working. */
  async function stillWorks(): Promise<void> {
    assert.equal((await f.person.get('/connected-apps')).status, 200, 'the person is still signed in')
    for (const token of [f.privToken, f.pubToken, f.opaque]) {
      assert.equal((await request(f.server.url('/v1/permissions'), { headers: bearer(token) })).status, 200, 'the fixture tokens still work')
    }
  }

  it(`covers every registered route of its area (${area}), and every area has its file`, () => {
    const fuzzed = new Set(specs.map((s) => `${s.method} ${s.route}`))
    const registered = registeredRoutes(f.server)
    assert.ok(registered.size > 50, `printRoutes parsed: ${registered.size} routes`)
    const mine = [...registered].filter((r) => areaOf(r) === area)
    assert.ok(mine.length > 0, `no registered route falls to ${area}`)
    assert.deepEqual(mine.filter((r) => !fuzzed.has(r)).sort(), [], 'routes without a fuzz property')
    assert.deepEqual([...fuzzed].filter((r) => !registered.has(r)).sort(), [], 'properties for routes that do not exist')
    assert.deepEqual([...fuzzed].filter((r) => areaOf(r) !== area).sort(), [], `properties for routes of another area than ${area}`)
    // The union of the files is every route only if every file is there (this compiles next to them).
    const here = join(dirname(fileURLToPath(import.meta.url)), '..')
    assert.deepEqual(
      AREAS.filter((a) => !existsSync(join(here, `fuzz-${a}.test.js`))),
      [],
      'areas without their fuzz file',
    )
  })

  for (const spec of specs) {
    it(`${spec.method} ${spec.route}: no 5xx, errors keep their shape, nothing changes${spec.note ? ` (${spec.note})` : ''}`, { timeout: 120_000 }, async (t) => {
      const baseline = await snapshot(f)
      const statuses = new Map<number, number>()
      // The store as the last run left it, when that run changed nothing: the next run's "before".
      let unchanged: unknown
      await fc.assert(
        fc.asyncProperty(spec.build(f), async (r) => {
          // PostgreSQL cannot even look up an email with NUL (nor store one): probed on SQLite only.
          const emails = (r.body?.emails ?? []).filter((e) => f.server.engine === 'sqlite' || !e.includes('\u0000'))
          const users = async () => Promise.all(emails.map(async (e) => (await f.storage.getUserByEmail(e.trim().toLowerCase()))?.id))
          const before = unchanged ?? (await snapshot(f))
          unchanged = undefined
          const usersBefore = await users()
          const res = await send(f, r)
          statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1)
          checkResponse(f, spec, r, res)
          const after = await snapshot(f)
          assert.deepEqual(after, before, `the store changed: ${describeReq(r, res)}`)
          assert.deepEqual(await users(), usersBefore, `a user was created: ${describeReq(r, res)}`)
          unchanged = after
        }),
        { numRuns: DEFAULT_RUNS, ...replay },
      )
      assert.deepEqual(await snapshot(f), baseline)
      await stillWorks()
      // What the runs reached, for whoever wonders whether fuzz got past authentication.
      t.diagnostic(
        `statuses: ${[...statuses]
          .sort(([a], [b]) => a - b)
          .map(([code, n]) => `${code}×${n}`)
          .join(' ')}`,
      )
    })
  }

  extra?.(() => f)
}

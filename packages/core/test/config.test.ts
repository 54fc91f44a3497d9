import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { ConfigError, documentedSettings, loadConfig, settingsMarkdown, type Config } from '../src/index.js'

/** README.md at the root of the repository (this file runs from packages/core/dist/test). */
const readme = readFileSync(new URL('../../../../README.md', import.meta.url), 'utf8')

/** The rows of README's Settings table: variable, default cell, meaning. */
function readmeSettings(): { env: string; default: string; doc: string }[] {
  const section = /<!-- settings:start -->\n([\s\S]*?)<!-- settings:end -->/.exec(readme)
  assert.ok(section, 'README.md has a settings:start … settings:end section')
  return section[1]!
    .split('\n')
    .slice(2)
    .filter((line) => line.startsWith('| `'))
    .map((line) => {
      const [, env = '', shown = '', doc = ''] = /^\| `([A-Z0-9_]+)` \| (.*?) \| (.*) \|$/.exec(line) ?? []
      return { env, default: shown, doc }
    })
}

/** A value of the loaded config by its table key: `codeTtl`, `signInLimits.windowSeconds`. */
function valueAt(config: Config, key: string): unknown {
  let value: unknown = config
  for (const part of key.split('.')) value = value !== null && typeof value === 'object' ? Object.getOwnPropertyDescriptor(value, part)?.value : undefined
  return value
}

describe('settings table and README', () => {
  it('README lists exactly the variables of the settings table, in its order', () => {
    const listed = readmeSettings().map((s) => s.env)
    const table = documentedSettings().map((s) => s.env)
    assert.deepEqual(
      listed.filter((e) => !table.includes(e)),
      [],
      'README lists variables the table does not have',
    )
    assert.deepEqual(
      table.filter((e) => !listed.includes(e)),
      [],
      'README is missing variables of the table: run npm run docs:settings',
    )
    assert.deepEqual(listed, table)
    assert.equal(new Set(table).size, table.length, 'no variable names two settings')
  })

  it('README shows every default the table has, and each is what loadConfig gives with nothing set', () => {
    const shown = new Map(readmeSettings().map((s) => [s.env, s.default]))
    const loaded = loadConfig({})
    for (const s of documentedSettings()) {
      assert.equal(shown.get(s.env), s.default, `${s.env}: README's default differs from the table's: run npm run docs:settings`)
      const literal = /^`([^`<>]*)`$/.exec(s.default)?.[1]
      if (literal !== undefined) assert.equal(literal, String(valueAt(loaded, s.key)), `${s.env}: the default shown is not the one loaded`)
    }
  })

  it('README has the table exactly as generated, meanings included', () => {
    assert.ok(readme.includes(`<!-- settings:start -->\n${settingsMarkdown()}\n<!-- settings:end -->`), 'run npm run docs:settings')
  })
})

describe('code and session lifetimes, body limit and poll interval from the environment', () => {
  it('FIELDGATE_CODE_TTL, FIELDGATE_SESSION_TTL, FIELDGATE_BODY_LIMIT, FIELDGATE_POLL_INTERVAL_MS: defaults and values', () => {
    const d = loadConfig({})
    assert.deepEqual([d.codeTtl, d.sessionTtl, d.bodyLimit, d.changePollMs], [60, 43200, 16384, 250])
    const c = loadConfig({ FIELDGATE_CODE_TTL: '30', FIELDGATE_SESSION_TTL: '3600', FIELDGATE_BODY_LIMIT: '65536', FIELDGATE_POLL_INTERVAL_MS: '1000' })
    assert.deepEqual([c.codeTtl, c.sessionTtl, c.bodyLimit, c.changePollMs], [30, 3600, 65536, 1000])
    const edges = loadConfig({ FIELDGATE_CODE_TTL: '600', FIELDGATE_SESSION_TTL: '300', FIELDGATE_BODY_LIMIT: '1024', FIELDGATE_POLL_INTERVAL_MS: '60000' })
    assert.deepEqual([edges.codeTtl, edges.sessionTtl, edges.bodyLimit, edges.changePollMs], [600, 300, 1024, 60000])
    assert.equal(loadConfig({ FIELDGATE_CODE_TTL: '' }).codeTtl, 60, 'empty is unset')
  })

  it('refuses what they cannot be, naming the variable', () => {
    const refused: [string, string, string][] = [
      ['FIELDGATE_CODE_TTL', 'sixty', 'FIELDGATE_CODE_TTL must be a whole number, 0 or more'],
      ['FIELDGATE_CODE_TTL', '0', 'FIELDGATE_CODE_TTL must be 1 to 600 seconds'],
      ['FIELDGATE_CODE_TTL', '601', 'FIELDGATE_CODE_TTL must be 1 to 600 seconds'],
      ['FIELDGATE_CODE_TTL', '1.5', 'FIELDGATE_CODE_TTL must be a whole number, 0 or more'],
      ['FIELDGATE_SESSION_TTL', '-1', 'FIELDGATE_SESSION_TTL must be a whole number, 0 or more'],
      ['FIELDGATE_SESSION_TTL', '299', 'FIELDGATE_SESSION_TTL must be 300 to 2592000 seconds'],
      ['FIELDGATE_SESSION_TTL', '2592001', 'FIELDGATE_SESSION_TTL must be 300 to 2592000 seconds'],
      ['FIELDGATE_BODY_LIMIT', '16k', 'FIELDGATE_BODY_LIMIT must be a whole number, 0 or more'],
      ['FIELDGATE_BODY_LIMIT', '1023', 'FIELDGATE_BODY_LIMIT must be 1024 to 16777216 bytes'],
      ['FIELDGATE_BODY_LIMIT', '16777217', 'FIELDGATE_BODY_LIMIT must be 1024 to 16777216 bytes'],
      ['FIELDGATE_POLL_INTERVAL_MS', '9', 'FIELDGATE_POLL_INTERVAL_MS must be 10 to 60000'],
      ['FIELDGATE_POLL_INTERVAL_MS', '60001', 'FIELDGATE_POLL_INTERVAL_MS must be 10 to 60000'],
      ['FIELDGATE_POLL_INTERVAL_MS', '1e3', 'FIELDGATE_POLL_INTERVAL_MS must be a whole number, 0 or more'],
    ]
    for (const [name, value, message] of refused) {
      assert.throws(
        () => loadConfig({ [name]: value }),
        (err: unknown) => err instanceof ConfigError && err.message === message,
        `${name}=${value}`,
      )
    }
  })

  it('checks the same bounds on values set in code', () => {
    assert.throws(() => loadConfig({}, { codeTtl: 0 }), /FIELDGATE_CODE_TTL must be 1 to 600 seconds/)
    assert.throws(() => loadConfig({}, { sessionTtl: 10 }), /FIELDGATE_SESSION_TTL must be 300 to 2592000 seconds/)
    assert.throws(() => loadConfig({}, { bodyLimit: 1.5 }), /FIELDGATE_BODY_LIMIT must be 1024 to 16777216 bytes/)
    assert.throws(() => loadConfig({}, { changePollMs: 0 }), /FIELDGATE_POLL_INTERVAL_MS must be 10 to 60000/)
    assert.equal(loadConfig({ FIELDGATE_CODE_TTL: '30' }, { codeTtl: 1 }).codeTtl, 1, 'code wins over the environment')
  })
})

describe('FIELDGATE_SIGNING_ALG', () => {
  it('is RS256 unless set; takes PS256, ES256 and EdDSA', () => {
    assert.equal(loadConfig({}).signingAlg, 'RS256')
    for (const alg of ['RS256', 'PS256', 'ES256', 'EdDSA'] as const) assert.equal(loadConfig({ FIELDGATE_SIGNING_ALG: alg }).signingAlg, alg)
    assert.equal(loadConfig({}, { signingAlg: 'EdDSA' }).signingAlg, 'EdDSA')
  })

  it('refuses any other algorithm, spelled otherwise too, naming the ones it takes', () => {
    // HS256 is symmetric (RFC 9068 §4 wants asymmetric); Ed25519 is RFC 9864's name, not the JWS alg RFC 8037 registers.
    for (const value of ['HS256', 'none', 'eddsa', 'Ed25519', 'ES384', 'RS256 ']) {
      assert.throws(
        () => loadConfig({ FIELDGATE_SIGNING_ALG: value }),
        (err: unknown) => err instanceof ConfigError && err.message === 'FIELDGATE_SIGNING_ALG must be one of RS256, PS256, ES256, EdDSA',
        value,
      )
    }
  })
})

describe('settings kept from before the table', () => {
  it('derived defaults follow what they are derived from', () => {
    const c = loadConfig({ FIELDGATE_HOST: '::1', FIELDGATE_PORT: '8080' })
    assert.equal(c.issuer, 'http://[::1]:8080')
    assert.equal(c.audience, 'http://[::1]:8080/api')
    assert.equal(c.rateLimitPrefix, 'fieldgate:http://[::1]:8080:')
    assert.equal(loadConfig({ FIELDGATE_HOST: '0.0.0.0' }).issuer, 'http://127.0.0.1:4400')
  })

  it('groups are frozen, may be given in part, and are checked across their rows', () => {
    const c = loadConfig({ FIELDGATE_WEBHOOK_TIMEOUT_MS: '2000' }, { webhooks: { pollMs: 50 } })
    assert.equal(c.webhooks.pollMs, 50)
    assert.equal(c.webhooks.timeoutMs, 2000)
    assert.equal(c.webhooks.batch, 100)
    for (const group of [c.tokenTtl, c.signInLimits, c.metrics, c.rateLimits, c.overload, c.webhooks]) assert.ok(Object.isFrozen(group))
    assert.throws(
      () => loadConfig({ FIELDGATE_WEBHOOK_LEASE_MS: '5000', FIELDGATE_WEBHOOK_TIMEOUT_MS: '5000' }),
      (err: unknown) => err instanceof ConfigError && err.message === 'FIELDGATE_WEBHOOK_LEASE_MS must be longer than FIELDGATE_WEBHOOK_TIMEOUT_MS',
    )
    assert.throws(() => loadConfig({}, { tokenTtl: { public: -1 } }), /token lifetime public must be a whole number, 0 or more/)
  })
})

describe('the brand: FIELDGATE_BRAND_* and FIELDGATE_TENANT_WORD, or a JSON file beneath them', () => {
  it('defaults to Fieldgate, its green and "farm"; the variables set name, colour, links and the word with its plural', () => {
    const d = loadConfig({})
    assert.deepEqual([d.brand.name, d.brand.color, d.brand.tenantWord, d.brand.logo], ['Fieldgate', '#2f6b3a', { one: 'farm', many: 'farms' }, undefined])
    assert.equal(d.mailFrom, 'Fieldgate <no-reply@127.0.0.1>')
    const c = loadConfig({
      FIELDGATE_BRAND_NAME: ' Acme Field ',
      FIELDGATE_BRAND_COLOR: '#1A4D8F',
      FIELDGATE_BRAND_SUPPORT_URL: 'https://help.acme.example/',
      FIELDGATE_TENANT_WORD: 'company',
      FIELDGATE_BRAND_LOGO: 'brand/logo.svg',
    })
    assert.deepEqual([c.brand.name, c.brand.color, c.brand.supportUrl, c.brand.logo], ['Acme Field', '#1a4d8f', 'https://help.acme.example/', 'brand/logo.svg'])
    assert.deepEqual(c.brand.tenantWord, { one: 'company', many: 'companies' })
    assert.equal(c.mailFrom, 'Acme Field <no-reply@127.0.0.1>', 'mail comes from the brand')
    assert.deepEqual(loadConfig({ FIELDGATE_TENANT_WORD: 'organisation' }).brand.tenantWord, { one: 'organisation', many: 'organisations' })
    assert.deepEqual(loadConfig({ FIELDGATE_TENANT_WORD: 'Branch' }).brand.tenantWord, { one: 'branch', many: 'branches' })
    assert.deepEqual(loadConfig({ FIELDGATE_TENANT_WORD: 'site/locations' }).brand.tenantWord, { one: 'site', many: 'locations' })
  })

  it('refuses a colour, link, logo path or word it could not show, naming the variable', () => {
    const refused: [string, string, RegExp][] = [
      ['FIELDGATE_BRAND_COLOR', 'green', /FIELDGATE_BRAND_COLOR must be a colour as #rrggbb/],
      ['FIELDGATE_BRAND_SUPPORT_URL', 'javascript:alert(1)', /FIELDGATE_BRAND_SUPPORT_URL must be an http\(s\) URL/],
      ['FIELDGATE_BRAND_LOGO', '../../etc/passwd', /FIELDGATE_BRAND_LOGO must be an https URL or a file in the data dir/],
      ['FIELDGATE_BRAND_LOGO', 'http://cdn.example/logo.png', /FIELDGATE_BRAND_LOGO must be an https URL or a file in the data dir/],
      ['FIELDGATE_BRAND_LAYOUT', '/etc/layout.html', /FIELDGATE_BRAND_LAYOUT must be/],
      ['FIELDGATE_TENANT_WORD', 'farm<script>', /FIELDGATE_TENANT_WORD must be a word/],
      ['FIELDGATE_BRAND_NAME', 'a\nb', /FIELDGATE_BRAND_NAME must be 1 to 60 characters on one line/],
    ]
    for (const [name, value, message] of refused) assert.throws(() => loadConfig({ [name]: value }), message, `${name}=${value}`)
  })

  it('reads FIELDGATE_BRAND_FILE from the data dir; a variable set wins over the file; unknown keys and bad JSON are refused', () => {
    const dir = mkdtempSync(join(tmpdir(), 'fg-brand-'))
    try {
      writeFileSync(join(dir, 'brand.json'), JSON.stringify({ name: 'Northwind Service', color: '#aa3300', tenantWord: 'company', privacyUrl: 'https://nw.example/privacy' }))
      const c = loadConfig({ FIELDGATE_DATA_DIR: dir, FIELDGATE_BRAND_FILE: 'brand.json', FIELDGATE_BRAND_COLOR: '#003366' })
      assert.deepEqual([c.brand.name, c.brand.color, c.brand.tenantWord.one, c.brand.privacyUrl], ['Northwind Service', '#003366', 'company', 'https://nw.example/privacy'])
      writeFileSync(join(dir, 'odd.json'), JSON.stringify({ colour: '#003366' }))
      assert.throws(() => loadConfig({ FIELDGATE_DATA_DIR: dir, FIELDGATE_BRAND_FILE: 'odd.json' }), /unknown key "colour"/)
      writeFileSync(join(dir, 'bad.json'), '{ name: ')
      assert.throws(() => loadConfig({ FIELDGATE_DATA_DIR: dir, FIELDGATE_BRAND_FILE: 'bad.json' }), /cannot be read as JSON/)
      writeFileSync(join(dir, 'colour.json'), JSON.stringify({ color: 'red' }))
      assert.throws(() => loadConfig({ FIELDGATE_DATA_DIR: dir, FIELDGATE_BRAND_FILE: 'colour.json' }), /must be a colour/)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})

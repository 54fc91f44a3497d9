import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { readdirSync, readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { spawn } from 'node:child_process'
import { after, before, describe, it } from 'node:test'
import { firstStartSteps } from '@fieldgate/server'
import { basicAuth, childEnv, freePort, postForm, repoRoot, request, runCli, startServer, tempDir, waitUntil, type CliResult } from './helpers.js'

/** The `fieldgate` CLI as a subprocess against a temp SQLite data dir, with --json output. */
describe('fieldgate CLI', () => {
  const dataDir = tempDir('fg-cli-')
  const env = { FIELDGATE_DATA_DIR: dataDir }
  const cli = (...args: string[]) => runCli(args, env)
  // biome-ignore lint/suspicious/noExplicitAny: a test reads whatever JSON the server sent and asserts on it
  const ok = async (...args: string[]): Promise<any> => {
    const r = await cli(...args)
    assert.equal(r.code, 0, `fieldgate ${args.join(' ')} exited ${r.code}: ${r.stderr}`)
    assert.notEqual(r.json, undefined, `fieldgate ${args.join(' ')} printed no JSON: ${r.stdout}`)
    return r.json
  }
  /** A failure for a person: exit code 1, one message on stderr, no stack trace, nothing on stdout. */
  const fails = (r: CliResult, message: RegExp) => {
    assert.equal(r.code, 1, `expected exit 1, got ${r.code}: ${r.stdout} ${r.stderr}`)
    assert.match(r.stderr, message)
    assert.doesNotMatch(r.stderr, /^\s+at /m, 'no stack trace')
    assert.doesNotMatch(r.stderr, /node:internal|\.js:\d+/, 'no internals')
    assert.equal(r.stdout.trim(), '')
  }

  // biome-ignore lint/suspicious/noExplicitAny: a test reads whatever JSON the server sent and asserts on it
  let sandbox: any
  // biome-ignore lint/suspicious/noExplicitAny: a test reads whatever JSON the server sent and asserts on it
  let live: any
  // biome-ignore lint/suspicious/noExplicitAny: a test reads whatever JSON the server sent and asserts on it
  let priv: any
  // biome-ignore lint/suspicious/noExplicitAny: a test reads whatever JSON the server sent and asserts on it
  let pub: any

  before(async () => {
    const migrated = await ok('migrate', '--json')
    assert.deepEqual(migrated, { migrated: true, store: 'sqlite' })
    ;[sandbox, live] = await Promise.all([
      ok('tenants', 'create', '--name', 'Acme Field Services', '--environment', 'sandbox', '--json'),
      ok('tenants', 'create', '--name', 'Acme Live', '--environment', 'live', '--json'),
    ])
  })
  after(() => rmSync(dataDir, { recursive: true, force: true }))

  it('creates and lists tenants', async () => {
    assert.match(sandbox.id, /^[0-9a-f-]{36}$/)
    assert.equal(sandbox.name, 'Acme Field Services')
    assert.equal(sandbox.environment, 'sandbox')
    assert.match(sandbox.marketplace_id, /^[0-9a-f-]{36}$/)
    assert.equal(live.environment, 'live')
    const list = await ok('tenants', 'list', '--json')
    assert.ok(Array.isArray(list))
    const byId = new Map(list.map((t: { id: string }) => [t.id, t]))
    assert.deepEqual(byId.get(sandbox.id), sandbox)
    assert.deepEqual(byId.get(live.id), live)
    // --json before the command works as well, and plain text names the tenant.
    assert.ok((await ok('--json', 'tenants', 'list')).some((t: { id: string }) => t.id === live.id))
    const text = await cli('tenants', 'list')
    assert.equal(text.code, 0)
    assert.match(text.stdout, new RegExp(sandbox.id))
  })

  it('creates users, members of a tenant', async () => {
    const user = await ok('users', 'create', '--email', 'Dispatch@Acme.example', '--password', 'correct horse battery', '--tenant', sandbox.id, '--role', 'admin', '--json')
    assert.equal(user.email, 'dispatch@acme.example')
    assert.match(user.id, /^[0-9a-f-]{36}$/)
    const [dup, short, noPassword] = await Promise.all([
      cli('users', 'create', '--email', 'dispatch@acme.example', '--password', 'correct horse battery', '--json'),
      cli('users', 'create', '--email', 'other@acme.example', '--password', 'short', '--json'),
      cli('users', 'create', '--email', 'third@acme.example', '--json'),
    ])
    fails(dup, /exists/)
    fails(short, /at least 10/)
    fails(noPassword, /password/i)
  })

  it('creates a private app with an fgs_sandbox_ / fgs_live_ secret', async () => {
    priv = await ok('apps', 'create', '--name', 'Acme dispatch', '--kind', 'private', '--tenant', sandbox.id, '--json')
    assert.match(priv.client_id, /^[0-9a-f]{32}$/)
    assert.match(priv.client_secret, /^fgs_sandbox_[A-Za-z0-9_-]{40,}$/)
    assert.equal(priv.kind, 'private')
    assert.equal(priv.environment, 'sandbox')
    assert.equal(priv.tenant_id, sandbox.id)
    assert.equal(priv.scopes, 'api')
    assert.equal(priv.sandbox_target_id, undefined)
    const liveApp = await ok('apps', 'create', '--name', 'Acme live dispatch', '--kind', 'private', '--tenant', live.id, '--token-ttl', '600', '--json')
    assert.match(liveApp.client_secret, /^fgs_live_/)
    assert.equal(liveApp.environment, 'live')
    assert.equal(liveApp.token_ttl, 600)
  })

  it('creates a public sandbox app with its sandbox target_id', async () => {
    pub = await ok(
      'apps',
      'create',
      '--name',
      'Route planner',
      '--kind',
      'public',
      '--install-url',
      'https://partner.example/install',
      '--contact-email',
      'dev@partner.example',
      '--scopes',
      'api maps:write',
      '--json',
    )
    assert.equal(pub.kind, 'public')
    assert.equal(pub.environment, 'sandbox')
    assert.match(pub.client_secret, /^fgs_sandbox_/)
    assert.match(pub.sandbox_target_id, /^[0-9a-f-]{36}$/)
    assert.equal(pub.install_url, 'https://partner.example/install')
    const tenants = await ok('tenants', 'list', '--json')
    const sb = tenants.find((t: { id: string }) => t.id === pub.sandbox_target_id)
    assert.equal(sb?.environment, 'sandbox')
    const grants = await ok('grants', 'list', '--tenant', pub.sandbox_target_id, '--json')
    assert.equal(grants.length, 1)
    assert.equal(grants[0].status, 'active')
    assert.equal(grants[0].scopes, 'api maps:write')
  })

  it('grants, lists and revokes', async () => {
    const grant = await ok('grants', 'create', '--app', pub.client_id, '--tenant', sandbox.id, '--scopes', 'api', '--json')
    assert.equal(grant.tenant_id, sandbox.id)
    assert.equal(grant.status, 'active')
    assert.equal(grant.scopes, 'api')
    const again = await ok('grants', 'create', '--app', pub.client_id, '--tenant', sandbox.id, '--json')
    assert.equal(again.id, grant.id, 'installing twice keeps one grant')
    const listed = await ok('grants', 'list', '--tenant', sandbox.id, '--json')
    assert.ok(listed.some((g: { id: string; status: string }) => g.id === grant.id && g.status === 'active'))
    const revoked = await ok('grants', 'revoke', grant.id, '--json')
    assert.equal(revoked.id, grant.id)
    assert.equal(revoked.status, 'revoked')
    const after = await ok('grants', 'list', '--json')
    assert.equal(after.find((g: { id: string }) => g.id === grant.id)?.status, 'revoked')
    const [beyond, crossEnv, privateOther] = await Promise.all([
      cli('grants', 'create', '--app', pub.client_id, '--tenant', sandbox.id, '--scopes', 'fields:read:all', '--json'),
      cli('grants', 'create', '--app', pub.client_id, '--tenant', live.id, '--json'),
      cli('grants', 'create', '--app', priv.client_id, '--tenant', pub.sandbox_target_id, '--json'),
    ])
    fails(beyond, /may not ask for: fields:read:all/)
    fails(crossEnv, /sandbox app cannot be granted a live tenant/)
    fails(privateOther, /own tenant/)
  })

  it('lists and rotates signing keys', async () => {
    const keys = await ok('keys', 'list', '--json')
    assert.deepEqual(keys.map((k: { state: string }) => k.state).sort(), ['active', 'next'])
    const next = keys.find((k: { state: string }) => k.state === 'next')
    const active = keys.find((k: { state: string }) => k.state === 'active')
    const rotated = await ok('keys', 'rotate', '--json')
    const states = new Map(rotated.map((k: { kid: string; state: string }) => [k.kid, k.state]))
    assert.equal(rotated.length, 3)
    assert.equal(states.get(next.kid), 'active')
    assert.equal(states.get(active.kid), 'retiring')
    assert.ok(rotated.some((k: { state: string; retire_at: string | null }) => k.state === 'retiring' && k.retire_at !== null))
    assert.deepEqual(await ok('keys', 'list', '--json'), rotated)
  })

  it('exits 1 with a message and no stack trace on errors', async () => {
    const results = await Promise.all([
      cli('apps', 'create', '--name', 'No tenant', '--kind', 'private', '--json'),
      cli('apps', 'create', '--name', 'Live market', '--kind', 'public', '--environment', 'live', '--json'),
      cli('apps', 'create', '--name', 'Bad ttl', '--kind', 'private', '--tenant', sandbox.id, '--token-ttl', '5', '--json'),
      cli('apps', 'create', '--name', 'Wrong env', '--kind', 'private', '--tenant', live.id, '--environment', 'sandbox', '--json'),
      cli('apps', 'create', '--name', 'Bad URL', '--kind', 'public', '--install-url', 'javascript:alert(1)', '--json'),
      cli('grants', 'revoke', '00000000-0000-0000-0000-000000000000', '--json'),
      cli('apps', 'rotate-secret', 'no-such-client', '--json'),
      cli('apps', 'rotate-secret', priv.client_id, '--grace', '-5', '--json'),
      cli('users', 'create', '--email', 'not-an-email', '--password', 'correct horse battery', '--json'),
    ])
    const expected = [
      /a private app needs --tenant/,
      /install URL/,
      /token lifetime/,
      /sandbox app cannot belong to a live tenant/,
      /http\(s\) URL/,
      /no grant 00000000-0000-0000-0000-000000000000/,
      /no app with client_id no-such-client/,
      /grace period/,
      /not an email/,
    ]
    for (const [i, r] of results.entries()) fails(r, expected[i]!)
    // Usage errors from the argument parser also exit 1 without a trace.
    const usage = await cli('apps', 'create', '--name', 'x', '--json')
    assert.equal(usage.code, 1)
    assert.match(usage.stderr, /--kind/)
    assert.doesNotMatch(usage.stderr, /^\s+at /m)
    const badEnv = await runCli(['tenants', 'list', '--json'], { FIELDGATE_DATA_DIR: dataDir, FIELDGATE_SIGNING_ALG: 'HS256' })
    fails(badEnv, /FIELDGATE_SIGNING_ALG/)
  })

  it('creates a live public app with only redirect URIs (a fieldmargin integration), https only off loopback', async () => {
    const made = await ok(
      'apps',
      'create',
      '--name',
      'Field notes',
      '--kind',
      'public',
      '--environment',
      'live',
      '--redirect-uri',
      'https://notes.example/callback',
      'http://127.0.0.1:8765/cb',
      'http://[::1]:8765/cb',
      'http://localhost/cb',
      '--json',
    )
    assert.equal(made.environment, 'live')
    assert.equal(made.install_url, null)
    assert.deepEqual(made.redirect_uris, ['https://notes.example/callback', 'http://127.0.0.1:8765/cb', 'http://[::1]:8765/cb', 'http://localhost/cb'])
    assert.equal(made.sandbox_target_id, undefined, 'a live app has no sandbox tenant')
    const refused = await Promise.all([
      cli('apps', 'create', '--name', 'Plain', '--kind', 'public', '--environment', 'live', '--redirect-uri', 'http://notes.example/callback', '--json'),
      cli('apps', 'create', '--name', 'Plain', '--kind', 'public', '--environment', 'live', '--install-url', 'http://notes.example/install', '--json'),
      cli(
        'apps',
        'create',
        '--name',
        'Plain',
        '--kind',
        'public',
        '--environment',
        'live',
        '--redirect-uri',
        'https://n.example/cb',
        '--data-api-url',
        'http://n.example/events',
        '--json',
      ),
      cli('apps', 'create', '--name', 'Plain', '--kind', 'private', '--tenant', live.id, '--redirect-uri', 'http://127.0.0.2.example/cb', '--json'),
    ])
    fails(refused[0]!, /redirect URI http:\/\/notes\.example\/callback must use https/)
    fails(refused[1]!, /install URL http:\/\/notes\.example\/install must use https/)
    fails(refused[2]!, /Data API URL .* must use https/)
    fails(refused[3]!, /must use https/)
    // Sandbox apps too: plain http only to loopback, where a code crosses no network.
    const sandboxApp = await ok('apps', 'create', '--name', 'Local', '--kind', 'public', '--redirect-uri', 'http://localhost:3000/cb', '--json')
    assert.deepEqual(sandboxApp.redirect_uris, ['http://localhost:3000/cb'])
    fails(
      await cli('apps', 'create', '--name', 'Local', '--kind', 'public', '--redirect-uri', 'http://dev.example/cb', '--json'),
      /redirect URI http:\/\/dev\.example\/cb must use https \(http only for 127\.0\.0\.1, \[::1\] or localhost\)/,
    )
  })

  it('names the client_id, tenant and address in audit list --json', async () => {
    const made = await ok('apps', 'create', '--name', 'Audited', '--kind', 'private', '--tenant', sandbox.id, '--json')
    const entries = await ok('audit', 'list', '--app', made.client_id, '--json')
    assert.equal(entries[0].action, 'app.created')
    assert.equal(entries[0].client_id, made.client_id)
    assert.equal(entries[0].tenant_id, sandbox.id)
    assert.ok('address' in entries[0])
    const text = await cli('audit', 'list', '--app', made.client_id)
    assert.match(text.stdout, new RegExp(`client_id=${made.client_id}  tenant=${sandbox.id}  address=-`))
  })

  it('rotates a client secret with a grace period, and both secrets get tokens', async () => {
    const rotated = await ok('apps', 'rotate-secret', priv.client_id, '--grace', '600', '--json')
    assert.equal(rotated.client_id, priv.client_id)
    assert.match(rotated.client_secret, /^fgs_sandbox_/)
    assert.notEqual(rotated.client_secret, priv.client_secret)
    const expiresIn = Date.parse(rotated.old_secret_expires_at) - Date.now()
    assert.ok(expiresIn > 590_000 && expiresIn <= 600_000, `old secret expires in ${expiresIn} ms`)

    // What the CLI made works on a server over the same store.
    const server = await startServer({ dataDir })
    try {
      for (const secret of [priv.client_secret, rotated.client_secret]) {
        const res = await postForm(server.url('/oauth/token'), { grant_type: 'client_credentials' }, { authorization: basicAuth(priv.client_id, secret) })
        assert.equal(res.status, 200, res.text)
      }
      const fe = await request(server.url('/oauth/token'), {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ client_id: pub.client_id, client_secret: pub.client_secret, target_id: pub.sandbox_target_id, grant_type: 'client_credentials' }),
      })
      assert.equal(fe.status, 200, fe.text)
      assert.equal(fe.json.expires_in, 28000)
    } finally {
      await server.close()
    }
    priv.rotated_secret = rotated.client_secret
  })

  it('never shows or stores a client secret after creation', async () => {
    const secrets = [priv.client_secret, pub.client_secret, priv.rotated_secret].filter((s): s is string => typeof s === 'string')
    assert.ok(secrets.length >= 2)
    const list = await cli('apps', 'list', '--json')
    assert.equal(list.code, 0)
    assert.ok(Array.isArray(list.json) && list.json.length >= 3)
    assert.ok(list.json.every((a: Record<string, unknown>) => !('client_secret' in a)))
    const files = readdirSync(dataDir).filter((f) => f.startsWith('fieldgate.db'))
    assert.ok(files.includes('fieldgate.db'))
    const bytes = Buffer.concat(files.map((f) => readFileSync(join(dataDir, f))))
    for (const secret of secrets) {
      assert.equal(list.stdout.includes(secret), false, 'apps list prints no secret')
      const body = secret.replace(/^fgs_[a-z]+_/, '')
      assert.equal(bytes.includes(secret), false, 'the secret is not in the database file')
      assert.equal(bytes.includes(body), false, 'nor its random part')
      // What is stored is its SHA-256: proof that these are the bytes the store uses.
      assert.ok(bytes.includes(createHash('sha256').update(secret).digest('base64url')), 'the secret hash is in the database file')
    }
  })
  it('refuses scopes outside the catalogue, naming them and the scopes there are', async () => {
    const r = await cli('apps', 'create', '--name', 'Typo', '--kind', 'private', '--tenant', sandbox.id, '--scopes', 'api feilds:read:all', '--json')
    fails(r, /unknown scope feilds:read:all: the scopes are api, fields:read:all, /)
    assert.deepEqual(JSON.parse(r.stderr), { error: 'invalid', message: JSON.parse(r.stderr).message })
  })

  it('renames a tenant; an unknown one or an empty name is refused', async () => {
    const t = await ok('tenants', 'create', '--name', 'Old Farm', '--json')
    const renamed = await ok('tenants', 'rename', t.id, '--name', '  New Farm  ', '--json')
    assert.deepEqual(renamed, { ...t, name: 'New Farm' })
    const listed = await ok('tenants', 'list', '--query', 'new farm', '--json')
    assert.deepEqual(listed, [renamed])
    const [entry] = await ok('audit', 'list', '--tenant', t.id, '--json')
    assert.equal(entry.action, 'tenant.renamed')
    assert.deepEqual(entry.details, { from: 'Old Farm', to: 'New Farm' })
    fails(await cli('tenants', 'rename', '00000000-0000-0000-0000-000000000000', '--name', 'X', '--json'), /no tenant 00000000-0000-0000-0000-000000000000/)
    fails(await cli('tenants', 'rename', t.id, '--name', ' ', '--json'), /name is required/)
    fails(await cli('tenants', 'rename', t.id, '--json'), /--name/)
    const text = await cli('tenants', 'rename', t.id, '--name', 'Newer Farm')
    assert.equal(text.code, 0)
    assert.equal(text.stdout, `tenant ${t.id} is now Newer Farm\n`)
  })

  it("updates an app's settings as made (no review), refusing what the portal refuses", async () => {
    const made = await ok('apps', 'create', '--name', 'Mapper', '--kind', 'public', '--environment', 'live', '--redirect-uri', 'https://mapper.example/cb', '--json')
    const updated = await ok(
      'apps',
      'update',
      made.client_id,
      '--name',
      'Mapper 2',
      '--scopes',
      'fields:read:all maps:write',
      '--redirect-uri',
      'https://mapper.example/cb2',
      'http://127.0.0.1:9000/cb',
      '--install-url',
      'https://mapper.example/install',
      '--contact-email',
      'dev@mapper.example',
      '--data-api-url',
      'https://mapper.example/events',
      '--token-ttl',
      '900',
      '--description',
      'Maps your fields',
      '--listed',
      '--json',
    )
    assert.deepEqual(
      {
        name: updated.name,
        scopes: updated.scopes,
        redirect_uris: updated.redirect_uris,
        install_url: updated.install_url,
        contact_email: updated.contact_email,
        data_api_url: updated.data_api_url,
        token_ttl: updated.token_ttl,
        description: updated.description,
        listed: updated.listed,
        review: updated.review,
        proposed: updated.proposed,
      },
      {
        name: 'Mapper 2',
        scopes: 'fields:read:all maps:write',
        redirect_uris: ['https://mapper.example/cb2', 'http://127.0.0.1:9000/cb'],
        install_url: 'https://mapper.example/install',
        contact_email: 'dev@mapper.example',
        data_api_url: 'https://mapper.example/events',
        token_ttl: 900,
        description: 'Maps your fields',
        listed: true,
        review: 'approved',
        proposed: null,
      },
    )
    // What is stored is what `apps list` shows; "" removes an optional field, --no-listed unlists, "default" resets the lifetime.
    const cleared = await ok('apps', 'update', made.client_id, '--no-listed', '--contact-email', '', '--token-ttl', 'default', '--json')
    assert.deepEqual([cleared.listed, cleared.contact_email, cleared.token_ttl, cleared.name], [false, null, null, 'Mapper 2'])
    const [listed] = await ok('apps', 'list', '--query', made.client_id, '--json')
    assert.deepEqual(listed, cleared)
    const [entry] = await ok('audit', 'list', '--app', made.client_id, '--limit', '1', '--json')
    assert.equal(entry.action, 'app.updated')
    assert.equal(entry.actor, 'cli')
    const refusals = await Promise.all([
      cli('apps', 'update', made.client_id, '--scopes', 'api everything', '--json'),
      cli('apps', 'update', made.client_id, '--redirect-uri', 'http://mapper.example/cb', '--json'),
      cli('apps', 'update', made.client_id, '--token-ttl', 'soon', '--json'),
      cli('apps', 'update', made.client_id, '--json'),
      cli('apps', 'update', 'no-such-client', '--name', 'X', '--json'),
      cli('apps', 'update', made.client_id, '--contact-email', 'not-an-address', '--json'),
    ])
    const expected: [string, RegExp][] = [
      ['invalid', /unknown scope everything/],
      ['invalid', /redirect URI http:\/\/mapper\.example\/cb must use https/],
      ['invalid', /token lifetime/],
      ['invalid', /nothing to change/],
      ['not_found', /no app with client_id no-such-client/],
      ['invalid', /contact email/],
    ]
    for (const [i, r] of refusals.entries()) {
      fails(r, expected[i]![1])
      assert.equal(JSON.parse(r.stderr).error, expected[i]![0])
    }
    assert.deepEqual((await ok('apps', 'list', '--query', made.client_id, '--json'))[0], cleared, 'a refused update changes nothing')
    // The marketplace listing, from the same command: set, then "" removes the optional ones.
    const listing = await ok(
      'apps',
      'update',
      made.client_id,
      '--logo-url',
      'https://mapper.example/logo.png',
      '--short-description',
      'Field maps in minutes',
      '--category',
      'Mapping',
      'Agronomy',
      '--publisher',
      'Mapper Ltd',
      '--support-url',
      'https://mapper.example/help',
      '--privacy-policy-url',
      'https://mapper.example/privacy',
      '--json',
    )
    assert.deepEqual(
      [listing.logo_url, listing.short_description, listing.categories, listing.publisher, listing.support_url, listing.privacy_policy_url],
      ['https://mapper.example/logo.png', 'Field maps in minutes', ['Mapping', 'Agronomy'], 'Mapper Ltd', 'https://mapper.example/help', 'https://mapper.example/privacy'],
    )
    const unlisted = await ok('apps', 'update', made.client_id, '--logo-url', '', '--publisher', '', '--category', '', '--json')
    assert.deepEqual([unlisted.logo_url, unlisted.publisher, unlisted.categories], [null, null, []])
    const badLogo = await cli('apps', 'update', made.client_id, '--logo-url', 'http://mapper.example/logo.png', '--json')
    assert.equal(badLogo.code, 1)
    assert.equal(JSON.parse(badLogo.stderr).error, 'invalid')
  })

  it('creates a public client with no secret and changes token settings, refusing what the core refuses', async () => {
    const agent = await ok('apps', 'create', '--name', 'Field agent', '--kind', 'public', '--public-client', '--redirect-uri', 'http://127.0.0.1/cb', '--require-par', '--json')
    assert.equal('client_secret' in agent, false, 'no secret to print')
    const settings = (a: Record<string, unknown>) => [
      a.public_client,
      a.token_endpoint_auth_method,
      a.refresh_tokens,
      a.access_token_format,
      a.require_dpop,
      a.require_par,
      a.registration,
    ]
    assert.deepEqual(settings(agent), [true, 'none', true, 'jwt', false, true, 'portal'])
    const text = await cli('apps', 'create', '--name', 'Desk app', '--kind', 'public', '--public-client', '--redirect-uri', 'com.example.desk:/cb')
    assert.equal(text.code, 0, text.stderr)
    assert.match(text.stdout, /^a public client: no secret$/m)
    assert.match(text.stdout, /^public client \(token_endpoint_auth_method none\), refresh tokens with jwt access tokens$/m)
    assert.doesNotMatch(text.stdout, /client_secret |shown only this once/)

    const server = await ok('apps', 'create', '--name', 'Token server', '--kind', 'public', '--refresh-tokens', '--access-token-format', 'opaque', '--require-dpop', '--json')
    assert.match(server.client_secret, /^fgs_sandbox_/)
    assert.deepEqual(settings(server), [false, 'client_secret_basic', true, 'opaque', true, false, 'portal'])
    const off = await ok('apps', 'update', server.client_id, '--no-refresh-tokens', '--no-require-dpop', '--require-par', '--access-token-format', 'jwt', '--json')
    assert.deepEqual(settings(off), [false, 'client_secret_basic', false, 'jwt', false, true, 'portal'])
    const updated = await cli('apps', 'update', server.client_id, '--refresh-tokens', '--no-require-par')
    assert.equal(updated.code, 0, updated.stderr)
    assert.match(updated.stdout, /^confidential client \(client_secret_basic\), refresh tokens with jwt access tokens$/m)

    // apps list marks the public clients.
    const list = await cli('apps', 'list', '--query', 'Field agent')
    assert.match(list.stdout, new RegExp(`^${agent.client_id}  public   sandbox  Field agent  \\[public client\\]$`, 'm'))
    assert.doesNotMatch((await cli('apps', 'list', '--query', server.client_id)).stdout, /public client/)

    const refusals = await Promise.all([
      cli('apps', 'update', agent.client_id, '--no-refresh-tokens', '--json'),
      cli('apps', 'create', '--name', 'No refresh', '--kind', 'public', '--public-client', '--no-refresh-tokens', '--json'),
      cli('apps', 'rotate-secret', agent.client_id, '--json'),
      cli('apps', 'update', agent.client_id, '--public-client', '--json'),
    ])
    fails(refusals[0]!, /a public client always gets refresh tokens/)
    assert.equal(JSON.parse(refusals[0]!.stderr).error, 'invalid')
    fails(refusals[1]!, /a public client always gets refresh tokens/)
    fails(refusals[2]!, /a public client has no secret to rotate/)
    fails(refusals[3]!, /unknown option '--public-client'/)
    const bad = await cli('apps', 'update', agent.client_id, '--access-token-format', 'paseto')
    assert.equal(bad.code, 1)
    assert.match(bad.stderr, /argument 'paseto' is invalid\. Allowed choices are jwt, opaque/)
    assert.deepEqual(settings((await ok('apps', 'list', '--query', agent.client_id, '--json'))[0]), settings(agent), 'refusals change nothing')
  })

  it('lists apps by tenant, kind, environment, review, state, owner and text', async () => {
    const t = await ok('tenants', 'create', '--name', 'Filter Farm', '--json')
    const mine = await ok('apps', 'create', '--name', 'Filter private', '--kind', 'private', '--tenant', t.id, '--json')
    const livePub = await ok('apps', 'create', '--name', 'Filter live', '--kind', 'public', '--environment', 'live', '--install-url', 'https://f.example/i', '--json')
    await ok('apps', 'suspend', livePub.client_id, '--reason', 'testing filters', '--json')
    const ids = async (...args: string[]): Promise<string[]> => (await ok('apps', 'list', ...args, '--json')).map((a: { client_id: string }) => a.client_id)
    const all = await ok('apps', 'list', '--json')
    assert.ok(all.length >= 4)
    assert.deepEqual(await ids('--tenant', t.id), [mine.client_id])
    const byKind = await ids('--kind', 'public')
    assert.deepEqual(
      byKind,
      all.filter((a: { kind: string }) => a.kind === 'public').map((a: { client_id: string }) => a.client_id),
    )
    assert.ok(byKind.includes(livePub.client_id) && !byKind.includes(mine.client_id))
    assert.deepEqual(await ids('--environment', 'live', '--kind', 'public', '--query', 'filter'), [livePub.client_id])
    assert.deepEqual(await ids('--state', 'suspended', '--query', 'filter'), [livePub.client_id])
    assert.deepEqual(await ids('--state', 'active', '--query', 'filter'), [mine.client_id])
    assert.deepEqual(await ids('--review', 'pending'), [])
    assert.deepEqual(await ids('--query', 'FILTER PRIV'), [mine.client_id])
    assert.deepEqual(await ids('--limit', '1'), [all[0].client_id])
    const refusals = await Promise.all([
      cli('apps', 'list', '--tenant', '00000000-0000-0000-0000-000000000000', '--json'),
      cli('apps', 'list', '--owner', 'nobody@example.com', '--json'),
      cli('apps', 'list', '--kind', 'secret', '--json'),
      cli('apps', 'list', '--limit', '501', '--json'),
    ])
    fails(refusals[0]!, /no tenant 00000000-0000-0000-0000-000000000000/)
    fails(refusals[1]!, /no user with email nobody@example.com/)
    fails(refusals[2]!, /Allowed choices are private, public/)
    fails(refusals[3]!, /--limit must be a whole number from 1 to 500/)
    assert.deepEqual(
      refusals.map((r) => JSON.parse(r.stderr).error),
      ['not_found', 'not_found', 'invalid_argument', 'invalid'],
    )
  })

  it('deletes an app: its tokens stop working, and it is gone', async () => {
    const made = await ok('apps', 'create', '--name', 'Short lived', '--kind', 'private', '--tenant', sandbox.id, '--json')
    const server = await startServer({ dataDir })
    try {
      const token = () => postForm(server.url('/oauth/token'), { grant_type: 'client_credentials' }, { authorization: basicAuth(made.client_id, made.client_secret) })
      const before = await token()
      assert.equal(before.status, 200, before.text)
      const deleted = await ok('apps', 'delete', made.client_id, '--json')
      assert.equal(deleted.deleted, true)
      assert.equal(deleted.client_id, made.client_id)
      assert.equal(deleted.grant_ids.length, 1)
      // The server over the same store learns of it from the change feed.
      let after = await token()
      for (let i = 0; i < 50 && after.status === 200; i++) {
        await new Promise((r) => setTimeout(r, 100))
        after = await token()
      }
      assert.equal(after.status, 401, after.text)
    } finally {
      await server.close()
    }
    assert.deepEqual(await ok('apps', 'list', '--query', made.client_id, '--json'), [])
    const again = await cli('apps', 'delete', made.client_id, '--json')
    fails(again, /no app with client_id/)
    assert.equal(JSON.parse(again.stderr).error, 'not_found')
  })

  it('lists users by operator role and tenant membership', async () => {
    const t = await ok('tenants', 'create', '--name', 'People Farm', '--json')
    const op = await ok('users', 'create', '--email', 'op@people.example', '--password', 'correct horse battery', '--operator', '--json')
    const member = await ok('users', 'create', '--email', 'member@people.example', '--password', 'correct horse battery', '--tenant', t.id, '--json')
    const emails = async (...args: string[]): Promise<string[]> => (await ok('users', 'list', ...args, '--json')).map((u: { email: string }) => u.email)
    assert.deepEqual(await emails('--query', 'people.example', '--operator'), [op.email])
    assert.deepEqual(await emails('--query', 'people.example', '--no-operator'), [member.email])
    assert.deepEqual(await emails('--tenant', t.id), [member.email])
    assert.deepEqual(await emails('--tenant', t.id, '--operator'), [])
    fails(await cli('users', 'list', '--tenant', 'no-such-tenant', '--json'), /no tenant no-such-tenant/)
  })

  it('prints its version', async () => {
    const pkg = JSON.parse(readFileSync(join(repoRoot, 'packages/cli/package.json'), 'utf8'))
    for (const flag of ['--version', '-V']) {
      const r = await cli(flag)
      assert.equal(r.code, 0)
      assert.equal(r.stdout, `${pkg.version}\n`)
    }
  })

  it('describes every command, argument and option in --help', async () => {
    /** The items of a help section ("Options:", ...) that have no description beside them. */
    const undescribed = (help: string): string[] => {
      const bare: string[] = []
      let inSection = false
      for (const line of help.split('\n')) {
        if (/^(Arguments|Options|Global Options|Commands):$/.test(line)) inSection = true
        else if (line.trim() === '') inSection = false
        // An item starts two spaces in; its description follows after two or more spaces (wrapped lines start further in).
        else if (inSection && /^ {2}\S/.test(line) && !/^ {2}\S.*?\S {2,}\S/.test(line)) bare.push(line.trim())
      }
      return bare
    }
    const subcommands = (help: string): string[] => {
      const at = help.indexOf('\nCommands:\n')
      if (at < 0) return []
      const names = help
        .slice(at + 11)
        .split('\n\n')[0]!
        .split('\n')
        .filter((l) => /^ {2}\S/.test(l))
        .map((l) => l.trim().split(' ')[0]!)
      return names.filter((n) => n !== 'help')
    }
    let pending: string[][] = [[]]
    const seen: string[] = []
    while (pending.length > 0) {
      // A few at a time: each process loads the whole server, and a loaded machine must not hit runCli's timeout.
      const helps: CliResult[] = []
      for (let i = 0; i < pending.length; i += 4) helps.push(...(await Promise.all(pending.slice(i, i + 4).map((path) => cli(...path, '--help')))))
      const next: string[][] = []
      for (const [i, r] of helps.entries()) {
        const path = pending[i]!
        assert.equal(r.code, 0, `${path.join(' ')} --help: ${r.stderr}`)
        assert.match(r.stdout, /^Usage: fieldgate/)
        assert.deepEqual(undescribed(r.stdout), [], `fieldgate ${path.join(' ')} --help`)
        seen.push(path.join(' '))
        for (const sub of subcommands(r.stdout)) next.push([...path, sub])
      }
      pending = next
    }
    for (const cmd of ['apps update', 'apps list', 'apps delete', 'tenants rename', 'users list', 'apps review list', 'events security', 'serve'])
      assert.ok(seen.includes(cmd), cmd)
    assert.ok(seen.length > 35, `${seen.length} commands`)
    // The check finds an option without a description: the help of a command shows one.
    assert.deepEqual(undescribed('Options:\n  --bare <x>\n  --told <y>  what it is\n\n'), ['--bare <x>'])
  })

  it('prints every error under --json as {"error","message"} on stderr, exit 1, and a line for people without', async () => {
    const cases: [string[], string, RegExp][] = [
      [['nope', '--json'], 'unknown_command', /unknown command 'nope'/],
      [['apps', 'list', '--bogus', '--json'], 'unknown_option', /unknown option '--bogus'/],
      [['--json', 'apps', 'create', '--name', 'x'], 'missing_option', /required option '--kind <kind>' not specified/],
      [['apps', 'approve', '--json'], 'missing_argument', /missing required argument 'client_id'/],
      [['apps', 'list', 'extra', '--json'], 'too_many_arguments', /too many arguments/],
      [['apps', '--json'], 'missing_command', /fieldgate apps needs a command: create, list, update, delete/],
      [['grants', 'revoke', '00000000-0000-0000-0000-000000000000', '--json'], 'not_found', /no grant/],
      [['tenants', 'create', '--name', 'x', '--environment', 'prod', '--json'], 'invalid_argument', /Allowed choices are sandbox, live/],
      [['serve', '--port', '99999', '--json'], 'invalid_setting', /--port must be a port number from 0 to 65535/],
    ]
    const results = await Promise.all(cases.map(([args]) => cli(...args)))
    for (const [i, r] of results.entries()) {
      const [args, error, message] = cases[i]!
      assert.equal(r.code, 1, `${args.join(' ')}: ${r.stdout} ${r.stderr}`)
      assert.equal(r.stdout, '', args.join(' '))
      const body = JSON.parse(r.stderr)
      assert.deepEqual(Object.keys(body), ['error', 'message'], args.join(' '))
      assert.equal(body.error, error, args.join(' '))
      assert.match(body.message, message, args.join(' '))
    }
    // A store error: a setting the store cannot open with.
    const store = await runCli(['tenants', 'list', '--json'], { FIELDGATE_DATA_DIR: dataDir, FIELDGATE_SIGNING_ALG: 'HS256' })
    assert.equal(store.code, 1)
    assert.equal(JSON.parse(store.stderr).error, 'invalid_setting')
    const unreachable = await runCli(['tenants', 'list', '--json'], { DATABASE_URL: 'postgres://nobody@127.0.0.1:1/none' })
    assert.equal(unreachable.code, 1)
    assert.equal(JSON.parse(unreachable.stderr).error, 'store_unavailable', unreachable.stderr)
    // Without --json: Commander's own message with the help, or one line; never JSON, never a trace.
    const [unknown, missing] = await Promise.all([cli('apps', 'list', '--bogus'), cli('grants', 'revoke', '00000000-0000-0000-0000-000000000000')])
    assert.equal(unknown.code, 1)
    assert.match(unknown.stderr, /^error: unknown option '--bogus'\n\nUsage: fieldgate apps list/)
    fails(missing, /^fieldgate: no grant 00000000-0000-0000-0000-000000000000\n$/)
  })
})

/** `npm start` (`fieldgate serve`) in a process group of its own, with what it printed. */
function npmStart(args: string[], env: Record<string, string>) {
  const child = spawn('npm', ['start', '--silent', ...(args.length ? ['--', ...args] : [])], {
    cwd: repoRoot,
    env: childEnv(env),
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  })
  let out = ''
  for (const stream of [child.stdout, child.stderr]) stream.setEncoding('utf8').on('data', (d: string) => (out += d))
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)))
  let code: number | null | undefined
  void exited.then((c) => (code = c))
  return {
    output: () => out,
    exited,
    /** Resolves once `origin` answers its metadata document; rejects if the process ended first. */
    async answers(origin: string) {
      await waitUntil(async () => {
        if (code !== undefined) throw new Error(`npm start exited ${code}:\n${out}`)
        const res = await fetch(`${origin}/.well-known/oauth-authorization-server`, { signal: AbortSignal.timeout(1000) }).catch(() => undefined)
        await res?.arrayBuffer()
        return res?.status === 200
      }, 30_000)
    },
    async stop() {
      if (code === undefined && child.pid !== undefined) process.kill(-child.pid, 'SIGTERM')
      await exited
    },
  }
}

describe('npm start: the port and the first steps', () => {
  it("README's first steps are the ones the first start prints", () => {
    const readme = readFileSync(join(repoRoot, 'README.md'), 'utf8')
    const section = readme.slice(readme.indexOf('## First tokens in a minute'))
    const block = section.slice(section.indexOf('```sh\n') + 6, section.indexOf('\n```', section.indexOf('```sh\n')))
    assert.deepEqual(block.split('\n'), firstStartSteps('http://127.0.0.1:4400'))
    assert.match(section.slice(0, section.indexOf('```')), /npm start -- --port 5000.*FIELDGATE_PORT=5000 npm start/s)
  })

  it('npm start -- --port serves there and prints steps that get a token', async () => {
    const dataDir = tempDir('fg-start-')
    const port = await freePort()
    const origin = `http://127.0.0.1:${port}`
    const server = npmStart(['--port', String(port)], { FIELDGATE_DATA_DIR: dataDir })
    try {
      await server.answers(origin)
      const printed = server.output()
      const steps = firstStartSteps(origin)
      for (const step of steps) assert.ok(printed.includes(`    ${step}\n`), `the banner shows: ${step}\n${printed}`)
      assert.match(printed, new RegExp(`Fieldgate is running at ${origin} with an empty store`))
      assert.match(printed, /Another port: npm start -- --port 5000, or FIELDGATE_PORT=5000 npm start/)
      // Follow the steps as printed (the commands without npx; the token request as curl would send it).
      const env = { FIELDGATE_DATA_DIR: dataDir }
      const tenant = await runCli(['tenants', 'create', '--name', 'Acme Field Services', '--environment', 'sandbox'], env)
      const tenantId = /^tenant (\S+) /.exec(tenant.stdout)?.[1]
      assert.ok(tenantId, tenant.stdout + tenant.stderr)
      const made = await runCli(['apps', 'create', '--name', 'Acme dispatch', '--kind', 'private', '--tenant', tenantId], env)
      const clientId = /^client_id\s+(\S+)$/m.exec(made.stdout)?.[1]
      const clientSecret = /^client_secret\s+(\S+)$/m.exec(made.stdout)?.[1]
      assert.ok(clientId && clientSecret, made.stdout + made.stderr)
      const body = /-d '(.*)'$/.exec(steps[3]!)![1]!.replace('<client_id>', clientId).replace('<client_secret>', clientSecret)
      const res = await request(`${origin}/oauth/token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body })
      assert.equal(res.status, 200, res.text)
      const token = res.json
      assert.deepEqual(Object.keys(token).sort(), ['access_token', 'expires_in', 'scope', 'token_type'])
      assert.deepEqual([token.token_type, token.expires_in, token.scope], ['Bearer', 3600, 'api'])
      assert.match(token.access_token, /^eyJ/)
    } finally {
      await server.stop()
      rmSync(dataDir, { recursive: true, force: true })
    }
  })

  it('FIELDGATE_PORT=<port> npm start serves there; a store with tenants prints no steps', async () => {
    const dataDir = tempDir('fg-start-')
    const port = await freePort()
    const migrated = await runCli(['tenants', 'create', '--name', 'Already here'], { FIELDGATE_DATA_DIR: dataDir })
    assert.equal(migrated.code, 0, migrated.stderr)
    const server = npmStart([], { FIELDGATE_DATA_DIR: dataDir, FIELDGATE_PORT: String(port) })
    try {
      await server.answers(`http://127.0.0.1:${port}`)
      assert.doesNotMatch(server.output(), /empty store/)
    } finally {
      await server.stop()
      rmSync(dataDir, { recursive: true, force: true })
    }
  })

  it('refuses a port that is not one, from --port or FIELDGATE_PORT, in one clear line', async () => {
    for (const [args, env, message] of [
      [['--port', 'http'], {}, '--port must be a port number from 0 to 65535'],
      [['--port', '65536'], {}, '--port must be a port number from 0 to 65535'],
      [[], { FIELDGATE_PORT: '1e3' }, 'FIELDGATE_PORT must be a port number from 0 to 65535'],
    ] as const) {
      const dataDir = tempDir('fg-start-')
      const server = npmStart([...args], { FIELDGATE_DATA_DIR: dataDir, ...env })
      const code = await server.exited
      rmSync(dataDir, { recursive: true, force: true })
      assert.notEqual(code, 0)
      assert.ok(server.output().includes(`fieldgate: ${message}\n`), server.output())
      assert.doesNotMatch(server.output(), /^\s+at /m, 'no stack trace')
    }
  })
})

/**
 * An AI agent reaching a farm through the Model Context Protocol, end to end and all real: Fieldgate in
 * a process of its own, examples/mcp-server in another, and the MCP SDK's own client
 * (@modelcontextprotocol/client) with an OAuthClientProvider whose redirectToAuthorization is a farmer in
 * chromium signing in and answering the consent page, the agent's loopback redirect URI (RFC 8252 §7.3)
 * catching the code.
 *
 * The agent finds Fieldgate from the MCP server's RFC 9728 metadata, registers (RFC 7591 dynamic
 * registration, or a client ID metadata document on a loopback https server), runs PKCE with `resource`
 * (RFC 8707) through consent, calls a tool, steps up through incremental consent on a 403
 * insufficient_scope, refreshes when its access token expires, and is cut off at its next request when
 * the farmer disconnects it under Connected apps.
 *
 * Fieldgate runs as a child process (`fieldgate serve`) so that it trusts the test's https server
 * (NODE_EXTRA_CA_CERTS): a client ID metadata document is an https URL, and the SDK's client refuses any
 * other. Its refreshable access tokens live 10 s, so the refresh is real.
 */
import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, rmSync } from 'node:fs'
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import type { Browser, Page } from 'playwright-core'
import {
  Client,
  StreamableHTTPClientTransport,
  UnauthorizedError,
  type FetchLike,
  type OAuthClientMetadata,
  type OAuthClientProvider,
  type OAuthDiscoveryState,
  type StoredOAuthClientInformation,
  type StoredOAuthTokens,
} from '@modelcontextprotocol/client'
import { cliActor, createApp, createTenant, createUser, type Tenant } from '@fieldgate/core'
import { childEnv, decodeJwt, freePort, openStore, repoRoot, request, sleep, spawnServe, tempDir, waitUntil, type Res, type ServerProcess } from './helpers.js'
import { Contexts, browserSkip, launchBrowser, startPartner, type Partner } from './browser.js'
import { loopbackCertificate, openssl, type LoopbackCertificate } from './support/tls.js'

const PASSWORD = 'correct horse battery staple'
const FARMER = 'farmer@north-farm.example'
const exampleServer = join(repoRoot, 'examples/mcp-server/server.mjs')
const ALL_SCOPES = ['api', 'fields:read:all', 'alerts:write']
/** The lifetime of access tokens issued with a refresh token, seconds: the shortest Fieldgate allows, so the agent has to refresh. */
const TOKEN_TTL = 10

// biome-ignore lint/suspicious/noExplicitAny: a test reads whatever JSON a tool or a server sent and asserts on it
type Json = any

interface Credentials {
  clientId: string
  clientSecret: string
}

/** One request the agent's SDK made, as it went out and came back. */
interface Call {
  method: string
  url: string
  status: number
  /** A form body (token requests), parsed. */
  form: URLSearchParams | undefined
  challenge: string | null
  json: Json
}

/** The agent's fetch: the real one, every request recorded (token and registration answers read). */
function recorder(): { fetch: FetchLike; calls: Call[]; tokenCalls(endpoint: string, grantType: string, from?: number): Call[] } {
  const calls: Call[] = []
  const fetchFn: FetchLike = async (input, init) => {
    const res = await fetch(input, init)
    const url = String(input)
    const body = init?.body
    const form = body instanceof URLSearchParams ? body : undefined
    const readsBody = /\/oauth\/(token|register)$/.test(new URL(url).pathname)
    calls.push({
      method: init?.method ?? 'GET',
      url,
      status: res.status,
      form,
      challenge: res.headers.get('www-authenticate'),
      json: readsBody
        ? await res
            .clone()
            .json()
            .catch(() => undefined)
        : undefined,
    })
    return res
  }
  return {
    fetch: fetchFn,
    calls,
    tokenCalls: (endpoint, grantType, from = 0) => calls.slice(from).filter((c) => c.url === endpoint && c.form?.get('grant_type') === grantType),
  }
}

/**
 * The agent's side of OAuth for the SDK, all in memory. `consent` is the person: given the authorization
 * URL, it answers with what reached the redirect URI; left unset, nobody is there to answer.
 */
class FieldAgent implements OAuthClientProvider {
  /** Every authorization request the SDK asked the person to answer, in order. */
  readonly authorizations: URL[] = []
  consent: ((url: URL) => Promise<URLSearchParams>) | undefined
  readonly clientMetadataUrl?: string
  private registered: StoredOAuthClientInformation | undefined
  private saved: StoredOAuthTokens | undefined
  private verifier = ''
  private discovery: OAuthDiscoveryState | undefined
  private answered: URLSearchParams | undefined

  /**
   * `clientMetadataUrl`: the agent's client ID metadata document; `registered`: credentials from the
   * developer portal (a confidential client), for the authorization server `issuer` only (the SDK
   * presents them to no other). With neither, the SDK registers the agent by RFC 7591.
   */
  constructor(
    private readonly name: string,
    readonly redirectUrl: string,
    opts: { clientMetadataUrl?: string; registered?: { clientId: string; clientSecret?: string; issuer: string } } = {},
  ) {
    if (opts.clientMetadataUrl) this.clientMetadataUrl = opts.clientMetadataUrl
    const r = opts.registered
    if (r) this.registered = { client_id: r.clientId, ...(r.clientSecret ? { client_secret: r.clientSecret } : {}), issuer: r.issuer }
  }

  get clientMetadata(): OAuthClientMetadata {
    return { client_name: this.name, redirect_uris: [this.redirectUrl], token_endpoint_auth_method: 'none', response_types: ['code'] }
  }

  clientInformation() {
    return this.registered
  }
  saveClientInformation(info: StoredOAuthClientInformation) {
    this.registered = info
  }
  tokens() {
    return this.saved
  }
  saveTokens(tokens: StoredOAuthTokens) {
    this.saved = tokens
  }
  saveCodeVerifier(verifier: string) {
    this.verifier = verifier
  }
  codeVerifier() {
    return this.verifier
  }
  saveDiscoveryState(state: OAuthDiscoveryState) {
    this.discovery = state
  }
  discoveryState() {
    return this.discovery
  }
  invalidateCredentials(scope: 'all' | 'client' | 'tokens' | 'verifier' | 'discovery') {
    if (scope === 'all' || scope === 'client') this.registered = undefined
    if (scope === 'all' || scope === 'tokens') this.saved = undefined
    if (scope === 'all' || scope === 'verifier') this.verifier = ''
    if (scope === 'all' || scope === 'discovery') this.discovery = undefined
  }

  async redirectToAuthorization(url: URL) {
    this.authorizations.push(url)
    if (this.consent) this.answered = await this.consent(url)
  }

  /** What reached the redirect URI for the last authorization request, once. */
  takeCallback(): URLSearchParams {
    const params = this.answered ?? assert.fail('no answer reached the redirect URI')
    this.answered = undefined
    assert.equal(params.get('error'), null, `the authorization request failed: ${params}`)
    return params
  }

  get clientId(): string {
    return this.registered?.client_id ?? assert.fail('the agent is not registered')
  }
  get accessToken(): string {
    return this.saved?.access_token ?? assert.fail('the agent holds no access token')
  }
}

interface McpServerProcess {
  child: ChildProcess
  origin: string
  /** The canonical URL: the RFC 8707 resource, the tokens' aud. */
  url: string
  output(): string
  stop(signal: NodeJS.Signals): Promise<number | null | 'timeout'>
}

const mcpChildren = new Set<ChildProcess>()

/** `node examples/mcp-server/server.mjs` on a port of its choosing; resolves once it printed its URLs. */
async function startMcpServer(env: Record<string, string>): Promise<McpServerProcess> {
  const child = spawn(process.execPath, [exampleServer], { cwd: repoRoot, env: childEnv({ PORT: '0', ...env }), stdio: ['ignore', 'pipe', 'pipe'] })
  mcpChildren.add(child)
  let out = ''
  child.stdout!.setEncoding('utf8').on('data', (d: string) => {
    out += d
  })
  child.stderr!.setEncoding('utf8').on('data', (d: string) => {
    out += d
  })
  const exited = new Promise<number | null>((r) =>
    child.once('exit', (code) => {
      mcpChildren.delete(child)
      r(code)
    }),
  )
  const printed = /listening on (http:\/\/\S+) \(MCP at (\S+),/
  await waitUntil(
    async () => {
      if (child.exitCode !== null) throw new Error(`the MCP server exited:\n${out}`)
      return printed.test(out)
    },
    10_000,
    20,
  )
  const [, origin, url] = printed.exec(out)!
  return {
    child,
    origin: origin!,
    url: url!,
    output: () => out,
    stop: (signal) => {
      child.kill(signal)
      return Promise.race([exited, sleep(5000).then(() => 'timeout' as const)])
    },
  }
}

/** The agent's client ID metadata document, on loopback https: records every fetch of it. */
interface MetadataDocumentHost {
  url: string
  fetches: number
  close(): Promise<void>
}

async function hostMetadataDocument(tls: { key: string; cert: string }, document: (url: string) => Record<string, unknown>): Promise<MetadataDocumentHost> {
  const path = '/agents/field-agent.json'
  const host: MetadataDocumentHost = { url: '', fetches: 0, close: async () => {} }
  const srv: HttpsServer = createHttpsServer(tls, (req, res) => {
    if (req.method !== 'GET' || req.url !== path) return void res.writeHead(404, { 'content-type': 'text/plain' }).end('not found')
    host.fetches++
    res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'max-age=300' }).end(JSON.stringify(document(host.url)))
  })
  await new Promise<void>((ok, fail) => {
    srv.once('error', fail)
    srv.listen(0, '127.0.0.1', () => ok())
  })
  host.url = `https://127.0.0.1:${(srv.address() as AddressInfo).port}${path}`
  host.close = () =>
    new Promise<void>((ok) => {
      srv.closeAllConnections()
      srv.close(() => ok())
    })
  return host
}

/**
 * In a fresh store: the farm and its owner, the MCP server's own credentials (a resource server), and two
 * agents their developers registered in the portal, redirecting to `redirectUri`: a confidential client,
 * and a public one (no secret, refresh tokens).
 */
async function seed(dataDir: string, redirectUri: string): Promise<{ farm: Tenant; introspection: Credentials; portalAgent: Credentials; portalPublicAgent: string }> {
  const rt = await openStore(dataDir)
  try {
    const farm = await createTenant(rt.ctx, cliActor, { name: 'North Farm', environment: 'live' })
    await createUser(rt.ctx, cliActor, { email: FARMER, password: PASSWORD, tenantId: farm.id, role: 'owner' })
    const ops = await createTenant(rt.ctx, cliActor, { name: 'Field operations', environment: 'live' })
    const rs = await createApp(rt.ctx, cliActor, { name: 'Field operations MCP', kind: 'private', tenantId: ops.id, scopes: 'fieldgate:introspect' })
    const portal = await createApp(rt.ctx, cliActor, {
      name: 'Field agent (portal)',
      kind: 'public',
      environment: 'live',
      scopes: ALL_SCOPES.join(' '),
      redirectUris: [redirectUri],
      contactEmail: 'dev@agent.example',
    })
    const native = await createApp(rt.ctx, cliActor, {
      name: 'Field agent (portal, public client)',
      kind: 'public',
      environment: 'live',
      publicClient: true,
      scopes: ALL_SCOPES.join(' '),
      redirectUris: [redirectUri],
      contactEmail: 'dev@agent.example',
    })
    return {
      farm,
      introspection: { clientId: rs.app.clientId, clientSecret: rs.clientSecret },
      portalAgent: { clientId: portal.app.clientId, clientSecret: portal.clientSecret },
      portalPublicAgent: native.app.clientId,
    }
  } finally {
    await rt.close()
  }
}

/** A tool's structured answer, asserting the call succeeded. */
function structured(result: Json): Json {
  assert.notEqual(result.isError, true, `the tool failed: ${JSON.stringify(result.content)}`)
  assert.equal(typeof result.structuredContent, 'object', JSON.stringify(result))
  assert.deepEqual(JSON.parse(result.content[0].text), result.structuredContent, 'the text and the structured content agree')
  return result.structuredContent
}

const scopesOf = (url: URL) => (url.searchParams.get('scope') ?? '').split(' ').filter(Boolean)

describe('an MCP agent through Fieldgate: examples/mcp-server, the MCP SDK client, a farmer in chromium', () => {
  let dir: string
  let fieldgate: ServerProcess
  let issuer: string
  let as: Json
  let mcp: McpServerProcess
  let farm: Tenant
  let introspection: Credentials
  let portalAgent: Credentials
  let portalPublicAgent: string
  let redirect: Partner
  let tls: LoopbackCertificate | undefined
  let browser: Browser | undefined
  let farmer: Page | undefined
  const contexts = new Contexts(() => browser)
  const docs: MetadataDocumentHost[] = []

  before(
    async () => {
      dir = tempDir('fg-mcp-')
      redirect = await startPartner('/callback', 'Field agent', 'Back in the agent')
      ;({ farm, introspection, portalAgent, portalPublicAgent } = await seed(dir, redirect.url))
      if (existsSync(openssl)) tls = loopbackCertificate(dir)
      const port = await freePort()
      issuer = `http://127.0.0.1:${port}`
      fieldgate = await spawnServe(port, {
        FIELDGATE_DATA_DIR: dir,
        FIELDGATE_ISSUER: issuer,
        FIELDGATE_REFRESHABLE_TOKEN_TTL: String(TOKEN_TTL),
        // The agent's metadata document is on loopback, which the Data API's SSRF rules refuse otherwise.
        FIELDGATE_WEBHOOK_ALLOW_PRIVATE_TARGETS: '1',
        ...(tls ? { NODE_EXTRA_CA_CERTS: tls.certPath } : {}),
      })
      as = (await request(`${issuer}/.well-known/oauth-authorization-server`)).json
      mcp = await startMcpServer({ FIELDGATE_ISSUER: issuer, CLIENT_ID: introspection.clientId, CLIENT_SECRET: introspection.clientSecret })
      if (!browserSkip) {
        browser = await launchBrowser()
        farmer = await contexts.page({ timeoutMs: 10_000 })
      }
    },
    { timeout: 60_000 },
  )

  after(async () => {
    await contexts.close()
    await browser?.close().catch(() => {})
    for (const child of mcpChildren) {
      const exited = new Promise((r) => child.once('exit', r))
      child.kill('SIGKILL')
      await exited
    }
    await fieldgate?.stop()
    await redirect?.close()
    for (const d of docs) await d.close()
    if (dir) rmSync(dir, { recursive: true, force: true })
  })

  /** Why a journey cannot run against this server, or undefined when it can. */
  const missing = (needs: 'public clients' | 'registration' | 'metadata documents'): string | undefined => {
    if (!as?.token_endpoint_auth_methods_supported?.includes('none')) return 'Fieldgate advertises no public clients (token_endpoint_auth_method none) in this build'
    if (needs === 'public clients') return undefined
    if (typeof as.registration_endpoint !== 'string') return 'Fieldgate advertises no registration_endpoint (RFC 7591 dynamic registration is not in this build)'
    if (needs === 'metadata documents') {
      if (as.client_id_metadata_document_supported !== true) return 'Fieldgate does not advertise client_id_metadata_document_supported'
      if (!tls) return `${openssl} is not installed (apt-get install openssl; .ci/run does it): no loopback https for the metadata document`
    }
    return undefined
  }

  /**
   * The farmer answers an authorization request in chromium: signs in if asked, keeps the consent page's
   * text in `consentPages`, clicks Allow, and hands back what reached the agent's redirect URI.
   */
  const farmerAllows =
    (consentPages: string[]) =>
    async (url: URL): Promise<URLSearchParams> => {
      const page = farmer ?? assert.fail('no browser')
      const seen = redirect.hits.length
      await page.goto(url.href)
      if (new URL(page.url()).pathname === '/login') {
        await page.getByLabel('Email').fill(FARMER)
        await page.getByLabel('Password').fill(PASSWORD)
        await page.getByRole('button', { name: 'Sign in' }).click()
        await page.waitForURL((u) => u.pathname !== '/login')
      }
      // Fieldgate may answer at once with an error for the agent: then there is no consent page.
      if (new URL(page.url()).origin !== redirect.origin) {
        const allow = page.getByRole('button', { name: 'Allow' })
        await allow.waitFor()
        consentPages.push(await page.locator('main').innerText())
        await Promise.all([page.waitForURL((u) => u.origin === redirect.origin), allow.click()])
      }
      assert.equal(redirect.hits.length, seen + 1, 'exactly one redirect reached the agent')
      return redirect.hits[seen]!.params
    }

  /**
   * Connects the agent as an MCP client would: the first attempt meets 401 and authorizes (the SDK
   * registers, the farmer consents); the code is redeemed with finishAuth; a transport starts once, so
   * the agent connects again on a new one with its tokens.
   */
  async function connect(agent: FieldAgent, fetchFn: FetchLike): Promise<{ client: Client; transport: StreamableHTTPClientTransport }> {
    const open = () => new StreamableHTTPClientTransport(new URL(mcp.url), { authProvider: agent, fetch: fetchFn })
    const first = open()
    await assert.rejects(new Client({ name: 'field-agent', version: '1.0.0' }).connect(first), (err: unknown) => {
      assert.ok(err instanceof UnauthorizedError, `expected UnauthorizedError, got ${String(err)}`)
      return true
    })
    await first.finishAuth(agent.takeCallback())
    const transport = open()
    const client = new Client({ name: 'field-agent', version: '1.0.0' })
    await client.connect(transport)
    return { client, transport }
  }

  /** A raw MCP request with `token`, as any client would send it: what the MCP server answers. */
  const rawMcp = (token: string | undefined, headers: Record<string, string> = {}): Promise<Res> =>
    request(mcp.url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        ...(token ? { authorization: `Bearer ${token}` } : {}),
        ...headers,
      },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list', params: {} }),
    })

  const metadataUrl = () => `${mcp.origin}/.well-known/oauth-protected-resource/mcp`

  it('serves RFC 9728 metadata naming Fieldgate, and the challenge the MCP specification asks for', { timeout: 30_000 }, async () => {
    const expected = {
      resource: mcp.url,
      resource_name: 'Field operations (MCP)',
      authorization_servers: [issuer],
      scopes_supported: ALL_SCOPES,
      bearer_methods_supported: ['header'],
    }
    for (const path of ['/.well-known/oauth-protected-resource/mcp', '/.well-known/oauth-protected-resource']) {
      const res = await request(`${mcp.origin}${path}`)
      assert.equal(res.status, 200, `${path}: ${res.text}`)
      assert.deepEqual(res.json, expected, path)
    }
    assert.equal(mcp.url, `${mcp.origin}/mcp`)
    assert.equal((await request(metadataUrl(), { method: 'POST' })).status, 405)

    // No token: 401, the metadata's URL and the scope to start with (MCP authorization, scope selection).
    const none = await rawMcp(undefined)
    assert.equal(none.status, 401)
    assert.deepEqual(none.json, { error: 'invalid_token', error_description: 'An access token is required' })
    assert.equal(none.headers.get('www-authenticate'), `Bearer realm="fieldgate", resource_metadata="${metadataUrl()}", DPoP algs="ES256 RS256 PS256 EdDSA", scope="api"`)

    // A good Fieldgate token, but for Fieldgate's own API: not for this resource (RFC 8707, RFC 9068 §4).
    const cc = await request(`${issuer}/oauth/token`, {
      method: 'POST',
      body: new URLSearchParams({ grant_type: 'client_credentials', client_id: introspection.clientId, client_secret: introspection.clientSecret }),
    })
    assert.equal(cc.status, 200, cc.text)
    assert.notEqual(decodeJwt(cc.json.access_token).payload.aud, mcp.url)
    const foreign = await rawMcp(cc.json.access_token)
    assert.equal(foreign.status, 401, foreign.text)
    assert.equal(foreign.json.error, 'invalid_token')
    assert.match(foreign.headers.get('www-authenticate') ?? '', /resource_metadata=/)

    // MCP transports: a browser page of another origin is refused whatever it carries (DNS rebinding).
    const rebound = await rawMcp(cc.json.access_token, { origin: 'http://attacker.example' })
    assert.equal(rebound.status, 403)
  })

  it('an agent registered in the portal (a confidential client) connects through consent and steps up', { skip: browserSkip, timeout: 90_000 }, async () => {
    const rec = recorder()
    const consentPages: string[] = []
    const agent = new FieldAgent('Field agent (portal)', redirect.url, { registered: { ...portalAgent, issuer } })
    agent.consent = farmerAllows(consentPages)

    const { client, transport } = await connect(agent, rec.fetch)
    assert.equal(rec.calls.filter((c) => c.url.endsWith('/oauth/register')).length, 0, 'a registered client does not register')
    const first = agent.authorizations[0] ?? assert.fail('no authorization request')
    assert.equal(first.searchParams.get('client_id'), portalAgent.clientId)
    assert.equal(first.searchParams.get('code_challenge_method'), 'S256')
    assert.deepEqual(
      scopesOf(first).filter((s) => ALL_SCOPES.includes(s)),
      ['api'],
      'the scope of the 401 challenge',
    )
    const redeemed = rec.tokenCalls(as.token_endpoint, 'authorization_code')
    assert.equal(redeemed.length, 1)
    assert.equal(redeemed[0]!.status, 200, JSON.stringify(redeemed[0]!.json))
    assert.equal(redeemed[0]!.form?.get('client_secret'), null, 'the secret goes in the Authorization header (client_secret_basic)')
    const orders = structured(await client.callTool({ name: 'list_work_orders', arguments: {} }))
    assert.equal(orders.tenant_id, farm.id)

    // read_fields needs fields:read:all: the farmer is asked for it, on top of api.
    await assert.rejects(client.callTool({ name: 'read_fields', arguments: {} }), (err: unknown) => {
      assert.ok(err instanceof UnauthorizedError, String(err))
      return true
    })
    const stepUp = agent.authorizations[1] ?? assert.fail('no step-up authorization')
    assert.deepEqual(
      scopesOf(stepUp)
        .filter((s) => ALL_SCOPES.includes(s))
        .sort(),
      ['api', 'fields:read:all'],
    )
    assert.match(consentPages[1]!, /Already allowed/)
    await transport.finishAuth(agent.takeCallback())
    const fields = structured(await client.callTool({ name: 'read_fields', arguments: {} }))
    assert.deepEqual(
      fields.fields.map((f: Json) => f.name),
      ['North pivot', 'East paddock'],
    )
    await client.close()
  })

  /**
   * The journey of a public client once it is known to Fieldgate, however it got there: PKCE with
   * `resource` through consent, a tool, step-up through incremental consent, a refresh when the access
   * token expires, and Disconnect under Connected apps cutting it off at its next request.
   */
  async function publicClientJourney(agent: FieldAgent, appName: string, rec: ReturnType<typeof recorder>, consentPages: string[]): Promise<void> {
    // ---- discover, consent, connect ----
    const { client, transport } = await connect(agent, rec.fetch)
    const seen = rec.calls.map((c) => `${c.method} ${c.url} ${c.status}`)
    assert.ok(seen.includes(`POST ${mcp.url} 401`), seen.join('\n'))
    assert.ok(seen.includes(`GET ${metadataUrl()} 200`), `the SDK read the path-aware RFC 9728 metadata:\n${seen.join('\n')}`)
    assert.ok(seen.includes(`GET ${issuer}/.well-known/oauth-authorization-server 200`), seen.join('\n'))
    assert.equal(agent.authorizations.length, 1)
    const first = agent.authorizations[0]!
    assert.equal(`${first.origin}${first.pathname}`, as.authorization_endpoint)
    assert.equal(first.searchParams.get('client_id'), agent.clientId)
    assert.equal(first.searchParams.get('response_type'), 'code')
    assert.equal(first.searchParams.get('code_challenge_method'), 'S256')
    assert.match(first.searchParams.get('code_challenge') ?? '', /^[A-Za-z0-9_-]{43}$/)
    assert.equal(first.searchParams.get('redirect_uri'), redirect.url)
    assert.equal(first.searchParams.get('resource'), mcp.url, 'RFC 8707: the MCP server is the resource')
    assert.ok(scopesOf(first).includes('api'), `the 401's scope: ${first}`)
    assert.ok(!scopesOf(first).includes('alerts:write'), 'least privilege: nothing the first call does not need')
    assert.equal(consentPages.length, 1)
    assert.ok(consentPages[0]!.includes(appName), consentPages[0])
    assert.match(consentPages[0]!, /North Farm/)

    const redeemed = rec.tokenCalls(as.token_endpoint, 'authorization_code')
    assert.equal(redeemed.length, 1)
    assert.equal(redeemed[0]!.status, 200, JSON.stringify(redeemed[0]!.json))
    assert.equal(redeemed[0]!.form?.get('resource'), mcp.url)
    assert.equal(redeemed[0]!.form?.get('client_id'), agent.clientId, 'a public client names itself, with no secret')
    assert.equal(redeemed[0]!.form?.get('client_secret'), null)
    assert.match(redeemed[0]!.form?.get('code_verifier') ?? '', /^[A-Za-z0-9._~-]{43,128}$/)
    assert.equal(typeof redeemed[0]!.json.refresh_token, 'string', 'a public client gets a refresh token')
    const claims = decodeJwt(agent.accessToken).payload
    assert.equal(claims.aud, mcp.url, "the token's audience is the MCP server")
    assert.equal(claims.client_id, agent.clientId)
    assert.equal(claims.tenant_id, farm.id)

    // ---- a tool within its scopes ----
    assert.deepEqual((await client.listTools()).tools.map((tool) => tool.name).sort(), ['create_alert', 'list_work_orders', 'read_fields'])
    const orders = structured(await client.callTool({ name: 'list_work_orders', arguments: {} }))
    assert.equal(orders.tenant_id, farm.id)
    assert.deepEqual(
      orders.work_orders.map((w: Json) => w.id),
      ['WO-1001', 'WO-1002'],
    )

    // ---- step-up: 403 insufficient_scope, incremental consent, the call again ----
    const mark = rec.calls.length
    await assert.rejects(client.callTool({ name: 'create_alert', arguments: { title: 'Irrigation pump down', severity: 'critical', field_id: 'F-1' } }), (err: unknown) => {
      assert.ok(err instanceof UnauthorizedError, `the SDK sent the farmer to consent, then asks for finishAuth: ${String(err)}`)
      return true
    })
    const refused = rec.calls.slice(mark).find((c) => c.url === mcp.url && c.status === 403) ?? assert.fail('no 403 from the MCP server')
    assert.match(refused.challenge ?? '', /error="insufficient_scope"/)
    assert.match(refused.challenge ?? '', /scope="alerts:write"/)
    assert.match(refused.challenge ?? '', new RegExp(`resource_metadata="${metadataUrl()}"`))
    assert.equal(rec.tokenCalls(as.token_endpoint, 'refresh_token', mark).length, 0, 'a refresh cannot widen scope: the SDK asked for consent instead')
    assert.equal(agent.authorizations.length, 2)
    const stepUp = agent.authorizations[1]!
    assert.ok(scopesOf(stepUp).includes('api') && scopesOf(stepUp).includes('alerts:write'), `what it had and what it lacks: ${stepUp}`)
    assert.equal(stepUp.searchParams.get('resource'), mcp.url)
    assert.match(consentPages[1]!, /also be able to/, 'incremental consent: alerts:write is new')
    assert.match(consentPages[1]!, /Already allowed/, 'and api is already allowed')
    await transport.finishAuth(agent.takeCallback())
    assert.ok((agent.tokens()?.scope ?? '').split(' ').includes('alerts:write'), `the new token's scope: ${agent.tokens()?.scope}`)
    const alert = structured(await client.callTool({ name: 'create_alert', arguments: { title: 'Irrigation pump down', severity: 'critical', field_id: 'F-1' } }))
    assert.equal(alert.title, 'Irrigation pump down')
    assert.equal(alert.severity, 'critical')
    assert.equal(alert.created_by, agent.clientId)

    // ---- the access token expires: the SDK refreshes (rotation) and carries on ----
    const stale = agent.tokens() ?? assert.fail('no tokens')
    const expiresAt = Number(decodeJwt(stale.access_token).payload.exp) * 1000
    assert.ok(expiresAt - Date.now() <= TOKEN_TTL * 1000, `the access token lives ${Math.round((expiresAt - Date.now()) / 1000)} s; this test needs ${TOKEN_TTL} s`)
    await sleep(Math.max(0, expiresAt - Date.now()) + 1100)
    const expired = await rawMcp(stale.access_token)
    assert.equal(expired.status, 401, 'the expired token is refused')
    const beforeRefresh = rec.calls.length
    const again = structured(await client.callTool({ name: 'list_work_orders', arguments: { status: 'open' } }))
    assert.deepEqual(
      again.work_orders.map((w: Json) => w.id),
      ['WO-1001'],
    )
    const refreshed = rec.tokenCalls(as.token_endpoint, 'refresh_token', beforeRefresh)
    assert.equal(refreshed.length, 1, 'one refresh after the 401')
    assert.equal(refreshed[0]!.status, 200, JSON.stringify(refreshed[0]!.json))
    assert.equal(refreshed[0]!.form?.get('refresh_token'), stale.refresh_token)
    assert.equal(refreshed[0]!.form?.get('resource'), mcp.url)
    const fresh = agent.tokens() ?? assert.fail('no tokens')
    assert.notEqual(fresh.access_token, stale.access_token)
    assert.notEqual(fresh.refresh_token, stale.refresh_token, 'the refresh token rotated')
    assert.equal(decodeJwt(fresh.access_token).payload.aud, mcp.url)

    // ---- the farmer disconnects it under Connected apps: the next request is refused ----
    const page = farmer ?? assert.fail('no browser')
    await page.goto(`${issuer}/connected-apps`)
    await Promise.all([page.waitForURL((u) => u.searchParams.get('notice') === 'disconnected'), page.getByRole('button', { name: `Disconnect ${appName}` }).click()])
    const cut = await rawMcp(fresh.access_token)
    assert.equal(cut.status, 401, `an unexpired token is refused at once (introspectAll): ${cut.text}`)
    assert.equal(cut.json.error, 'invalid_token')
    agent.consent = undefined
    const beforeCut = rec.calls.length
    await assert.rejects(client.callTool({ name: 'list_work_orders', arguments: {} }), (err: unknown) => {
      assert.ok(err instanceof UnauthorizedError, `the agent must ask the farmer again: ${String(err)}`)
      return true
    })
    const dead = rec.tokenCalls(as.token_endpoint, 'refresh_token', beforeCut)
    assert.equal(dead.length, 1)
    assert.equal(dead[0]!.status, 400)
    assert.equal(dead[0]!.json.error, 'invalid_grant', 'the refresh token went with the grant')
    assert.equal(agent.authorizations.length, 3, 'the SDK starts a new authorization: only the farmer can let it back in')
    await client.close()
  }

  it('a public client registered in the portal: PKCE with resource through consent, step-up, refresh, cut off on Disconnect', {
    skip: browserSkip,
    timeout: 120_000,
  }, async (t) => {
    const why = missing('public clients')
    if (why) return t.skip(why)
    const rec = recorder()
    const consentPages: string[] = []
    const agent = new FieldAgent('Field agent (portal, public client)', redirect.url, { registered: { clientId: portalPublicAgent, issuer } })
    agent.consent = farmerAllows(consentPages)
    await publicClientJourney(agent, 'Field agent (portal, public client)', rec, consentPages)
    assert.equal(rec.calls.filter((c) => c.url.endsWith('/oauth/register')).length, 0, 'a registered client does not register')
  })

  it('registers by DCR, then the same journey: consent, step-up, refresh, cut off on Disconnect', { skip: browserSkip, timeout: 120_000 }, async (t) => {
    const why = missing('registration')
    if (why) return t.skip(why)
    const rec = recorder()
    const consentPages: string[] = []
    const agent = new FieldAgent('Field agent (DCR)', redirect.url)
    agent.consent = farmerAllows(consentPages)
    await publicClientJourney(agent, 'Field agent (DCR)', rec, consentPages)

    // RFC 7591: one registration, before the first authorization request, for a public client.
    const registrations = rec.calls.filter((c) => c.method === 'POST' && c.url === as.registration_endpoint)
    assert.equal(registrations.length, 1)
    const registration = registrations[0]!
    assert.ok(rec.calls.indexOf(registration) < rec.calls.findIndex((c) => c.url === as.token_endpoint))
    assert.equal(registration.status, 201, JSON.stringify(registration.json))
    assert.equal(registration.json.client_id, agent.clientId)
    assert.equal(registration.json.token_endpoint_auth_method, 'none')
    assert.equal(registration.json.client_secret, undefined, 'a public client gets no secret')
    assert.deepEqual(registration.json.redirect_uris, [redirect.url])
    assert.match(consentPages[0]!, /review/i, 'the consent page says the app is unreviewed')
  })

  it('registers by a client ID metadata document on loopback https, and connects through consent', { skip: browserSkip, timeout: 90_000 }, async (t) => {
    const why = missing('metadata documents')
    if (why) return t.skip(why)
    const doc = await hostMetadataDocument(tls!, (url) => ({
      client_id: url,
      client_name: 'Field agent (metadata document)',
      redirect_uris: [redirect.url],
      token_endpoint_auth_method: 'none',
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
    }))
    docs.push(doc)
    const rec = recorder()
    const consentPages: string[] = []
    const agent = new FieldAgent('Field agent (metadata document)', redirect.url, { clientMetadataUrl: doc.url })
    agent.consent = farmerAllows(consentPages)

    const { client } = await connect(agent, rec.fetch)
    assert.equal(agent.clientId, doc.url, 'the client_id is the document URL')
    assert.equal(rec.calls.filter((c) => c.url === as.registration_endpoint).length, 0, 'nothing was registered by DCR')
    assert.ok(doc.fetches >= 1, 'Fieldgate fetched the document')
    assert.equal(agent.authorizations[0]!.searchParams.get('client_id'), doc.url)
    assert.equal(agent.authorizations[0]!.searchParams.get('resource'), mcp.url)
    assert.match(consentPages[0]!, /Field agent \(metadata document\)/)
    const claims = decodeJwt(agent.accessToken).payload
    assert.equal(claims.client_id, doc.url)
    assert.equal(claims.aud, mcp.url)

    const orders = structured(await client.callTool({ name: 'list_work_orders', arguments: {} }))
    assert.equal(orders.tenant_id, farm.id)
    assert.equal(orders.work_orders.length, 2)
    // The farm now lists the agent under Connected apps, by the name its document gives.
    const page = farmer ?? assert.fail('no browser')
    await page.goto(`${issuer}/connected-apps`)
    assert.equal(await page.getByRole('button', { name: 'Disconnect Field agent (metadata document)' }).count(), 1)
    await client.close()
  })

  it('stops on SIGTERM', { timeout: 30_000 }, async () => {
    const own = await startMcpServer({ FIELDGATE_ISSUER: issuer, CLIENT_ID: introspection.clientId, CLIENT_SECRET: introspection.clientSecret })
    assert.equal((await request(`${own.origin}/.well-known/oauth-protected-resource`)).status, 200, 'it was serving')
    assert.equal(await own.stop('SIGTERM'), 0, own.output())
    assert.match(own.output(), /SIGTERM, stopping/)
    await assert.rejects(fetch(`${own.origin}/.well-known/oauth-protected-resource`), 'nothing listens any more')
  })
})

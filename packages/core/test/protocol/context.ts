/**
 * A CoreContext on a real SQLite store, as the server's runtime builds one (keys, cache, grant types),
 * but with a clock the test moves. Its own TypeScript project (tsconfig.json here): @fieldgate/storage
 * depends on @fieldgate/core, so these tests build after both and import them as packages.
 */
import { createHash, randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  cliActor,
  KeyRing,
  StoreCache,
  createApp,
  createTenant,
  createUser,
  ensureSigningKeys,
  loadConfig,
  securityLog,
  standardGrantTypes,
  approveAuthorization,
  personActor,
  tokenEndpoint,
  validateAuthorizationRequest,
  type App,
  type CoreContext,
  type TokenResult,
  type NewAppInput,
  type Tenant,
  type User,
} from '@fieldgate/core'
import { openSqlite } from '@fieldgate/storage'

export const ISSUER = 'https://auth.fieldgate.test'
export const CALLBACK = 'https://partner.example/callback'
export const PASSWORD = 'correct horse battery'

export interface TestContext {
  ctx: CoreContext
  /** Moves the context's clock. */
  advance(ms: number): void
  close(): Promise<void>
}

export async function openContext(): Promise<TestContext> {
  const dir = mkdtempSync(join(tmpdir(), 'fg-core-'))
  const storage = openSqlite(dir)
  await storage.migrate()
  const masterKey = randomBytes(32)
  const config = loadConfig({}, { dataDir: dir, issuer: ISSUER, signingAlg: 'ES256', logLevel: 'silent' })
  const records = await ensureSigningKeys(storage, config.signingAlg, masterKey)
  let clock = Date.now()
  const now = () => clock
  const security = securityLog(storage, { now, log: () => {}, onError: (err) => console.error(err) })
  const ctx: CoreContext = { config, storage, masterKey, keys: KeyRing.load(records, masterKey), cache: new StoreCache(storage), grants: standardGrantTypes, security, now }
  return {
    ctx,
    advance: (ms) => {
      clock += ms
    },
    async close() {
      await storage.close()
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

const unique = () => randomBytes(4).toString('hex')

export const tenant = (ctx: CoreContext, environment: 'sandbox' | 'live' = 'live'): Promise<Tenant> => createTenant(ctx, cliActor, { name: `Farm ${unique()}`, environment })

/** A private app on its own tenant (createApp grants it that tenant). */
export async function privateApp(ctx: CoreContext, input: Partial<NewAppInput> & { publicClient?: false } = {}): Promise<{ app: App; secret: string; tenant: Tenant }> {
  const t = await tenant(ctx, 'live')
  const created = await createApp(ctx, cliActor, { name: 'Private', scopes: 'api sensors:write', ...input, kind: 'private', environment: 'live', tenantId: t.id })
  return { app: created.app, secret: created.clientSecret, tenant: t }
}

/** A live public app with a registered redirect URI, installed nowhere yet. */
export async function publicApp(ctx: CoreContext, input: Partial<NewAppInput> & { publicClient?: false } = {}): Promise<{ app: App; secret: string }> {
  const created = await createApp(ctx, cliActor, {
    name: 'Public',
    scopes: 'fields:read:all maps:write',
    redirectUris: [CALLBACK],
    ...input,
    kind: 'public',
    environment: 'live',
  })
  return { app: created.app, secret: created.clientSecret }
}

/** A person who is `role` of a new live tenant. */
export async function person(ctx: CoreContext, role: 'owner' | 'admin' | 'member' = 'owner'): Promise<{ user: User; tenant: Tenant }> {
  const t = await tenant(ctx, 'live')
  const user = await createUser(ctx, cliActor, { email: `p-${unique()}@farm.example`, password: PASSWORD, tenantId: t.id, role })
  return { user, tenant: t }
}

/**
 * A public client's code flow as the pages run it: an authorization request with PKCE S256 to
 * `redirectUri`, approved by `owner` for `tenantId` with the scopes shown, and the code exchanged.
 */
export async function connectPublicClient(
  ctx: CoreContext,
  app: App,
  owner: User,
  tenantId: string,
  redirectUri: string,
): Promise<{ result: TokenResult; code: string; verifier: string }> {
  const { verifier, challenge } = pkcePair()
  const req = await validateAuthorizationRequest(ctx, { client_id: app.clientId, redirect_uri: redirectUri, code_challenge: challenge, code_challenge_method: 'S256' }, true)
  const location = await approveAuthorization(ctx, req, { userId: owner.id, tenantId, shownScopes: req.scopes, actor: personActor(owner, '127.0.0.1') })
  const code = new URL(location).searchParams.get('code')!
  const params = { client_id: app.clientId, grant_type: 'authorization_code', code, redirect_uri: redirectUri, code_verifier: verifier }
  return { result: await tokenEndpoint(ctx, { params, authorization: undefined }), code, verifier }
}

/** An RFC 7636 pair from node:crypto, independent of the code under test. */
export function pkcePair(): { verifier: string; challenge: string } {
  const verifier = randomBytes(32).toString('base64url')
  return { verifier, challenge: createHashB64(verifier) }
}

const createHashB64 = (v: string) => createHash('sha256').update(v).digest('base64url')

export const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`

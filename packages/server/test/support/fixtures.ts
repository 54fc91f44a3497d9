/** Fixtures through the core admin functions: a private app on its tenant, a public sandbox app. */
import { randomBytes } from 'node:crypto'
import { cliActor, storeContext, createApp, createTenant, type App, type Grant, type NewAppInput, type Storage, type Tenant } from '@fieldgate/core'

export interface PrivateFixture {
  tenant: Tenant
  app: App
  clientId: string
  clientSecret: string
  grant: Grant
}

export async function privateApp(storage: Storage, input: Partial<NewAppInput> & { environment?: 'sandbox' | 'live'; publicClient?: false } = {}): Promise<PrivateFixture> {
  const tenant = input.tenantId
    ? (await storage.getTenant(input.tenantId))!
    : await createTenant(storeContext(storage), cliActor, { name: `Tenant ${randomBytes(3).toString('hex')}`, environment: input.environment ?? 'sandbox' })
  const created = await createApp(storeContext(storage), cliActor, { name: 'Private app', ...input, kind: 'private', tenantId: tenant.id })
  const grant = await storage.findActiveGrant(created.app.id, tenant.id)
  if (!grant) throw new Error('createApp made no grant for a private app')
  return { tenant, app: created.app, clientId: created.app.clientId, clientSecret: created.clientSecret, grant }
}

export interface PublicFixture {
  app: App
  clientId: string
  clientSecret: string
  /** The sandbox tenant createApp made for the partner, with its grant. */
  sandboxTenant: Tenant
  grant: Grant
}

export async function publicSandboxApp(storage: Storage, input: Partial<NewAppInput> & { publicClient?: false } = {}): Promise<PublicFixture> {
  const created = await createApp(storeContext(storage), cliActor, { name: 'Marketplace app', ...input, kind: 'public', environment: 'sandbox' })
  if (!created.sandboxTenant) throw new Error('a public sandbox app got no sandbox tenant')
  const grant = await storage.findActiveGrant(created.app.id, created.sandboxTenant.id)
  if (!grant) throw new Error('a public sandbox app got no grant on its sandbox tenant')
  return { app: created.app, clientId: created.app.clientId, clientSecret: created.clientSecret, sandboxTenant: created.sandboxTenant, grant }
}

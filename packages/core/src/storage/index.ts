import type { AccountStore } from './accounts.js'
import type { AppStore } from './apps.js'
import type { AuditStore } from './audit.js'
import type { ChangeStore } from './changes.js'
import type { GrantStore } from './grants.js'
import type { SigningKeyStore } from './keys.js'
import type { OutboxStore } from './outbox.js'
import type { ProofStore } from './proofs.js'
import type { RecordStore } from './records.js'
import type { RegistrationStore } from './registration.js'
import type { TenantStore } from './tenants.js'
import type { TokenStore } from './tokens.js'
import type { UpstreamStore } from './upstream.js'

export { withEvents, type Alongside } from './alongside.js'
export type { AccountStore } from './accounts.js'
export type { AppFilter, AppStore } from './apps.js'
export type { AuditStore } from './audit.js'
export type { ChangeStore } from './changes.js'
export type { GrantFilter, GrantStore, TenantGrant } from './grants.js'
export type { SigningKeyStore } from './keys.js'
export type { FinishedAttempt, OutboxStore } from './outbox.js'
export type { ProofStore } from './proofs.js'
export type { RecordStore } from './records.js'
export type { InitialAccessToken, RegistrationStore } from './registration.js'
export type { Page, TenantStore } from './tenants.js'
export type { IssuedTokens, TokenStore } from './tokens.js'
export type { UpstreamStore } from './upstream.js'

/**
 * Everything the core needs from a store, one part per aggregate. Adapters (SQLite, PostgreSQL) live in
 * @fieldgate/storage and pass one contract suite. Every method that changes several rows is atomic;
 * every change that other processes must see at once also appends to the change feed in the same
 * transaction.
 */
export interface Storage
  extends TenantStore,
    AccountStore,
    AppStore,
    GrantStore,
    TokenStore,
    AuditStore,
    SigningKeyStore,
    RecordStore,
    OutboxStore,
    ChangeStore,
    UpstreamStore,
    ProofStore,
    RegistrationStore {
  readonly engine: 'sqlite' | 'postgres'
  migrate(): Promise<void>
  close(): Promise<void>
}

import { StoreCache } from './cache.js'
import type { Config } from './config.js'
import type { Gateway } from './gateway.js'
import type { GrantTypes } from './grants/registry.js'
import type { KeyRing } from './keys.js'
import type { SecurityLog } from './security.js'
import type { Storage } from './storage.js'

/**
 * What an operation (operations/) runs against: the store, this process's cache (an operation updates it
 * when it commits, so this process honours the change at once; the others do on their next change-feed
 * read), the clock, and the master key that seals new client secrets (without it they cannot sign
 * install redirects).
 */
export interface OperationContext {
  readonly storage: Storage
  readonly cache: StoreCache
  readonly masterKey?: Buffer
  /** The settings operations read: the sign-up policy, the issuer that links in mail start with, the brand mail names. */
  readonly config?: Pick<Config, 'signup' | 'issuer'> & { readonly brand?: Pick<Config['brand'], 'name'> }
  /** Where an operation logs the security events it stored with its change; absent in scripts. */
  readonly security?: SecurityLog
  now(): number
}

/** What every protocol operation runs against. Built once per process by the server or the CLI. */
export interface CoreContext extends OperationContext {
  readonly config: Config
  readonly masterKey: Buffer
  /** Swapped when the change feed reports a key rotation. */
  keys: KeyRing
  /** The grant types the token endpoint answers (grants/index.ts). */
  readonly grants: GrantTypes
  readonly security: SecurityLog
  /** The APIs the operator declared for gateways (FIELDGATE_GATEWAY_FILE): resources tokens may be for (RFC 8707). */
  readonly gateway?: Gateway
}

/** An operation context over a bare store, for scripts and tests that hold a store and no server. */
export function storeContext(storage: Storage, opts: { masterKey?: Buffer; now?: () => number } = {}): OperationContext {
  return { storage, cache: new StoreCache(storage), now: opts.now ?? Date.now, ...(opts.masterKey ? { masterKey: opts.masterKey } : {}) }
}

/** Request parameters after the edge has checked they are single strings. */
export type Params = Readonly<Record<string, string>>

import type { Config } from './config.js'
import type { GrantTypes } from './grants/registry.js'
import type { KeyRing } from './keys.js'
import type { StoreCache } from './cache.js'
import type { Storage } from './storage.js'

/** What every protocol operation runs against. Built once per process by the server or the CLI. */
export interface CoreContext {
  readonly config: Config
  readonly storage: Storage
  /** Swapped when the change feed reports a key rotation. */
  keys: KeyRing
  readonly cache: StoreCache
  /** The grant types the token endpoint answers (grants/index.ts). */
  readonly grants: GrantTypes
  now(): number
}

/** Request parameters after the edge has checked they are single strings. */
export type Params = Readonly<Record<string, string>>

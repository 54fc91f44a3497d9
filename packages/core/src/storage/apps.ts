import type { App, AppKind, AppSecret, Environment, Grant, ReviewState, SecretHandle } from '../model.js'
import type { Alongside } from './alongside.js'
import type { Page } from './tenants.js'

/** What a listing of apps keeps: each given field must match. */
export interface AppFilter {
  ownerUserId?: string
  review?: ReviewState
  tenantId?: string
  kind?: AppKind
  environment?: Environment
  suspended?: boolean
}

/** Apps with their client secrets, and the secrets waiting to be shown once. */
export interface AppStore {
  /** Stores an app with its first secret (none for a public client) and, for a private app, its grant on its own tenant; `also.tenant` first. */
  createApp(app: App, secret: AppSecret | undefined, grant?: Grant, also?: Alongside): Promise<App>
  getApp(id: string): Promise<App | undefined>
  getAppByClientId(clientId: string): Promise<App | undefined>
  /** Oldest first; `query` matches the name or client_id; `suspended` keeps the suspended apps (true) or the others (false). */
  listApps(filter?: AppFilter & Page): Promise<App[]>
  /** Saves an app's editable fields; appends an `app` change. */
  updateApp(app: App, also?: Alongside): Promise<void>
  /**
   * Deletes an app with its secrets, grants, codes and tokens, in one transaction; appends a `grant`
   * change for each grant and an `app` change, so every process drops what it cached.
   */
  deleteApp(id: string, now: number, also?: Alongside): Promise<boolean>
  /** Secrets that still authenticate at `now`: the current one and those in a rotation grace period. */
  listLiveSecrets(appId: string, now: number): Promise<AppSecret[]>
  /** Adds `secret` as current; every older current secret expires at `graceEndsAt`. */
  rotateSecret(appId: string, secret: AppSecret, graceEndsAt: number, also?: Alongside): Promise<void>

  /** Stores a secret to be shown once; drops handles that expired by `handle.createdAt`. */
  saveSecretHandle(handle: SecretHandle): Promise<void>
  /**
   * The handle made for this browser, if it has not expired at `now`. The first call (exactly one among
   * concurrent ones) gets it with its sealed secret and marks it shown, atomically; later calls get it
   * with `first` false and no secret.
   */
  takeSecretHandle(idHash: string, browserHash: string, now: number): Promise<{ handle: SecretHandle; first: boolean } | undefined>
}

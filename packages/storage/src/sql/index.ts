import type { Storage } from '@fieldgate/core'
import { Migrator, type Kysely } from 'kysely'
import { migrationsFor } from '../migrations/index.js'
import type { Database } from '../schema.js'
import { sqlAccountStore } from './accounts.js'
import { sqlAppStore } from './apps.js'
import { sqlAuditStore } from './audit.js'
import { sqlChangeStore, type ChangeWatcher } from './changes.js'
import { sqlGrantStore } from './grants.js'
import { sqlSigningKeyStore } from './keys.js'
import { sqlOutboxStore } from './outbox.js'
import { sqlProofStore } from './proofs.js'
import { sqlRecordStore } from './records.js'
import { sqlRegistrationStore } from './registration.js'
import type { Engine } from './rows.js'
import { sqlTenantStore } from './tenants.js'
import { sqlTokenStore } from './tokens.js'
import { sqlUpstreamStore } from './upstream.js'

export type { ChangeWatcher } from './changes.js'

export interface SqlStorageOptions {
  engine: Engine
  db: Kysely<Database>
  /** PostgreSQL: the schema this store lives in; its migration bookkeeping lives there too. */
  schemaName?: () => Promise<string>
  /** Runs before migrations, e.g. to create the PostgreSQL schema they go into. */
  prepare?: () => Promise<void>
  watcher?: ChangeWatcher
  /** PostgreSQL: keeps a statement prepared on every connection (prepared.ts). */
  keepPrepared?: (sql: string) => void
}

/**
 * The Storage interface over Kysely, composed of one store per aggregate, all on the same database.
 * SQLite and PostgreSQL share every query; they differ only in how they connect (sqlite.ts,
 * postgres.ts), in column types (migrations/) and in the locks a few writes take (`engine`).
 */
export function sqlStorage({ engine, db, schemaName, prepare, watcher, keepPrepared }: SqlStorageOptions): Storage {
  return {
    engine,

    async migrate(): Promise<void> {
      await prepare?.()
      // Kysely, told no schema, takes migration tables in any schema of the database for its own.
      const schema = await schemaName?.()
      const { error } = await new Migrator({
        db,
        provider: migrationsFor(engine),
        ...(schema ? { migrationTableSchema: schema } : {}),
      }).migrateToLatest()
      if (error) throw error
    },

    close(): Promise<void> {
      return db.destroy()
    },

    ...sqlTenantStore(db),
    ...sqlAccountStore(db),
    ...sqlAppStore(db, engine),
    ...sqlGrantStore(db, engine, keepPrepared),
    ...sqlTokenStore(db),
    ...sqlAuditStore(db),
    ...sqlSigningKeyStore(db, engine),
    ...sqlRecordStore(db),
    ...sqlOutboxStore(db, engine),
    ...sqlChangeStore(db, watcher),
    ...sqlUpstreamStore(db),
    ...sqlProofStore(db),
    ...sqlRegistrationStore(db),
  }
}

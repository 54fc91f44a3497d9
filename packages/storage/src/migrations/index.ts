import { sql, type Kysely, type Migration, type MigrationProvider } from 'kysely'
import {
  appListing,
  auditClientIdSecretHandles,
  changeNotify,
  codesTokensSessions,
  dpopProofs,
  grantsByApp,
  initialAccessTokens,
  initialSchema,
  marketplace,
  mailLease,
  operatorsAccounts,
  outbox,
  oauth21Clients,
  records,
  upstreamSignIn,
  workOrdersAsRecords,
  type Dialect,
} from './tables.js'

const dialects: Record<'sqlite' | 'postgres', Dialect> = {
  sqlite: { ms: 'INTEGER', serial: 'INTEGER PRIMARY KEY AUTOINCREMENT' },
  postgres: { ms: 'BIGINT', serial: 'BIGSERIAL PRIMARY KEY' },
}

const statements = (list: string[]): Migration => ({
  async up(db: Kysely<unknown>) {
    for (const statement of list) await sql.raw(statement).execute(db)
  },
})

/** Migrations by name, in order; one set per engine, derived from the same table definitions. */
export function migrationsFor(engine: 'sqlite' | 'postgres'): MigrationProvider {
  const d = dialects[engine]
  return {
    getMigrations: async () => ({
      '0001_initial': statements(initialSchema(d)),
      '0002_codes_tokens_sessions': statements(codesTokensSessions(d)),
      '0003_marketplace': statements(marketplace(d)),
      '0004_records': statements(records(d)),
      '0005_outbox': statements(outbox(d)),
      '0006_change_notify': statements(changeNotify(engine)),
      '0007_audit_client_id_secret_handles': statements(auditClientIdSecretHandles(d)),
      '0008_work_orders_as_records': statements(workOrdersAsRecords(engine)),
      '0009_operators_accounts': statements(operatorsAccounts(d)),
      '0010_mail_lease': statements(mailLease(d)),
      '0011_app_listing': statements(appListing()),
      '0012_upstream_sign_in': statements(upstreamSignIn(d)),
      '0013_oauth21_clients': statements(oauth21Clients(d)),
      '0014_dpop_proofs': statements(dpopProofs(d)),
      '0015_initial_access_tokens': statements(initialAccessTokens(d)),
      '0016_grants_by_app': statements(grantsByApp()),
    }),
  }
}

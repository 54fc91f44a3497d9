import type BetterSqlite from 'better-sqlite3'
import { CompiledQuery, SqliteAdapter, SqliteIntrospector, SqliteQueryCompiler, type DatabaseConnection, type Dialect, type Driver, type Kysely, type QueryResult } from 'kysely'

/**
 * Kysely's dialect for better-sqlite3 with two changes measured to matter under load: the connection
 * is handed to waiters in FIFO order (Kysely's mutex wakes every waiter on each release, O(n²) with
 * 100 requests in flight: 585 µs per lookup), and prepared statements are reused by SQL text.
 */
export class SqliteDialect implements Dialect {
  constructor(private readonly db: BetterSqlite.Database) {}
  createAdapter() {
    return new TransactionalSqliteAdapter()
  }
  createDriver(): Driver {
    return new SqliteDriver(this.db)
  }
  createIntrospector(db: Kysely<unknown>) {
    return new SqliteIntrospector(db)
  }
  createQueryCompiler() {
    return new SqliteQueryCompiler()
  }
}

/**
 * SQLite does run DDL inside transactions; saying so makes Kysely's migrator run in one transaction,
 * which (with BEGIN IMMEDIATE below) serialises processes that migrate the same file at once.
 */
class TransactionalSqliteAdapter extends SqliteAdapter {
  override get supportsTransactionalDdl(): boolean {
    return true
  }
}

class SqliteDriver implements Driver {
  private readonly connection: SqliteConnection
  private readonly waiting: (() => void)[] = []
  private busy = false

  constructor(private readonly db: BetterSqlite.Database) {
    this.connection = new SqliteConnection(db)
  }

  async init(): Promise<void> {}

  // One connection, one user at a time: a transaction holds it across awaits.
  async acquireConnection(): Promise<DatabaseConnection> {
    if (this.busy) await new Promise<void>((resolve) => this.waiting.push(resolve))
    this.busy = true
    return this.connection
  }

  async releaseConnection(): Promise<void> {
    const next = this.waiting.shift()
    if (next) next()
    else this.busy = false
  }

  // IMMEDIATE takes the write lock up front, waiting (busy_timeout) for other processes instead of
  // failing with SQLITE_BUSY when a deferred read lock cannot be upgraded.
  async beginTransaction(c: DatabaseConnection): Promise<void> {
    await c.executeQuery(CompiledQuery.raw('begin immediate'))
  }
  async commitTransaction(c: DatabaseConnection): Promise<void> {
    await c.executeQuery(CompiledQuery.raw('commit'))
  }
  // A BEGIN that failed (SQLITE_BUSY) left no transaction: rolling back would hide the real error.
  async rollbackTransaction(c: DatabaseConnection): Promise<void> {
    if (this.db.inTransaction) await c.executeQuery(CompiledQuery.raw('rollback'))
  }
  async destroy(): Promise<void> {
    this.db.close()
  }
}

class SqliteConnection implements DatabaseConnection {
  private readonly statements = new Map<string, BetterSqlite.Statement>()
  constructor(private readonly db: BetterSqlite.Database) {}

  async executeQuery<R>(query: CompiledQuery): Promise<QueryResult<R>> {
    const stmt = this.prepare(query.sql)
    const parameters = query.parameters as unknown[]
    if (stmt.reader) return { rows: stmt.all(parameters) as R[] }
    const { changes, lastInsertRowid } = stmt.run(parameters)
    return { numAffectedRows: BigInt(changes), insertId: BigInt(lastInsertRowid), rows: [] }
  }

  async *streamQuery<R>(query: CompiledQuery): AsyncIterableIterator<QueryResult<R>> {
    const stmt = this.prepare(query.sql)
    for (const row of stmt.iterate(query.parameters as unknown[])) yield { rows: [row as R] }
  }

  private prepare(sql: string): BetterSqlite.Statement {
    let stmt = this.statements.get(sql)
    if (!stmt) {
      stmt = this.db.prepare(sql)
      // Queries are built from a fixed set of shapes; the bound only guards against a surprise.
      if (this.statements.size >= 1000) this.statements.clear()
      this.statements.set(sql, stmt)
    }
    return stmt
  }
}

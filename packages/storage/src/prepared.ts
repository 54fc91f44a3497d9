import type { PostgresCursor, PostgresPool, PostgresPoolClient, PostgresQueryResult } from 'kysely'
import type pg from 'pg'

/**
 * The statements a PostgreSQL store keeps prepared on each connection, by SQL text: the hottest
 * lookups, which PostgreSQL would otherwise parse and plan on every run. Each text gets one name for
 * the life of the process, so a connection prepares it once (pg remembers which names it has).
 */
export class PreparedStatements {
  private readonly names = new Map<string, string>()

  /** Marks `sql` as kept prepared. Its columns must be named: see the check. */
  readonly keep = (sql: string): void => {
    // A `*` names whatever columns the table has when the statement is prepared; after a migration adds
    // one, PostgreSQL refuses to run it ("cached plan must not change result type") on that connection.
    if (sql.includes('*')) throw new Error('a statement kept prepared must name its columns, not select *')
    if (!this.names.has(sql)) this.names.set(sql, `fieldgate_${this.names.size + 1}`)
  }

  nameOf(sql: string): string | undefined {
    return this.names.get(sql)
  }
}

/** `pool` for Kysely's PostgresDialect, running each kept statement by its name. */
export function preparingPool(pool: pg.Pool, prepared: PreparedStatements): PostgresPool {
  return {
    connect: async () => new PreparingClient(await pool.connect(), prepared),
    end: () => pool.end(),
  }
}

class PreparingClient implements PostgresPoolClient {
  constructor(
    private readonly client: pg.PoolClient,
    private readonly prepared: PreparedStatements,
  ) {}

  query<R>(sql: string, parameters: ReadonlyArray<unknown>): Promise<PostgresQueryResult<R>>
  query<R>(cursor: PostgresCursor<R>): PostgresCursor<R>
  query<R>(sql: string | PostgresCursor<R>, parameters: ReadonlyArray<unknown> = []): Promise<PostgresQueryResult<R>> | PostgresCursor<R> {
    // Kysely streams through a cursor only when its dialect is given one, and this store gives none.
    if (typeof sql !== 'string') throw new Error('streaming queries need a cursor, which this store does not configure')
    const name = this.prepared.nameOf(sql)
    return this.run<R>({ text: sql, values: [...parameters], ...(name ? { name } : {}) })
  }

  release(): void {
    this.client.release()
  }

  private async run<R>(query: pg.QueryConfig<unknown[]>): Promise<PostgresQueryResult<R>> {
    const { command, rowCount, rows } = await this.client.query(query)
    return { command: sqlCommand(command), rowCount: rowCount ?? 0, rows }
  }
}

type Command = PostgresQueryResult<unknown>['command']
const COMMANDS = new Set<string>(['UPDATE', 'DELETE', 'INSERT', 'SELECT', 'MERGE'] satisfies Command[])
const isCommand = (command: string): command is Command => COMMANDS.has(command)
/** Kysely reads the command only to count affected rows of writes; anything else reads as a SELECT. */
const sqlCommand = (command: string): Command => (isCommand(command) ? command : 'SELECT')

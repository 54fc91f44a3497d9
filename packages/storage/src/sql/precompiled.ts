import type { Compilable, CompiledQuery, Kysely } from 'kysely'
import type { Database } from '../schema.js'

/**
 * Runs a query built once by `build` with new parameters; Kysely would rebuild it on every call.
 * `prepared`: also keep it prepared in the database (PostgreSQL, see prepared.ts), where `keep` is given.
 */
export type Precompiled = <R>(shape: string, build: () => Compilable<R>, parameters: unknown[], opts?: { prepared?: boolean }) => Promise<R[]>

export function precompiler(db: Kysely<Database>, keep?: (sql: string) => void): Precompiled {
  const compiled = new Map<string, CompiledQuery>()
  return async <R>(shape: string, build: () => Compilable<R>, parameters: unknown[], opts: { prepared?: boolean } = {}): Promise<R[]> => {
    let query = compiled.get(shape)
    if (!query) {
      query = build().compile()
      // The first build proves the parameter order: the compiled values must be the ones given.
      if (query.parameters.length !== parameters.length || query.parameters.some((p, i) => p !== parameters[i])) {
        throw new Error(`precompiled query ${shape}: parameters do not line up with its SQL`)
      }
      if (opts.prepared) keep?.(query.sql)
      compiled.set(shape, query)
    }
    return (await db.executeQuery<R>({ ...query, parameters })).rows
  }
}

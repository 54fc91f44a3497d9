/**
 * Shared by faults.test.ts and power-cut.test.ts: a hard kill of a spawned server, a Data API receiver
 * on loopback, and raw SQL reads of a store (the invariants are about rows, so they read rows).
 */
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import Sqlite from 'better-sqlite3'
import pg from 'pg'
import { eventIdHeader } from '@fieldgate/core'
import { request, type ServerProcess } from './helpers.js'

/** SIGKILL to the server's whole process group (spawnServe detaches it), then waits for the exit. */
export async function killHard(server: ServerProcess): Promise<void> {
  const { child } = server
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return
  const exited = new Promise<void>((ok) => child.once('exit', () => ok()))
  try {
    process.kill(-child.pid, 'SIGKILL')
  } catch {
    /* already gone */
  }
  await exited
}

export async function readyz(origin: string): Promise<number> {
  return (await request(`${origin}/readyz`)).status
}

/** Records the event ids that arrive; answers 200 to everything. */
export class Receiver {
  readonly ids = new Set<string>()
  deliveries = 0
  private server: Server | undefined

  async listen(): Promise<string> {
    this.server = createServer((req, res) => {
      req.resume().on('end', () => {
        this.ids.add(String(req.headers[eventIdHeader]))
        this.deliveries++
        res.writeHead(200).end()
      })
    })
    await new Promise<void>((ok) => this.server!.listen(0, '127.0.0.1', ok))
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/data-api`
  }

  close(): Promise<void> {
    return new Promise((ok) => {
      if (!this.server) return ok()
      this.server.closeAllConnections()
      this.server.close(() => ok())
    })
  }
}

export type Rows = Record<string, unknown>[]

/** Read-only SQL on a store, SQLite file or PostgreSQL schema: `?` placeholders on both. */
export interface SqlReader {
  all(query: string, params?: unknown[]): Promise<Rows>
  close(): Promise<void>
}

export function sqliteReader(dataDir: string, file = 'fieldgate.db'): SqlReader {
  const db = new Sqlite(join(dataDir, file), { readonly: true, fileMustExist: true })
  return {
    all: async (query, params = []) => db.prepare(query).all(...params) as Rows,
    close: async () => {
      db.close()
    },
  }
}

export async function postgresReader(url: string, schema: string): Promise<SqlReader> {
  const client = new pg.Client({ connectionString: url, options: `-c search_path=${schema}` })
  await client.connect()
  return {
    all: async (query, params = []) => {
      let n = 0
      return (
        await client.query(
          query.replace(/\?/g, () => `$${++n}`),
          params,
        )
      ).rows as Rows
    },
    close: () => client.end(),
  }
}

/** DATABASE_URL with the schema as the search_path, so a `fieldgate serve` child uses that schema. */
export function urlWithSchema(url: string, schema: string): string {
  const u = new URL(url)
  u.searchParams.set('options', `-c search_path=${schema}`)
  return u.href
}

export const randomInt = (lo: number, hi: number) => lo + Math.floor(Math.random() * (hi - lo + 1))

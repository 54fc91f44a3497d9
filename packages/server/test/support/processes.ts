/** Subprocesses: the CLI, `fieldgate serve` in its own process group, a store opened beside them. */
import { spawn, type ChildProcess } from 'node:child_process'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { loadConfig } from '@fieldgate/core'
import { openRuntime, type Runtime } from '@fieldgate/server'
import { silentLogger } from './servers.js'
import { waitUntil } from './wait.js'

/** The monorepo root (this file compiles to packages/server/dist/test/support/processes.js). */
export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../../../../..')
export const cliBin = join(repoRoot, 'packages/cli/bin/fieldgate.js')

/** The environment for child processes: nothing of the shell's Fieldgate or database settings. */
export function childEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(process.env)) {
    if (k.startsWith('FIELDGATE_') || k === 'DATABASE_URL' || k.startsWith('NODE_TEST') || k === 'NODE_OPTIONS') continue
    env[k] = v
  }
  return { ...env, FIELDGATE_LOG_LEVEL: 'silent', FIELDGATE_OVERLOAD_MAX_DELAY_MS: '0', ...extra }
}

export interface CliResult {
  code: number | null
  stdout: string
  stderr: string
  // biome-ignore lint/suspicious/noExplicitAny: a test reads whatever JSON the server sent and asserts on it
  json: any
  /** performance.now() when the process exited. */
  exitedAt: number
}

/** Runs `fieldgate <args>` as a subprocess against `dataDir`. */
export function runCli(args: string[], env: Record<string, string>): Promise<CliResult> {
  return new Promise((ok, fail) => {
    const child = spawn(process.execPath, [cliBin, ...args], { cwd: repoRoot, env: childEnv(env), stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d
    })
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d
    })
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000)
    child.on('error', fail)
    child.on('close', (code) => {
      clearTimeout(timer)
      const exitedAt = performance.now()
      let json: unknown
      try {
        json = JSON.parse(stdout)
      } catch {
        json = undefined
      }
      ok({ code, stdout, stderr, json, exitedAt })
    })
  })
}

export interface ServerProcess {
  child: ChildProcess
  origin: string
  output(): string
  stop(): Promise<void>
}

/**
 * Spawns `fieldgate serve --port <port> [...args]` in its own process group and waits until it answers
 * the metadata document.
 */
const liveGroups = new Set<number>()
// Safety net: a test that fails before its cleanup must not leave servers running.
process.once('exit', () => {
  for (const pid of liveGroups) {
    try {
      process.kill(-pid, 'SIGKILL')
    } catch {
      /* already gone */
    }
  }
})

export async function spawnServe(port: number, env: Record<string, string>, args: string[] = []): Promise<ServerProcess> {
  const child = spawn(process.execPath, [cliBin, 'serve', '--port', String(port), ...args], {
    cwd: repoRoot,
    env: childEnv(env),
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  })
  if (child.pid !== undefined) liveGroups.add(child.pid)
  let out = ''
  child.stdout!.setEncoding('utf8').on('data', (d: string) => {
    out += d
  })
  child.stderr!.setEncoding('utf8').on('data', (d: string) => {
    out += d
  })
  const exited = new Promise<void>((r) => child.once('exit', () => r()))
  let done = false
  child.once('exit', () => {
    done = true
    if (child.pid !== undefined) liveGroups.delete(child.pid)
  })
  const stop = async () => {
    if (done || child.pid === undefined) return
    try {
      process.kill(-child.pid, 'SIGTERM')
    } catch {
      /* already gone */
    }
    const killer = setTimeout(() => {
      try {
        process.kill(-child.pid!, 'SIGKILL')
      } catch {
        /* already gone */
      }
    }, 3000)
    await exited
    clearTimeout(killer)
  }
  const origin = `http://127.0.0.1:${port}`
  try {
    await waitUntil(
      async () => {
        if (done) throw new Error(`fieldgate serve exited early:\n${out}`)
        try {
          const res = await fetch(`${origin}/.well-known/oauth-authorization-server`, { signal: AbortSignal.timeout(1000) })
          await res.arrayBuffer()
          return res.status === 200
        } catch {
          return false
        }
      },
      15_000,
      50,
    )
  } catch (err) {
    await stop()
    throw err
  }
  return { child, origin, output: () => out, stop }
}

export async function openStore(dataDir: string): Promise<Runtime> {
  const config = loadConfig({}, { dataDir, logLevel: 'silent' })
  return openRuntime(config, silentLogger(), { prepare: true, follow: false })
}

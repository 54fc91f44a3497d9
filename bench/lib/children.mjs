// Child processes for the benchmark harnesses (run.mjs, soak.mjs): each in its own process group
// (cluster workers die with it), tracked until it has exited, killed whole at the end, on failure and
// on a signal. Also the few helpers both harnesses use around them.
import { execFile, spawn } from 'node:child_process'
import { once } from 'node:events'
import { readFile } from 'node:fs/promises'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'

const execFileP = promisify(execFile)
export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')
export const cli = path.join(root, 'packages/cli/bin/fieldgate.js')
export const HOST = '127.0.0.1'

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms))
export const tail = (text, lines = 30) => text.trimEnd().split('\n').slice(-lines).join('\n')

const children = new Set()

/**
 * The settings a load generator needs to measure the protocol path at full load: rate limits (issue 5)
 * would refuse it, and overload shedding (issue 7, bench/soak.mjs measures it) would cap what is measured.
 */
export const NO_RATE_LIMITS = Object.freeze({
  FIELDGATE_OVERLOAD_MAX_DELAY_MS: '0',
  FIELDGATE_RATE_LIMIT_PER_TOKEN: '0',
  FIELDGATE_RATE_LIMIT_PER_CLIENT: '0',
  FIELDGATE_RATE_LIMIT_TOKEN_PER_CLIENT: '0',
  FIELDGATE_RATE_LIMIT_TOKEN_PER_ADDRESS: '0',
})

/** process.env with `extra` applied; an undefined value removes the variable. */
export function childEnv(extra = {}) {
  const env = { ...process.env }
  for (const [k, v] of Object.entries(extra)) {
    if (v === undefined) delete env[k]
    else env[k] = v
  }
  return env
}

/**
 * `node <args>` in its own process group; its output (the last 128-256 KiB) is kept for error messages.
 * With `cpus` (a taskset list, e.g. '0') it runs as `taskset -c <cpus> node <args>`: taskset execs node, so
 * the pid is node's, and every thread and child it makes stays on those CPUs.
 */
export function startChild(label, args, env, { cpus } = {}) {
  const [command, argv] = cpus === undefined ? [process.execPath, args] : ['taskset', ['-c', cpus, process.execPath, ...args]]
  const child = spawn(command, argv, { cwd: root, env: childEnv(env), stdio: ['ignore', 'pipe', 'pipe'], detached: true })
  const info = { label, child, output: '', exited: false, code: null, signal: null }
  const keep = (chunk) => {
    info.output += chunk
    if (info.output.length > 256 * 1024) info.output = info.output.slice(-128 * 1024)
  }
  child.stdout.setEncoding('utf8').on('data', keep)
  child.stderr.setEncoding('utf8').on('data', keep)
  info.exit = new Promise((resolve) =>
    child.once('exit', (code, signal) => {
      Object.assign(info, { exited: true, code, signal })
      resolve()
    }),
  )
  child.once('error', (err) => {
    info.output += `\nspawn error: ${err.message}\n`
  })
  children.add(info)
  return info
}

const groupAlive = (pid) => {
  try {
    process.kill(-pid, 0)
    return true
  } catch {
    return false
  }
}

/** SIGTERM, 5 s to exit, then whatever is left of its group (orphaned cluster workers) is killed. */
export async function stopChild(info) {
  const { pid } = info.child
  if (pid === undefined) {
    children.delete(info)
    return
  }
  if (!info.exited) {
    try {
      process.kill(pid, 'SIGTERM')
    } catch {}
    await Promise.race([info.exit, sleep(5000)])
  }
  for (let i = 0; i < 20 && groupAlive(pid); i++) {
    try {
      process.kill(-pid, i < 10 ? 'SIGTERM' : 'SIGKILL')
    } catch {}
    await sleep(100)
  }
  if (groupAlive(pid)) {
    try {
      process.kill(-pid, 'SIGKILL')
    } catch {}
  }
  children.delete(info)
}

export const stopChildren = () => Promise.all([...children].map(stopChild))

/**
 * On SIGINT, SIGTERM or SIGHUP runs `cleanup` (which should stop the children) and exits 130; a second
 * signal exits at once. On any exit, every group still tracked is killed synchronously.
 */
export function onInterrupt(log, cleanup) {
  process.on('exit', () => {
    for (const { child } of children) {
      try {
        process.kill(-child.pid, 'SIGKILL')
      } catch {}
    }
  })
  let interrupted = false
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.on(sig, () => {
      if (interrupted) process.exit(130)
      interrupted = true
      log(`${sig}: stopping the servers and exiting`)
      cleanup().finally(() => process.exit(130))
    })
  }
}

export async function freePort() {
  const srv = net.createServer().listen(0, HOST)
  await once(srv, 'listening')
  const { port } = srv.address()
  await new Promise((r) => srv.close(r))
  return port
}

/** Polls `probe` until it returns a value, the child dies, or the time is up. */
export async function waitReady(info, probe, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs
  let last
  while (Date.now() < deadline) {
    if (info.exited) throw new Error(`${info.label} exited during start-up (code ${info.code}, signal ${info.signal}):\n${tail(info.output)}`)
    try {
      const value = await probe()
      if (value !== undefined) return value
    } catch (err) {
      last = err
    }
    await sleep(200)
  }
  throw new Error(`${info.label} was not ready after ${timeoutMs / 1000} s${last ? ` (${last.message})` : ''}:\n${tail(info.output)}`)
}

/** `fieldgate --json <args>` on the store `env` names; its parsed output. */
export async function fieldgateCli(env, ...args) {
  try {
    const { stdout } = await execFileP(process.execPath, [cli, '--json', ...args], { cwd: root, env: childEnv(env), timeout: 60_000 })
    return JSON.parse(stdout)
  } catch (err) {
    throw new Error(`fieldgate ${args.join(' ')} failed: ${err.stderr || err.message}`)
  }
}

/** A package's version from its package.json under the repository, or 'unknown'. */
export const packageVersion = (file) =>
  readFile(path.join(root, file), 'utf8')
    .then((t) => JSON.parse(t).version)
    .catch(() => 'unknown')

/**
 * What a report says about the run: when, the command (with the variables in `envNames` that were set),
 * Node, the machine, its load at the start and the commit (marked when the tree had changes).
 */
export async function runFacts(command, envNames) {
  const git = async (...args) => (await execFileP('git', args, { cwd: root, timeout: 10_000 }).catch(() => ({ stdout: '' }))).stdout.trim()
  const cpus = os.cpus()
  const envPrefix = envNames
    .filter((k) => process.env[k])
    .map((k) => `${k}=${process.env[k]}`)
    .join(' ')
  const dirty = await git('status', '--porcelain', '--untracked-files=no')
  return {
    date: new Date().toISOString(),
    command: `${envPrefix ? envPrefix + ' ' : ''}${command}`,
    node: process.version,
    cpu: `${cpus[0]?.model?.trim() ?? 'unknown'} × ${cpus.length}`,
    cores: cpus.length,
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    memory: `${(os.totalmem() / 2 ** 30).toFixed(1)} GiB`,
    loadAtStart: os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(' '),
    commit: `${(await git('rev-parse', '--short', 'HEAD')) || 'unknown'}${dirty ? ' (with uncommitted changes)' : ''}`,
  }
}

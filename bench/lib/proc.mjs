// What the kernel says about the processes under test (Linux /proc): CPU time of a process group, the
// resident memory of a process, each core's busy share, and this process's own CPU affinity.
import { execFile } from 'node:child_process'
import { readFile, readdir } from 'node:fs/promises'
import { promisify } from 'node:util'

const execFileP = promisify(execFile)
const clockTicks = Number((await execFileP('getconf', ['CLK_TCK']).catch(() => ({ stdout: '100' }))).stdout) || 100

/** /proc/<pid>/stat's fields after the command name (which may hold spaces): state is [0], pgrp [2], utime [11], stime [12]. */
const statFields = (text) => text.slice(text.lastIndexOf(')') + 2).split(' ')

/**
 * CPU seconds (user + system) used so far by every live process of the group `pgid`: a child started by
 * lib/children.mjs leads its own group, so this is the server with any cluster workers it forked.
 */
export async function groupCpuSeconds(pgid) {
  let ticks = 0
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    const text = await readFile(`/proc/${entry}/stat`, 'utf8').catch(() => undefined)
    if (text === undefined) continue
    const f = statFields(text)
    if (Number(f[2]) === pgid) ticks += Number(f[11]) + Number(f[12])
  }
  return ticks / clockTicks
}

/** VmRSS and VmHWM (the peak resident set since the process started) of `pid`, in MiB. */
export async function memoryMiB(pid) {
  const status = await readFile(`/proc/${pid}/status`, 'utf8')
  const kib = (name) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? Number.NaN)
  return { rss: kib('VmRSS') / 1024, hwm: kib('VmHWM') / 1024 }
}

/**
 * Samples the RSS of `pid` every `everyMs` until `stop()`, which resolves to the samples' peak and the
 * kernel's own peak (VmHWM) at that moment, in MiB.
 */
export function sampleRss(pid, everyMs = 250) {
  let peak = 0
  let samples = 0
  const take = async () => {
    const { rss } = await memoryMiB(pid).catch(() => ({ rss: 0 }))
    peak = Math.max(peak, rss)
    samples++
  }
  const timer = setInterval(() => void take(), everyMs)
  return {
    async stop() {
      clearInterval(timer)
      await take()
      const { hwm } = await memoryMiB(pid).catch(() => ({ hwm: Number.NaN }))
      return { peakMiB: peak, hwmMiB: hwm, samples }
    },
  }
}

/** Per CPU, the jiffies of /proc/stat: busy (user to softirq), iowait, idle, steal. */
export async function coreTimes() {
  const lines = (await readFile('/proc/stat', 'utf8')).split('\n').filter((l) => /^cpu\d+ /.test(l))
  return lines.map((l) => {
    const [user, nice, system, idle, iowait, irq, softirq, steal] = l.split(/\s+/).slice(1).map(Number)
    return { busy: user + nice + system + irq + softirq, iowait, idle, steal }
  })
}

/** What each core did between two coreTimes(): shares of busy (anyone's work), iowait and steal. */
export function coreShares(before, after) {
  return after.map((a, i) => {
    const b = before[i]
    const d = (k) => a[k] - b[k]
    const total = d('busy') + d('iowait') + d('idle') + d('steal') || 1
    return { busy: d('busy') / total, iowait: d('iowait') / total, steal: d('steal') / total }
  })
}

/** The CPUs this process may run on, as /proc/self/status lists them (e.g. '0-1', or '1'). */
export async function allowedCpus() {
  const status = await readFile('/proc/self/status', 'utf8')
  return /^Cpus_allowed_list:\s+(\S+)/m.exec(status)?.[1] ?? ''
}

/** Moves every thread of this process (`taskset -a -p`) to `cpus`; threads made afterwards inherit it. */
export async function pinSelf(cpus) {
  await execFileP('taskset', ['-a', '-p', '-c', cpus, String(process.pid)])
  const now = await allowedCpus()
  if (now !== cpus) throw new Error(`taskset left this process on CPUs ${now}, not ${cpus}`)
}

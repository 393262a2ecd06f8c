import { execFileSync } from 'node:child_process'
import { readFileSync, readdirSync } from 'node:fs'
import { loadavg } from 'node:os'

const CLOCK_TICKS = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100
  } catch {
    return 100
  }
})()

/** CPU seconds (user + system) a process has used so far, from /proc/<pid>/stat. */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  // Fields after the command name (which may hold spaces) start after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS
}

/** Peak and current resident set size in MB, from /proc/<pid>/status. */
export function memoryMb(pid: number): { peak: number; current: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const kb = (name: string) =>
    Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0)
  return { peak: kb('VmHWM') / 1024, current: kb('VmRSS') / 1024 }
}

/**
 * This process's own peak RSS in MB: the high-water mark of its address space. (getrusage's
 * maxRSS is no good for a child: Linux carries the parent's resident size at fork into it.)
 */
export function ownPeakRssMb(): number {
  try {
    return memoryMb(process.pid).peak
  } catch {
    return process.resourceUsage().maxRSS / 1024
  }
}

/** Busy and total jiffies of the whole machine, from /proc/stat. */
function machineTicks(): { busy: number; total: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!
  const v = line.trim().split(/\s+/).slice(1).map(Number)
  const idle = (v[3] ?? 0) + (v[4] ?? 0)
  const total = v.reduce((a, b) => a + b, 0)
  return { busy: total - idle, total }
}

export interface WindowStats {
  seconds: number
  /** CPU of the measured process, percent of one core. */
  cpuPercent: number
  /** Whole machine, percent of all cores. */
  machineBusyPercent: number
  peakRssMb: number
  loadBefore: number
  loadAfter: number
}

/**
 * Measures one process over a window: CPU time used, peak RSS (the kernel's high-water mark,
 * so no sampling gap can miss it), machine load.
 */
export class ProcessWindow {
  readonly #pid: number
  #t0 = 0
  #cpu0 = 0
  #machine0 = { busy: 0, total: 0 }
  #load0 = 0

  constructor(pid: number) {
    this.#pid = pid
  }

  begin(at: number = performance.now()): void {
    this.#t0 = at
    this.#cpu0 = cpuSeconds(this.#pid)
    this.#machine0 = machineTicks()
    this.#load0 = loadavg()[0]!
  }

  end(at: number = performance.now()): WindowStats {
    const seconds = (at - this.#t0) / 1000
    const cpu = cpuSeconds(this.#pid) - this.#cpu0
    const m = machineTicks()
    const busy = m.busy - this.#machine0.busy
    const total = m.total - this.#machine0.total
    return {
      seconds,
      cpuPercent: seconds > 0 ? (100 * cpu) / seconds : 0,
      machineBusyPercent: total > 0 ? (100 * busy) / total : 0,
      peakRssMb: memoryMb(this.#pid).peak,
      loadBefore: this.#load0,
      loadAfter: loadavg()[0]!,
    }
  }
}

/** The pid of the process whose command line contains `needle` (e.g. a broker's data dir). */
export function findPid(needle: string): number | undefined {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue
    try {
      const cmd = readFileSync(`/proc/${entry}/cmdline`, 'utf8')
      if (cmd.includes(needle) && cmd.startsWith('java')) return Number(entry)
    } catch {
      // gone meanwhile
    }
  }
  return undefined
}

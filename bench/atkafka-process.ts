import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { closeSync, openSync, readFileSync } from 'node:fs'
import { type AddressInfo, createServer } from 'node:net'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { REPO_ROOT } from './corpus/store.ts'

const ENTRY = join(REPO_ROOT, 'src', 'bin.ts')

/** A free TCP port on 127.0.0.1. */
export async function freePort(): Promise<number> {
  const server = createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as AddressInfo
  await new Promise((resolve) => server.close(resolve))
  return port
}

export interface AtkafkaChild {
  readonly pid: number
  readonly child: ChildProcess
  readonly metricsUrl: string
  readonly logFile: string
  readonly exited: Promise<number | string>
  /**
   * Value of a counter or gauge on /metrics, summed over the label sets that contain `labels`
   * (0 when it has none yet); undefined when /metrics does not answer.
   */
  metric(name: string, labels?: string): Promise<number | undefined>
  /** SIGTERM, then wait for the exit code. */
  stop(): Promise<number | string>
  logTail(lines?: number): string
}

/**
 * Run atkafka from source (`node src/bin.ts …`) as its own process, so CPU and RSS are the
 * service's own. Its stdout goes to `stdoutPath` (e.g. /dev/null for `--stdout`), its stderr to
 * `logFile` (the same file as stdout when the paths are equal: logs go to stdout without --stdout).
 */
export function spawnAtkafka(opts: {
  args: string[]
  cwd: string
  metricsPort: number
  stdoutPath: string
  logFile: string
  nodeArgs?: string[]
  env?: Record<string, string>
}): AtkafkaChild {
  const log = openSync(opts.logFile, 'w')
  const out = opts.stdoutPath === opts.logFile ? log : openSync(opts.stdoutPath, 'w')
  let child: ChildProcess
  try {
    child = spawn(process.execPath, [...(opts.nodeArgs ?? []), ENTRY, ...opts.args], {
      cwd: opts.cwd,
      env: {
        PATH: process.env.PATH ?? '',
        METRICS_LISTEN_ADDRESS: `127.0.0.1:${opts.metricsPort}`,
        // A closed loopback port: a run that left event metadata on never reaches plc.directory.
        ATKAFKA_PLC_HOST: 'http://127.0.0.1:9',
        ...opts.env,
      },
      // With --stdout the logs go to stderr; otherwise to stdout. Keep them apart from events.
      stdio: ['ignore', out, log],
    })
  } finally {
    if (out !== log) closeSync(out)
    closeSync(log)
  }
  const exited = new Promise<number | string>((resolve) => {
    child.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown'))
  })
  const kill = () => child.kill('SIGKILL')
  process.once('exit', kill)
  const metricsUrl = `http://127.0.0.1:${opts.metricsPort}/metrics`
  return {
    pid: child.pid!,
    child,
    metricsUrl,
    logFile: opts.logFile,
    exited,
    async metric(name, labels) {
      let text: string
      try {
        const res = await fetch(metricsUrl)
        text = await res.text()
      } catch {
        return undefined
      }
      let sum = 0
      for (const line of text.split('\n')) {
        if (!line.startsWith(name)) continue
        const rest = line.slice(name.length)
        if (rest[0] !== ' ' && rest[0] !== '{') continue
        if (labels !== undefined && !rest.includes(labels)) continue
        sum += Number(rest.slice(rest.lastIndexOf(' ') + 1))
      }
      return sum
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM')
      const timer = setTimeout(kill, 40_000)
      const code = await exited
      clearTimeout(timer)
      process.off('exit', kill)
      return code
    },
    logTail(lines = 20) {
      try {
        return readFileSync(opts.logFile, 'utf8').trimEnd().split('\n').slice(-lines).join('\n')
      } catch {
        return ''
      }
    },
  }
}

/**
 * Poll `atkafka_produced_events{status="ok"}` until it reaches `expected`; returns the time it
 * was first seen there (performance.now()). Throws if the process exits or `timeoutMs` passes.
 * Polls every 500 ms, and every 25 ms near the end: a scrape costs the service CPU too.
 */
export async function waitProduced(
  child: AtkafkaChild,
  expected: number,
  timeoutMs: number,
): Promise<number> {
  const deadline = performance.now() + timeoutMs
  let last: number | undefined
  for (;;) {
    if (child.child.exitCode !== null || child.child.signalCode !== null) {
      throw new Error(`atkafka exited early (${await child.exited}):\n${child.logTail()}`)
    }
    last = await child.metric('atkafka_produced_events', 'status="ok"')
    if (last !== undefined && last >= expected) return performance.now()
    if (performance.now() > deadline) {
      throw new Error(
        `atkafka produced ${last ?? 0} of ${expected} events before the timeout:\n${child.logTail()}`,
      )
    }
    await sleep(last !== undefined && last >= expected * 0.95 ? 25 : 500)
  }
}

/** Wait until /metrics answers (the service is up). */
export async function waitMetrics(child: AtkafkaChild, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs
  while ((await child.metric('atkafka_produced_events')) === undefined) {
    if (child.child.exitCode !== null) {
      throw new Error(`atkafka exited early (${await child.exited}):\n${child.logTail()}`)
    }
    if (performance.now() > deadline)
      throw new Error(`atkafka /metrics not up:\n${child.logTail()}`)
    await sleep(50)
  }
}

import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { createServer } from 'node:net'
import { join } from 'node:path'

const ENTRY = join(import.meta.dirname, '..', '..', 'src', 'bin.ts')

/** Children still running when the test process exits are killed. */
const running = new Set<ChildProcess>()
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL')
})

export interface AtkafkaProcess {
  readonly child: ChildProcess
  /** Everything written to stdout / stderr so far. */
  stdout(): string
  stderr(): string
  /** Resolves with the exit code (or signal name). */
  readonly exited: Promise<number | string>
  /** Wait until stderr+stdout matches `pattern`. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<void>
  metricsPort: number
}

/** A free TCP port on 127.0.0.1. */
export async function freePort(): Promise<number> {
  const server = createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as { port: number }
  await new Promise((r) => server.close(r))
  return port
}

/** Run the atkafka CLI from source as a real child process. */
export async function spawnAtkafka(
  args: string[],
  opts: { env?: Record<string, string>; cwd?: string; metricsPort?: number } = {},
): Promise<AtkafkaProcess> {
  const metricsPort = opts.metricsPort ?? (await freePort())
  const child = spawn(
    process.execPath,
    ['--disable-warning=TimeoutNegativeWarning', ENTRY, ...args],
    {
      cwd: opts.cwd,
      env: {
        PATH: process.env.PATH ?? '',
        METRICS_LISTEN_ADDRESS: `127.0.0.1:${metricsPort}`,
        // A closed loopback port: a run that forgot --plc-host/--no-event-metadata fails its
        // lookups here instead of reaching plc.directory.
        ATKAFKA_PLC_HOST: 'http://127.0.0.1:9',
        ...opts.env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  )
  let out = ''
  let err = ''
  const waiters: Array<() => void> = []
  const poke = () => waiters.splice(0).forEach((w) => w())
  child.stdout!.on('data', (d: Buffer) => {
    out += d.toString()
    poke()
  })
  child.stderr!.on('data', (d: Buffer) => {
    err += d.toString()
    poke()
  })
  running.add(child)
  const exited = new Promise<number | string>((resolve) => {
    child.once('exit', (code, signal) => {
      running.delete(child)
      poke()
      resolve(code ?? signal ?? 'unknown')
    })
  })
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    exited,
    metricsPort,
    async waitFor(pattern, timeoutMs = 30000) {
      const deadline = Date.now() + timeoutMs
      while (!pattern.test(out + err)) {
        if (child.exitCode !== null || child.signalCode !== null) {
          throw new Error(`atkafka exited before ${pattern}: ${err.slice(-2000)}`)
        }
        if (Date.now() > deadline)
          throw new Error(`timed out waiting for ${pattern}: ${err.slice(-2000)}`)
        await new Promise<void>((r) => {
          const t = setTimeout(r, 200)
          waiters.push(() => {
            clearTimeout(t)
            r()
          })
        })
      }
    },
  }
}

/** GET a path of the metrics server. */
export async function httpGet(
  port: number,
  path: string,
): Promise<{ status: number; body: string }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`)
  return { status: res.status, body: await res.text() }
}

/** Sum of a metric's samples whose labels include `labels`. */
export function metricValue(
  text: string,
  name: string,
  labels: Record<string, string> = {},
): number {
  let total = 0
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue
    const m = /^([a-z_]+)(\{([^}]*)\})? (\S+)$/.exec(line)
    if (!m || m[1] !== name) continue
    const got = Object.fromEntries(
      (m[3] ?? '')
        .split(',')
        .filter(Boolean)
        .map((kv) => {
          const [k, v] = kv.split('=')
          return [k, v!.replace(/^"|"$/g, '')]
        }),
    )
    if (Object.entries(labels).every(([k, v]) => got[k] === v)) total += Number(m[4])
  }
  return total
}

/** Poll `check` until it returns true. */
export async function eventually(
  check: () => Promise<boolean> | boolean,
  timeoutMs = 30000,
  what = 'condition',
): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 200))
  }
}

/**
 * `--no-event-metadata` unless `args` point the metadata lookups at a PLC: no test may reach
 * plc.directory, the default.
 */
export function metadataFlag(args: readonly string[]): string[] {
  return args.includes('--plc-host') ? [] : ['--no-event-metadata']
}

/**
 * `firehose relay` arguments producing from `relayHost` into `topic` on the `bootstrap` broker,
 * then `extra` (without event metadata unless `extra` gives a `--plc-host`).
 */
export function relayToKafka(
  relayHost: string,
  bootstrap: string,
  topic: string,
  extra: readonly string[] = [],
): string[] {
  return [
    'firehose',
    'relay',
    '--relay-host',
    relayHost,
    '--bootstrap-servers',
    bootstrap,
    '--output-topic',
    topic,
    ...metadataFlag(extra),
    ...extra,
  ]
}

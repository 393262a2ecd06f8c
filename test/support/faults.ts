// Shared pieces of the fault suite (test/faults/): synthetic streams with a known answer,
// loss and duplicate counting against what Kafka holds, memory sampling, a child process in
// its own mount namespace.
import { type ChildProcess, spawn } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { ConsumedMessage } from '../harness/kafka.ts'
import { freePort } from './atkafka.ts'
import { commitFrame } from './frames.ts'
import type { ReplayFrame } from './replay-relay.ts'

/** A stream of `#commit` frames, 10 creates each by default, and the URI of every op. */
export function syntheticStream(opts: {
  commits: number
  opsPerCommit?: number
  firstSeq?: number
  /** Distinct repos the commits rotate over (per-DID order is checked by other tests). */
  repos?: number
  /** Tells streams of different tests apart. */
  tag: string
  /** Size of each record's text. */
  textBytes?: number
}): { frames: ReplayFrame[]; uris: string[]; lastSeq: number } {
  const perCommit = opts.opsPerCommit ?? 10
  const repos = opts.repos ?? 200
  const text = 'x'.repeat(opts.textBytes ?? 40)
  const frames: ReplayFrame[] = []
  const uris: string[] = []
  let seq = opts.firstSeq ?? 1
  for (let c = 0; c < opts.commits; c++, seq++) {
    const repo = `did:plc:${opts.tag}${(c % repos).toString(36)}`
    const ops = []
    for (let i = 0; i < perCommit; i++) {
      const path = `app.bsky.feed.post/${seq.toString(36)}k${i}`
      ops.push({
        action: 'create' as const,
        path,
        record: {
          $type: 'app.bsky.feed.post',
          text: `${seq}/${i} ${text}`,
          createdAt: '2026-01-01T00:00:00.000Z',
        },
      })
      uris.push(`at://${repo}/${path}`)
    }
    frames.push({ seq, bytes: commitFrame({ seq, repo, ops }) })
  }
  return { frames, uris, lastSeq: seq - 1 }
}

/** The id of a produced message: the op's URI, or key and value for other events. */
export function messageId(m: { key: string | null; value: string }): string {
  const event = JSON.parse(m.value) as { operation?: { uri: string; action: string } }
  return event.operation !== undefined
    ? `${event.operation.uri}#${event.operation.action}`
    : `${m.key}\t${m.value}`
}

export interface Tally {
  sent: number
  received: number
  lost: number
  duplicated: number
  missing: string[]
}

/**
 * Compare the ids sent with the ids Kafka holds (both multisets): `lost` counts ids Kafka holds
 * fewer times than they were sent, `duplicated` the extra copies of ids that were sent.
 */
export function tally(sent: readonly string[], received: readonly string[]): Tally {
  const count = (ids: readonly string[]) => {
    const m = new Map<string, number>()
    for (const id of ids) m.set(id, (m.get(id) ?? 0) + 1)
    return m
  }
  const want = count(sent)
  const have = count(received)
  const missing: string[] = []
  let lost = 0
  let duplicated = 0
  for (const [id, n] of want) {
    const h = have.get(id) ?? 0
    if (h < n) {
      lost += n - h
      missing.push(id)
    } else {
      duplicated += h - n
    }
  }
  return { sent: sent.length, received: received.length, lost, duplicated, missing }
}

/** Print a scenario's figures in one greppable line. */
export function report(scenario: string, t: Tally, extra = ''): void {
  console.log(
    `fault ${scenario}: sent ${t.sent}, received ${t.received}, lost ${t.lost}, duplicated ${t.duplicated}${extra ? `; ${extra}` : ''}`,
  )
}

/** Ids of consumed messages. */
export function idsOf(messages: readonly ConsumedMessage[]): string[] {
  return messages.map(messageId)
}

/** `seq` of a relay cursor file, undefined while there is none. */
export async function cursorSeq(path: string): Promise<number | undefined> {
  try {
    return (JSON.parse(await readFile(path, 'utf8')) as { seq: number }).seq
  } catch {
    return undefined
  }
}

/** Resident set size of a process in bytes (Linux), undefined once it is gone. */
export async function rssOf(pid: number): Promise<number | undefined> {
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8')
    const kb = /^VmRSS:\s+(\d+) kB/m.exec(status)
    return kb ? Number(kb[1]) * 1024 : undefined
  } catch {
    return undefined
  }
}

/** Samples a process's RSS every `intervalMs` until stopped; keeps the maximum. */
export function sampleRss(pid: number, intervalMs = 250): { max(): number; stop(): void } {
  let max = 0
  const timer = setInterval(() => {
    void rssOf(pid).then((rss) => {
      if (rss !== undefined && rss > max) max = rss
    })
  }, intervalMs)
  return {
    max: () => max,
    stop: () => clearInterval(timer),
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

const ENTRY = join(import.meta.dirname, '..', '..', 'src', 'bin.ts')

export interface NamespacedAtkafka {
  readonly child: ChildProcess
  output(): string
  stderr(): string
  readonly exited: Promise<number | string>
  metricsPort: number
}

/**
 * Run the atkafka CLI inside a new user and mount namespace (`unshare --user --map-root-user
 * --mount`), after `setup` (a shell script) ran there: it can mount a tmpfs that only this
 * process sees, read-only or full, without privileges on the host. The directory is `$1`.
 */
export async function spawnAtkafkaInNamespace(
  setup: string,
  dir: string,
  args: string[],
  env: Record<string, string> = {},
): Promise<NamespacedAtkafka> {
  const metricsPort = await freePort()
  const script = `set -e\n${setup}\nshift\nexec "$@"`
  const child = spawn(
    'unshare',
    [
      '--user',
      '--map-root-user',
      '--mount',
      'sh',
      '-c',
      script,
      'atkafka-ns',
      dir,
      process.execPath,
      '--disable-warning=TimeoutNegativeWarning',
      ENTRY,
      ...args,
    ],
    {
      env: {
        PATH: process.env.PATH ?? '',
        METRICS_LISTEN_ADDRESS: `127.0.0.1:${metricsPort}`,
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  )
  let out = ''
  let err = ''
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()))
  child.stderr!.on('data', (d: Buffer) => {
    err += d.toString()
    out += d.toString()
  })
  const kill = () => child.kill('SIGKILL')
  process.once('exit', kill)
  const exited = new Promise<number | string>((resolve) => {
    child.once('error', (e) => resolve(`spawn error: ${e.message}`))
    child.once('exit', (code, signal) => {
      process.off('exit', kill)
      resolve(code ?? signal ?? 'unknown')
    })
  })
  return { child, output: () => out, stderr: () => err, exited, metricsPort }
}

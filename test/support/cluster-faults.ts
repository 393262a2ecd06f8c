// Shared pieces of the cluster fault tests (test/faults/cluster-*.test.ts): a three-broker cluster
// with small heaps, /ready watched all along, the broker leading the busiest partitions, and
// every partition read back with losses, duplicates and per-DID order counted.
import { join } from 'node:path'
import { murmur2 } from '../../src/sink/partitioner.ts'
import { type KafkaCluster, startKafkaCluster } from '../harness/kafka-cluster.ts'
import { consumeAll } from '../harness/kafka.ts'
import {
  type AtkafkaProcess,
  eventually,
  httpGet,
  metricValue,
  relayToKafka,
  spawnAtkafka,
} from './atkafka.ts'
import { type Tally, cursorSeq, messageId, sampleRss, syntheticStream, tally } from './faults.ts'
import { type ReplayRelay, startReplayRelay } from './replay-relay.ts'

/** Three nodes, RF 3, min.insync.replicas 2, small heaps (the machine has two cores). */
export function startFaultCluster(): Promise<KafkaCluster> {
  return startKafkaCluster({
    brokers: 3,
    jvmArgs: ['-Xms96m', '-Xmx384m', '-XX:+UseG1GC', '-XX:TieredStopAtLevel=1'],
    extraProperties: {
      // A killed broker drops out of the ISR (and its leaderships move) within seconds.
      'replica.lag.time.max.ms': '5000',
      'broker.session.timeout.ms': '6000',
      'broker.heartbeat.interval.ms': '1000',
      'num.network.threads': '2',
      'num.io.threads': '2',
      'log.segment.bytes': String(64 * 1024 * 1024),
    },
  })
}

export const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(0)} MB`
export const secs = (ms: number) => `${(ms / 1000).toFixed(1)} s`

interface ReadySample {
  at: number
  status: number
  body: string
}

/** Polls `/ready` every `intervalMs` until stopped; a failed request counts as status 0. */
export class ReadyWatch {
  readonly samples: ReadySample[] = []
  #stopped = false
  readonly #done: Promise<void>

  constructor(port: number, intervalMs = 100) {
    this.#done = (async () => {
      while (!this.#stopped) {
        const at = Date.now()
        const r = await httpGet(port, '/ready').catch(() => ({ status: 0, body: '' }))
        this.samples.push({ at, status: r.status, body: r.body.trim() })
        await new Promise((ok) => setTimeout(ok, intervalMs))
      }
    })()
  }

  async stop(): Promise<void> {
    this.#stopped = true
    await this.#done
  }

  /** Samples taken in [from, to). */
  between(from: number, to = Infinity): ReadySample[] {
    return this.samples.filter((s) => s.at >= from && s.at < to)
  }

  /** Spans of consecutive non-200 samples from `from` on: start and length (ms). */
  notReadySpans(from = 0): Array<{ start: number; ms: number }> {
    const spans: Array<{ start: number; ms: number }> = []
    let start: number | undefined
    let last = 0
    for (const s of this.between(from)) {
      if (s.status !== 200) {
        start ??= s.at
        last = s.at
      } else if (start !== undefined) {
        spans.push({ start, ms: s.at - start })
        start = undefined
      }
    }
    if (start !== undefined) spans.push({ start, ms: last - start })
    return spans
  }

  /** The distinct bodies of the 503 answers from `from` on. */
  reasons(from = 0): string[] {
    return [...new Set(this.between(from).flatMap((s) => (s.status === 503 ? [s.body] : [])))]
  }
}

/** The partition of a key (murmur2, as the sink and the Java client). */
export function partitionOf(key: string, partitions: number): number {
  return (murmur2(key) & 0x7fffffff) % partitions
}

/**
 * The node leading the most ops of `keys` (one entry per op: its DID), with the partitions it
 * leads: killing it hits the busiest partitions.
 */
export async function busiestLeader(
  cluster: KafkaCluster,
  topic: string,
  keys: readonly string[],
  partitions: number,
): Promise<{ node: number; partitions: number[]; share: number }> {
  const perPartition = new Array<number>(partitions).fill(0)
  for (const k of keys) perPartition[partitionOf(k, partitions)]!++
  const states = await cluster.partitions(topic)
  const perNode = new Map<number, { ops: number; partitions: number[] }>()
  for (const s of states) {
    const n = perNode.get(s.leader) ?? { ops: 0, partitions: [] }
    n.ops += perPartition[s.partition] ?? 0
    n.partitions.push(s.partition)
    perNode.set(s.leader, n)
  }
  const [node, best] = [...perNode].sort((a, b) => b[1].ops - a[1].ops)[0]!
  return { node, partitions: best.partitions, share: best.ops / keys.length }
}

/** The DID of an op URI (`at://<did>/<collection>/<rkey>`). */
export function didOf(uri: string): string {
  return uri.slice('at://'.length, uri.indexOf('/', 'at://'.length))
}

export interface ReadBack extends Tally {
  /** DIDs whose ops (first copies, partition order) are not in the order sent. */
  outOfOrder: string[]
}

/**
 * Read every partition of `topic` back and compare with the op ids sent (`<uri>#<action>`, in
 * the order sent): lost, duplicated, and per-DID order of the first copy of each op.
 */
export async function readBack(
  bootstrap: string,
  topic: string,
  sent: readonly string[],
  timeoutMs = 90_000,
): Promise<ReadBack> {
  const got = await consumeAll(bootstrap, topic, {
    expected: sent.length,
    idleMs: 2000,
    timeoutMs,
  })
  const ids = got.map(messageId)
  const t = tally(sent, ids)
  const index = new Map(sent.map((id, i) => [id, i]))
  const seen = new Set<string>()
  const lastOf = new Map<string, number>()
  const outOfOrder = new Set<string>()
  for (const id of ids) {
    if (seen.has(id)) continue
    seen.add(id)
    const i = index.get(id)
    if (i === undefined) continue
    const did = didOf(id)
    if ((lastOf.get(did) ?? -1) > i) outOfOrder.add(did)
    lastOf.set(did, i)
  }
  return { ...t, outOfOrder: [...outOfOrder] }
}

export interface RelayRun {
  readonly stream: ReturnType<typeof syntheticStream>
  readonly relay: ReplayRelay
  readonly p: AtkafkaProcess
  readonly ready: ReadyWatch
  readonly topic: string
  /** The op ids sent, in order (`<uri>#create`). */
  readonly ids: string[]
  /** One op's DID per op, in order. */
  readonly keys: string[]
  /** One metric's value now (0 while the metrics server does not answer). */
  metric(name: string, labels?: Record<string, string>): Promise<number>
  /** Ops acknowledged by Kafka so far. */
  produced(): Promise<number>
  /** Largest RSS of atkafka so far. */
  peakRss(): number
  /**
   * Wait for the cursor at the stream's last seq, keep the metrics (see {@link final}), then
   * SIGTERM: resolves with the exit code.
   */
  finish(timeoutMs?: number): Promise<number | string>
  /** A metric's value just before {@link finish} stopped atkafka. */
  final(name: string, labels?: Record<string, string>): number
  /** The error of every failed produce request atkafka logged, in order. */
  produceFailures(): string[]
  /** Stop watching, kill atkafka if still running, close the relay. Idempotent. */
  close(): Promise<void>
}

/**
 * A paced synthetic stream (`commits` × `opsPerCommit` creates over 200 DIDs) served by a replay
 * relay, and atkafka in relay mode producing it into `topic` (8 partitions, RF 3) of `cluster`,
 * with a cursor file in `dir`; /ready watched from the start.
 */
export async function startRelayRun(opts: {
  cluster: KafkaCluster
  dir: string
  topic: string
  commits: number
  opsPerCommit?: number
  textBytes?: number
  /** Commits sent every 20 ms. */
  commitsPer20Ms: number
  extra?: string[]
}): Promise<RelayRun> {
  const stream = syntheticStream({
    commits: opts.commits,
    opsPerCommit: opts.opsPerCommit,
    textBytes: opts.textBytes,
    tag: opts.topic.replace(/[^a-z0-9]/g, ''),
  })
  const relay = await startReplayRelay({
    frames: stream.frames,
    pace: { burst: opts.commitsPer20Ms, intervalMs: 20 },
  })
  const cursorFile = join(opts.dir, `${opts.topic}.cursor.json`)
  const p = await spawnAtkafka(
    relayToKafka(relay.url, opts.cluster.bootstrap, opts.topic, [
      '--topic-partitions',
      '8',
      '--replication-factor',
      '3',
      '--cursor-file',
      cursorFile,
      ...(opts.extra ?? []),
    ]),
  )
  const ready = new ReadyWatch(p.metricsPort)
  const rss = sampleRss(p.child.pid!)
  const metric = async (name: string, labels?: Record<string, string>) => {
    const r = await httpGet(p.metricsPort, '/metrics').catch(() => undefined)
    return r === undefined ? 0 : metricValue(r.body, name, labels)
  }
  let closed = false
  let lastMetrics = ''
  return {
    stream,
    relay,
    p,
    ready,
    topic: opts.topic,
    ids: stream.uris.map((u) => `${u}#create`),
    keys: stream.uris.map(didOf),
    metric,
    produced: () => metric('atkafka_produced_events', { status: 'ok' }),
    peakRss: () => rss.max(),
    async finish(timeoutMs = 120_000) {
      await eventually(
        async () => (await cursorSeq(cursorFile)) === stream.lastSeq,
        timeoutMs,
        `the cursor at the end of the stream (${opts.topic})`,
      )
      await ready.stop()
      lastMetrics = (await httpGet(p.metricsPort, '/metrics')).body
      p.child.kill('SIGTERM')
      return p.exited
    },
    final: (name, labels) => metricValue(lastMetrics, name, labels),
    produceFailures: () => produceFailures(p.stdout() + p.stderr()),
    async close() {
      if (closed) return
      closed = true
      rss.stop()
      await ready.stop()
      p.child.kill('SIGKILL')
      await relay.close()
    },
  }
}

/** The `err` of each "produce failed" log line (pino JSON) in `log`. */
export function produceFailures(log: string): string[] {
  return log.split('\n').flatMap((line) => {
    if (!line.includes('produce failed')) return []
    try {
      return [String((JSON.parse(line) as { err?: unknown }).err)]
    } catch {
      return []
    }
  })
}

/** Distinct entries with their counts: `3 × a; 1 × b`. */
export function counted(items: readonly string[], max = 3): string {
  const m = new Map<string, number>()
  for (const i of items) m.set(i, (m.get(i) ?? 0) + 1)
  const all = [...m].sort((a, b) => b[1] - a[1])
  const shown = all.slice(0, max).map(([k, n]) => `${n} × ${k.slice(0, 160)}`)
  return all.length > max ? `${shown.join('; ')}; …` : shown.join('; ') || 'none'
}

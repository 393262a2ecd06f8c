import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  type AtkafkaChild,
  freePort,
  spawnAtkafka,
  waitMetrics,
  waitProduced,
} from './atkafka-process.ts'
import type { Corpus } from './corpus/store.ts'
import type { TapEventBody } from './corpus/tap-events.ts'
import {
  createBenchTopic,
  deleteTopic,
  measureLatency,
  percentile,
  topicBytes,
  topicMessageCount,
} from './kafka.ts'
import { ProcessWindow, cpuSeconds } from './proc-stats.ts'
import { REPO_ROOT } from './corpus/store.ts'
import { OPTIONS } from '../src/config/options.ts'
import { tunedCommand } from '../src/node-tuning.ts'
import { RelayFeed } from './relay-feed.ts'
import { confluentInstalled } from './confluent/sink.ts'
import { ReplayTap } from './replay-tap.ts'
import { JetstreamFeed, type JetstreamBody } from './jetstream-feed.ts'

/** One measured run of one scenario. */
export interface RunResult {
  scenario: string
  corpus: string
  /** Events produced (record ops plus identity/account events) per second. */
  opsPerSec: number
  framesPerSec: number
  /** Input bytes (relay frames or Tap JSON) per second, in MB (10^6 bytes). */
  mbPerSec: number
  p50Ms: number
  p99Ms: number
  peakRssMb: number
  /** CPU of the measured process, percent of one core. */
  cpuPercent: number
  /** CPU time of the measured process per event, in microseconds: what load cannot distort much. */
  cpuUsPerEvent: number
  /** Busy share of the whole machine (all cores) during the run. */
  machineBusyPercent: number
  /** CPU of the Kafka broker during the run (percent of one core), when the bench started it. */
  brokerCpuPercent: number
  /** CPU of the bench process itself (replay relay or Tap), percent of one core. */
  feedCpuPercent: number
  loadBefore: number
  loadAfter: number
  seconds: number
  events: number
  frames: number
  /** The service's own view of its memory at the end of the run (from /metrics), in MB. */
  memoryMb?: Record<string, number>
  notes: string[]
}

export interface BenchContext {
  bootstrap: string | undefined
  /** The broker's process, when the bench started it (for its CPU). */
  brokerPid: number | undefined
  synthetic: Corpus
  syntheticDir: string
  real: Corpus
  quick: boolean
  tapEvents: () => Promise<TapEventBody[]>
  jetstreamEvents: () => Promise<JetstreamBody[]>
  /** Extra atkafka flags for every run (e.g. to try a setting). */
  atkafkaArgs: string[]
  /** Node flags for the atkafka process (e.g. --cpu-prof). */
  nodeArgs: string[]
  /** Extra environment of the atkafka process. */
  env: Record<string, string>
  log: (line: string) => void
}

export interface Scenario {
  name: string
  description: string
  needsKafka: boolean
  run(ctx: BenchContext): Promise<RunResult>
}

const SECOND = 1000

function framesForEvents(corpus: Corpus, events: number): number {
  const loops = Math.floor(events / corpus.totalEvents)
  let frames = loops * corpus.frames.length
  let sum = loops * corpus.totalEvents
  for (let i = 0; sum < events; i = (i + 1) % corpus.frames.length) {
    sum += corpus.events[i]!
    frames++
  }
  return frames
}

function eventsOfFrame(corpus: Corpus): (g: number) => number {
  return (g) => corpus.events[g % corpus.frames.length]!
}

function bytesOfFrames(corpus: Corpus, frames: number): number {
  const n = corpus.frames.length
  let bytes = Math.floor(frames / n) * corpus.totalBytes
  for (let i = 0; i < frames % n; i++) bytes += corpus.frames[i]!.length
  return bytes
}

/** CPU of the broker and of this process over a window. */
class SideCpu {
  readonly #brokerPid: number | undefined
  #t0 = 0
  #broker0 = 0
  #self0 = process.cpuUsage()

  constructor(brokerPid: number | undefined) {
    this.#brokerPid = brokerPid
  }

  begin(): void {
    this.#t0 = performance.now()
    this.#broker0 = this.#brokerPid === undefined ? 0 : cpuSeconds(this.#brokerPid)
    this.#self0 = process.cpuUsage()
  }

  end(): { brokerCpuPercent: number; feedCpuPercent: number } {
    const seconds = (performance.now() - this.#t0) / 1000
    const self = process.cpuUsage(this.#self0)
    const broker =
      this.#brokerPid === undefined ? Number.NaN : cpuSeconds(this.#brokerPid) - this.#broker0
    return {
      brokerCpuPercent: (100 * broker) / seconds,
      feedCpuPercent: (self.user + self.system) / 1e4 / seconds,
    }
  }
}

const MEMORY_METRICS = [
  'process_resident_memory_bytes',
  'nodejs_heap_size_total_bytes',
  'nodejs_heap_size_used_bytes',
  'nodejs_external_memory_bytes',
]

async function memoryOf(child: AtkafkaChild): Promise<Record<string, number>> {
  const out: Record<string, number> = {}
  const requests = await child.metric('atkafka_produce_latency_seconds_count')
  const seconds = await child.metric('atkafka_produce_latency_seconds_sum')
  const produced = await child.metric('atkafka_produced_events', 'status="ok"')
  const retries = await child.metric('atkafka_produce_retries')
  if (retries !== undefined && retries > 0) out['produceRetries'] = retries
  if (requests !== undefined && requests > 0 && seconds !== undefined && produced !== undefined) {
    // Not memory, but from the same scrape: the sink's produce requests.
    out['produceRequests'] = requests
    out['messagesPerRequest'] = Math.round(produced / requests)
    out['msPerRequest'] = Math.round((1000 * seconds) / requests)
  }
  for (const name of MEMORY_METRICS) {
    const v = await child.metric(name)
    if (v !== undefined)
      out[name.replace(/^(process|nodejs)_|_bytes$/g, '')] = Math.round(v / 1e5) / 10
  }
  return out
}

/** Warnings and errors atkafka logged (its JSON log lines at level warn or above). */
function warningsOf(child: AtkafkaChild): string[] {
  const out = new Map<string, number>()
  for (const line of child.logTail(100_000).split('\n')) {
    const level = /"level":(\d+)/.exec(line)?.[1]
    if (level === undefined || Number(level) < 40) continue
    const msg = /"msg":"([^"]*)"/.exec(line)?.[1] ?? line.slice(0, 120)
    out.set(msg, (out.get(msg) ?? 0) + 1)
  }
  return [...out].map(([msg, n]) => `atkafka logged ${n}× "${msg}"`)
}

/** Runs a node script under bench/ and returns its last stdout line as JSON. */
function runNode(script: string, args: string[]): Promise<Record<string, number>> {
  return new Promise((resolve, reject) => {
    // With the service's own memory defaults, as bin/atkafka would run it.
    const argv = [process.execPath, join(REPO_ROOT, 'bench', script), ...args]
    const tuned = tunedCommand(argv, [], process.env)
    const child = spawn(process.execPath, (tuned?.args ?? argv).slice(1), {
      env: tuned?.env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let out = ''
    let err = ''
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d))
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d))
    child.on('error', reject)
    child.on('exit', (code) => {
      const last = out.trim().split('\n').at(-1) ?? ''
      if (code !== 0) reject(new Error(`${script} exited ${code}: ${err.slice(-2000)}`))
      else resolve(JSON.parse(last) as Record<string, number>)
    })
  })
}

function decodeScenario(which: 'real' | 'synthetic'): Scenario {
  return {
    name: `decode-${which}`,
    description: `Decode stage alone (frame → events → JSON, one thread, no I/O) on the ${which === 'real' ? 'real capture' : 'synthetic corpus'}`,
    needsKafka: false,
    async run(ctx) {
      const seconds = ctx.quick ? 2 : 10
      const source = which === 'real' ? ['--real'] : ['--corpus', ctx.syntheticDir]
      const r = await runNode('decode-stage.ts', [...source, '--seconds', String(seconds)])
      const corpus = which === 'real' ? ctx.real : ctx.synthetic
      return {
        scenario: this.name,
        corpus: corpus.name,
        opsPerSec: r['events']! / r['seconds']!,
        framesPerSec: r['frames']! / r['seconds']!,
        mbPerSec: r['bytes']! / r['seconds']! / 1e6,
        p50Ms: Number.NaN,
        p99Ms: Number.NaN,
        peakRssMb: r['peakRssMb']!,
        cpuPercent: r['cpuPercent']!,
        cpuUsPerEvent: (r['cpuPercent']! * r['seconds']! * 1e4) / r['events']!,
        machineBusyPercent: Number.NaN,
        brokerCpuPercent: Number.NaN,
        feedCpuPercent: Number.NaN,
        loadBefore: Number.NaN,
        loadAfter: Number.NaN,
        seconds: r['seconds']!,
        events: r['events']!,
        frames: r['frames']!,
        notes: [],
      }
    },
  }
}

interface RelayRunOptions {
  name: string
  corpus: Corpus
  totalFrames: number
  kafka: boolean
  eventsPerSecond?: number
}

async function relayRun(ctx: BenchContext, opts: RelayRunOptions): Promise<RunResult> {
  const work = mkdtempSync(join(tmpdir(), 'atkafka-bench-'))
  const topic = `bench-${opts.name}-${Date.now()}`
  let child: AtkafkaChild | undefined
  let window: ProcessWindow | undefined
  const side = new SideCpu(ctx.brokerPid)
  const feed = new RelayFeed({
    corpus: opts.corpus,
    totalFrames: opts.totalFrames,
    eventsPerSecond: opts.eventsPerSecond,
    onFirstSend: () => {
      window?.begin()
      side.begin()
    },
  })
  try {
    if (opts.kafka) await createBenchTopic(ctx.bootstrap!, topic, 200)
    const url = await feed.start()
    const output = opts.kafka
      ? ['--bootstrap-servers', ctx.bootstrap!, '--output-topic', topic]
      : ['--stdout']
    child = spawnAtkafka({
      args: [
        'firehose',
        'relay',
        '--no-event-metadata',
        '--relay-host',
        url,
        '--cursor-file',
        join(work, 'cursor.json'),
        ...output,
        ...ctx.atkafkaArgs,
      ],
      cwd: work,
      metricsPort: await freePort(),
      nodeArgs: ctx.nodeArgs,
      env: ctx.env,
      stdoutPath: opts.kafka ? join(work, 'atkafka.log') : '/dev/null',
      logFile: join(work, 'atkafka.log'),
    })
    window = new ProcessWindow(child.pid)
    await waitMetrics(child, 60 * SECOND)
    const expected = feed.totalEvents
    const endAt = await waitProduced(child, expected, 600 * SECOND)
    const stats = window.end(endAt)
    const sideCpu = side.end()
    const memoryMb = await memoryOf(child)
    const code = await child.stop()
    const notes: string[] = warningsOf(child)
    if (code !== 0) notes.push(`atkafka exit code ${code}`)
    if (feed.connections !== 1) notes.push(`${feed.connections} relay connections`)
    let seconds = stats.seconds
    let p50 = Number.NaN
    let p99 = Number.NaN
    if (opts.kafka) {
      const lat = await measureLatency({
        bootstrap: ctx.bootstrap!,
        topic,
        expected,
        sendTimes: feed.sendTimes,
        eventsOf: eventsOfFrame(opts.corpus),
        timeoutMs: 120 * SECOND,
      })
      const inTopic = await topicMessageCount(ctx.bootstrap!, topic)
      if (inTopic !== expected) notes.push(`topic holds ${inTopic} messages, expected ${expected}`)
      if (lat.unmatched > 0) notes.push(`${lat.unmatched} messages not matched to a frame`)
      if (lat.wrongCounts > 0) notes.push(`${lat.wrongCounts} frames with a wrong message count`)
      p50 = percentile(lat.latencies, 50)
      p99 = percentile(lat.latencies, 99)
      // The broker's append time of the last message is a sharper end than the metrics poll.
      seconds = (lat.lastAppendMs - feed.firstSendAt) / 1000
    }
    return {
      scenario: opts.name,
      corpus: opts.corpus.name,
      opsPerSec: expected / seconds,
      framesPerSec: opts.totalFrames / seconds,
      mbPerSec: bytesOfFrames(opts.corpus, opts.totalFrames) / seconds / 1e6,
      p50Ms: p50,
      p99Ms: p99,
      peakRssMb: stats.peakRssMb,
      cpuPercent: stats.cpuPercent,
      cpuUsPerEvent: (stats.cpuPercent * stats.seconds * 1e4) / expected,
      machineBusyPercent: stats.machineBusyPercent,
      ...sideCpu,
      loadBefore: stats.loadBefore,
      loadAfter: stats.loadAfter,
      seconds,
      events: expected,
      frames: opts.totalFrames,
      memoryMb,
      notes,
    }
  } finally {
    await child?.stop()
    await feed.close()
    if (opts.kafka) await deleteTopic(ctx.bootstrap!, topic)
    rmSync(work, { recursive: true, force: true })
  }
}

function relayScenario(name: string, kafka: boolean, description: string): Scenario {
  return {
    name,
    description,
    needsKafka: kafka,
    run: (ctx) =>
      relayRun(ctx, {
        name,
        corpus: ctx.synthetic,
        kafka,
        totalFrames: framesForEvents(ctx.synthetic, ctx.quick ? 20_000 : 300_000),
      }),
  }
}

const STEADY_RATE = 2000

const steadyScenario: Scenario = {
  name: 'relay-kafka-steady-2000',
  description: `Relay → Kafka at a steady ${STEADY_RATE} events/s, for latency`,
  needsKafka: true,
  run: (ctx) =>
    relayRun(ctx, {
      name: 'relay-kafka-steady-2000',
      corpus: ctx.synthetic,
      kafka: true,
      eventsPerSecond: STEADY_RATE,
      totalFrames: framesForEvents(ctx.synthetic, STEADY_RATE * (ctx.quick ? 5 : 30)),
    }),
}

const tapScenario: Scenario = {
  name: 'tap-kafka',
  description: 'Replay Tap (backfill events, acks) → atkafka firehose tap → Kafka',
  needsKafka: true,
  async run(ctx) {
    const events = await ctx.tapEvents()
    const total = ctx.quick ? 20_000 : 300_000
    const work = mkdtempSync(join(tmpdir(), 'atkafka-bench-'))
    const topic = `bench-tap-${Date.now()}`
    let child: AtkafkaChild | undefined
    let window: ProcessWindow | undefined
    const side = new SideCpu(ctx.brokerPid)
    const tap = new ReplayTap({
      events,
      total,
      onFirstSend: () => {
        window?.begin()
        side.begin()
      },
    })
    try {
      await createBenchTopic(ctx.bootstrap!, topic, 200)
      const url = await tap.start()
      child = spawnAtkafka({
        args: [
          'firehose',
          'tap',
          '--no-event-metadata',
          '--tap-host',
          url,
          '--bootstrap-servers',
          ctx.bootstrap!,
          '--output-topic',
          topic,
          ...ctx.atkafkaArgs,
        ],
        cwd: work,
        metricsPort: await freePort(),
        nodeArgs: ctx.nodeArgs,
        env: ctx.env,
        stdoutPath: join(work, 'atkafka.log'),
        logFile: join(work, 'atkafka.log'),
      })
      window = new ProcessWindow(child.pid)
      const timeout = new Promise<never>((_, reject) =>
        setTimeout(
          () =>
            reject(
              new Error(
                `tap run: ${tap.acked} of ${total} acked before the timeout:\n${child?.logTail()}`,
              ),
            ),
          600 * SECOND,
        ).unref(),
      )
      const exited = child.exited.then((code) => {
        throw new Error(`atkafka exited early (${code}):\n${child?.logTail()}`)
      })
      await Promise.race([tap.done(), timeout, exited])
      const stats = window.end()
      const sideCpu = side.end()
      const memoryMb = await memoryOf(child)
      const code = await child.stop()
      const notes: string[] = warningsOf(child)
      if (code !== 0) notes.push(`atkafka exit code ${code}`)
      if (tap.connections !== 1) notes.push(`${tap.connections} Tap connections`)
      if (tap.duplicateAcks > 0) notes.push(`${tap.duplicateAcks} duplicate acks`)
      const inTopic = await topicMessageCount(ctx.bootstrap!, topic)
      if (inTopic !== total) notes.push(`topic holds ${inTopic} messages, expected ${total}`)
      const latencies = new Float64Array(total)
      for (let id = 1; id <= total; id++) latencies[id - 1] = tap.ackTimes[id]! - tap.sendTimes[id]!
      const seconds = (tap.lastAckAt - tap.firstSendAt) / 1000
      return {
        scenario: 'tap-kafka',
        corpus: `${ctx.synthetic.name} as Tap events`,
        opsPerSec: total / seconds,
        framesPerSec: total / seconds,
        mbPerSec: tap.sentBytes / seconds / 1e6,
        p50Ms: percentile(latencies, 50),
        p99Ms: percentile(latencies, 99),
        peakRssMb: stats.peakRssMb,
        cpuPercent: stats.cpuPercent,
        cpuUsPerEvent: (stats.cpuPercent * stats.seconds * 1e4) / total,
        machineBusyPercent: stats.machineBusyPercent,
        ...sideCpu,
        loadBefore: stats.loadBefore,
        loadAfter: stats.loadAfter,
        seconds,
        events: total,
        frames: total,
        memoryMb,
        notes,
      }
    } finally {
      await child?.stop()
      await tap.close()
      await deleteTopic(ctx.bootstrap!, topic)
      rmSync(work, { recursive: true, force: true })
    }
  },
}

const jetstreamScenario: Scenario = {
  name: 'jetstream-kafka',
  description: 'Jetstream (the corpus as its JSON events) → atkafka jetstream → Kafka',
  needsKafka: true,
  async run(ctx) {
    const events = await ctx.jetstreamEvents()
    const total = ctx.quick ? 20_000 : 300_000
    const work = mkdtempSync(join(tmpdir(), 'atkafka-bench-'))
    const topic = `bench-jetstream-${Date.now()}`
    let child: AtkafkaChild | undefined
    let window: ProcessWindow | undefined
    const side = new SideCpu(ctx.brokerPid)
    const feed = new JetstreamFeed({
      events,
      total,
      onFirstSend: () => {
        window?.begin()
        side.begin()
      },
    })
    try {
      await createBenchTopic(ctx.bootstrap!, topic, 200)
      const url = await feed.start()
      child = spawnAtkafka({
        args: [
          'jetstream',
          '--jetstream-host',
          url,
          '--no-event-metadata',
          '--cursor-file',
          join(work, 'cursor.json'),
          '--bootstrap-servers',
          ctx.bootstrap!,
          '--output-topic',
          topic,
          ...ctx.atkafkaArgs,
        ],
        cwd: work,
        metricsPort: await freePort(),
        nodeArgs: ctx.nodeArgs,
        env: ctx.env,
        stdoutPath: join(work, 'atkafka.log'),
        logFile: join(work, 'atkafka.log'),
      })
      window = new ProcessWindow(child.pid)
      await waitMetrics(child, 60 * SECOND)
      const endAt = await waitProduced(child, total, 600 * SECOND)
      const stats = window.end(endAt)
      const sideCpu = side.end()
      const memoryMb = await memoryOf(child)
      const code = await child.stop()
      const notes: string[] = warningsOf(child)
      if (code !== 0) notes.push(`atkafka exit code ${code}`)
      if (feed.connections !== 1) notes.push(`${feed.connections} Jetstream connections`)
      const inTopic = await topicMessageCount(ctx.bootstrap!, topic)
      if (inTopic !== total) notes.push(`topic holds ${inTopic} messages, expected ${total}`)
      notes.push('no latency: Jetstream has no acks to time')
      return {
        scenario: 'jetstream-kafka',
        corpus: `${ctx.synthetic.name} as Jetstream events`,
        opsPerSec: total / stats.seconds,
        framesPerSec: total / stats.seconds,
        mbPerSec: feed.sentBytes / stats.seconds / 1e6,
        p50Ms: Number.NaN,
        p99Ms: Number.NaN,
        peakRssMb: stats.peakRssMb,
        cpuPercent: stats.cpuPercent,
        cpuUsPerEvent: (stats.cpuPercent * stats.seconds * 1e4) / total,
        machineBusyPercent: stats.machineBusyPercent,
        ...sideCpu,
        loadBefore: stats.loadBefore,
        loadAfter: stats.loadAfter,
        seconds: stats.seconds,
        events: total,
        frames: total,
        memoryMb,
        notes,
      }
    } finally {
      await child?.stop()
      await feed.close()
      await deleteTopic(ctx.bootstrap!, topic)
      rmSync(work, { recursive: true, force: true })
    }
  },
}

/** The value an atkafka run would use for `flag`: the last `--flag` in `args`, else its default. */
function atkafkaFlag(args: readonly string[], flag: string): string {
  let value: string | undefined
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!
    if (a.startsWith(`--${flag}=`)) value = a.slice(flag.length + 3)
    else if (a === `--${flag}`) value = args[i + 1]
  }
  return value ?? OPTIONS.find((o) => o.flag === flag)!.default!
}

/** A result with nothing measured, only a note (a scenario that could not run). */
function notRun(scenario: string, corpus: string, note: string): RunResult {
  const nan = Number.NaN
  return {
    scenario,
    corpus,
    ...{ opsPerSec: nan, framesPerSec: nan, mbPerSec: nan, p50Ms: nan, p99Ms: nan },
    ...{ peakRssMb: nan, cpuPercent: nan, cpuUsPerEvent: nan, machineBusyPercent: nan },
    ...{ brokerCpuPercent: nan, feedCpuPercent: nan, loadBefore: nan, loadAfter: nan },
    seconds: nan,
    events: 0,
    frames: 0,
    notes: [note],
  }
}

/**
 * The sink alone on pre-formatted messages (bench/producer-only.ts): atkafka's sink on the client
 * of `--atkafka-arg --kafka-client=…` (or, for `producer-only-kafkajs`, on KafkaJS) with its
 * `--kafka-compression`, or (mode `confluent`) the optional librdkafka sink of bench/confluent/.
 */
function producerScenario(mode: 'sink' | 'confluent', client?: 'kafkajs'): Scenario {
  const confluent = mode === 'confluent'
  return {
    name: confluent
      ? 'producer-only-confluent'
      : client
        ? `producer-only-${client}`
        : 'producer-only',
    description: confluent
      ? 'producer-only with @confluentinc/kafka-javascript (librdkafka); needs bash bench/confluent/setup.sh'
      : client
        ? `producer-only on --kafka-client ${client}, beside producer-only`
        : 'The Kafka sink alone on pre-formatted messages (its own ceiling)',
    needsKafka: true,
    async run(ctx) {
      const corpus = `${ctx.synthetic.name}, pre-formatted`
      if (confluent && !confluentInstalled()) {
        return notRun(this.name, corpus, 'not installed: run bash bench/confluent/setup.sh')
      }
      const topic = `bench-${this.name}-${Date.now()}`
      const total = ctx.quick ? 20_000 : 300_000
      const clientName = client ?? atkafkaFlag(ctx.atkafkaArgs, 'kafka-client')
      const compression = atkafkaFlag(ctx.atkafkaArgs, 'kafka-compression')
      try {
        await createBenchTopic(ctx.bootstrap!, topic, 200)
        const r = await runNode('producer-only.ts', [
          ...['--bootstrap', ctx.bootstrap!, '--topic', topic, '--corpus', ctx.syntheticDir],
          ...['--messages', String(total), '--mode', mode],
          ...['--producers', atkafkaFlag(ctx.atkafkaArgs, 'kafka-producers')],
          ...['--client', clientName, '--compression', compression],
        ])
        const notes: string[] = []
        const inTopic = await topicMessageCount(ctx.bootstrap!, topic)
        if (inTopic !== total) notes.push(`topic holds ${inTopic} messages, expected ${total}`)
        const stored = await topicBytes(ctx.bootstrap!, topic, 200)
        notes.push(
          `client ${clientName}, compression ${compression}: ${Math.round(stored / inTopic)} B/message on the broker`,
        )
        const nan = Number.NaN
        return {
          scenario: this.name,
          corpus,
          opsPerSec: r['messages']! / r['seconds']!,
          framesPerSec: nan,
          mbPerSec: r['valueBytes']! / r['seconds']! / 1e6,
          p50Ms: r['p50Ms']!,
          p99Ms: r['p99Ms']!,
          peakRssMb: r['peakRssMb']!,
          cpuPercent: r['cpuPercent']!,
          cpuUsPerEvent: (r['cpuPercent']! * r['seconds']! * 1e4) / r['messages']!,
          ...{ machineBusyPercent: nan, brokerCpuPercent: nan, feedCpuPercent: nan },
          ...{ loadBefore: nan, loadAfter: nan },
          seconds: r['seconds']!,
          events: r['messages']!,
          frames: 0,
          notes: [...notes, 'latency: write to sink → ack, per frame unit'],
        }
      } finally {
        await deleteTopic(ctx.bootstrap!, topic)
      }
    },
  }
}

export const SCENARIOS: readonly Scenario[] = [
  decodeScenario('real'),
  decodeScenario('synthetic'),
  relayScenario('relay-stdout', false, 'Relay → atkafka --stdout > /dev/null (no Kafka)'),
  relayScenario('relay-kafka', true, 'Relay → atkafka → Kafka, as fast as it goes'),
  tapScenario,
  jetstreamScenario,
  steadyScenario,
  producerScenario('sink'),
  producerScenario('sink', 'kafkajs'),
  producerScenario('confluent'),
]

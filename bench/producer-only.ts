// The Kafka producer alone on pre-formatted messages, in its own process: the sink's ceiling.
//
//   node bench/producer-only.ts --bootstrap <host:port> --topic <t> (--real | --corpus <dir>)
//     [--messages 200000] [--window 10000] [--mode sink|raw|confluent] [--input-mb 48]
//     sink mode: [--producers 4] [--client platformatic|kafkajs] [--compression none|gzip|snappy|lz4|zstd]; raw mode only: [--batch 5000] [--requests 1] [--compression none|gzip] [--idempotent true]
//
// `sink` drives src/sink/kafka.ts (on the --client adapter, default platformatic) exactly as the pipeline does (units of one frame's messages,
// reading pauses at --window unacknowledged messages and resumes at half). `raw` drives a bare
// KafkaJS producer with the given settings, to compare settings. `confluent` drives the same units
// through bench/confluent/sink.ts (librdkafka's @confluentinc/kafka-javascript behind the Sink
// interface; `bash bench/confluent/setup.sh` installs it). Prints one JSON line.

import { parseArgs } from 'node:util'
import { CompressionTypes, Partitioners } from 'kafkajs'
import { pino } from 'pino'
import { Registry } from 'prom-client'
import { plainFormatter } from '../src/format.ts'
import { keyOf } from '../src/events.ts'
import { decodeFrame } from '../src/firehose/frame.ts'
import { splitMessage } from '../src/firehose/split.ts'
import { createMetrics } from '../src/metrics.ts'
import { createKafka } from '../src/sink/kafkajs-client.ts'
import { KafkaSink } from '../src/sink/kafka.ts'
import {
  type Compression,
  type KafkaClientName,
  createProducerClient,
} from '../src/sink/clients.ts'
import type { OutMessage, Sink } from '../src/sink/sink.ts'
import { REAL_CAPTURE_DIR, readFramesFile } from './corpus/store.ts'
import { ownPeakRssMb } from './proc-stats.ts'
import { createConfluentSink } from './confluent/sink.ts'

const { values } = parseArgs({
  options: {
    bootstrap: { type: 'string' },
    topic: { type: 'string' },
    real: { type: 'boolean', default: false },
    corpus: { type: 'string' },
    messages: { type: 'string', default: '200000' },
    window: { type: 'string', default: '10000' },
    mode: { type: 'string', default: 'sink' },
    batch: { type: 'string', default: '5000' },
    requests: { type: 'string', default: '1' },
    producers: { type: 'string', default: '4' },
    compression: { type: 'string', default: 'none' },
    client: { type: 'string', default: 'platformatic' },
    idempotent: { type: 'string', default: 'true' },
    'input-mb': { type: 'string', default: '48' },
  },
})
if (values.bootstrap === undefined || values.topic === undefined) {
  throw new Error('--bootstrap and --topic are required')
}
const bootstrap = values.bootstrap
const topic = values.topic
const total = Number(values.messages)
const window = Number(values.window)

// Pre-format every event of the corpus's first --input-mb MB once; units are one frame's messages,
// sent round and round.
const file =
  values.corpus !== undefined ? `${values.corpus}/frames.bin` : `${REAL_CAPTURE_DIR}/frames.bin`
const format = plainFormatter()
const units: OutMessage[][] = []
for (const frame of readFramesFile(file, Number(values['input-mb']) * 2 ** 20)) {
  const msg = decodeFrame(frame)
  if (msg.type === 'error') continue
  const events = splitMessage(msg, () => true).events
  if (events.length > 0) units.push(events.map((e) => ({ key: keyOf(e), value: format(e) })))
}

const logger = pino({ level: 'warn' }, pino.destination(2))
const kafka = createKafka({ brokers: [bootstrap], security: { ssl: false }, logger })
const latencies: number[] = []

interface Writer {
  start(): Promise<void>
  write(messages: OutMessage[], done: () => void): void
  close(): Promise<void>
}

/** A Sink driven as the bench drives every writer; `afterClose` reports what it counted. */
function sinkAsWriter(sink: Sink, afterClose: () => void = () => {}): Writer {
  return {
    start: () => sink.start(new AbortController().signal),
    write: (m, done) => sink.write(m, done),
    close: async () => {
      await sink.flush()
      await sink.close()
      afterClose()
    },
  }
}

function sinkWriter(): Writer {
  const sink = new KafkaSink({
    client: createProducerClient({
      client: values.client as KafkaClientName,
      brokers: [bootstrap],
      security: { ssl: false },
      compression: values.compression as Compression,
      logger,
    }),
    topic,
    partitions: 200,
    replicationFactor: 1,
    producers: Number(values.producers),
    logger,
    metrics: createMetrics(new Registry()),
    onFatal: (err) => {
      throw err
    },
  })
  return sinkAsWriter(sink)
}

/** librdkafka (@confluentinc/kafka-javascript) behind the Sink interface, driven as `sink` is. */
async function confluentWriter(): Promise<Writer> {
  const sink = await createConfluentSink({
    bootstrap,
    topic,
    logger,
    metrics: createMetrics(new Registry()),
    onFatal: (err) => {
      throw err
    },
  })
  return sinkAsWriter(sink, () => {
    if (sink.errors > 0 || sink.queueFullRetries > 0) {
      logger.warn(
        { errors: sink.errors, queueFullRetries: sink.queueFullRetries },
        'librdkafka reported errors or a full queue',
      )
    }
  })
}

/** A bare KafkaJS producer: batches of up to --batch messages, up to --requests at once. */
function rawWriter(): Writer {
  const idempotent = values.idempotent === 'true'
  const requests = Number(values.requests)
  const producer = kafka.producer({
    idempotent,
    maxInFlightRequests: requests,
    allowAutoTopicCreation: false,
    createPartitioner: Partitioners.DefaultPartitioner,
  })
  const compression = values.compression === 'gzip' ? CompressionTypes.GZIP : CompressionTypes.None
  const batchSize = Number(values.batch)
  let queue: Array<{ m: OutMessage; done?: () => void }> = []
  let inFlight = 0
  const pump = () => {
    while (inFlight < requests && queue.length > 0) {
      const batch = queue.slice(0, batchSize)
      queue = queue.slice(batch.length)
      inFlight++
      producer
        .send({ topic, acks: -1, compression, messages: batch.map((e) => e.m) })
        .then(() => {
          inFlight--
          for (const e of batch) e.done?.()
          pump()
        })
        .catch((err: unknown) => {
          logger.error({ err: String(err) }, 'produce failed')
          process.exitCode = 1
        })
    }
  }
  return {
    start: () => producer.connect(),
    write: (messages, done) => {
      messages.forEach((m, i) =>
        queue.push({ m, done: i === messages.length - 1 ? done : undefined }),
      )
      setImmediate(pump)
    },
    close: () => producer.disconnect(),
  }
}

const writer =
  values.mode === 'raw'
    ? rawWriter()
    : values.mode === 'confluent'
      ? await confluentWriter()
      : sinkWriter()
await writer.start()

let written = 0
let bytes = 0
let acked = 0
let inFlight = 0
let paused = false
let next = 0
const cpu0 = process.cpuUsage()
const t0 = performance.now()
await new Promise<void>((resolve) => {
  const pump = () => {
    paused = false
    while (!paused && written < total) {
      const unit = units[next++ % units.length]!
      const n = Math.min(unit.length, total - written)
      const sentAt = performance.now()
      written += n
      inFlight += n
      for (let i = 0; i < n; i++) bytes += unit[i]!.value.length
      writer.write(unit.slice(0, n), () => {
        latencies.push(performance.now() - sentAt)
        acked += n
        inFlight -= n
        if (acked >= total) resolve()
        else if (paused && inFlight <= window / 2) {
          paused = false
          setImmediate(pump)
        }
      })
      if (inFlight >= window) paused = true
    }
  }
  pump()
})
const seconds = (performance.now() - t0) / 1000
const cpu = process.cpuUsage(cpu0)
await writer.close()
latencies.sort((a, b) => a - b)
const pct = (p: number) =>
  latencies[Math.min(latencies.length - 1, Math.ceil((p / 100) * latencies.length) - 1)]
process.stdout.write(
  JSON.stringify({
    messages: acked,
    seconds,
    valueBytes: bytes,
    p50Ms: pct(50),
    p99Ms: pct(99),
    cpuPercent: (cpu.user + cpu.system) / 1e4 / seconds,
    peakRssMb: ownPeakRssMb(),
  }) + '\n',
)

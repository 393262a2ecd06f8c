// The librdkafka-based @confluentinc/kafka-javascript producer behind atkafka's Sink interface,
// for the `producer-only-confluent` bench scenario only: it is not a dependency of atkafka and is
// installed into .cache/bench/confluent/ by `bash bench/confluent/setup.sh`.

import { existsSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { AtKafkaError, FatalError, errorMessage } from '../../src/errors.ts'
import type { Logger } from '../../src/logger.ts'
import type { Metrics } from '../../src/metrics.ts'
import {
  Group,
  Outstanding,
  type OutMessage,
  type Sink,
  connectWithRetry,
} from '../../src/sink/sink.ts'

export const CONFLUENT_VERSION = '1.10.1'
export const CONFLUENT_DIR = join(import.meta.dirname, '..', '..', '.cache', 'bench', 'confluent')
const PACKAGE = '@confluentinc/kafka-javascript'
const PACKAGE_DIR = join(CONFLUENT_DIR, 'node_modules', PACKAGE)

/** Whether `bash bench/confluent/setup.sh` installed the package. */
export function confluentInstalled(): boolean {
  return existsSync(join(PACKAGE_DIR, 'package.json'))
}

/** The package is missing or does not load; the message says how to install it. */
export class ConfluentNotInstalledError extends AtKafkaError {
  override name = 'ConfluentNotInstalledError'
}

/** librdkafka reported an error no retry can fix (fatal idempotence state, authorisation). */
export class ConfluentFatalError extends FatalError {
  override name = 'ConfluentFatalError'
}

// The small part of the package's API used here (its own types live in the package, which
// TypeScript must not need to check the repository).

interface RdError {
  message: string
  code: number
  isFatal?: boolean
}

interface RdDeliveryReport {
  topic: string
  partition: number
  offset: number
  opaque?: unknown
}

type RdConfig = Record<string, string | number | boolean>

interface RdProducer {
  connect(options: { topic?: string; timeout?: number }, cb: (err: RdError | null) => void): this
  produce(
    topic: string,
    partition: number | null,
    value: Buffer,
    key: string,
    timestamp: number | null,
    opaque: unknown,
  ): unknown
  on(event: 'delivery-report', cb: (err: RdError | null, report: RdDeliveryReport) => void): this
  on(event: 'event.error', cb: (err: RdError) => void): this
  setPollInBackground(set: boolean): unknown
  flush(timeout: number, cb: (err: RdError | null) => void): this
  disconnect(timeout: number, cb: (err: unknown) => void): this
}

interface ConfluentModule {
  Producer: new (conf: RdConfig) => RdProducer
  CODES: { ERRORS: Record<string, number> }
  librdkafkaVersion: string
}

function loadConfluent(): ConfluentModule {
  const hint = `run \`bash bench/confluent/setup.sh\` (installs ${PACKAGE}@${CONFLUENT_VERSION} into .cache/bench/confluent/)`
  if (!confluentInstalled()) {
    throw new ConfluentNotInstalledError(`${PACKAGE} is not installed: ${hint}`)
  }
  try {
    return createRequire(join(CONFLUENT_DIR, 'package.json'))(PACKAGE) as ConfluentModule
  } catch (err) {
    throw new ConfluentNotInstalledError(
      `${PACKAGE} in ${PACKAGE_DIR} does not load (${errorMessage(err)}): ${hint}`,
      { cause: err },
    )
  }
}

export interface ConfluentSinkOptions {
  bootstrap: string
  topic: string
  logger: Logger
  metrics?: Metrics
  /** Called when the sink can never succeed. */
  onFatal: (err: Error) => void
}

interface Entry {
  key: string
  value: string
  group: Group
}

/** How long to wait before producing again after librdkafka's queue was full. */
const QUEUE_FULL_WAIT_MS = 5
/** How long to wait before producing again after any other refusal of produce(). */
const RETRY_MS = 200
/** How long {@link ConfluentSink.close} waits for outstanding acknowledgements. */
const CLOSE_FLUSH_MS = 10_000

/** Error codes no retry can fix. */
const FATAL_CODES = [
  'ERR__FATAL',
  'ERR__AUTHENTICATION',
  'ERR_TOPIC_AUTHORIZATION_FAILED',
  'ERR_CLUSTER_AUTHORIZATION_FAILED',
  'ERR_SASL_AUTHENTICATION_FAILED',
  'ERR_TOPIC_EXCEPTION',
]

/**
 * The callback `Producer` of @confluentinc/kafka-javascript behind the {@link Sink} interface.
 * Idempotent, acks from all in-sync replicas, `murmur2_random` partitioning (the same partitions
 * as the Java client, KafkaJS and the KafkaSink), linger 5 ms, no compression. Each message
 * carries its entry as `opaque`; its delivery report acknowledges the entry's {@link Group}.
 * librdkafka retries failed requests itself (in order, idempotent); a message it finally reports
 * as failed is produced again, a message too large is dropped with a metric.
 */
export class ConfluentSink implements Sink {
  readonly #opts: ConfluentSinkOptions
  readonly #log: Logger
  readonly #codes: Record<string, number>
  readonly #fatalCodes: Set<number>
  readonly #producer: RdProducer
  readonly #pending = new Outstanding()
  readonly #stop = new AbortController()
  /** Messages produce() refused for a full queue, to produce again in order. */
  #backlog: Entry[] = []
  #backlogTimer: NodeJS.Timeout | undefined
  #connected = false
  #closed = false
  #errors = 0
  #queueFull = 0
  #okUncounted = 0

  constructor(kafka: ConfluentModule, opts: ConfluentSinkOptions) {
    this.#opts = opts
    this.#log = opts.logger
    this.#codes = kafka.CODES.ERRORS
    this.#fatalCodes = new Set(
      FATAL_CODES.map((c) => this.#codes[c]).filter((c) => c !== undefined),
    )
    this.#producer = new kafka.Producer({
      'bootstrap.servers': opts.bootstrap,
      'client.id': 'atkafka-bench-confluent',
      'enable.idempotence': true,
      'request.required.acks': -1,
      partitioner: 'murmur2_random',
      'linger.ms': 5,
      'compression.codec': 'none',
      dr_cb: true,
    })
    this.#producer.on('delivery-report', (err, report) => this.#delivered(err, report))
    this.#producer.on('event.error', (err) => {
      this.#errors++
      this.#log.warn({ err: err.message, code: err.code }, 'librdkafka error')
      if (this.#isFatal(err)) this.#fail(err)
    })
  }

  get pending(): number {
    return this.#pending.count
  }

  /** Errors librdkafka reported (client errors and failed deliveries). */
  get errors(): number {
    return this.#errors
  }

  /** Times produce() found librdkafka's queue full and waited. */
  get queueFullRetries(): number {
    return this.#queueFull
  }

  isReady(): boolean {
    return this.#connected && !this.#stop.signal.aborted
  }

  /** Connect (the topic must exist); retries until `signal` aborts. */
  async start(signal: AbortSignal): Promise<void> {
    const { topic } = this.#opts
    await connectWithRetry(
      () =>
        new Promise<void>((resolve, reject) =>
          this.#producer.connect({ topic, timeout: 10_000 }, (err) =>
            err ? reject(new AtKafkaError(err.message, { cause: err })) : resolve(),
          ),
        ),
      { signal, logger: this.#log },
    )
    this.#producer.setPollInBackground(true)
    this.#connected = true
    this.#log.info({ topic }, 'connected to Kafka (librdkafka)')
    this.#produceBacklog()
  }

  write(messages: readonly OutMessage[], done: () => void): void {
    const group = new Group(messages.length, done)
    this.#pending.add(messages.length)
    for (const m of messages) this.#backlog.push({ key: m.key, value: m.value, group })
    this.#produceBacklog()
  }

  /** Resolves once everything written is acknowledged, `signal` aborts, or a fatal error. */
  async flush(signal?: AbortSignal): Promise<void> {
    await this.#pending.zero(signal, this.#stop.signal)
  }

  /** Wait up to 10 s for outstanding acknowledgements, then disconnect. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    if (this.#connected) await this.flush(AbortSignal.timeout(CLOSE_FLUSH_MS))
    this.#stop.abort()
    clearTimeout(this.#backlogTimer)
    if (!this.#connected) return
    this.#connected = false
    await new Promise<void>((resolve) => this.#producer.disconnect(CLOSE_FLUSH_MS, () => resolve()))
  }

  /** Hand the backlog to librdkafka in order, until it is empty or the queue is full. */
  #produceBacklog(): void {
    if (!this.#connected || this.#backlogTimer !== undefined || this.#stop.signal.aborted) return
    const backlog = this.#backlog
    let i = 0
    for (; i < backlog.length; i++) {
      const e = backlog[i]!
      try {
        this.#producer.produce(this.#opts.topic, null, Buffer.from(e.value), e.key, null, e)
      } catch (err) {
        const code = (err as Partial<RdError>).code
        if (code === this.#codes['ERR_MSG_SIZE_TOO_LARGE']) {
          this.#errors++
          this.#drop(e, errorMessage(err))
          continue
        }
        if (code === this.#codes['ERR__QUEUE_FULL']) {
          this.#queueFull++
        } else {
          this.#errors++
          if (code !== undefined && this.#isFatal({ code })) {
            this.#fail(err)
            return
          }
          this.#log.warn({ err: errorMessage(err), code }, 'produce failed, retrying')
        }
        // Wait for delivery reports to make room (or the error to pass), then go on in order.
        const wait = code === this.#codes['ERR__QUEUE_FULL'] ? QUEUE_FULL_WAIT_MS : RETRY_MS
        this.#backlogTimer = setTimeout(() => {
          this.#backlogTimer = undefined
          this.#produceBacklog()
        }, wait)
        break
      }
    }
    this.#backlog = i === backlog.length ? [] : backlog.slice(i)
  }

  #delivered(err: RdError | null, report: RdDeliveryReport): void {
    const e = report.opaque as Entry
    if (!err) {
      this.#countOk()
      this.#acknowledged(e)
      return
    }
    this.#errors++
    if (err.code === this.#codes['ERR_MSG_SIZE_TOO_LARGE']) {
      this.#drop(e, err.message)
    } else if (this.#isFatal(err)) {
      this.#fail(err)
    } else {
      // librdkafka gave up on it (e.g. message.timeout.ms): produce it again.
      this.#opts.metrics?.produceRetries.inc()
      this.#log.warn({ err: err.message, code: err.code }, 'delivery failed, producing again')
      this.#backlog.push(e)
      this.#produceBacklog()
    }
  }

  /** Count acknowledged messages in the metric once per burst of delivery reports, not each. */
  #countOk(): void {
    const metrics = this.#opts.metrics
    if (metrics === undefined) return
    if (this.#okUncounted++ === 0) {
      setImmediate(() => {
        metrics.producedEvents.inc({ status: 'ok' }, this.#okUncounted)
        this.#okUncounted = 0
      })
    }
  }

  #acknowledged(e: Entry): void {
    this.#pending.done(1)
    e.group.ack()
  }

  /** A message Kafka refuses as too large is dropped, as the KafkaSink does. */
  #drop(e: Entry, reason: string): void {
    this.#opts.metrics?.producedEvents.inc({ status: 'error' })
    this.#opts.metrics?.droppedEvents.inc({ reason: 'too-large' })
    this.#log.error(
      { key: e.key, bytes: e.value.length, err: reason },
      'Kafka refused a message as too large; dropped',
    )
    this.#acknowledged(e)
  }

  #isFatal(err: Pick<RdError, 'code' | 'isFatal'>): boolean {
    return err.isFatal === true || this.#fatalCodes.has(err.code)
  }

  #fail(err: unknown): void {
    if (this.#stop.signal.aborted) return
    this.#stop.abort()
    this.#opts.onFatal(
      new ConfluentFatalError(`Kafka (librdkafka) failed for good: ${errorMessage(err)}`, {
        cause: err,
      }),
    )
  }
}

/** Load the package from .cache/bench/confluent/ and create a {@link ConfluentSink}. */
export async function createConfluentSink(opts: ConfluentSinkOptions): Promise<ConfluentSink> {
  const kafka = loadConfluent()
  opts.logger.info(
    { version: CONFLUENT_VERSION, librdkafka: kafka.librdkafkaVersion },
    `using ${PACKAGE}`,
  )
  return new ConfluentSink(kafka, opts)
}

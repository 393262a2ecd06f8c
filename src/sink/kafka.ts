import { setTimeout as sleep } from 'node:timers/promises'
import { errorMessage } from '../errors.ts'
import type { Logger } from '../logger.ts'
import type { Metrics } from '../metrics.ts'
import { backoffDelay } from '../backoff.ts'
import { murmur2 } from './partitioner.ts'
import {
  type KafkaFatalError,
  ProduceError,
  type Producer,
  type ProducerClient,
  type ProduceRecord,
  errorKind,
  toKafkaFatalError,
} from './producer.ts'
import { Group, Outstanding, type OutMessage, type Sink, connectWithRetry } from './sink.ts'

export { KafkaFatalError } from './producer.ts'

/** The metrics the Kafka sink updates. */
export type KafkaSinkMetrics = Pick<
  Metrics,
  'producedEvents' | 'produceRetries' | 'produceLatency' | 'droppedEvents'
>

export interface KafkaSinkOptions {
  /** The Kafka client library (one adapter of the Producer port). */
  client: ProducerClient
  /** The bootstrap servers, for log lines. */
  brokers?: readonly string[]
  topic: string
  partitions: number
  replicationFactor: number
  logger: Logger
  metrics: KafkaSinkMetrics
  /** Called when the sink can never succeed (e.g. authentication or authorisation refused). */
  onFatal: (err: Error) => void
  /** Largest number of messages in one produce request. */
  maxBatchMessages?: number
  /**
   * Largest number of key and value bytes (UTF-8) in one produce request (default 768 KiB). The broker
   * refuses a partition's batch over `message.max.bytes` (1 MiB by default), and one producer's
   * request may all go to one partition.
   */
  maxBatchBytes?: number
  /**
   * How long to let a request that is not full wait for more messages (default 5 ms): fewer,
   * larger requests cost the broker and the client much less per message.
   */
  lingerMs?: number
  /**
   * Independent idempotent producers (default 1), each with one request in flight. A key always
   * goes to the same one (murmur2 of the key modulo their number), so per-key order holds; when
   * their number divides the topic's partition count each owns whole partitions.
   */
  producers?: number
  /** Base of the backoff between retries of a failed batch (default 200 ms, growing to 10 s). */
  retryBaseMs?: number
}

interface Entry extends ProduceRecord {
  group: Group
}

/** A produce request unanswered for this long makes the sink not ready (a broker that hangs). */
const STALLED_MS = 5000
/** Starting without an answer from Kafka for this long is logged (then again every 15 s, at warn). */
export const WAITING_NOTICE_MS = 2000
const WAITING_REPEAT_MS = 15000

/** Whether `err` (from a {@link ProducerClient} or {@link Producer}) is one no retry can fix. */
export function isFatalKafkaError(err: unknown): boolean {
  return errorKind(err) === 'fatal'
}

/**
 * Kafka behind the {@link Sink} interface, on the {@link ProducerClient} port. Idempotent, acks
 * from all in-sync replicas, murmur2 key partitioning (the same partitions as the Java client and
 * at-kafka).
 * Messages are spread over {@link KafkaSinkOptions.producers} lanes by key; each lane has its own
 * producer with exactly one produce request in flight, and a failed batch is retried before
 * anything after it in that lane, so per-key order holds even across retries; messages written
 * meanwhile are batched for the lane's next request.
 */
export class KafkaSink implements Sink {
  readonly #opts: KafkaSinkOptions
  readonly #log: Logger
  readonly #pending = new Outstanding()
  readonly #lanes: Lane[]
  #connected = false
  #closed = false
  readonly #stop = new AbortController()

  constructor(opts: KafkaSinkOptions) {
    this.#opts = opts
    this.#log = opts.logger
    const settings: LaneSettings = {
      opts,
      maxMessages: opts.maxBatchMessages ?? 5000,
      maxBytes: opts.maxBatchBytes ?? 768 * 1024,
      lingerMs: opts.lingerMs ?? 5,
      stop: this.#stop.signal,
      acknowledged: (batch) => {
        this.#pending.done(batch.length)
        for (const e of batch) e.group.ack()
      },
      fatal: (err) => {
        this.#opts.onFatal(err)
        this.#stop.abort()
      },
    }
    const n = Math.max(1, opts.producers ?? 1)
    this.#lanes = Array.from({ length: n }, (_, i) => new Lane(settings, i))
  }

  get pending(): number {
    return this.#pending.count
  }

  /**
   * Connected, no lane's batch has failed twice in a row (a single failure its retry fixes, as
   * when a partition's leader moves, does not count) and no produce request has hung for
   * {@link STALLED_MS}.
   */
  isReady(): boolean {
    return this.#connected && this.#lanes.every((l) => l.isReady())
  }

  /** Connect and create the topic if missing; retries until `signal` aborts, unless fatal. */
  async start(signal: AbortSignal): Promise<void> {
    const { topic } = this.#opts
    const stopNotices = this.#waitingNotices()
    try {
      await this.#connect(signal)
    } finally {
      stopNotices()
    }
    this.#connected = true
    this.#log.info({ topic, producers: this.#lanes.length }, 'connected to Kafka')
    for (const l of this.#lanes) l.kick()
  }

  /**
   * Log "waiting for Kafka at …" after {@link WAITING_NOTICE_MS} without a connection (a broker
   * that accepts connections and never answers gives no error for as long as a request may
   * take), then every 15 s at warn; returns the function that stops it.
   */
  #waitingNotices(): () => void {
    const where = this.#opts.brokers?.join(',') ?? 'the bootstrap servers'
    const since = performance.now()
    let timer: NodeJS.Timeout
    const notice = (level: 'info' | 'warn') => {
      const waitedMs = Math.round(performance.now() - since)
      this.#log[level]({ brokers: where, waitedMs }, `waiting for Kafka at ${where}: no answer yet`)
      timer = setTimeout(() => notice('warn'), WAITING_REPEAT_MS).unref()
    }
    timer = setTimeout(() => notice('info'), WAITING_NOTICE_MS).unref()
    return () => clearTimeout(timer)
  }

  async #connect(signal: AbortSignal): Promise<void> {
    const { client, topic, partitions, replicationFactor } = this.#opts
    await connectWithRetry(
      async () => {
        try {
          const created = await client.ensureTopic(topic, partitions, replicationFactor)
          if (created) this.#log.info({ topic, partitions, replicationFactor }, 'created topic')
          await Promise.all(this.#lanes.map((l) => l.connect()))
        } catch (err) {
          await Promise.all(this.#lanes.map((l) => l.disconnect()))
          throw err
        }
      },
      {
        signal,
        logger: this.#log,
        fatal: (err) =>
          err instanceof ProduceError && err.kind === 'fatal' ? toKafkaFatalError(err) : undefined,
      },
    )
  }

  write(messages: readonly OutMessage[], done: () => void): void {
    const group = new Group(messages.length, done)
    const lanes = this.#lanes
    const topic = this.#opts.topic
    if (lanes.length === 1) {
      for (const m of messages) lanes[0]!.push({ topic, key: m.key, value: m.value, group })
    } else {
      for (const m of messages) {
        const lane = lanes[(murmur2(m.key) & 0x7fffffff) % lanes.length]!
        lane.push({ topic, key: m.key, value: m.value, group })
      }
    }
    this.#pending.add(messages.length)
    for (const l of lanes) l.kick()
  }

  /** Resolves once everything written is acknowledged, `signal` aborts, or a fatal error. */
  async flush(signal?: AbortSignal): Promise<void> {
    await this.#pending.zero(signal, this.#stop.signal)
  }

  /** Stop retrying and disconnect; call after {@link flush}. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    this.#stop.abort()
    this.#connected = false
    await Promise.all(this.#lanes.map((l) => l.disconnect()))
    await this.#opts.client.close()
  }
}

interface LaneSettings {
  opts: KafkaSinkOptions
  maxMessages: number
  maxBytes: number
  lingerMs: number
  /** Aborted when the sink closes or fails for good. */
  stop: AbortSignal
  /** These messages were acknowledged (or dropped with a metric). */
  acknowledged: (batch: readonly Entry[]) => void
  fatal: (err: KafkaFatalError) => void
}

/** One producer and its queue: batches, one request in flight, retries in order. */
class Lane {
  readonly #s: LaneSettings
  readonly #log: Logger
  #producer: Producer | undefined
  #queue: Entry[] = []
  #head = 0
  #sending = false
  #ready = false
  /** When the produce request under way was sent (performance.now()), if one is. */
  #requestSince: number | undefined

  constructor(settings: LaneSettings, index: number) {
    this.#s = settings
    this.#log = index === 0 ? settings.opts.logger : settings.opts.logger.child({ producer: index })
  }

  isReady(): boolean {
    const since = this.#requestSince
    return this.#ready && (since === undefined || performance.now() - since < STALLED_MS)
  }

  async connect(): Promise<void> {
    const producer = this.#s.opts.client.createProducer()
    try {
      await producer.connect()
    } catch (err) {
      await producer.close()
      throw err
    }
    this.#producer = producer
    this.#ready = true
  }

  async disconnect(): Promise<void> {
    this.#ready = false
    const producer = this.#producer
    this.#producer = undefined
    await producer?.close()
  }

  push(entry: Entry): void {
    this.#queue.push(entry)
  }

  /** Start sending if there is something to send and nothing under way. */
  kick(): void {
    if (!this.#sending && this.#producer !== undefined && this.#head < this.#queue.length) {
      void this.#pump()
    }
  }

  #takeBatch(): Entry[] {
    const end = Math.min(this.#queue.length, this.#head + this.#s.maxMessages)
    let bytes = 0
    let i = this.#head
    for (; i < end; i++) {
      const e = this.#queue[i]!
      bytes += e.key.length + Buffer.byteLength(e.value)
      if (bytes > this.#s.maxBytes && i > this.#head) break
    }
    const batch = this.#queue.slice(this.#head, i)
    this.#head = i
    // Drop taken entries soon: each holds a formatted message, and tens of thousands of them
    // kept alive here made up most of the heap at high rates.
    if (this.#head === this.#queue.length) {
      this.#queue = []
      this.#head = 0
    } else if (this.#head > 1024 && this.#head * 2 > this.#queue.length) {
      this.#queue = this.#queue.slice(this.#head)
      this.#head = 0
    }
    return batch
  }

  async #pump(): Promise<void> {
    this.#sending = true
    try {
      const { lingerMs, maxMessages, stop } = this.#s
      while (this.#head < this.#queue.length && !stop.aborted) {
        if (lingerMs > 0 && this.#queue.length - this.#head < maxMessages) await sleep(lingerMs)
        await this.#sendWithRetry(this.#takeBatch())
      }
    } finally {
      this.#sending = false
    }
  }

  async #sendWithRetry(batch: Entry[]): Promise<void> {
    const { metrics } = this.#s.opts
    const stop = this.#s.stop
    for (let attempt = 0; ; attempt++) {
      const t0 = performance.now()
      try {
        this.#requestSince = t0
        await this.#producer!.send(batch).finally(() => (this.#requestSince = undefined))
        metrics.produceLatency.observe((performance.now() - t0) / 1000)
        metrics.producedEvents.inc({ status: 'ok' }, batch.length)
        if (!this.#ready) this.#log.info('Kafka is accepting messages again')
        this.#ready = true
        this.#s.acknowledged(batch)
        return
      } catch (err) {
        const kind = errorKind(err)
        const acked = err instanceof ProduceError ? err.acknowledged : []
        if (acked.length > 0 && acked.length < batch.length) {
          const done = new Set(acked)
          this.#s.opts.metrics.producedEvents.inc({ status: 'ok' }, done.size)
          this.#s.acknowledged(batch.filter((_, i) => done.has(i)))
          batch = batch.filter((_, i) => !done.has(i))
        }
        if (kind === 'too-large') {
          await this.#splitTooLarge(batch, err)
          return
        }
        if (kind === 'fatal') {
          this.#ready = false
          this.#s.fatal(toKafkaFatalError(err as ProduceError))
          return
        }
        if (stop.aborted) return
        // One failure the next attempt may fix (a partition's leader moved) leaves the lane
        // ready; the same batch failing again, or a request that hung before it failed (the
        // lane already counted as not ready), means Kafka is not taking messages.
        if (attempt >= 1 || performance.now() - t0 >= STALLED_MS) this.#ready = false
        metrics.produceRetries.inc()
        const delay = backoffDelay(attempt, this.#s.opts.retryBaseMs ?? 200, 10000)
        this.#log.warn(
          { err: errorMessage(err), messages: batch.length, attempt, retryInMs: delay },
          'produce failed, retrying the same batch',
        )
        await sleep(delay, undefined, { signal: stop }).catch(() => {})
        if (attempt >= 2 && !stop.aborted) await this.#resetProducer()
      }
    }
  }

  /** Halve a batch the broker refused as too large; a single message it refuses is dropped. */
  async #splitTooLarge(batch: Entry[], err: unknown): Promise<void> {
    if (batch.length === 1) {
      const e = batch[0]!
      this.#s.opts.metrics.producedEvents.inc({ status: 'error' })
      this.#s.opts.metrics.droppedEvents.inc({ reason: 'too-large' })
      this.#log.error(
        { key: e.key, bytes: Buffer.byteLength(e.value), err: errorMessage(err) },
        'Kafka refused a message as too large; dropped',
      )
      this.#s.acknowledged(batch)
      return
    }
    this.#s.opts.metrics.produceRetries.inc()
    this.#log.warn(
      { messages: batch.length, err: errorMessage(err) },
      'Kafka refused a batch as too large; sending it in halves',
    )
    const mid = batch.length >> 1
    await this.#sendWithRetry(batch.slice(0, mid))
    await this.#sendWithRetry(batch.slice(mid))
  }

  /** A fresh producer (new producer id) after repeated failures, e.g. a broker that lost state. */
  async #resetProducer(): Promise<void> {
    const old = this.#producer
    this.#producer = this.#s.opts.client.createProducer()
    await old?.close()
    await this.#producer.connect().catch((err: unknown) => {
      this.#log.debug({ err: errorMessage(err) }, 'reconnecting producer failed')
    })
  }
}

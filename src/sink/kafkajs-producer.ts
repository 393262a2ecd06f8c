import { errorMessage } from '../errors.ts'
import { ensureTopic } from './kafkajs-client.ts'
import {
  CompressionTypes,
  type ICustomPartitioner,
  type Kafka,
  type Producer as KafkaJsProducer,
  Partitioners,
  type RecordMetadata,
} from 'kafkajs'
import { murmur2 } from './partitioner.ts'
import {
  ProduceError,
  type Producer,
  type ProducerClient,
  type ProduceRecord,
  refusedMessage,
  saslNotSpokenMessage,
  saslRejectedMessage,
} from './producer.ts'

/** Broker errors no retry can fix. */
const FATAL_TYPES = new Set([
  'TOPIC_AUTHORIZATION_FAILED',
  'CLUSTER_AUTHORIZATION_FAILED',
  'SASL_AUTHENTICATION_FAILED',
  'ILLEGAL_SASL_STATE',
  'UNSUPPORTED_SASL_MECHANISM',
  'INVALID_TOPIC_EXCEPTION',
])

function errorType(err: unknown): string | undefined {
  const type = (err as { type?: unknown }).type
  return typeof type === 'string' ? type : undefined
}

/**
 * A KafkaJS error as a {@link ProduceError}. KafkaJS wraps the broker's error (e.g. in
 * KafkaJSNonRetriableError or KafkaJSNumberOfRetriesExceeded), so walk `cause`.
 */
export function classifyKafkaJsError(err: unknown): ProduceError {
  if (err instanceof ProduceError) return err
  let e: unknown = err
  for (let depth = 0; e instanceof Error && depth < 8; depth++) {
    if (e.name === 'KafkaJSSASLAuthenticationError') {
      return new ProduceError('fatal', saslRejectedMessage(errorMessage(e)), { cause: err })
    }
    const type = errorType(e)
    if (type === 'ILLEGAL_SASL_STATE') {
      return new ProduceError('fatal', saslNotSpokenMessage(type, undefined), { cause: err })
    }
    if (type !== undefined && FATAL_TYPES.has(type)) {
      return new ProduceError('fatal', refusedMessage(type, errorMessage(e)), { cause: err })
    }
    e = e.cause
  }
  const kind = errorType(err) === 'MESSAGE_TOO_LARGE' ? 'too-large' : 'retriable'
  return new ProduceError(kind, errorMessage(err), { cause: err })
}

/**
 * KafkaJS's DefaultPartitioner (murmur2 of the key, as the Java client and at-kafka), with the
 * hash of string keys computed by {@link murmur2}; every other case (an explicit partition, a
 * Buffer or missing key) goes to KafkaJS's own partitioner. Same partition for every message.
 */
export const FastDefaultPartitioner: ICustomPartitioner = () => {
  const fallback = Partitioners.DefaultPartitioner()
  return (args) => {
    const { message, partitionMetadata } = args
    if (
      (message.partition === null || message.partition === undefined) &&
      typeof message.key === 'string'
    ) {
      return (murmur2(message.key) & 0x7fffffff) % partitionMetadata.length
    }
    return fallback(args)
  }
}

/** KafkaJS behind the {@link ProducerClient} port (its public API only). */
export class KafkaJsClient implements ProducerClient {
  readonly #kafka: Kafka
  readonly #compression: CompressionTypes

  constructor(kafka: Kafka, opts: { compression: 'none' | 'gzip' }) {
    this.#kafka = kafka
    this.#compression = opts.compression === 'gzip' ? CompressionTypes.GZIP : CompressionTypes.None
  }

  createProducer(): Producer {
    // The partition count KafkaJS last partitioned each topic's records with, to tell which
    // partitions a send covered (see unansweredPartitions).
    const partitionCounts = new Map<string, number>()
    const createPartitioner: ICustomPartitioner = () => {
      const partition = FastDefaultPartitioner()
      return (args) => {
        partitionCounts.set(args.topic, args.partitionMetadata.length)
        return partition(args)
      }
    }
    return new KafkaJsProducerAdapter(
      this.#kafka.producer({
        idempotent: true,
        maxInFlightRequests: 1,
        allowAutoTopicCreation: false,
        createPartitioner,
        // Few retries inside KafkaJS: a failure surfaces within about a second (so /ready turns
        // 503 at once) and the sink's own loop retries the same batch, in order, for as long as it takes.
        retry: { retries: 2, initialRetryTime: 100, maxRetryTime: 1000 },
      }),
      this.#compression,
      partitionCounts,
    )
  }

  async ensureTopic(
    topic: string,
    partitions: number,
    replicationFactor: number,
  ): Promise<boolean> {
    try {
      return await ensureTopic(this.#kafka, topic, partitions, replicationFactor)
    } catch (err) {
      throw classifyKafkaJsError(err)
    }
  }

  async close(): Promise<void> {}
}

/**
 * The partitions of `records` (murmur2 of the key modulo the topic's partition count, as
 * {@link FastDefaultPartitioner}) that `results` holds no answer for, and the indexes of the
 * records whose partition it does answer.
 *
 * KafkaJS (2.2.4, producer/sendMessages.js) retries a send inside one call, and on a retry skips
 * every broker that answered an earlier attempt: a partition whose leader moved to such a broker
 * (a leader change, e.g. a broker's controlled shutdown) is then never sent, yet the call
 * resolves. Its records are missing from `results`, and must be sent again.
 */
export function unansweredPartitions(
  records: readonly ProduceRecord[],
  results: readonly Pick<RecordMetadata, 'topicName' | 'partition'>[],
  partitionCount: (topic: string) => number | undefined,
): { missing: string[]; acknowledged: number[] } {
  const answered = new Set(results.map((r) => `${r.topicName}/${r.partition}`))
  const missing = new Set<string>()
  const acknowledged: number[] = []
  records.forEach((r, i) => {
    const count = partitionCount(r.topic)
    const part =
      count === undefined ? undefined : `${r.topic}/${(murmur2(r.key) & 0x7fffffff) % count}`
    if (part === undefined || answered.has(part)) acknowledged.push(i)
    else missing.add(part)
  })
  return { missing: [...missing], acknowledged }
}

class KafkaJsProducerAdapter implements Producer {
  readonly #producer: KafkaJsProducer
  readonly #compression: CompressionTypes
  readonly #partitionCounts: ReadonlyMap<string, number>

  constructor(
    producer: KafkaJsProducer,
    compression: CompressionTypes,
    partitionCounts: ReadonlyMap<string, number>,
  ) {
    this.#producer = producer
    this.#compression = compression
    this.#partitionCounts = partitionCounts
  }

  async connect(): Promise<void> {
    try {
      await this.#producer.connect()
    } catch (err) {
      throw classifyKafkaJsError(err)
    }
  }

  async send(records: readonly ProduceRecord[]): Promise<void> {
    const first = records[0]
    if (first === undefined) return
    let results: RecordMetadata[]
    try {
      if (records.every((r) => r.topic === first.topic)) {
        results = await this.#producer.send({
          topic: first.topic,
          acks: -1,
          compression: this.#compression,
          messages: records.map(toMessage),
        })
      } else {
        const byTopic = new Map<string, ReturnType<typeof toMessage>[]>()
        for (const r of records) {
          const list = byTopic.get(r.topic)
          if (list === undefined) byTopic.set(r.topic, [toMessage(r)])
          else list.push(toMessage(r))
        }
        results = await this.#producer.sendBatch({
          acks: -1,
          compression: this.#compression,
          topicMessages: [...byTopic].map(([topic, messages]) => ({ topic, messages })),
        })
      }
    } catch (err) {
      throw classifyKafkaJsError(err)
    }
    const { missing, acknowledged } = unansweredPartitions(records, results, (topic) =>
      this.#partitionCounts.get(topic),
    )
    if (missing.length > 0) {
      throw new ProduceError(
        'retriable',
        `KafkaJS resolved the send without an answer for partition ${missing.join(', ')} ` +
          `(a leader change during its retries); ${records.length - acknowledged.length} records to send again`,
        { acknowledged },
      )
    }
  }

  async close(): Promise<void> {
    await this.#producer.disconnect().catch(() => {})
  }
}

function toMessage(r: ProduceRecord): {
  key: string
  value: string
  headers?: Record<string, string>
} {
  return r.headers === undefined
    ? { key: r.key, value: r.value }
    : { key: r.key, value: r.value, headers: { ...r.headers } }
}

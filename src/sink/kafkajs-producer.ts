import { errorMessage } from '../errors.ts'
import { ensureTopic, topicExists } from './kafka-client.ts'
import { CompressionTypes, type Kafka, type Producer as KafkaJsProducer } from './kafkajs.ts'
import { FastDefaultPartitioner } from './partitioner.ts'
import {
  ProduceError,
  type Producer,
  type ProducerClient,
  type ProduceRecord,
  refusedMessage,
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
    if (type !== undefined && FATAL_TYPES.has(type)) {
      return new ProduceError('fatal', refusedMessage(type, errorMessage(e)), { cause: err })
    }
    e = e.cause
  }
  const kind = errorType(err) === 'MESSAGE_TOO_LARGE' ? 'too-large' : 'retriable'
  return new ProduceError(kind, errorMessage(err), { cause: err })
}

/** KafkaJS behind the {@link ProducerClient} port. */
export class KafkaJsClient implements ProducerClient {
  readonly #kafka: Kafka
  readonly #compression: CompressionTypes

  constructor(kafka: Kafka, opts: { compression: 'none' | 'gzip' }) {
    this.#kafka = kafka
    this.#compression = opts.compression === 'gzip' ? CompressionTypes.GZIP : CompressionTypes.None
  }

  createProducer(): Producer {
    return new KafkaJsProducerAdapter(
      this.#kafka.producer({
        idempotent: true,
        maxInFlightRequests: 1,
        allowAutoTopicCreation: false,
        createPartitioner: FastDefaultPartitioner,
        // Few retries inside KafkaJS: a failure surfaces within about a second (so /ready turns
        // 503 at once) and the sink's own loop retries the same batch, in order, for as long as it takes.
        retry: { retries: 2, initialRetryTime: 100, maxRetryTime: 1000 },
      }),
      this.#compression,
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

  async topicExists(topic: string): Promise<boolean> {
    try {
      return await topicExists(this.#kafka, topic)
    } catch (err) {
      throw classifyKafkaJsError(err)
    }
  }

  async close(): Promise<void> {}
}

class KafkaJsProducerAdapter implements Producer {
  readonly #producer: KafkaJsProducer
  readonly #compression: CompressionTypes

  constructor(producer: KafkaJsProducer, compression: CompressionTypes) {
    this.#producer = producer
    this.#compression = compression
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
    try {
      if (records.every((r) => r.topic === first.topic)) {
        await this.#producer.send({
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
        await this.#producer.sendBatch({
          acks: -1,
          compression: this.#compression,
          topicMessages: [...byTopic].map(([topic, messages]) => ({ topic, messages })),
        })
      }
    } catch (err) {
      throw classifyKafkaJsError(err)
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

import { AtKafkaError, FatalError } from '../errors.ts'

/** One record to produce. */
export interface ProduceRecord {
  topic: string
  key: string
  value: string
  /** Header values as UTF-8 strings. */
  headers?: Readonly<Record<string, string>>
}

/**
 * How a failure is handled: `retriable` sends the same batch again, `fatal` stops the sink (no
 * retry can fix it: credentials, authorisation, an invalid topic), `too-large` halves the batch.
 */
export type ProduceErrorKind = 'retriable' | 'fatal' | 'too-large'

/** A failure of a {@link Producer} or {@link ProducerClient}, classified by the adapter. */
export class ProduceError extends AtKafkaError {
  override name = 'ProduceError'
  readonly kind: ProduceErrorKind
  /**
   * Indexes (in the batch sent) of the records the broker did acknowledge before the request
   * failed, e.g. those for partitions whose leader answered while another's did not. Whole
   * partitions only, so the records left keep their order per key.
   */
  readonly acknowledged: readonly number[]

  constructor(
    kind: ProduceErrorKind,
    message: string,
    opts: { cause?: unknown; acknowledged?: readonly number[] } = {},
  ) {
    super(message, { cause: opts.cause, retryable: kind === 'retriable' })
    this.kind = kind
    this.acknowledged = opts.acknowledged ?? []
  }
}

/** Kafka refused us in a way no retry can fix: credentials, authorisation, an invalid topic. */
export class KafkaFatalError extends FatalError {
  override name = 'KafkaFatalError'
}

/** The message of a fatal error for refused SASL credentials (never the credentials themselves). */
export function saslRejectedMessage(detail: string): string {
  return `Kafka rejected the SASL credentials (check --kafka-sasl-mechanism, --kafka-sasl-username and --kafka-sasl-password): ${detail}`
}

/**
 * The message of a fatal error for a broker that answered the SASL handshake with `code`
 * (ILLEGAL_SASL_STATE): the listener at that address speaks no SASL, or speaks TLS too.
 */
export function saslNotSpokenMessage(code: string, broker: string | undefined): string {
  return `Kafka${broker === undefined ? '' : ` at ${broker}`} did not accept a SASL handshake (${code}): the listener may not speak SASL, or may need TLS; check that the port is the SASL_PLAINTEXT or SASL_SSL listener, and --kafka-sasl-mechanism and --kafka-ssl`
}

/** The message of a fatal error the broker answered with `code` (e.g. TOPIC_AUTHORIZATION_FAILED). */
export function refusedMessage(code: string, detail: string): string {
  return `Kafka refused the request (${code}): ${detail}`
}

/**
 * One producer of the sink: idempotent, acknowledgements from all in-sync replicas, records
 * partitioned by murmur2 of the key (the Java client's partitions).
 */
export interface Producer {
  connect(): Promise<void>
  /**
   * Resolves once every record is acknowledged; records of one key are written in the order
   * given. Rejects with a {@link ProduceError}; the records it does not list as acknowledged
   * count as not written and the caller sends them again (idempotence keeps a retried record
   * from being written twice while the producer id lasts).
   */
  send(records: readonly ProduceRecord[]): Promise<void>
  /** Idempotent; never rejects. */
  close(): Promise<void>
}

/** One Kafka client library behind the sink: makes producers and creates topics. */
export interface ProducerClient {
  /** A new, unconnected producer (a fresh producer id on connect). */
  createProducer(): Producer
  /**
   * Create the topic if it does not exist (with the given partitions and replication factor) and
   * wait for its partitions' leaders; true if it was created. Rejects with a {@link ProduceError}.
   */
  ensureTopic(topic: string, partitions: number, replicationFactor: number): Promise<boolean>
  /** Idempotent; never rejects. */
  close(): Promise<void>
}

/** The error to stop the sink with, for a fatal {@link ProduceError}. */
export function toKafkaFatalError(err: ProduceError): KafkaFatalError {
  return new KafkaFatalError(err.message, { cause: err.cause ?? err })
}

/** The kind of any error (unclassified errors are retriable). */
export function errorKind(err: unknown): ProduceErrorKind {
  return err instanceof ProduceError ? err.kind : 'retriable'
}

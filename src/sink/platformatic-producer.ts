import { hostname } from 'node:os'
import { setTimeout as sleep } from 'node:timers/promises'
import {
  Admin,
  type BaseOptions,
  type MessageToProduce,
  Producer as KafkaProducer,
  type ProduceResult,
  stringSerializers,
} from '@platformatic/kafka'
import type { Logger } from '../logger.ts'
import { type KafkaSecurity, tlsSettings } from './kafka-security.ts'
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

export type PlatformaticCompression = 'none' | 'gzip' | 'snappy' | 'lz4' | 'zstd'

export interface PlatformaticClientOptions {
  brokers: readonly string[]
  security: KafkaSecurity
  logger: Logger
  compression: PlatformaticCompression
  clientId?: string
}

/** Broker errors no retry can fix. */
const FATAL_API_IDS = new Set([
  'TOPIC_AUTHORIZATION_FAILED',
  'CLUSTER_AUTHORIZATION_FAILED',
  'SASL_AUTHENTICATION_FAILED',
  'ILLEGAL_SASL_STATE',
  'UNSUPPORTED_SASL_MECHANISM',
  'INVALID_TOPIC_EXCEPTION',
])
const TOO_LARGE_API_IDS = new Set(['MESSAGE_TOO_LARGE', 'RECORD_LIST_TOO_LARGE'])

type Fields = { apiId?: unknown; code?: unknown; errors?: unknown; cause?: unknown }

/** Every error in a platformatic error's tree (its `errors` and `cause`), depth first. */
function* errorTree(err: unknown, depth = 0): Generator<Error> {
  if (!(err instanceof Error) || depth > 8) return
  yield err
  const { errors, cause } = err as Fields
  if (Array.isArray(errors)) for (const e of errors) yield* errorTree(e, depth + 1)
  yield* errorTree(cause, depth + 1)
}

/**
 * A short text for a platformatic error: its own message, then the distinct messages of the
 * errors it wraps (e.g. `produce failed 4 times. ← Connection to 127.0.0.1:9092 failed. ←
 * connect ECONNREFUSED 127.0.0.1:9092`).
 */
export function describePlatformaticError(err: unknown): string {
  const seen = new Set<string>()
  for (const e of errorTree(err)) {
    const { apiId } = e as Fields
    const text = typeof apiId === 'string' ? `${apiId}: ${e.message}` : e.message
    if (text !== '') seen.add(text)
  }
  return seen.size === 0 ? String(err) : [...seen].slice(0, 6).join(' ← ')
}

/** The `host:port` a connection error names, if any. */
function brokerOf(tree: readonly Error[]): string | undefined {
  for (const e of tree) {
    const m = /^Connection to (\S+) failed/.exec(e.message)
    if (m !== null) return m[1]
  }
  return undefined
}

/** The broker's own words in a protocol error, if it sent any. */
function serverMessage(err: Error | undefined): string | undefined {
  const m = (err as { serverErrorMessage?: unknown } | undefined)?.serverErrorMessage
  return typeof m === 'string' && m !== '' ? m : undefined
}

/** A platformatic error as a {@link ProduceError} (broker error ids, `canRetry`, error codes). */
export function classifyPlatformaticError(
  err: unknown,
  acknowledged: readonly number[] = [],
): ProduceError {
  if (err instanceof ProduceError) return err
  const text = describePlatformaticError(err)
  const tree = [...errorTree(err)]
  const saslState = tree.find((e) => (e as Fields).apiId === 'ILLEGAL_SASL_STATE')
  if (saslState !== undefined) {
    const message = saslNotSpokenMessage('ILLEGAL_SASL_STATE', brokerOf(tree))
    return new ProduceError('fatal', message, { cause: err })
  }
  const saslRefused = tree.find((e) => (e as Fields).apiId === 'SASL_AUTHENTICATION_FAILED')
  if (
    saslRefused !== undefined ||
    tree.some((e) => (e as Fields).code === 'PLT_KFK_AUTHENTICATION')
  ) {
    const server = serverMessage(saslRefused)
    const detail = `SASL authentication failed${server === undefined ? '' : `: ${server}`}`
    return new ProduceError('fatal', saslRejectedMessage(detail), { cause: err })
  }
  for (const e of tree) {
    const { apiId } = e as Fields
    if (typeof apiId === 'string' && FATAL_API_IDS.has(apiId)) {
      const detail = serverMessage(e) ?? e.message
      return new ProduceError('fatal', refusedMessage(apiId, detail), { cause: err })
    }
  }
  for (const e of errorTree(err)) {
    const { apiId } = e as Fields
    if (typeof apiId === 'string' && TOO_LARGE_API_IDS.has(apiId)) {
      return new ProduceError('too-large', text, { cause: err, acknowledged })
    }
  }
  return new ProduceError('retriable', text, { cause: err, acknowledged })
}

/**
 * The Java client's partitioner for string keys: murmur2 of the key's UTF-8 bytes, made
 * positive; the client takes it modulo the topic's partition count. (Platformatic's default
 * partitioner does not mask the sign bit as Java does; its compatible one computes with BigInt.)
 */
export function javaPartitioner(message: MessageToProduce<string, string, string, string>): number {
  return murmur2(message.key ?? '') & 0x7fffffff
}

function baseOptions(opts: PlatformaticClientOptions): BaseOptions {
  const { security } = opts
  const base: BaseOptions = {
    clientId: opts.clientId ?? `atkafka-${hostname()}`,
    bootstrapBrokers: [...opts.brokers],
    connectTimeout: 5000,
    timeout: 30000,
    retries: 3,
    retryDelay: (_client, _op, attempt) => Math.min(1000, 100 * 2 ** attempt),
    metadataMaxAge: 30000,
  }
  const tls = tlsSettings(security)
  if (tls.tls) base.tls = tls.ca !== undefined ? { ca: tls.ca } : {}
  if (security.saslMechanism !== undefined) {
    base.sasl = {
      mechanism:
        security.saslMechanism === 'plain'
          ? 'PLAIN'
          : security.saslMechanism === 'scram-sha-256'
            ? 'SCRAM-SHA-256'
            : 'SCRAM-SHA-512',
      username: security.saslUsername ?? '',
      password: security.saslPassword ?? '',
    }
  }
  return base
}

interface BrokerEvent {
  host?: string
  port?: number
  error?: unknown
}

/**
 * The client's own events as log lines: connections made and lost at debug (the sink logs what
 * they mean for producing, at warn, with the error).
 */
function routeLogs(client: KafkaProducer<string, string, string, string> | Admin, log: Logger) {
  const at = (e: BrokerEvent | undefined) =>
    e?.host === undefined ? {} : { broker: `${e.host}:${e.port}` }
  client.on('client:broker:connect', (e: BrokerEvent) => log.debug(at(e), 'connected to broker'))
  client.on('client:broker:disconnect', (e: BrokerEvent) =>
    log.debug(at(e), 'disconnected from broker'),
  )
  client.on('client:broker:failed', (e: BrokerEvent) =>
    log.debug(
      { ...at(e), err: e?.error === undefined ? undefined : describePlatformaticError(e.error) },
      'connecting to broker failed',
    ),
  )
}

/** @platformatic/kafka behind the {@link ProducerClient} port. */
export class PlatformaticClient implements ProducerClient {
  readonly #opts: PlatformaticClientOptions
  readonly #base: BaseOptions

  constructor(opts: PlatformaticClientOptions) {
    this.#opts = opts
    this.#base = baseOptions(opts)
  }

  createProducer(): Producer {
    const producer = new KafkaProducer<string, string, string, string>({
      ...this.#base,
      idempotent: true,
      acks: -1,
      compression: this.#opts.compression,
      partitioner: javaPartitioner,
      autocreateTopics: false,
      serializers: stringSerializers,
    })
    routeLogs(producer, this.#opts.logger)
    return new PlatformaticProducer(producer)
  }

  async ensureTopic(
    topic: string,
    partitions: number,
    replicationFactor: number,
  ): Promise<boolean> {
    const admin = new Admin({ ...this.#base, retries: 1 })
    routeLogs(admin, this.#opts.logger)
    try {
      const topics = await admin.listTopics()
      let created = false
      if (!topics.includes(topic)) {
        try {
          await admin.createTopics({ topics: [topic], partitions, replicas: replicationFactor })
          created = true
        } catch (err) {
          if (!hasApiId(err, 'TOPIC_ALREADY_EXISTS')) throw err
        }
      }
      await waitForLeaders(admin, topic)
      return created
    } catch (err) {
      throw classifyPlatformaticError(err)
    } finally {
      await admin.close().catch(() => {})
    }
  }

  async close(): Promise<void> {}
}

function hasApiId(err: unknown, apiId: string): boolean {
  for (const e of errorTree(err)) if ((e as Fields).apiId === apiId) return true
  return false
}

/**
 * Wait until every partition of `topic` has a leader that answers for it: the metadata names a
 * leader before that broker has taken the partition up, and a produce in that window fails with
 * NOT_LEADER_OR_FOLLOWER. ListOffsets is answered by partition leaders only.
 */
async function waitForLeaders(admin: Admin, topic: string): Promise<void> {
  const deadline = performance.now() + 30_000
  for (let attempt = 0; ; attempt++) {
    try {
      const metadata = await admin.metadata({ topics: [topic], forceUpdate: true })
      const t = metadata.topics.get(topic)
      if (t !== undefined && t.partitions.every((p) => p.leader >= 0)) {
        await admin.listOffsets({
          topics: [
            {
              name: topic,
              partitions: Array.from({ length: t.partitionsCount }, (_, i) => ({
                partitionIndex: i,
                timestamp: -1n,
              })),
            },
          ],
        })
        return
      }
    } catch (err) {
      if (performance.now() > deadline) throw err
    }
    if (performance.now() > deadline) return
    await sleep(Math.min(500, 25 * 2 ** attempt))
  }
}

class PlatformaticProducer implements Producer {
  readonly #producer: KafkaProducer<string, string, string, string>

  constructor(producer: KafkaProducer<string, string, string, string>) {
    this.#producer = producer
  }

  async connect(): Promise<void> {
    try {
      await this.#producer.initIdempotentProducer({})
    } catch (err) {
      throw classifyPlatformaticError(err)
    }
  }

  async send(records: readonly ProduceRecord[]): Promise<void> {
    if (records.length === 0) return
    try {
      await this.#producer.send({ messages: records.map(toMessage) })
    } catch (err) {
      throw classifyPlatformaticError(err, this.#acknowledged(records, err))
    }
  }

  /**
   * Indexes of the records the broker acknowledged before `err`: those of every partition the
   * failed send reports an offset for (requests to other leaders succeeded).
   */
  #acknowledged(records: readonly ProduceRecord[], err: unknown): number[] {
    const produced = (err as { produced?: ProduceResult } | undefined)?.produced
    const offsets = produced?.offsets
    if (offsets === undefined || offsets.length === 0) return []
    const done = new Set(offsets.map((o) => `${o.topic}\u0000${o.partition}`))
    const metadata = this.#producer.currentMetadata
    const acked: number[] = []
    for (let i = 0; i < records.length; i++) {
      const r = records[i]!
      const count = metadata?.topics.get(r.topic)?.partitionsCount
      if (count === undefined) return []
      const partition = (murmur2(r.key) & 0x7fffffff) % count
      if (done.has(`${r.topic}\u0000${partition}`)) acked.push(i)
    }
    return acked
  }

  async close(): Promise<void> {
    await this.#producer.close(true).catch(() => {})
  }
}

function toMessage(r: ProduceRecord): MessageToProduce<string, string, string, string> {
  return r.headers === undefined
    ? { topic: r.topic, key: r.key, value: r.value }
    : { topic: r.topic, key: r.key, value: r.value, headers: { ...r.headers } }
}

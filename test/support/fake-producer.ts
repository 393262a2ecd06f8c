// A Kafka stand-in behind the Producer port: a log per topic and partition, idempotent
// (a record re-sent after a failure is stored once), with scripted failures and delays.
import type { ICustomPartitioner } from 'kafkajs'
import { murmur2 } from '../../src/sink/partitioner.ts'
import {
  ProduceError,
  type Producer,
  type ProducerClient,
  type ProduceRecord,
} from '../../src/sink/producer.ts'

export interface FakeSendCall {
  producer: number
  records: readonly ProduceRecord[]
}

export interface FakeBehaviour {
  /**
   * Called before each send: return an error to fail it, after storing the first `written`
   * records (a request whose partitions partly succeeded), or undefined to store all.
   */
  fail?: (
    call: FakeSendCall,
    attempt: number,
  ) =>
    | {
        error: ProduceError
        /** Store the first `written` records silently (a lost acknowledgement). */
        written?: number
        /** Store and report as acknowledged the records of the partitions it accepts. */
        partitionsWritten?: (partition: number) => boolean
      }
    | undefined
  /** How long a send takes (ms), e.g. random to reorder the producers' acknowledgements. */
  delayMs?: (call: FakeSendCall) => number
  /** Fails `ensureTopic`. */
  ensureTopicError?: () => ProduceError | undefined
  partitions?: number
}

export class FakeKafka implements ProducerClient {
  readonly behaviour: FakeBehaviour
  /** topic → partition → records in the order stored. */
  readonly log = new Map<string, ProduceRecord[][]>()
  readonly calls: FakeSendCall[] = []
  readonly topics = new Set<string>()
  producersCreated = 0
  /** Largest number of sends under way at once for one producer. */
  maxInFlightPerProducer = 0
  readonly #stored = new Set<ProduceRecord>()
  /** Sends of the same batch so far (by the batch's first record), across producers. */
  readonly attempts = new Map<ProduceRecord, number>()
  closed = false

  constructor(behaviour: FakeBehaviour = {}) {
    this.behaviour = behaviour
  }

  createProducer(): Producer {
    return new FakeProducer(this, this.producersCreated++)
  }

  async ensureTopic(topic: string): Promise<boolean> {
    const err = this.behaviour.ensureTopicError?.()
    if (err !== undefined) throw err
    if (this.topics.has(topic)) return false
    this.topics.add(topic)
    return true
  }

  async close(): Promise<void> {
    this.closed = true
  }

  partitionOf(r: ProduceRecord): number {
    return (murmur2(r.key) & 0x7fffffff) % (this.behaviour.partitions ?? 8)
  }

  store(records: readonly ProduceRecord[]): void {
    const n = this.behaviour.partitions ?? 8
    for (const r of records) {
      if (this.#stored.has(r)) continue
      this.#stored.add(r)
      let parts = this.log.get(r.topic)
      if (parts === undefined) {
        parts = Array.from({ length: n }, () => [])
        this.log.set(r.topic, parts)
      }
      parts[this.partitionOf(r)]!.push(r)
    }
  }

  /** Every stored record of `topic`, partition by partition. */
  records(topic: string): ProduceRecord[] {
    return (this.log.get(topic) ?? []).flat()
  }
}

class FakeProducer implements Producer {
  readonly #kafka: FakeKafka
  readonly #id: number
  #connected = false
  #inFlight = 0

  constructor(kafka: FakeKafka, id: number) {
    this.#kafka = kafka
    this.#id = id
  }

  async connect(): Promise<void> {
    this.#connected = true
  }

  async send(records: readonly ProduceRecord[]): Promise<void> {
    if (!this.#connected) throw new ProduceError('retriable', 'not connected')
    const k = this.#kafka
    const call = { producer: this.#id, records: [...records] }
    k.calls.push(call)
    this.#inFlight++
    k.maxInFlightPerProducer = Math.max(k.maxInFlightPerProducer, this.#inFlight)
    try {
      const delay = k.behaviour.delayMs?.(call) ?? 0
      await new Promise((resolve) => setTimeout(resolve, delay))
      const attempt = k.attempts.get(records[0]!) ?? 0
      k.attempts.set(records[0]!, attempt + 1)
      const failure = k.behaviour.fail?.(call, attempt)
      if (failure !== undefined) {
        k.store(records.slice(0, failure.written ?? 0))
        const written = failure.partitionsWritten
        if (written === undefined) throw failure.error
        const acknowledged = records.flatMap((r, i) => (written(k.partitionOf(r)) ? [i] : []))
        k.store(acknowledged.map((i) => records[i]!))
        throw new ProduceError(failure.error.kind, failure.error.message, { acknowledged })
      }
      k.store(records)
    } finally {
      this.#inFlight--
    }
  }

  async close(): Promise<void> {
    this.#connected = false
  }
}

/**
 * A stand-in for a KafkaJS `Kafka` client (the part the KafkaJS adapter uses), reproducing how
 * KafkaJS 2.2.4 answers a send whose retry skipped a partition whose leader moved to a broker
 * that had already answered: the send resolves, with no answer for that partition. A real
 * cluster does this only in a narrow race.
 */
export class FakeKafkaJs {
  readonly partitions: number
  /** Called per send: partitions to leave out of the answer (and not store). */
  readonly skip: (send: number) => ReadonlySet<number>
  /** topic → partition → values stored, in order. */
  readonly log = new Map<string, string[][]>()
  sends = 0

  constructor(opts: { partitions?: number; skip: (send: number) => ReadonlySet<number> }) {
    this.partitions = opts.partitions ?? 8
    this.skip = opts.skip
  }

  admin() {
    return {
      connect: async () => {},
      disconnect: async () => {},
      listTopics: async () => [...this.log.keys()],
      createTopics: async () => true,
    }
  }

  producer(config: { createPartitioner: ICustomPartitioner }) {
    const partition = config.createPartitioner()
    const partitionMetadata = Array.from({ length: this.partitions }, (_, i) => ({
      partitionId: i,
      leader: 1,
      partitionErrorCode: 0,
      replicas: [1],
      isr: [1],
    }))
    const send = async (topic: string, messages: Array<{ key: string; value: string }>) => {
      const skipped = this.skip(this.sends++)
      let parts = this.log.get(topic)
      if (parts === undefined) {
        parts = Array.from({ length: this.partitions }, () => [])
        this.log.set(topic, parts)
      }
      const answered = new Set<number>()
      for (const message of messages) {
        const p = partition({ topic, partitionMetadata, message })
        if (skipped.has(p)) continue
        parts[p]!.push(message.value)
        answered.add(p)
      }
      return [...answered].map((p) => ({ topicName: topic, partition: p, errorCode: 0 }))
    }
    return {
      connect: async () => {},
      disconnect: async () => {},
      send: (r: { topic: string; messages: Array<{ key: string; value: string }> }) =>
        send(r.topic, r.messages),
      sendBatch: async (r: {
        topicMessages: Array<{ topic: string; messages: Array<{ key: string; value: string }> }>
      }) => (await Promise.all(r.topicMessages.map((t) => send(t.topic, t.messages)))).flat(),
    }
  }

  /** Values stored for `topic`, partition by partition. */
  values(topic: string): string[] {
    return (this.log.get(topic) ?? []).flat()
  }
}

import type { Logger } from '../logger.ts'
import { ProduceError, type ProducerClient } from './producer.ts'

export interface TopicsOptions {
  client: ProducerClient
  partitions: number
  replicationFactor: number
  /** Create a missing topic; else a missing topic is a fatal {@link ProduceError}. */
  create: boolean
  logger: Logger
}

/** The message of the fatal error for a topic that does not exist while creation is off. */
export function missingTopicMessage(topic: string): string {
  return `Kafka topic "${topic}" does not exist and topic creation is off (--no-create-topics): create it, or drop --no-create-topics`
}

/**
 * The topics the sink has made sure of: each is created (or, with creation off, checked to
 * exist) once, on first use, by whichever producer needs it first; a failure is forgotten so the
 * next attempt asks again.
 */
export class Topics {
  readonly #opts: TopicsOptions
  readonly #ready = new Set<string>()
  readonly #pending = new Map<string, Promise<void>>()

  constructor(opts: TopicsOptions) {
    this.#opts = opts
  }

  has(topic: string): boolean {
    return this.#ready.has(topic)
  }

  /** Make sure of `topics` again at their next use (e.g. after repeated failures). */
  forget(topics: Iterable<string>): void {
    for (const topic of topics) this.#ready.delete(topic)
  }

  /** Resolves once every one of `topics` exists; rejects with a {@link ProduceError}. */
  async ensure(topics: Iterable<string>): Promise<void> {
    const waits: Array<Promise<void>> = []
    for (const topic of topics) {
      if (this.#ready.has(topic)) continue
      let p = this.#pending.get(topic)
      if (p === undefined) {
        p = this.#ensureOne(topic).finally(() => this.#pending.delete(topic))
        this.#pending.set(topic, p)
      }
      waits.push(p)
    }
    await Promise.all(waits)
  }

  async #ensureOne(topic: string): Promise<void> {
    const { client, partitions, replicationFactor, create, logger } = this.#opts
    if (create) {
      if (await client.ensureTopic(topic, partitions, replicationFactor)) {
        logger.info({ topic, partitions, replicationFactor }, 'created topic')
      }
    } else if (!(await client.topicExists(topic))) {
      throw new ProduceError('fatal', missingTopicMessage(topic))
    }
    this.#ready.add(topic)
  }
}

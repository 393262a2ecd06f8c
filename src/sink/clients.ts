import type { Logger } from '../logger.ts'
import { createKafka } from './kafkajs-client.ts'
import type { KafkaSecurity } from './kafka-security.ts'
import { KafkaJsClient } from './kafkajs-producer.ts'
import { type PlatformaticCompression, PlatformaticClient } from './platformatic-producer.ts'
import type { ProducerClient } from './producer.ts'

/** The Kafka client libraries atkafka can produce with (`--kafka-client`). */
export const KAFKA_CLIENTS = ['platformatic', 'kafkajs'] as const
export type KafkaClientName = (typeof KAFKA_CLIENTS)[number]

export type Compression = PlatformaticCompression

export interface ProducerClientOptions {
  client: KafkaClientName
  brokers: readonly string[]
  security: KafkaSecurity
  compression: Compression
  logger: Logger
  clientId?: string
}

/** The {@link ProducerClient} adapter of the chosen library. */
export function createProducerClient(opts: ProducerClientOptions): ProducerClient {
  const { brokers, security, logger, clientId, compression } = opts
  if (opts.client === 'kafkajs') {
    if (compression !== 'none' && compression !== 'gzip') {
      throw new Error(`--kafka-client kafkajs cannot compress with ${compression}`)
    }
    return new KafkaJsClient(createKafka({ brokers, security, logger, clientId }), { compression })
  }
  return new PlatformaticClient({ brokers, security, logger, compression, clientId })
}

import { hostname } from 'node:os'
import { Kafka, logLevel, type KafkaConfig, type LogEntry, type SASLOptions } from 'kafkajs'
import type { Logger } from '../logger.ts'
import { type KafkaSecurity, tlsSettings } from './kafka-security.ts'

export interface KafkaClientOptions {
  brokers: readonly string[]
  security: KafkaSecurity
  logger: Logger
  clientId?: string
}

/** KafkaJS log lines go through pino; its chatty info level is demoted to debug. */
function logCreator(logger: Logger) {
  return () =>
    ({ level, log }: LogEntry) => {
      const { message, ...extra } = log
      if (level === logLevel.ERROR) logger.error(extra, message)
      else if (level === logLevel.WARN) logger.warn(extra, message)
      else logger.debug(extra, message)
    }
}

export function createKafka(opts: KafkaClientOptions): Kafka {
  const { security } = opts
  const config: KafkaConfig = {
    clientId: opts.clientId ?? `atkafka-${hostname()}`,
    brokers: [...opts.brokers],
    logLevel: logLevel.WARN,
    logCreator: logCreator(opts.logger),
    connectionTimeout: 5000,
    requestTimeout: 30000,
    retry: { retries: 5, initialRetryTime: 200, maxRetryTime: 5000 },
  }
  const tls = tlsSettings(security)
  if (tls.tls) config.ssl = tls.ca !== undefined ? { ca: [tls.ca] } : true
  if (security.saslMechanism !== undefined) {
    config.sasl = {
      mechanism: security.saslMechanism,
      username: security.saslUsername ?? '',
      password: security.saslPassword ?? '',
    } as SASLOptions
  }
  return new Kafka(config)
}

/** Create the topic when it does not exist yet. */
export async function ensureTopic(
  kafka: Kafka,
  topic: string,
  partitions: number,
  replicationFactor: number,
): Promise<boolean> {
  const admin = kafka.admin()
  await admin.connect()
  try {
    const topics = await admin.listTopics()
    if (topics.includes(topic)) return false
    return await admin.createTopics({
      topics: [{ topic, numPartitions: partitions, replicationFactor }],
      waitForLeaders: true,
    })
  } finally {
    await admin.disconnect()
  }
}

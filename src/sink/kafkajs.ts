// The one entry to KafkaJS: its protocol encoder is swapped for the pooled one and its produce
// request encoder for the one-pass one first (module requests are evaluated in the order written,
// so these imports must stay above 'kafkajs', and the pooled encoder first).
import './pooled-encoder.ts'
import './fast-produce.ts'

export { CompressionTypes, Kafka, Partitioners, logLevel } from 'kafkajs'
export type {
  Admin,
  ICustomPartitioner,
  KafkaConfig,
  LogEntry,
  PartitionerArgs,
  Producer,
  RecordMetadata,
  SASLOptions,
} from 'kafkajs'

// The one entry to KafkaJS: its protocol encoder is swapped for the pooled one first (module
// requests are evaluated in the order written, so this import must stay above 'kafkajs').
import './pooled-encoder.ts'

export { CompressionTypes, Kafka, Partitioners, logLevel } from 'kafkajs'
export type {
  Admin,
  ICustomPartitioner,
  KafkaConfig,
  LogEntry,
  PartitionerArgs,
  Producer,
  SASLOptions,
} from 'kafkajs'

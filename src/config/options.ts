/**
 * Every command-line option, in one table: its flag, env var, type, default and the commands it
 * belongs to. The CLI, `--help`, validation and the README's configuration table all come from
 * here, so they cannot drift apart.
 */
export type Command = 'relay' | 'tap' | 'ozone'

export type OptionKind = 'string' | 'list' | 'bool' | 'int' | 'choice' | 'url' | 'duration'

export interface OptionSpec {
  /** Flag name without dashes, kebab-case. */
  flag: string
  /** Environment variable read when the flag is not given. */
  env?: string
  kind: OptionKind
  description: string
  commands: readonly Command[]
  /** Default as the user would write it (also shown in --help). */
  default?: string
  /** Per-command default overriding `default`. */
  commandDefault?: Partial<Record<Command, string>>
  choices?: readonly string[]
  min?: number
  max?: number
  /** URL schemes accepted by kind 'url'. */
  schemes?: readonly string[]
  /** Never echo the value (help, errors, logs). */
  secret?: boolean
}

const ALL: readonly Command[] = ['relay', 'tap', 'ozone']
const FIREHOSE: readonly Command[] = ['relay', 'tap']

export const OPTIONS: readonly OptionSpec[] = [
  // Kafka output
  {
    flag: 'bootstrap-servers',
    env: 'ATKAFKA_BOOTSTRAP_SERVERS',
    kind: 'list',
    description: 'Kafka bootstrap servers, comma separated (required unless --stdout)',
    commands: ALL,
  },
  {
    flag: 'output-topic',
    env: 'ATKAFKA_OUTPUT_TOPIC',
    kind: 'string',
    description: 'Kafka topic to produce to (required unless --stdout)',
    commands: ALL,
  },
  {
    flag: 'topic-partitions',
    env: 'ATKAFKA_TOPIC_PARTITIONS',
    kind: 'int',
    description: 'Partitions when creating a missing topic',
    commands: ALL,
    default: '200',
    commandDefault: { ozone: '4' },
    min: 1,
    max: 100000,
  },
  {
    flag: 'replication-factor',
    env: 'ATKAFKA_REPLICATION_FACTOR',
    kind: 'int',
    description: 'Replication factor when creating a missing topic',
    commands: ALL,
    default: '1',
    min: 1,
    max: 100,
  },
  {
    flag: 'kafka-compression',
    env: 'ATKAFKA_KAFKA_COMPRESSION',
    kind: 'choice',
    choices: ['none', 'gzip'],
    description: "Compression of produced batches (Osprey's consumer reads none or gzip)",
    commands: ALL,
    default: 'none',
  },
  {
    flag: 'kafka-sasl-mechanism',
    env: 'ATKAFKA_KAFKA_SASL_MECHANISM',
    kind: 'choice',
    choices: ['plain', 'scram-sha-256', 'scram-sha-512'],
    description: 'SASL mechanism for Kafka (default: no SASL)',
    commands: ALL,
  },
  {
    flag: 'kafka-sasl-username',
    env: 'ATKAFKA_KAFKA_SASL_USERNAME',
    kind: 'string',
    description: 'SASL user name',
    commands: ALL,
  },
  {
    flag: 'kafka-sasl-password',
    env: 'ATKAFKA_KAFKA_SASL_PASSWORD',
    kind: 'string',
    description: 'SASL password',
    commands: ALL,
    secret: true,
  },
  {
    flag: 'kafka-ssl',
    env: 'ATKAFKA_KAFKA_SSL',
    kind: 'bool',
    description: 'Connect to Kafka over TLS',
    commands: ALL,
    default: 'false',
  },
  {
    flag: 'kafka-ssl-ca',
    env: 'ATKAFKA_KAFKA_SSL_CA',
    kind: 'string',
    description: "PEM file of the CA that signed the brokers' certificates (implies --kafka-ssl)",
    commands: ALL,
  },
  {
    flag: 'max-in-flight',
    env: 'ATKAFKA_MAX_IN_FLIGHT',
    kind: 'int',
    description: 'Messages handed to Kafka and not yet acknowledged before reading pauses',
    commands: ALL,
    default: '10000',
    min: 1,
    max: 10000000,
  },
  {
    flag: 'stdout',
    env: 'ATKAFKA_STDOUT',
    kind: 'bool',
    description:
      'Write events as JSON lines to standard output instead of Kafka (logs go to stderr)',
    commands: ALL,
    default: 'false',
  },
  // Event format
  {
    flag: 'osprey-compatible',
    env: 'ATKAFKA_OSPREY_COMPATIBLE',
    kind: 'bool',
    description: 'Wrap events in the Osprey envelope',
    commands: FIREHOSE,
    default: 'false',
  },
  {
    flag: 'osprey-worker-id',
    env: 'ATKAFKA_OSPREY_WORKER_ID',
    kind: 'int',
    description:
      'Worker id (0-1023) inside Osprey action ids; give each instance its own (default: derived from the host name)',
    commands: FIREHOSE,
    min: 0,
    max: 1023,
  },
  // Relay source
  {
    flag: 'relay-host',
    env: 'ATKAFKA_RELAY_HOST',
    kind: 'url',
    schemes: ['ws:', 'wss:', 'http:', 'https:'],
    description: 'Relay (or PDS) to subscribe to com.atproto.sync.subscribeRepos on',
    commands: ['relay'],
    default: 'wss://bsky.network',
  },
  {
    flag: 'cursor-file',
    env: 'ATKAFKA_CURSOR_FILE',
    kind: 'string',
    description: 'File holding the last sequence number Kafka acknowledged',
    commands: ['relay', 'ozone'],
    commandDefault: { relay: 'atkafka-cursor.json', ozone: 'ozone-cursor.txt' },
  },
  {
    flag: 'cursor',
    env: 'ATKAFKA_CURSOR',
    kind: 'int',
    description: 'Start from this sequence number, ignoring the cursor file',
    commands: ['relay'],
    min: 0,
    max: Number.MAX_SAFE_INTEGER,
  },
  // Filters
  {
    flag: 'watched-collections',
    env: 'ATKAFKA_WATCHED_COLLECTIONS',
    kind: 'list',
    description: 'Only produce these collections (comma separated, app.bsky.* style wildcards)',
    commands: FIREHOSE,
  },
  {
    flag: 'ignored-collections',
    env: 'ATKAFKA_IGNORED_COLLECTIONS',
    kind: 'list',
    description: 'Never produce these collections (comma separated, app.bsky.* style wildcards)',
    commands: FIREHOSE,
  },
  // Observability
  {
    flag: 'metrics-listen-address',
    env: 'METRICS_LISTEN_ADDRESS',
    kind: 'string',
    description: 'Address of the /metrics, /health and /ready HTTP server',
    commands: ALL,
    default: '0.0.0.0:6009',
  },
  {
    flag: 'debug',
    env: 'DEBUG',
    kind: 'bool',
    description: 'Debug logging',
    commands: ALL,
    default: 'false',
  },
]

export function optionsFor(command: Command): OptionSpec[] {
  return OPTIONS.filter((o) => o.commands.includes(command))
}

export function defaultFor(spec: OptionSpec, command: Command): string | undefined {
  return spec.commandDefault?.[command] ?? spec.default
}

/** camelCase property name of a flag. */
export function propertyOf(flag: string): string {
  return flag.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase())
}

/**
 * Every command-line option, in one table: its flag, env var, type, default and the commands it
 * belongs to. The CLI, `--help`, validation and the README's configuration table all come from
 * here, so they cannot drift apart.
 */
export type Command = 'relay' | 'tap' | 'ozone' | 'labels' | 'jetstream'

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
  /** Needed always, or only when producing to Kafka (not with `--stdout`). */
  required?: 'always' | 'kafka'
}

const ALL: readonly Command[] = ['relay', 'tap', 'ozone', 'labels', 'jetstream']
const FIREHOSE: readonly Command[] = ['relay', 'tap', 'jetstream']

export const OPTIONS: readonly OptionSpec[] = [
  // Kafka output
  {
    flag: 'bootstrap-servers',
    env: 'ATKAFKA_BOOTSTRAP_SERVERS',
    kind: 'list',
    description:
      'Kafka bootstrap servers as host:port, comma separated or repeated (required unless --stdout)',
    commands: ALL,
    required: 'kafka',
  },
  {
    flag: 'output-topic',
    env: 'ATKAFKA_OUTPUT_TOPIC',
    kind: 'string',
    description: 'Kafka topic to produce to (required unless --stdout)',
    commands: ALL,
    required: 'kafka',
  },
  {
    flag: 'topic-partitions',
    env: 'ATKAFKA_TOPIC_PARTITIONS',
    kind: 'int',
    description: 'Partitions when creating a missing topic',
    commands: ALL,
    default: '200',
    commandDefault: { ozone: '4', labels: '4' },
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
    choices: ['none', 'gzip', 'snappy', 'lz4', 'zstd'],
    description:
      "Compression of produced batches (Osprey's consumer reads none or gzip; --kafka-client kafkajs: none or gzip only)",
    commands: ALL,
    default: 'none',
  },
  {
    flag: 'kafka-client',
    env: 'ATKAFKA_KAFKA_CLIENT',
    kind: 'choice',
    choices: ['platformatic', 'kafkajs'],
    description:
      'Kafka client library: @platformatic/kafka, or KafkaJS (unmaintained, slower; kept as an alternative)',
    commands: ALL,
    default: 'platformatic',
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
    flag: 'kafka-producers',
    env: 'ATKAFKA_KAFKA_PRODUCERS',
    kind: 'int',
    description:
      'Idempotent Kafka producers working side by side, each with one request in flight; a DID always goes through the same one (best when it divides the partition count)',
    commands: ALL,
    default: '4',
    min: 1,
    max: 64,
  },
  {
    flag: 'max-in-flight',
    env: 'ATKAFKA_MAX_IN_FLIGHT',
    kind: 'int',
    description: 'Messages handed to Kafka and not yet acknowledged before reading pauses',
    commands: ALL,
    default: '5000',
    min: 1,
    max: 10000000,
  },
  {
    flag: 'shutdown-timeout',
    env: 'ATKAFKA_SHUTDOWN_TIMEOUT',
    kind: 'duration',
    description:
      'On SIGINT/SIGTERM, how long to wait for Kafka to acknowledge what it holds; then atkafka exits with code 1 and the unacknowledged events are read again on the next start',
    commands: ALL,
    default: '30s',
    min: 0,
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
    commands: [...FIREHOSE, 'labels'],
    default: 'false',
  },
  {
    flag: 'osprey-worker-id',
    env: 'ATKAFKA_OSPREY_WORKER_ID',
    kind: 'int',
    description:
      'Worker id (0-1023) inside Osprey action ids; give each instance its own (default: derived from the host name)',
    commands: [...FIREHOSE, 'labels'],
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
    description:
      'File holding the position Kafka acknowledged (relay, labels: sequence number; ozone: createdAt and event ids; jetstream: time_us)',
    commands: ['relay', 'ozone', 'labels', 'jetstream'],
    commandDefault: {
      relay: 'atkafka-cursor.json',
      ozone: 'ozone-cursor.txt',
      labels: 'atkafka-labels-cursor.json',
      jetstream: 'atkafka-jetstream-cursor.json',
    },
  },
  {
    flag: 'cursor',
    env: 'ATKAFKA_CURSOR',
    kind: 'int',
    description:
      'Start from this sequence number (0 or more; jetstream: a time_us, in microseconds), ignoring the cursor file',
    commands: ['relay', 'labels', 'jetstream'],
    min: 0,
    max: Number.MAX_SAFE_INTEGER,
  },
  // Jetstream source
  {
    flag: 'jetstream-host',
    env: 'ATKAFKA_JETSTREAM_HOST',
    kind: 'url',
    schemes: ['ws:', 'wss:', 'http:', 'https:'],
    description: 'Jetstream instance to read events from (its /subscribe WebSocket)',
    commands: ['jetstream'],
    default: 'wss://jetstream2.us-east.bsky.network',
  },
  // Labeler source
  {
    flag: 'labeler-host',
    env: 'ATKAFKA_LABELER_HOST',
    kind: 'url',
    schemes: ['ws:', 'wss:', 'http:', 'https:'],
    description:
      'Labeler (an Ozone or any other) to subscribe to com.atproto.label.subscribeLabels on (required)',
    commands: ['labels'],
    required: 'always',
  },
  // Tap source
  {
    flag: 'tap-host',
    env: 'ATKAFKA_TAP_HOST',
    kind: 'url',
    schemes: ['ws:', 'wss:', 'http:', 'https:'],
    description: 'Tap instance to read events from (its /channel WebSocket)',
    commands: ['tap'],
    default: 'ws://localhost:2480',
  },
  {
    flag: 'tap-admin-password',
    env: 'ATKAFKA_TAP_ADMIN_PASSWORD',
    kind: 'string',
    description: "Tap's admin password (TAP_ADMIN_PASSWORD), sent as HTTP Basic admin:<password>",
    commands: ['tap'],
    secret: true,
  },
  {
    flag: 'disable-acks',
    env: 'ATKAFKA_DISABLE_ACKS',
    kind: 'bool',
    description: 'Send no acks to Tap (for a Tap running with TAP_DISABLE_ACKS=true)',
    commands: ['tap'],
    default: 'false',
  },
  {
    flag: 'tap-workers',
    env: 'ATKAFKA_TAP_WORKERS',
    kind: 'int',
    description:
      'Accepted for compatibility with at-kafka; has no effect (concurrency comes from --max-in-flight)',
    commands: ['tap'],
    default: '10',
    min: 1,
    max: 100000,
  },
  // Filters
  {
    flag: 'watched-collections',
    env: 'ATKAFKA_WATCHED_COLLECTIONS',
    kind: 'list',
    description:
      'Only produce these collections: NSIDs (app.bsky.feed.post) or namespaces (app.bsky or app.bsky.*), comma separated or repeated; * alone means every collection (jetstream: sent as wantedCollections, at most 100)',
    commands: FIREHOSE,
  },
  {
    flag: 'ignored-collections',
    env: 'ATKAFKA_IGNORED_COLLECTIONS',
    kind: 'list',
    description:
      'Never produce these collections: NSIDs (app.bsky.feed.post) or namespaces (app.bsky or app.bsky.*), comma separated or repeated; * alone means every collection',
    commands: FIREHOSE,
  },
  {
    flag: 'watched-dids',
    env: 'ATKAFKA_WATCHED_DIDS',
    kind: 'list',
    description:
      "Only produce these accounts' events (comma separated DIDs, at most 10,000; sent to Jetstream as wantedDids)",
    commands: ['jetstream'],
  },
  // Event metadata (src/enrich)
  {
    flag: 'event-metadata',
    env: 'ATKAFKA_EVENT_METADATA',
    kind: 'bool',
    description:
      'Add eventMetadata (DID document, pdsHost, handle, account age; profile with --api-host) to every event, as at-kafka; --no-event-metadata turns the lookups off',
    commands: FIREHOSE,
    default: 'true',
  },
  {
    flag: 'plc-host',
    env: 'ATKAFKA_PLC_HOST',
    kind: 'url',
    schemes: ['http:', 'https:'],
    description: 'PLC directory of the eventMetadata lookups and the service filters',
    commands: FIREHOSE,
    default: 'https://plc.directory',
  },
  {
    flag: 'api-host',
    env: 'ATKAFKA_API_HOST',
    kind: 'url',
    schemes: ['http:', 'https:'],
    description:
      'AppView for eventMetadata.profile (app.bsky.actor.getProfile), e.g. https://public.api.bsky.app (default: no profiles)',
    commands: FIREHOSE,
  },
  {
    flag: 'watched-services',
    env: 'ATKAFKA_WATCHED_SERVICES',
    kind: 'list',
    description:
      'Only produce events of accounts whose PDS host matches: host names (bsky.network, *.bsky.network), comma separated or repeated; * alone means every host (needs event metadata)',
    commands: FIREHOSE,
  },
  {
    flag: 'ignored-services',
    env: 'ATKAFKA_IGNORED_SERVICES',
    kind: 'list',
    description:
      'Never produce events of accounts whose PDS host matches: host names (bsky.network, *.bsky.network), comma separated or repeated; * alone means every host (needs event metadata)',
    commands: FIREHOSE,
  },
  {
    flag: 'skip-handle-verification',
    env: 'ATKAFKA_SKIP_HANDLE_VERIFICATION',
    kind: 'bool',
    description:
      "Write the DID document's handle without checking that it resolves back to the DID (DNS/HTTPS)",
    commands: FIREHOSE,
    default: 'false',
  },
  {
    flag: 'lookup-timeout',
    env: 'ATKAFKA_LOOKUP_TIMEOUT',
    kind: 'duration',
    description: 'Time limit of each PLC, handle and AppView request of the metadata lookups',
    commands: FIREHOSE,
    default: '5s',
    min: 50,
  },
  {
    flag: 'lookup-concurrency',
    env: 'ATKAFKA_LOOKUP_CONCURRENCY',
    kind: 'int',
    description: 'Accounts whose metadata is looked up at the same time',
    commands: FIREHOSE,
    default: '200',
    min: 1,
    max: 100000,
  },
  {
    flag: 'plc-rate-limit',
    env: 'ATKAFKA_PLC_RATE_LIMIT',
    kind: 'int',
    description: 'PLC requests per second (bursts of half as many)',
    commands: FIREHOSE,
    default: '200',
    min: 1,
    max: 1000000,
  },
  {
    flag: 'api-rate-limit',
    env: 'ATKAFKA_API_RATE_LIMIT',
    kind: 'int',
    description: 'getProfile requests per second (bursts of half as many)',
    commands: FIREHOSE,
    default: '200',
    min: 1,
    max: 1000000,
  },
  {
    flag: 'identity-cache-size',
    env: 'ATKAFKA_IDENTITY_CACHE_SIZE',
    kind: 'int',
    description: 'DID documents (with verified handle) kept in memory',
    commands: FIREHOSE,
    default: '100000',
    min: 1,
    max: 100000000,
  },
  {
    flag: 'identity-cache-ttl',
    env: 'ATKAFKA_IDENTITY_CACHE_TTL',
    kind: 'duration',
    description: 'How long a DID document is reused (an #identity event refreshes it at once)',
    commands: FIREHOSE,
    default: '48h',
    min: 1000,
  },
  {
    flag: 'audit-cache-size',
    env: 'ATKAFKA_AUDIT_CACHE_SIZE',
    kind: 'int',
    description: 'PLC creation times (first audit log entry) kept in memory',
    commands: FIREHOSE,
    default: '100000',
    min: 1,
    max: 100000000,
  },
  {
    flag: 'audit-cache-ttl',
    env: 'ATKAFKA_AUDIT_CACHE_TTL',
    kind: 'duration',
    description: 'How long a PLC creation time is reused',
    commands: FIREHOSE,
    default: '1h',
    min: 1000,
  },
  {
    flag: 'profile-cache-size',
    env: 'ATKAFKA_PROFILE_CACHE_SIZE',
    kind: 'int',
    description: 'Profiles kept in memory (only of accounts with more than 10 followers and posts)',
    commands: FIREHOSE,
    default: '100000',
    min: 1,
    max: 100000000,
  },
  {
    flag: 'profile-cache-ttl',
    env: 'ATKAFKA_PROFILE_CACHE_TTL',
    kind: 'duration',
    description: 'How long a profile is reused (a profile record change drops it at once)',
    commands: FIREHOSE,
    default: '10m',
    min: 1000,
  },
  // Ozone source
  {
    flag: 'pds-host',
    env: 'ATKAFKA_OZONE_PDS_HOST',
    kind: 'url',
    schemes: ['http:', 'https:'],
    description: 'PDS of the Ozone moderator account; Ozone is called through it (required)',
    commands: ['ozone'],
    required: 'always',
  },
  {
    flag: 'identifier',
    env: 'ATKAFKA_OZONE_IDENTIFIER',
    kind: 'string',
    description: 'Handle, DID or email of the moderator account (required)',
    commands: ['ozone'],
    required: 'always',
  },
  {
    flag: 'password',
    env: 'ATKAFKA_OZONE_PASSWORD',
    kind: 'string',
    description: 'Password of the moderator account (required; prefer the env var)',
    commands: ['ozone'],
    required: 'always',
    secret: true,
  },
  {
    flag: 'labeler-did',
    env: 'ATKAFKA_OZONE_LABELER_DID',
    kind: 'string',
    description: 'DID of the Ozone service, proxied to as <did>#atproto_labeler (required)',
    commands: ['ozone'],
    required: 'always',
  },
  {
    flag: 'poll-interval',
    env: 'ATKAFKA_OZONE_POLL_INTERVAL',
    kind: 'duration',
    description: 'Pause between polls once the backlog is drained',
    commands: ['ozone'],
    default: '1s',
    min: 100,
  },
  {
    flag: 'lookback',
    env: 'ATKAFKA_OZONE_LOOKBACK',
    kind: 'duration',
    description:
      'Re-read events created this long before the newest one seen, to catch events Ozone commits late (0 = only the newest timestamp)',
    commands: ['ozone'],
    default: '5s',
    min: 0,
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
  {
    flag: 'print-config',
    kind: 'bool',
    description:
      'Print the effective configuration as JSON (secrets hidden) and exit without connecting',
    commands: ALL,
    default: 'false',
  },
]

/** The option of a flag name (without dashes). */
export const OPTION_BY_FLAG: ReadonlyMap<string, OptionSpec> = new Map(
  OPTIONS.map((o) => [o.flag, o]),
)

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

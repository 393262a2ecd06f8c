import { hostname } from 'node:os'
import { type EnrichConfig, enrichConfig } from '../enrich/config.ts'
import { ConfigError } from '../errors.ts'
import { COLLECTION_PATTERN_FORMS, isCollectionPattern } from '../filter.ts'
import { type ListenAddress, parseListenAddress } from '../metrics-server.ts'
import type { KafkaSecurity } from '../sink/kafka-security.ts'
import type { Compression, KafkaClientName } from '../sink/clients.ts'
import { workerIdFromHostname } from '../snowflake.ts'
import type { Values } from './values.ts'

export { Values } from './values.ts'

export type OutputConfig =
  | { kind: 'stdout' }
  | {
      kind: 'kafka'
      brokers: string[]
      topic: string
      partitions: number
      replicationFactor: number
      compression: Compression
      /** The Kafka client library. */
      client: KafkaClientName
      /** Idempotent producers side by side (lanes keyed by DID). */
      producers: number
      security: KafkaSecurity
    }

export interface CommonConfig {
  output: OutputConfig
  maxInFlight: number
  /** How long shutdown waits for the sink to acknowledge what it holds. */
  shutdownTimeoutMs: number
  metricsAddress: ListenAddress
  debug: boolean
}

export interface FormatConfig {
  osprey: boolean
  workerId: number
}

export interface FirehoseConfig extends CommonConfig {
  format: FormatConfig
  watchedCollections: string[]
  ignoredCollections: string[]
  /** eventMetadata lookups and service filters; absent with `--no-event-metadata`. */
  enrich?: EnrichConfig
}

export interface RelayConfig extends FirehoseConfig {
  /** `ws(s)://host[:port][/path]` without the XRPC path. */
  relayHost: string
  cursorFile: string
  /** Explicit start seq (overrides the cursor file). */
  cursor?: number
}

function requireFor(v: Values, flag: string, env: string, why: string): string {
  const s = v.str(flag)
  if (s === undefined) throw new ConfigError(`--${flag} (${env}) is required ${why}`)
  return s
}

export function commonConfig(v: Values): CommonConfig {
  let output: OutputConfig
  if (v.bool('stdout')) {
    output = { kind: 'stdout' }
  } else {
    const brokers = v.list('bootstrap-servers')
    if (brokers.length === 0) {
      throw new ConfigError(
        '--bootstrap-servers (ATKAFKA_BOOTSTRAP_SERVERS) is required unless --stdout is given',
      )
    }
    for (const b of brokers) {
      if (!/^[^\s:/]+:\d{1,5}$/.test(b) && !/^\[[0-9a-fA-F:]+\]:\d{1,5}$/.test(b)) {
        throw new ConfigError(
          `invalid value "${b}" for --bootstrap-servers (ATKAFKA_BOOTSTRAP_SERVERS): expected host:port`,
        )
      }
    }
    const topic = requireFor(v, 'output-topic', 'ATKAFKA_OUTPUT_TOPIC', 'unless --stdout is given')
    if (!/^[a-zA-Z0-9._-]{1,249}$/.test(topic) || topic === '.' || topic === '..') {
      throw new ConfigError(
        `invalid value "${topic}" for --output-topic (ATKAFKA_OUTPUT_TOPIC): expected a Kafka topic name (letters, digits, . _ -)`,
      )
    }
    const mechanism = v.str('kafka-sasl-mechanism') as KafkaSecurity['saslMechanism']
    const username = v.str('kafka-sasl-username')
    const password = v.str('kafka-sasl-password')
    if (mechanism !== undefined && (username === undefined || password === undefined)) {
      throw new ConfigError(
        '--kafka-sasl-mechanism needs --kafka-sasl-username and --kafka-sasl-password',
      )
    }
    if (mechanism === undefined && (username !== undefined || password !== undefined)) {
      throw new ConfigError(
        '--kafka-sasl-username/--kafka-sasl-password need --kafka-sasl-mechanism',
      )
    }
    const compression = v.reqStr('kafka-compression') as Compression
    const client = v.reqStr('kafka-client') as KafkaClientName
    if (client === 'kafkajs' && compression !== 'none' && compression !== 'gzip') {
      throw new ConfigError(
        `--kafka-compression ${compression} needs --kafka-client platformatic (KafkaJS compresses only with none or gzip)`,
      )
    }
    const sslCa = v.str('kafka-ssl-ca')
    output = {
      kind: 'kafka',
      brokers,
      topic,
      partitions: v.reqInt('topic-partitions'),
      replicationFactor: v.reqInt('replication-factor'),
      compression,
      client,
      producers: v.reqInt('kafka-producers'),
      security: {
        saslMechanism: mechanism,
        saslUsername: username,
        saslPassword: password,
        ssl: v.bool('kafka-ssl') || sslCa !== undefined,
        sslCa,
      },
    }
  }
  return {
    output,
    maxInFlight: v.reqInt('max-in-flight'),
    shutdownTimeoutMs: v.reqInt('shutdown-timeout'),
    metricsAddress: parseListenAddress(v.reqStr('metrics-listen-address')),
    debug: v.bool('debug'),
  }
}

/** A collection pattern list; a malformed pattern is refused with the accepted forms. */
function collections(v: Values, flag: string, env: string): string[] {
  const list = v.list(flag)
  for (const p of list) {
    if (!isCollectionPattern(p)) {
      throw new ConfigError(
        `invalid value "${p}" for --${flag} (${env}): expected ${COLLECTION_PATTERN_FORMS}`,
      )
    }
  }
  return list
}

export function firehoseConfig(v: Values): FirehoseConfig {
  const watchedCollections = collections(v, 'watched-collections', 'ATKAFKA_WATCHED_COLLECTIONS')
  const ignoredCollections = collections(v, 'ignored-collections', 'ATKAFKA_IGNORED_COLLECTIONS')
  if (watchedCollections.length > 0 && ignoredCollections.length > 0) {
    throw new ConfigError(
      '--watched-collections and --ignored-collections cannot be used together: give one list',
    )
  }
  return {
    ...commonConfig(v),
    format: formatConfig(v),
    watchedCollections,
    ignoredCollections,
    enrich: enrichConfig(v),
  }
}

/**
 * A subscription host as `ws(s)://host[:port][/prefix]`: http/https map to ws/wss, and a trailing
 * `xrpcPath`, query, fragment and slashes go.
 */
export function normalizeWsUrl(
  raw: string,
  xrpcPath = '/xrpc/com.atproto.sync.subscribeRepos',
): string {
  const url = new URL(raw)
  if (url.protocol === 'http:') url.protocol = 'ws:'
  if (url.protocol === 'https:') url.protocol = 'wss:'
  const path = url.pathname.replace(/\/+$/, '')
  if (path.endsWith(xrpcPath)) url.pathname = path.slice(0, -xrpcPath.length)
  url.search = ''
  url.hash = ''
  return url.toString().replace(/\/+$/, '')
}

/** `--osprey-compatible` and its worker id. */
export function formatConfig(v: Values): FormatConfig {
  return {
    osprey: v.bool('osprey-compatible'),
    workerId: v.int('osprey-worker-id') ?? workerIdFromHostname(hostname()),
  }
}

export function relayConfig(v: Values): RelayConfig {
  return {
    ...firehoseConfig(v),
    relayHost: normalizeWsUrl(v.reqStr('relay-host')),
    cursorFile: v.reqStr('cursor-file'),
    cursor: v.int('cursor'),
  }
}

/** Config safe to log: no secrets. */
export function redactedOutput(output: OutputConfig): Record<string, unknown> {
  if (output.kind === 'stdout') return { kind: 'stdout' }
  return {
    kind: 'kafka',
    brokers: output.brokers,
    topic: output.topic,
    compression: output.compression,
    client: output.client,
    sasl: output.security.saslMechanism ?? 'none',
    ssl: output.security.ssl,
  }
}

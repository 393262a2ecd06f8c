import type { Writable } from 'node:stream'
import { Registry, collectDefaultMetrics } from 'prom-client'
import type { CommonConfig, FormatConfig } from './config/config.ts'
import { FatalError } from './errors.ts'
import { type Formatter, ospreyFormatter, plainFormatter } from './format.ts'
import type { Logger } from './logger.ts'
import { type Metrics, createMetrics } from './metrics.ts'
import { type MetricsServer, startMetricsServer } from './metrics-server.ts'
import { createKafka } from './sink/kafka-client.ts'
import { KafkaSink } from './sink/kafka.ts'
import type { Sink } from './sink/sink.ts'
import { StdoutSink } from './sink/stdout.ts'
import { Snowflake } from './snowflake.ts'

/** What every mode needs from the outside world; tests pass their own. */
export interface ServiceDeps {
  logger: Logger
  /** Aborted on SIGINT/SIGTERM. */
  signal: AbortSignal
  /** Where `--stdout` writes. */
  stdout: Writable
  registry?: Registry
}

/**
 * The pieces shared by all modes, with one lifecycle: a fatal error from any part aborts
 * `stop`, the mode shuts down through the same path as on SIGTERM, and `fatal` holds the error.
 */
export class Service {
  readonly logger: Logger
  readonly registry: Registry
  readonly metrics: Metrics
  readonly sink: Sink
  /** Aborted on shutdown signal or on a fatal error. */
  readonly stop: AbortController
  fatal: Error | undefined
  #server: MetricsServer | undefined
  readonly #config: CommonConfig

  constructor(config: CommonConfig, deps: ServiceDeps) {
    this.#config = config
    this.logger = deps.logger
    this.registry = deps.registry ?? new Registry()
    if (deps.registry === undefined) collectDefaultMetrics({ register: this.registry })
    this.metrics = createMetrics(this.registry)
    this.stop = new AbortController()
    if (deps.signal.aborted) this.stop.abort()
    deps.signal.addEventListener('abort', () => this.stop.abort(), { once: true })
    const onFatal = (err: Error) => this.fail(err)
    const out = config.output
    if (out.kind === 'stdout') {
      this.sink = new StdoutSink({ out: deps.stdout, metrics: this.metrics, onFatal })
    } else {
      const kafkaLogger = this.logger.child({ component: 'kafka' })
      this.sink = new KafkaSink({
        kafka: createKafka({ brokers: out.brokers, security: out.security, logger: kafkaLogger }),
        topic: out.topic,
        partitions: out.partitions,
        replicationFactor: out.replicationFactor,
        compression: out.compression,
        logger: kafkaLogger,
        metrics: this.metrics,
        onFatal,
      })
    }
  }

  /** Record a fatal error and start shutting down. */
  fail(err: Error): void {
    if (this.fatal === undefined) {
      this.fatal = err
      this.logger.error({ err: err.message, kind: err.name }, 'fatal error, shutting down')
    }
    this.stop.abort()
  }

  async startMetrics(ready: () => boolean): Promise<void> {
    this.#server = await startMetricsServer({
      address: this.#config.metricsAddress,
      registry: this.registry,
      ready: () => ready() && this.sink.isReady(),
    })
    this.logger.info({ address: this.#server.address }, 'metrics server listening')
  }

  get metricsAddress() {
    return this.#server?.address
  }

  /**
   * Wait for the sink to acknowledge what it holds (bounded by `timeoutMs`), then close it and
   * the metrics server. Returns whether everything was acknowledged.
   */
  async drainAndClose(timeoutMs: number): Promise<boolean> {
    const timeout = AbortSignal.timeout(timeoutMs)
    await this.sink.flush(timeout)
    const drained = this.sink.pending === 0
    if (!drained) {
      this.logger.error(
        { pending: this.sink.pending, timeoutMs },
        'shutdown timed out with unacknowledged messages; they will be read again on restart',
      )
    }
    await this.sink.close()
    await this.#server?.close()
    return drained
  }
}

export function createFormatter(format: FormatConfig): Formatter {
  return format.osprey ? ospreyFormatter(new Snowflake(format.workerId)) : plainFormatter()
}

export { FatalError }

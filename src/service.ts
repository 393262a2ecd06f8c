import type { Writable } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import { Registry, collectDefaultMetrics } from 'prom-client'
import type { CommonConfig, FormatConfig } from './config/config.ts'
import { FatalError } from './errors.ts'
import { type Formatter, ospreyFormatter, plainFormatter } from './format.ts'
import type { Logger } from './logger.ts'
import { type Metrics, createMetrics } from './metrics.ts'
import { type MetricsServer, startMetricsServer } from './metrics-server.ts'
import { createProducerClient } from './sink/clients.ts'
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
      this.sink = new StdoutSink({
        out: deps.stdout,
        metrics: this.metrics,
        onFatal,
        onClosed: () => {
          this.logger.info(
            'stdout was closed by its reader; stopping (the cursor covers what was written)',
          )
          this.stop.abort()
        },
      })
    } else {
      const kafkaLogger = this.logger.child({ component: 'kafka' })
      this.sink = new KafkaSink({
        client: createProducerClient({
          client: out.client,
          brokers: out.brokers,
          security: out.security,
          compression: out.compression,
          logger: kafkaLogger,
        }),
        brokers: out.brokers,
        topic: out.topic,
        partitions: out.partitions,
        replicationFactor: out.replicationFactor,
        producers: out.producers,
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
      notReady: () =>
        !ready()
          ? 'not connected to the source'
          : !this.sink.isReady()
            ? 'the output is not acknowledging messages (Kafka unreachable, or too few in-sync replicas)'
            : undefined,
    })
    this.logger.info({ address: this.#server.address }, 'metrics server listening')
  }

  get metricsAddress() {
    return this.#server?.address
  }

  /**
   * The one lifecycle of every mode: metrics server, `prepare`, sink, then `run` until SIGINT,
   * SIGTERM or a fatal error; then stop reading, drain the sink, `afterDrain`, and close.
   * Rejects with the fatal error that stopped it.
   */
  async serve(opts: ServeOptions): Promise<void> {
    const { signal } = this.stop
    const log = opts.logger ?? this.logger
    const progress = setInterval(() => log.info(opts.progress(), 'progress'), PROGRESS_INTERVAL_MS)
    progress.unref()
    let drained = true
    try {
      await this.startMetrics(opts.ready)
      if (opts.prepare === undefined || (await opts.prepare(signal))) {
        await this.sink.start(signal)
        if (!signal.aborted) await opts.run(signal)
      }
    } catch (err) {
      if (!signal.aborted) this.fail(err instanceof Error ? err : new Error(String(err)))
    } finally {
      clearInterval(progress)
      opts.beforeDrain?.()
      log.info({ inFlight: opts.pipeline?.inFlight }, 'stopping: flushing output')
      await opts.pipeline?.close()
      drained = await this.drainAndClose(this.#config.shutdownTimeoutMs)
      await opts.afterDrain?.()
      log.info(opts.stopped(), 'stopped')
    }
    if (this.fatal) throw this.fatal
    if (!drained) {
      throw new ShutdownTimeoutError(
        `shutdown timed out after ${this.#config.shutdownTimeoutMs} ms with unacknowledged messages (--shutdown-timeout); the cursor covers only what Kafka acknowledged, the rest is read again on restart`,
      )
    }
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
    // A client whose broker hangs may never finish closing: leave it behind rather than wait.
    const closed = await Promise.race([
      this.sink.close().then(() => true),
      sleep(CLOSE_TIMEOUT_MS, false, { ref: false }),
    ])
    if (!closed) {
      this.logger.warn(
        { timeoutMs: CLOSE_TIMEOUT_MS },
        'the Kafka client did not close in time (broker not answering); leaving its connections',
      )
    }
    await this.#server?.close()
    return drained
  }
}

/** How long closing the sink may take after it drained (or gave up draining). */
export const CLOSE_TIMEOUT_MS = 2000

/** Shutdown ended before the sink acknowledged everything it held (exit code 1). */
export class ShutdownTimeoutError extends FatalError {
  override name = 'ShutdownTimeoutError'
}
/** Period of the progress log line. */
export const PROGRESS_INTERVAL_MS = 10000

/** What a mode plugs into {@link Service.serve}. */
export interface ServeOptions {
  /** Part of `/ready`: connected to the source (the sink's readiness is added). */
  ready: () => boolean
  /** Runs before the sink starts; returning false ends the run (e.g. a refused login). */
  prepare?: (signal: AbortSignal) => Promise<boolean>
  /** Reads the source until `signal` aborts. */
  run: (signal: AbortSignal) => Promise<void>
  /** Fields of the periodic progress line; called every {@link PROGRESS_INTERVAL_MS}. */
  progress: () => Record<string, unknown>
  /** The pipeline whose enrichment stage is closed before the sink drains. */
  pipeline?: { close(): Promise<void>; readonly inFlight: number }
  /** Stop reading before the sink drains (the source stays open, e.g. to send acks). */
  beforeDrain?: () => void
  /** After the sink drained: save the cursor, send acks, close the source. */
  afterDrain?: () => Promise<void>
  /** Fields of the final log line. */
  stopped: () => Record<string, unknown>
  /** The mode's logger (default: the service's). */
  logger?: Logger
}

export function createFormatter(format: FormatConfig): Formatter {
  return format.osprey ? ospreyFormatter(new Snowflake(format.workerId)) : plainFormatter()
}

export { FatalError }

import { AtKafkaError } from '../errors.ts'
import type { Logger } from '../logger.ts'
import type { Metrics } from '../metrics.ts'
import type { Source, SourceContext, SourceStatus } from '../source/port.ts'
import { WebSocketSource, type WsConnection } from '../source/websocket.ts'
import type { AckSender } from './acks.ts'
import { parseTapEvent } from './event.ts'
import type { TapMetrics } from './metrics.ts'
import { tidTimeMs } from './timestamp.ts'

export const CHANNEL_PATH = '/channel'
/** A connection that lasted this long resets the reconnect backoff. */
const STABLE_MS = 10000
const ACK_FLUSH_TIMEOUT_MS = 5000

/** Tap refused the credentials: retrying cannot help. */
export class TapAuthError extends AtKafkaError {
  override name = 'TapAuthError'
}

/**
 * One WebSocket connection to Tap. Acks are only valid on the connection the event came on:
 * after a Tap restart the same ids name other events.
 */
export type TapConnection = WsConnection

export function channelUrl(base: string): string {
  return base + CHANNEL_PATH
}

export function basicAuth(password: string): string {
  return 'Basic ' + Buffer.from(`admin:${password}`).toString('base64')
}

/**
 * Tap's `/channel` as a source (with HTTP Basic auth when a password is set). Tap's position is
 * its ack: each event is acked on its connection once the output acknowledged it. On shutdown
 * reading stops but the socket stays open until the acks that became due are sent; then it is
 * closed.
 */
export class TapSource implements Source<never> {
  readonly #ws: WebSocketSource
  readonly #acks: AckSender
  readonly #keep: (collection: string) => boolean
  readonly #log: Logger
  readonly #metrics: Metrics
  readonly #tapMetrics: TapMetrics
  #context: SourceContext<never> | undefined
  /** Events handed to the output and not yet acked. */
  #buffered = 0

  constructor(opts: {
    base: string
    adminPassword?: string
    logger: Logger
    metrics: Metrics
    tapMetrics: TapMetrics
    acks: AckSender
    /** Whether a record of this collection is produced (the others are acked at once). */
    keep: (collection: string) => boolean
    idleTimeoutMs?: number
  }) {
    const auth = opts.adminPassword === undefined ? undefined : basicAuth(opts.adminPassword)
    this.#acks = opts.acks
    this.#keep = opts.keep
    this.#log = opts.logger
    this.#metrics = opts.metrics
    this.#tapMetrics = opts.tapMetrics
    this.#ws = new WebSocketSource({
      peer: 'Tap',
      url: () => channelUrl(opts.base),
      headers: auth === undefined ? undefined : { authorization: auth },
      logger: opts.logger,
      metrics: opts.metrics,
      idleTimeoutMs: opts.idleTimeoutMs,
      stableAfterMs: STABLE_MS,
      keepOpenOnStop: true,
      refused: (status) =>
        status === 401 || status === 403
          ? new TapAuthError(
              `Tap refused the connection with HTTP ${status}: ` +
                (auth === undefined
                  ? 'it needs its admin password (--tap-admin-password)'
                  : 'check --tap-admin-password'),
            )
          : undefined,
      onMessage: (data, _isBinary, conn) => this.#onMessage(data.toString('utf8'), conn),
    })
  }

  get connected(): boolean {
    return this.#ws.connected
  }

  get status(): SourceStatus {
    return this.#ws.status
  }

  pause(): void {
    this.#ws.pause()
  }

  resume(): void {
    this.#ws.resume()
  }

  /**
   * Connect and reconnect until `signal` aborts; then stop reading and resolve, leaving the
   * socket open. Rejects with {@link TapAuthError} when Tap refuses the credentials.
   */
  async run(signal: AbortSignal, context: SourceContext<never>): Promise<void> {
    this.#context = context
    await this.#ws.run(signal)
  }

  /** Stop reading; events still waiting for metadata are abandoned unacked (Tap resends them). */
  stopReading(): void {
    this.#ws.stopReading()
  }

  /** Send the acks that became due (bounded), then close the socket. */
  async close(): Promise<void> {
    await this.#acks.flush(AbortSignal.timeout(ACK_FLUSH_TIMEOUT_MS))
    await this.#ws.close()
  }

  progress(): Record<string, unknown> {
    return { awaitingAck: this.#buffered, connected: this.connected }
  }

  stopped(): Record<string, unknown> {
    return { unacked: this.#buffered }
  }

  /** One event: produced and acked once the output has it, or acked at once when unusable. */
  #onMessage(text: string, conn: TapConnection): void {
    const log = this.#log
    const metrics = this.#metrics
    const parsed = parseTapEvent(text)
    if (!parsed.ok) {
      const { id, reason, detail, did } = parsed
      if (reason === 'unknown-type') {
        metrics.skippedMessages.inc({ type: 'unknown' })
        log.warn({ id, type: parsed.type, did }, 'unknown Tap event type skipped and acked')
      } else if (reason === 'invalid-record') {
        metrics.droppedEvents.inc({ reason })
        log.warn({ id, did, detail }, 'Tap event without a usable record dropped and acked')
      } else {
        metrics.decodeErrors.inc({ reason })
        log.warn(
          { id, reason, detail, did, bytes: text.length },
          id === undefined
            ? 'unreadable Tap event skipped (no id to ack)'
            : 'invalid Tap event skipped and acked',
        )
      }
      if (id !== undefined) this.#acks.ack(conn, id)
      return
    }
    const { id, event } = parsed
    if ('operation' in event && !this.#keep(event.operation.collection)) {
      metrics.filteredEvents.inc({ filter: 'collection' })
      log.debug({ id, collection: event.operation.collection }, 'filtered out; acked')
      this.#acks.ack(conn, id)
      return
    }
    this.#tapMetrics.eventBuffer.set(++this.#buffered)
    this.#context!.emit({
      events: [event],
      cursor: String(id),
      time: parsed.live && parsed.rev !== undefined ? tidTimeMs(parsed.rev) : undefined,
      done: () => {
        this.#tapMetrics.eventBuffer.set(--this.#buffered)
        this.#acks.ack(conn, id)
      },
    })
  }
}

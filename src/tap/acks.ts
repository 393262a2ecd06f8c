import { Outstanding } from '../sink/sink.ts'
import type { Logger } from '../logger.ts'
import { ackFrame } from './event.ts'
import type { TapMetrics } from './metrics.ts'
import type { WsConnection as TapConnection } from '../source/websocket.ts'

/**
 * Sends `{"type":"ack","id":N}` for events that are done, on the connection each event came
 * on. An ack whose connection has closed is dropped, never sent on a newer connection: if Tap
 * restarted meanwhile, the same id names another event, and acking it would lose that event.
 * Tap sends unacked events again (after its retry timeout, or when it restarts).
 */
export class AckSender {
  readonly #enabled: boolean
  readonly #metrics: TapMetrics
  readonly #log: Logger
  /** Acks due and not yet written (queued for the next batch or handed to a socket). */
  readonly #pending = new Outstanding()
  /** Acks due in this turn of the event loop, per connection: written together, in order. */
  #queued = new Map<TapConnection, number[]>()

  constructor(opts: { enabled: boolean; metrics: TapMetrics; logger: Logger }) {
    this.#enabled = opts.enabled
    this.#metrics = opts.metrics
    this.#log = opts.logger
  }

  /** Acks due and not yet written. */
  get pending(): number {
    return this.#pending.count
  }

  /**
   * Ack event `id` of `conn`. The acks of one turn (a Kafka batch completes thousands of events
   * at once) leave together at its end, in one socket write.
   */
  ack(conn: TapConnection, id: number): void {
    if (!this.#enabled) return
    let ids = this.#queued.get(conn)
    if (ids === undefined) {
      if (this.#queued.size === 0) queueMicrotask(() => this.#send())
      ids = []
      this.#queued.set(conn, ids)
    }
    ids.push(id)
    this.#pending.add(1)
  }

  #send(): void {
    const queued = this.#queued
    this.#queued = new Map()
    this.#metrics.ackBuffer.set(this.#pending.count)
    for (const [conn, ids] of queued) {
      if (!conn.open) {
        this.#metrics.acksSent.inc({ status: 'dropped' }, ids.length)
        this.#log.debug(
          { acks: ids.length, connection: conn.id },
          'connection closed before the acks; dropped',
        )
        this.#done(ids.length)
        continue
      }
      conn.sendAll(ids.map(ackFrame), (err) => {
        if (err) {
          this.#metrics.acksSent.inc({ status: 'error' }, ids.length)
          this.#log.debug(
            { acks: ids.length, connection: conn.id, err: err.message },
            'acks not sent',
          )
        } else {
          this.#metrics.acksSent.inc({ status: 'ok' }, ids.length)
        }
        this.#done(ids.length)
      })
    }
  }

  #done(n: number): void {
    this.#pending.done(n)
    this.#metrics.ackBuffer.set(this.#pending.count)
  }

  /** Resolves when every ack due is written (or failed), or when `signal` aborts. */
  async flush(signal?: AbortSignal): Promise<void> {
    await this.#pending.zero(signal)
  }
}

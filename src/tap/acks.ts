import { DrainWaiters } from '../sink/sink.ts'
import type { Logger } from '../logger.ts'
import { ackFrame } from './event.ts'
import type { TapMetrics } from './metrics.ts'
import type { TapConnection } from './source.ts'

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
  readonly #drained = new DrainWaiters()
  #pending = 0

  constructor(opts: { enabled: boolean; metrics: TapMetrics; logger: Logger }) {
    this.#enabled = opts.enabled
    this.#metrics = opts.metrics
    this.#log = opts.logger
  }

  /** Acks handed to a socket and not yet written. */
  get pending(): number {
    return this.#pending
  }

  ack(conn: TapConnection, id: number): void {
    if (!this.#enabled) return
    if (!conn.open) {
      this.#metrics.acksSent.inc({ status: 'dropped' })
      this.#log.debug({ id, connection: conn.id }, 'connection closed before the ack; dropped')
      return
    }
    this.#pending++
    this.#metrics.ackBuffer.set(this.#pending)
    conn.send(ackFrame(id), (err) => {
      this.#pending--
      this.#metrics.ackBuffer.set(this.#pending)
      if (err) {
        this.#metrics.acksSent.inc({ status: 'error' })
        this.#log.debug({ id, connection: conn.id, err: err.message }, 'ack not sent')
      } else {
        this.#metrics.acksSent.inc({ status: 'ok' })
      }
      if (this.#pending === 0) this.#drained.release()
    })
  }

  /** Resolves when every ack handed to a socket is written (or failed), or when `signal` aborts. */
  async flush(signal?: AbortSignal): Promise<void> {
    if (this.#pending > 0) await this.#drained.wait(signal)
  }
}

import type { Writable } from 'node:stream'
import type { Metrics } from '../metrics.ts'
import { Group, Outstanding, type OutMessage, type Sink } from './sink.ts'

/** Writes each message value as one JSON line; acknowledged once the stream accepted it. */
export class StdoutSink implements Sink {
  readonly #out: Writable
  readonly #metrics: Metrics
  readonly #onFatal: (err: Error) => void
  readonly #pending = new Outstanding()

  constructor(opts: { out: Writable; metrics: Metrics; onFatal: (err: Error) => void }) {
    this.#out = opts.out
    this.#metrics = opts.metrics
    this.#onFatal = opts.onFatal
  }

  async start(): Promise<void> {}

  get pending(): number {
    return this.#pending.count
  }

  isReady(): boolean {
    return this.#out.writable
  }

  write(messages: readonly OutMessage[], done: () => void): void {
    if (messages.length === 0) return done()
    const group = new Group(messages.length, done)
    this.#pending.add(messages.length)
    let chunk = ''
    for (const m of messages) chunk += m.value + '\n'
    this.#out.write(chunk, (err) => {
      if (err) {
        // Output is gone: nothing written after this can be acknowledged.
        this.#metrics.producedEvents.inc({ status: 'error' }, messages.length)
        this.#onFatal(err)
        return
      }
      this.#metrics.producedEvents.inc({ status: 'ok' }, messages.length)
      this.#pending.done(messages.length)
      for (let i = 0; i < messages.length; i++) group.ack()
    })
  }

  async flush(signal?: AbortSignal): Promise<void> {
    await this.#pending.zero(signal)
  }

  async close(): Promise<void> {
    await this.flush()
  }
}

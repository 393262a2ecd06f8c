import type { Writable } from 'node:stream'
import type { Metrics } from '../metrics.ts'
import { Group, Outstanding, type OutMessage, type Sink } from './sink.ts'

/** The reader of the output went away (`| head`): a normal end of a pipe, not a failure. */
function isClosedPipe(err: Error): boolean {
  const code = (err as NodeJS.ErrnoException).code
  return code === 'EPIPE' || code === 'ERR_STREAM_DESTROYED'
}

/**
 * Writes each message value as one JSON line; acknowledged once the stream accepted it. When the
 * reader closes the pipe, what was not written is never acknowledged (the cursor stays before it)
 * and `onClosed` is called once, to stop quietly.
 */
export class StdoutSink implements Sink {
  readonly #out: Writable
  readonly #metrics: Metrics
  readonly #onFatal: (err: Error) => void
  readonly #onClosed: () => void
  readonly #pending = new Outstanding()
  #closed = false

  constructor(opts: {
    out: Writable
    metrics: Metrics
    onFatal: (err: Error) => void
    onClosed: () => void
  }) {
    this.#out = opts.out
    this.#metrics = opts.metrics
    this.#onFatal = opts.onFatal
    this.#onClosed = opts.onClosed
    // The write callback reports each failure; without a listener the stream's 'error' event
    // would also end the process with a stack trace.
    this.#out.on('error', () => {})
  }

  async start(): Promise<void> {}

  get pending(): number {
    return this.#pending.count
  }

  isReady(): boolean {
    return !this.#closed && this.#out.writable
  }

  write(messages: readonly OutMessage[], done: () => void): void {
    if (messages.length === 0) return done()
    if (this.#closed) {
      this.#metrics.producedEvents.inc({ status: 'error' }, messages.length)
      return
    }
    const group = new Group(messages.length, done)
    this.#pending.add(messages.length)
    let chunk = ''
    for (const m of messages) chunk += m.value + '\n'
    this.#out.write(chunk, (err) => {
      if (err) {
        // Output is gone: nothing written after this can be acknowledged.
        this.#metrics.producedEvents.inc({ status: 'error' }, messages.length)
        if (!isClosedPipe(err)) return this.#onFatal(err)
        // Not acknowledged, and nothing left to wait for at shutdown.
        this.#pending.done(messages.length)
        if (!this.#closed) {
          this.#closed = true
          this.#onClosed()
        }
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

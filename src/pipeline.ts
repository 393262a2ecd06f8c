import { type AtKafkaEvent, actionNameOf, collectionOf, keyOf } from './events.ts'
import type { Formatter } from './format.ts'
import type { Metrics } from './metrics.ts'
import type { OutMessage, Sink } from './sink/sink.ts'

/**
 * The shared back half of every mode: count, format and hand events to the sink, keeping the
 * number of unacknowledged messages under `maxInFlight` by asking the source to pause.
 */
export class Pipeline {
  readonly #sink: Sink
  readonly #format: Formatter
  readonly #metrics: Metrics
  readonly #maxInFlight: number
  readonly #onPause: () => void
  readonly #onResume: () => void
  #inFlight = 0
  #paused = false

  constructor(opts: {
    sink: Sink
    format: Formatter
    metrics: Metrics
    maxInFlight: number
    onPause: () => void
    onResume: () => void
  }) {
    this.#sink = opts.sink
    this.#format = opts.format
    this.#metrics = opts.metrics
    this.#maxInFlight = opts.maxInFlight
    this.#onPause = opts.onPause
    this.#onResume = opts.onResume
  }

  get inFlight(): number {
    return this.#inFlight
  }

  /** Produce `events` as one unit; `done` runs once all of them are acknowledged. */
  submit(events: readonly AtKafkaEvent[], done: () => void): void {
    const messages: OutMessage[] = new Array(events.length)
    for (let i = 0; i < events.length; i++) {
      const event = events[i]!
      this.#metrics.handledEvents.inc({
        action_name: actionNameOf(event),
        collection: collectionOf(event),
      })
      messages[i] = { key: keyOf(event), value: this.#format(event) }
    }
    this.submitMessages(messages, done)
  }

  /** Produce pre-formatted messages as one unit. */
  submitMessages(messages: readonly OutMessage[], done: () => void): void {
    const n = messages.length
    this.#inFlight += n
    this.#metrics.inFlight.set(this.#inFlight)
    this.#sink.write(messages, () => {
      this.#inFlight -= n
      this.#metrics.inFlight.set(this.#inFlight)
      if (this.#paused && this.#inFlight <= this.#maxInFlight / 2) {
        this.#paused = false
        this.#onResume()
      }
      done()
    })
    if (!this.#paused && this.#inFlight >= this.#maxInFlight) {
      this.#paused = true
      this.#onPause()
    }
  }
}

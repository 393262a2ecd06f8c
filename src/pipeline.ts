import type { EnrichResult, Enricher } from './enrich/enricher.ts'
import { type AtKafkaEvent, actionNameOf, collectionOf, keyOf } from './events.ts'
import type { Formatter } from './format.ts'
import type { Metrics } from './metrics.ts'
import { type RoutedInput, Router, metaOf } from './output.ts'
import type { OutMessage, Sink } from './sink/sink.ts'

/**
 * The shared back half of every mode: count, format and hand events to the sink, keeping the
 * number of unacknowledged messages under `maxInFlight` by asking the source to pause.
 * With an `enricher`, `submit` first looks up each unit's metadata (units of one DID stay in
 * order) and events waiting for it count as in flight too.
 */
export class Pipeline {
  readonly #sink: Sink
  readonly #format: Formatter
  readonly #metrics: Metrics
  readonly #maxInFlight: number
  readonly #onPause: () => void
  readonly #onResume: () => void
  readonly #enricher: Enricher | undefined
  readonly #router: Router
  #inFlight = 0
  #paused = false

  constructor(opts: {
    sink: Sink
    format: Formatter
    metrics: Metrics
    maxInFlight: number
    onPause: () => void
    onResume: () => void
    /** Optional metadata stage (eventMetadata and service filters). */
    enricher?: Enricher
    /** Each message's topic and headers (default: the sink's one topic, no headers). */
    router?: Router
  }) {
    this.#sink = opts.sink
    this.#format = opts.format
    this.#metrics = opts.metrics
    this.#maxInFlight = opts.maxInFlight
    this.#onPause = opts.onPause
    this.#onResume = opts.onResume
    this.#enricher = opts.enricher
    this.#router = opts.router ?? new Router({ headers: false })
  }

  get inFlight(): number {
    return this.#inFlight
  }

  /**
   * Produce `events` as one unit; `done` runs once all of them are acknowledged (at once when
   * a service filter removed them all). After `close()`, units still waiting for enrichment
   * never complete: their source position is not committed and they are read again.
   * `cursor` is the source position the events came from (the `atkafka-cursor` header).
   */
  submit(events: readonly AtKafkaEvent[], done: () => void, cursor?: string): void {
    if (this.#enricher !== undefined && events.length > 0) {
      const n = events.length
      this.#add(n)
      this.#enricher.schedule(events, (result) => this.#enriched(n, result, done, cursor))
      return
    }
    this.#submitMessages(this.#toMessages(events, cursor), done)
  }

  /** Count and format events into the sink's messages. */
  #toMessages(events: readonly AtKafkaEvent[], cursor: string | undefined): OutMessage[] {
    const messages: OutMessage[] = new Array(events.length)
    const router = this.#router
    for (let i = 0; i < events.length; i++) {
      const event = events[i]!
      this.#metrics.handledEvents.inc({
        action_name: actionNameOf(event),
        collection: collectionOf(event),
      })
      messages[i] = router.message(
        keyOf(event),
        this.#format(event),
        router.needsMeta ? metaOf(event, cursor) : undefined,
      )
    }
    return messages
  }

  /** Produce messages the source formatted itself as one unit. */
  submitFormatted(inputs: readonly RoutedInput[], done: () => void): void {
    const router = this.#router
    this.#submitMessages(
      inputs.map((m) => router.message(m.key, m.value, m.meta)),
      done,
    )
  }

  #submitMessages(messages: readonly OutMessage[], done: () => void): void {
    const n = messages.length
    this.#add(n)
    this.#sink.write(messages, () => {
      this.#release(n)
      done()
    })
  }

  /** Stop the enrichment stage (abandoning units still waiting) and wait for its lookups. */
  async close(): Promise<void> {
    await this.#enricher?.close()
  }

  #enriched(n: number, result: EnrichResult, done: () => void, cursor: string | undefined): void {
    if (result.filtered > 0) {
      this.#metrics.filteredEvents.inc({ filter: 'service' }, result.filtered)
    }
    this.#submitMessages(this.#toMessages(result.events, cursor), done)
    this.#release(n)
  }

  #add(n: number): void {
    this.#inFlight += n
    this.#metrics.inFlight.set(this.#inFlight)
    if (!this.#paused && this.#inFlight >= this.#maxInFlight) {
      this.#paused = true
      this.#onPause()
    }
  }

  #release(n: number): void {
    this.#inFlight -= n
    this.#metrics.inFlight.set(this.#inFlight)
    if (this.#paused && this.#inFlight <= this.#maxInFlight / 2) {
      this.#paused = false
      this.#onResume()
    }
  }
}

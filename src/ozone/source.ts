import type { Logger } from '../logger.ts'
import type { Metrics } from '../metrics.ts'
import type { Source, SourceContext } from '../source/port.ts'
import type { OzoneClient } from './client.ts'
import { type OzonePosition, type PageResult, newestOf } from './dedup.ts'
import type { OzoneMetrics } from './metrics.ts'
import { eventTypeLabel, toMessage } from './page.ts'
import { OzonePoller } from './poller.ts'

/**
 * Ozone's moderation events as a source: pages polled oldest first, each page's new events one
 * unit positioned by the poll position after it, produced keyed by event id.
 */
export class OzoneSource implements Source<OzonePosition> {
  readonly #client: OzoneClient
  readonly #labelerDid: string
  readonly #log: Logger
  readonly #metrics: Metrics
  readonly #poller: OzonePoller
  #context: SourceContext<OzonePosition> | undefined
  #connected: NodeJS.Timeout | undefined
  #duplicates = 0
  #pages = 0

  constructor(opts: {
    client: OzoneClient
    labelerDid: string
    logger: Logger
    metrics: Metrics
    ozoneMetrics: OzoneMetrics
    pollIntervalMs: number
    lookbackMs: number
    start: OzonePosition
  }) {
    this.#client = opts.client
    this.#labelerDid = opts.labelerDid
    this.#log = opts.logger
    this.#metrics = opts.metrics
    this.#poller = new OzonePoller({
      client: opts.client,
      logger: opts.logger,
      metrics: opts.ozoneMetrics,
      pollIntervalMs: opts.pollIntervalMs,
      lookbackMs: opts.lookbackMs,
      start: opts.start,
      onPage: (result, caughtUp) => this.#onPage(result, caughtUp),
    })
  }

  /** Whether the last request succeeded. */
  get connected(): boolean {
    return this.#poller.healthy
  }

  pause(): void {
    this.#poller.pause()
  }

  resume(): void {
    this.#poller.resume()
  }

  /** One request: bad credentials or a wrong labeler DID fail the start. */
  async prepare(signal: AbortSignal): Promise<boolean> {
    if (!(await this.#poller.check(signal))) return false
    this.#log.info(
      { labelerDid: this.#labelerDid, did: this.#client.did },
      'Ozone answered; polling',
    )
    return true
  }

  async run(signal: AbortSignal, context: SourceContext<OzonePosition>): Promise<void> {
    this.#context = context
    this.#connected = setInterval(
      () => this.#metrics.connected.set(this.#poller.healthy ? 1 : 0),
      1000,
    )
    this.#connected.unref()
    await this.#poller.run(signal)
  }

  async close(): Promise<void> {
    clearInterval(this.#connected)
  }

  progress(): Record<string, unknown> {
    const fields = {
      duplicates: this.#duplicates,
      pages: this.#pages,
      healthy: this.#poller.healthy,
    }
    this.#duplicates = 0
    this.#pages = 0
    return fields
  }

  stopped(committed: OzonePosition | undefined): Record<string, unknown> {
    return { ids: committed?.produced.size ?? 0 }
  }

  #onPage(result: PageResult, caughtUp: boolean): void {
    const context = this.#context!
    this.#pages++
    this.#duplicates += result.duplicates
    const newest = newestOf(result.next)
    const time = caughtUp || newest === undefined ? Date.now() : Date.parse(newest)
    if (result.fresh.length === 0) {
      context.observe(time)
      return
    }
    const messages = result.fresh.map((view) => {
      this.#metrics.handledEvents.inc({ action_name: 'ozone', collection: eventTypeLabel(view) })
      return toMessage(view)
    })
    context.emit({ position: result.next, messages, time })
  }
}

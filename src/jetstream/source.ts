import type { Logger } from '../logger.ts'
import type { Metrics } from '../metrics.ts'
import { PROGRESS_INTERVAL_MS } from '../service.ts'
import type { Source, SourceContext, SourceStatus } from '../source/port.ts'
import { WebSocketSource } from '../source/websocket.ts'
import { SUBSCRIBE_PATH } from './config.ts'
import { parseJetstreamEvent } from './event.ts'
import { RecentEvents } from './recent.ts'

/**
 * How far before the newest `time_us` received a reconnect resumes, as Jetstream advises:
 * events reach it out of order by milliseconds, and what was seen already is dropped.
 */
export const REWIND_US = 3_000_000
/** A URL longer than this sends the filters in an `options_update` message instead. */
const MAX_URL_LENGTH = 4096

/** The `/subscribe` URL with the filters and, when resuming, the cursor. */
export function jetstreamUrl(opts: {
  host: string
  wantedCollections: readonly string[]
  wantedDids: readonly string[]
  cursor: number | undefined
}): { url: string; hello?: string } {
  const url = new URL(opts.host + SUBSCRIBE_PATH)
  if (opts.cursor !== undefined) url.searchParams.set('cursor', String(opts.cursor))
  const withFilters = new URL(url)
  for (const c of opts.wantedCollections) withFilters.searchParams.append('wantedCollections', c)
  for (const d of opts.wantedDids) withFilters.searchParams.append('wantedDids', d)
  if (withFilters.toString().length <= MAX_URL_LENGTH) return { url: withFilters.toString() }
  // Thousands of DIDs: Jetstream holds events until the first options_update names them.
  url.searchParams.set('requireHello', 'true')
  return {
    url: url.toString(),
    hello: JSON.stringify({
      type: 'options_update',
      payload: {
        wantedCollections: opts.wantedCollections,
        wantedDids: opts.wantedDids,
        maxMessageSizeBytes: 0,
      },
    }),
  }
}

export interface JetstreamSourceOptions {
  host: string
  wantedCollections: readonly string[]
  wantedDids: readonly string[]
  /** Whether an operation's collection is produced (`--watched/ignored-collections`). */
  keep: (collection: string) => boolean
  logger: Logger
  metrics: Metrics
}

/**
 * Jetstream's `/subscribe` (v1 JSON) as a source: each event is one unit positioned by the
 * newest `time_us` received so far. Every connection after the first resumes `REWIND_US`
 * before that, and events seen already in this process are dropped.
 */
export class JetstreamSource implements Source<number> {
  readonly #opts: JetstreamSourceOptions
  readonly #ws: WebSocketSource
  readonly #recent = new RecentEvents(2 * REWIND_US)
  #context: SourceContext<number> | undefined
  /** Newest `time_us` received (or started from): where the next connection resumes. */
  #newest: number | undefined
  /** The cursor of the current connection: the first event tells whether Jetstream used it. */
  #requested: number | undefined
  #firstOfConnection = false
  #hello: string | undefined
  #duplicates = 0

  constructor(opts: JetstreamSourceOptions) {
    this.#opts = opts
    this.#ws = new WebSocketSource({
      peer: 'Jetstream',
      url: () => this.#nextUrl(),
      logger: opts.logger,
      metrics: opts.metrics,
      // A refused upgrade (400 for bad filters, 503 while starting) is counted by its status.
      refused: () => undefined,
      onOpen: (conn) => {
        if (this.#hello !== undefined) conn.sendAll([this.#hello], () => {})
      },
      onMessage: (data, isBinary) => {
        if (isBinary) {
          opts.metrics.decodeErrors.inc({ reason: 'binary-frame' })
          opts.logger.warn({ bytes: data.length }, 'Jetstream sent a binary frame; skipped')
          return
        }
        this.#onText(data.toString('utf8'))
      },
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

  async run(signal: AbortSignal, context: SourceContext<number>): Promise<void> {
    this.#context = context
    this.#newest = context.start
    await this.#ws.run(signal)
  }

  progress(): Record<string, unknown> {
    const fields = {
      duplicatesPerSec: Math.round(this.#duplicates / (PROGRESS_INTERVAL_MS / 1000)),
      connected: this.connected,
    }
    this.#duplicates = 0
    return fields
  }

  #nextUrl(): string {
    const cursor = this.#newest === undefined ? undefined : this.#newest - REWIND_US
    this.#requested = cursor
    this.#firstOfConnection = true
    const { url, hello } = jetstreamUrl({
      host: this.#opts.host,
      wantedCollections: this.#opts.wantedCollections,
      wantedDids: this.#opts.wantedDids,
      cursor,
    })
    this.#hello = hello
    return url
  }

  #onText(text: string): void {
    const { metrics, logger: log } = this.#opts
    const parsed = parseJetstreamEvent(text)
    if (!parsed.ok) {
      const { reason, detail, did, timeUs, kind } = parsed
      if (reason === 'unknown-kind') {
        metrics.skippedMessages.inc({ type: 'unknown' })
        log.warn({ kind, did, timeUs }, 'unknown Jetstream event kind skipped')
      } else if (reason === 'invalid-op' || reason === 'invalid-record') {
        metrics.droppedEvents.inc({ reason })
        log.warn({ reason, did, timeUs, detail }, 'Jetstream commit dropped')
      } else {
        metrics.decodeErrors.inc({ reason })
        log.warn(
          { reason, did, timeUs, detail, bytes: text.length },
          'invalid Jetstream event skipped',
        )
      }
      return
    }
    const { timeUs, key, event } = parsed
    if (this.#firstOfConnection) {
      this.#firstOfConnection = false
      const requested = this.#requested
      // Jetstream answers a cursor ahead of its newest event with the live stream.
      if (requested !== undefined && timeUs < requested - REWIND_US) {
        metrics.relayErrors.inc({ error: 'FutureCursor' })
        log.error(
          { cursor: requested, firstTimeUs: timeUs },
          'Jetstream sent events older than the cursor (a cursor in the future: another instance, or a clock ahead): following its stream from here',
        )
        this.#newest = undefined
      }
    }
    if (this.#recent.check(key, timeUs)) {
      this.#duplicates++
      return
    }
    if (this.#newest === undefined || timeUs > this.#newest) this.#newest = timeUs
    const time = timeUs / 1000
    if ('operation' in event && !this.#opts.keep(event.operation.collection)) {
      metrics.filteredEvents.inc({ filter: 'collection' })
      this.#context!.emit({ position: this.#newest, time })
      return
    }
    this.#context!.emit({
      position: this.#newest,
      events: [event],
      time,
      cursor: String(timeUs),
    })
  }
}

import { setTimeout as sleep } from 'node:timers/promises'
import { backoffDelay } from '../backoff.ts'
import { errorMessage } from '../errors.ts'
import type { Logger } from '../logger.ts'
import type { QueryEventsParams } from './client.ts'
import { type OzonePosition, type PageResult, acceptPage } from './dedup.ts'
import { OzoneError, OzoneUnavailableError } from './errors.ts'
import type { OzoneMetrics } from './metrics.ts'
import type { EventPage } from './page.ts'

/** Ozone's largest page. */
export const PAGE_SIZE = 100

export interface OzonePollerOptions {
  client: { queryEvents(params: QueryEventsParams): Promise<EventPage> }
  logger: Logger
  metrics: OzoneMetrics
  pollIntervalMs: number
  lookbackMs: number
  start: OzonePosition
  /**
   * Called once per page, in order, with the events not produced before and the position after
   * them; `caughtUp` is true on the last page of a poll.
   */
  onPage(result: PageResult, caughtUp: boolean): void
  pageSize?: number
  /** Largest wait between retries of a failed request. Default 60 s. */
  maxBackoffMs?: number
}

/**
 * Polls queryEvents oldest first from the current position; while pages come back full it
 * follows Ozone's cursor at once (a backlog is read at full speed), then waits the poll
 * interval. A failed request is retried with backoff, from the same position, until it works
 * or the poller stops — except before the first success, when a non-retryable error (bad
 * credentials, wrong labeler DID) is thrown to fail the start.
 */
export class OzonePoller {
  readonly #opts: OzonePollerOptions
  readonly #log: Logger
  readonly #pageSize: number
  #position: OzonePosition
  #healthy = false
  #succeeded = false
  #paused = false
  #wake: (() => void) | undefined

  constructor(opts: OzonePollerOptions) {
    this.#opts = opts
    this.#log = opts.logger
    this.#pageSize = opts.pageSize ?? PAGE_SIZE
    this.#position = opts.start
  }

  /** Whether the last request succeeded. */
  get healthy(): boolean {
    return this.#healthy
  }

  /** The position after the last page handed to `onPage` (produced or in flight). */
  get position(): OzonePosition {
    return this.#position
  }

  /** Stop fetching pages (the output is full); {@link resume} continues. */
  pause(): void {
    this.#paused = true
  }

  resume(): void {
    this.#paused = false
    this.#wake?.()
  }

  /**
   * One request to check credentials and labeler: resolves once Ozone answered, throws on a
   * non-retryable error, retries the rest. Returns false when stopped first.
   */
  async check(signal: AbortSignal): Promise<boolean> {
    const params = { createdAfter: this.#position.createdAfter, limit: 1 }
    return (await this.#fetch(params, signal)) !== undefined
  }

  /** Poll until `signal` aborts. */
  async run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      await this.#drain(signal)
      if (signal.aborted) return
      await sleep(this.#opts.pollIntervalMs, undefined, { signal }).catch(() => {})
    }
  }

  async #drain(signal: AbortSignal): Promise<void> {
    const { metrics, lookbackMs, onPage } = this.#opts
    const createdAfter = this.#position.createdAfter
    let cursor: string | undefined
    for (let first = true; ; first = false) {
      await this.#whilePaused(signal)
      if (signal.aborted) return
      const page = await this.#fetch({ createdAfter, cursor, limit: this.#pageSize }, signal)
      if (page === undefined) return
      metrics.pages.inc({ kind: first ? 'poll' : 'backlog' })
      const result = acceptPage(this.#position, page.events, lookbackMs)
      if (result.duplicates > 0) metrics.duplicates.inc(result.duplicates)
      this.#position = result.next
      const more = page.events.length >= this.#pageSize && page.cursor !== undefined
      onPage(result, !more)
      if (!more) return
      cursor = page.cursor
    }
  }

  async #whilePaused(signal: AbortSignal): Promise<void> {
    while (this.#paused && !signal.aborted) {
      await new Promise<void>((resolve) => {
        const done = () => {
          signal.removeEventListener('abort', done)
          this.#wake = undefined
          resolve()
        }
        this.#wake = done
        signal.addEventListener('abort', done, { once: true })
      })
    }
  }

  /** The page, or undefined when stopped; retries until then. */
  async #fetch(params: QueryEventsParams, signal: AbortSignal): Promise<EventPage | undefined> {
    for (let attempt = 0; ; attempt++) {
      try {
        const page = await this.#opts.client.queryEvents(params)
        if (attempt > 0) this.#log.info({ attempts: attempt + 1 }, 'Ozone is answering again')
        this.#healthy = true
        this.#succeeded = true
        return page
      } catch (err) {
        if (signal.aborted) return undefined
        this.#healthy = false
        const e =
          err instanceof OzoneError
            ? err
            : new OzoneUnavailableError(errorMessage(err), { cause: err })
        if (!e.retryable && !this.#succeeded) throw e
        const delay = backoffDelay(attempt, 1000, this.#opts.maxBackoffMs ?? 60000)
        this.#log[e.retryable ? 'warn' : 'error'](
          { err: e.message, kind: e.name, attempt, retryInMs: delay },
          'Ozone request failed; retrying from the same position',
        )
        await sleep(delay, undefined, { signal }).catch(() => {})
        if (signal.aborted) return undefined
      }
    }
  }
}

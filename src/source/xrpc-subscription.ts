import { RelayCursorFile } from '../cursor/file-store.ts'
import type { AtKafkaEvent } from '../events.ts'
import { FrameError } from '../firehose/frame.ts'
import type { Logger } from '../logger.ts'
import type { Metrics } from '../metrics.ts'
import { PROGRESS_INTERVAL_MS } from '../service.ts'
import type { Source, SourceContext, SourceCursor, SourceStatus } from './port.ts'
import { WebSocketSource, subscribeUrl } from './websocket.ts'

/** What one binary frame of a seq-numbered subscription amounts to. */
export type FrameOutcome =
  | { kind: 'error'; error: string; message?: string }
  | {
      kind: 'events'
      /** The frame's seq; undefined for frames without one (`#info`). */
      seq: number | undefined
      events: AtKafkaEvent[]
      /** Event time (ms) of the newest event, for the lag gauge. */
      time?: number
    }

export interface XrpcSubscriptionOptions {
  /** `relay` or `labeler`: names the peer in log lines. */
  peer: string
  /** `ws(s)://host[:port][/prefix]` without the XRPC path. */
  host: string
  /** The XRPC path, e.g. `/xrpc/com.atproto.sync.subscribeRepos`. */
  path: string
  logger: Logger
  metrics: Metrics
  /**
   * Turn a frame into events, counting and logging what it drops. Throws {@link FrameError}
   * (or anything else) for an undecodable frame, which is counted and skipped.
   */
  decode: (data: Buffer) => FrameOutcome
}

/** Error frames counted under their own name; anything else is `other`. */
const KNOWN_ERRORS = new Set(['FutureCursor', 'ConsumerTooSlow', 'OutdatedCursor'])

/**
 * A `com.atproto.sync.subscribe*`-style subscription (subscribeRepos, subscribeLabels): binary
 * frames → units positioned by their seq. A reconnect resumes after the last frame received
 * (the output keeps the rest); a `FutureCursor` error drops the cursor.
 */
export class XrpcSubscription implements Source<number> {
  readonly #opts: XrpcSubscriptionOptions
  readonly #ws: WebSocketSource
  /** Newest seq received in this process: where a reconnect resumes. */
  #lastReceived: number | undefined
  #context: SourceContext<number> | undefined
  #frames = 0

  constructor(opts: XrpcSubscriptionOptions) {
    this.#opts = opts
    this.#ws = new WebSocketSource({
      // Log lines say `relay` for both, as they always did.
      peer: 'relay',
      url: () => subscribeUrl(opts.host, this.#lastReceived, opts.path),
      logger: opts.logger,
      metrics: opts.metrics,
      onMessage: (data, isBinary) => {
        if (!isBinary) {
          opts.metrics.decodeErrors.inc({ reason: 'text-frame' })
          opts.logger.warn('relay sent a text frame; skipped')
          return
        }
        this.#onFrame(data)
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
    this.#lastReceived = context.start
    await this.#ws.run(signal)
  }

  progress(): Record<string, unknown> {
    const framesPerSec = Math.round(this.#frames / (PROGRESS_INTERVAL_MS / 1000))
    this.#frames = 0
    return { framesPerSec }
  }

  #onFrame(data: Buffer): void {
    const { metrics, logger: log } = this.#opts
    let outcome: FrameOutcome
    try {
      outcome = this.#opts.decode(data)
    } catch (err) {
      const reason = err instanceof FrameError ? err.reason : 'invalid-frame'
      metrics.decodeErrors.inc({ reason })
      log.warn({ reason, err: String(err), bytes: data.length }, 'undecodable frame skipped')
      return
    }
    this.#frames++
    if (outcome.kind === 'error') {
      this.#onErrorFrame(outcome.error, outcome.message)
      return
    }
    const { seq } = outcome
    if (seq !== undefined) this.#lastReceived = seq
    this.#context!.emit({
      position: seq,
      events: outcome.events,
      time: outcome.time,
      cursor: seq === undefined ? undefined : String(seq),
    })
  }

  #onErrorFrame(error: string, message: string | undefined): void {
    const { metrics, logger: log, peer } = this.#opts
    metrics.relayErrors.inc({ error: KNOWN_ERRORS.has(error) ? error : 'other' })
    if (error === 'FutureCursor') {
      log.error(
        { cursor: this.#lastReceived, message },
        `${peer} says the cursor is in the future (${peer} reset or wrong ${peer}): DROPPING the cursor and continuing from the live stream; events between may be missing`,
      )
      this.#lastReceived = undefined
    } else if (error === 'ConsumerTooSlow') {
      log.warn(
        { message },
        `${peer} says we are too slow; it will disconnect and we resume from the cursor`,
      )
    } else {
      log.error({ error, message }, `${peer} sent an error frame`)
    }
  }
}

/**
 * The cursor file of a seq-numbered stream, `{"host", "seq"}`: `--cursor` first, else the file
 * when it was saved for this host, else the live stream.
 */
export function seqCursor(opts: {
  peer: string
  host: string
  file: string
  /** Explicit start seq (overrides the cursor file). */
  cursor: number | undefined
  logger: Logger
  metrics: Metrics
}): SourceCursor<number> {
  const store = new RelayCursorFile(opts.file)
  const log = opts.logger
  return {
    intervalMs: 1000,
    replayBound: true,
    saveFirstAtOnce: true,
    checkWritable: () => store.checkWritable(),
    save: (seq) => store.save({ host: opts.host, seq }),
    onSaved: (seq) => opts.metrics.cursor.set(seq),
    show: (seq) => seq,
    async start() {
      if (opts.cursor !== undefined) {
        log.info({ cursor: opts.cursor }, 'starting from the cursor given on the command line')
        return opts.cursor
      }
      const saved = await store.load()
      if (saved === undefined) {
        log.info({ file: store.path }, 'no saved cursor; starting from the live stream')
        return undefined
      }
      if (saved.host !== opts.host) {
        log.warn(
          { file: store.path, savedHost: saved.host, host: opts.host },
          `cursor file belongs to another ${opts.peer}; ignoring it`,
        )
        return undefined
      }
      log.info({ cursor: saved.seq, file: store.path }, 'resuming from the saved cursor')
      return saved.seq
    },
  }
}

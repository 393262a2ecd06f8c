import { type RelayCursor, RelayCursorFile, ThrottledSaver } from '../cursor/file-store.ts'
import { ReplayBound } from '../cursor/replay-bound.ts'
import { ConsecutiveTracker } from '../cursor/tracker.ts'
import type { Enricher } from '../enrich/enricher.ts'
import type { AtKafkaEvent } from '../events.ts'
import { FrameError } from '../firehose/frame.ts'
import type { Logger } from '../logger.ts'
import { Pipeline } from '../pipeline.ts'
import { RelaySource } from '../relay/source.ts'
import { type Service, PROGRESS_INTERVAL_MS, createFormatter } from '../service.ts'
import type { FormatConfig } from '../config/config.ts'

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

export interface SubscriptionOptions {
  /** `relay` or `labels`: names the peer in log lines. */
  peer: string
  /** `ws(s)://host[:port][/prefix]` without the XRPC path. */
  host: string
  /** The XRPC path, e.g. `/xrpc/com.atproto.sync.subscribeRepos`. */
  path: string
  cursorFile: string
  /** Explicit start seq (overrides the cursor file). */
  cursor?: number
  format: FormatConfig
  maxInFlight: number
  enricher?: Enricher
  logger: Logger
  /**
   * Turn a frame into events, counting and logging what it drops. Throws {@link FrameError}
   * (or anything else) for an undecodable frame, which is counted and skipped.
   */
  decode: (data: Buffer) => FrameOutcome
}

/** Error frames counted under their own name; anything else is `other`. */
const KNOWN_ERRORS = new Set(['FutureCursor', 'ConsumerTooSlow', 'OutdatedCursor'])

/**
 * A `com.atproto.sync.subscribe*`-style subscription (subscribeRepos, subscribeLabels) into the
 * sink: frames → events → pipeline, with the cursor file saved only over frames whose every
 * event the sink acknowledged, resumed on restart (for the same host only), and reconnects
 * resuming after the last frame received. Resolves when stopped; rejects with a fatal error.
 */
export async function runSubscription(service: Service, opts: SubscriptionOptions): Promise<void> {
  const { metrics } = service
  const log = opts.logger
  const { peer } = opts
  const store = new RelayCursorFile(opts.cursorFile)
  await store.checkWritable()
  const start = await startingSeq(store, opts)
  if (start !== undefined) metrics.cursor.set(start)

  /** Events acknowledged when each cursor value was taken (for the replay bound). */
  const ackedAt = new WeakMap<RelayCursor, number>()
  const saver = new ThrottledSaver<RelayCursor>({
    store,
    intervalMs: 1000,
    onError: (err) => service.fail(err),
    onSaved: (c) => {
      metrics.cursor.set(c.seq)
      bound.saved(ackedAt.get(c) ?? 0, pipeline.inFlight)
    },
  })
  const tracker = new ConsecutiveTracker<number>(start)
  let lastCommitted = start
  // A crash repeats what was read beyond the saved cursor: keep that under --max-in-flight.
  let pausedByPipeline = false
  const bound = new ReplayBound({
    max: opts.maxInFlight,
    saveNow: () => saver.saveNow(),
    setPaused: () => applyPause(),
  })
  const applyPause = () => (pausedByPipeline || bound.paused ? source.pause() : source.resume())
  /** Newest seq received in this process: where a reconnect resumes (the sink keeps the rest). */
  let lastReceived = start
  let events = 0
  let frames = 0
  let lag = 0

  const source: RelaySource = new RelaySource({
    base: opts.host,
    path: opts.path,
    logger: log,
    metrics,
    handlers: { cursor: () => lastReceived, frame: (data) => onFrame(data) },
  })
  const pipeline = new Pipeline({
    sink: service.sink,
    format: createFormatter(opts.format),
    metrics,
    maxInFlight: opts.maxInFlight,
    onPause: () => {
      pausedByPipeline = true
      applyPause()
    },
    onResume: () => {
      pausedByPipeline = false
      applyPause()
    },
    enricher: opts.enricher,
  })

  function onCompleted(acked: number): void {
    const committed = tracker.committed
    if (committed !== undefined && committed !== lastCommitted) {
      const first = lastCommitted === undefined
      lastCommitted = committed
      const value = { host: opts.host, seq: committed }
      ackedAt.set(value, bound.acked + acked)
      saver.update(value)
      // The first position of a start without cursor: save it at once, so that a crash in the
      // next second resumes there instead of from the live stream.
      if (first) saver.saveNow()
    }
    bound.acknowledged(acked, pipeline.inFlight)
  }

  function onFrame(data: Buffer): void {
    let outcome: FrameOutcome
    try {
      outcome = opts.decode(data)
    } catch (err) {
      const reason = err instanceof FrameError ? err.reason : 'invalid-frame'
      metrics.decodeErrors.inc({ reason })
      log.warn({ reason, err: String(err), bytes: data.length }, 'undecodable frame skipped')
      return
    }
    frames++
    if (outcome.kind === 'error') {
      onErrorFrame(outcome.error, outcome.message)
      return
    }
    const { seq } = outcome
    if (seq !== undefined) lastReceived = seq
    if (outcome.time !== undefined && !Number.isNaN(outcome.time)) {
      // Age of the newest event on arrival: a quiet peer is not a lagging one.
      lag = Math.max(0, (Date.now() - outcome.time) / 1000)
      metrics.lag.set(lag)
    }
    events += outcome.events.length
    const complete = tracker.add(seq)
    const n = outcome.events.length
    pipeline.submit(outcome.events, () => {
      complete()
      onCompleted(n)
    })
    bound.read(pipeline.inFlight)
  }

  function onErrorFrame(error: string, message: string | undefined): void {
    metrics.relayErrors.inc({ error: KNOWN_ERRORS.has(error) ? error : 'other' })
    if (error === 'FutureCursor') {
      log.error(
        { cursor: lastReceived, message },
        `${peer} says the cursor is in the future (${peer} reset or wrong ${peer}): DROPPING the cursor and continuing from the live stream; events between may be missing`,
      )
      lastReceived = undefined
    } else if (error === 'ConsumerTooSlow') {
      log.warn(
        { message },
        `${peer} says we are too slow; it will disconnect and we resume from the cursor`,
      )
    } else {
      log.error({ error, message }, `${peer} sent an error frame`)
    }
  }

  await service.serve({
    logger: log,
    ready: () => source.connected,
    run: (signal) => source.run(signal),
    pipeline,
    progress: () => {
      const status = source.status
      const fields = {
        ...(status.state === 'connected' ? {} : status),
        framesPerSec: Math.round(frames / (PROGRESS_INTERVAL_MS / 1000)),
        eventsPerSec: Math.round(events / (PROGRESS_INTERVAL_MS / 1000)),
        // No lag while no connection is up: 0 would read as "caught up".
        ...(status.state === 'connected' ? { lagSeconds: Math.round(lag * 10) / 10 } : {}),
        cursor: lastCommitted,
        inFlight: pipeline.inFlight,
      }
      frames = 0
      events = 0
      return fields
    },
    afterDrain: () => saver.flush(),
    stopped: () => ({ cursor: lastCommitted }),
  })
}

/** `--cursor`, else the cursor file when it was saved for this host, else live. */
async function startingSeq(
  store: RelayCursorFile,
  opts: SubscriptionOptions,
): Promise<number | undefined> {
  const log = opts.logger
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
}

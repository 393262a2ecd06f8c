import type { RelayConfig } from '../config/config.ts'
import { redactedOutput } from '../config/config.ts'
import { ConsecutiveTracker } from '../cursor/tracker.ts'
import { type RelayCursor, RelayCursorFile, ThrottledSaver } from '../cursor/file-store.ts'
import { Enricher, describeEnrichment } from '../enrich/enricher.ts'
import { compileCollectionFilter } from '../filter.ts'
import { FrameError, decodeFrame, type DecodedFrame } from '../firehose/frame.ts'
import { splitMessage } from '../firehose/split.ts'
import { Pipeline } from '../pipeline.ts'
import { type ServiceDeps, Service, createFormatter } from '../service.ts'
import { RelaySource } from './source.ts'

/** Relay error names counted under their own label; anything else is `other`. */
const KNOWN_ERRORS = new Set(['FutureCursor', 'ConsumerTooSlow', 'OutdatedCursor'])
const PROGRESS_INTERVAL_MS = 10000
const SHUTDOWN_TIMEOUT_MS = 30000

/**
 * `atkafka firehose relay`: subscribeRepos → decode → split → filter → format → sink, with the
 * cursor saved only over frames whose every event the sink acknowledged.
 * Resolves when stopped; rejects with the fatal error that stopped it.
 */
export async function runRelay(config: RelayConfig, deps: ServiceDeps): Promise<void> {
  const service = new Service(config, deps)
  const { metrics, stop } = service
  const log = service.logger.child({ component: 'relay' })
  const store = new RelayCursorFile(config.cursorFile)
  await store.checkWritable()

  let start: number | undefined
  if (config.cursor !== undefined) {
    start = config.cursor
    log.info({ cursor: start }, 'starting from the cursor given on the command line')
  } else {
    const saved = await store.load()
    if (saved !== undefined && saved.host !== config.relayHost) {
      log.warn(
        { file: store.path, savedHost: saved.host, relayHost: config.relayHost },
        'cursor file belongs to another relay; ignoring it',
      )
    } else if (saved !== undefined) {
      start = saved.seq
      log.info({ cursor: start, file: store.path }, 'resuming from the saved cursor')
    } else {
      log.info({ file: store.path }, 'no saved cursor; starting from the live stream')
    }
  }
  log.info(
    {
      relayHost: config.relayHost,
      output: redactedOutput(config.output),
      osprey: config.format.osprey,
      metadata: describeEnrichment(config.enrich),
    },
    'starting relay mode',
  )

  const saver = new ThrottledSaver<RelayCursor>({
    store,
    intervalMs: 1000,
    onError: (err) => service.fail(err),
    onSaved: (c) => metrics.cursor.set(c.seq),
  })
  const tracker = new ConsecutiveTracker<number>(start)
  let lastCommitted = start
  /** Newest seq received in this process: where a reconnect resumes (the sink keeps the rest). */
  let lastReceived = start
  const keep = compileCollectionFilter({
    watched: config.watchedCollections,
    ignored: config.ignoredCollections,
  })
  const format = createFormatter(config.format)
  let events = 0
  let frames = 0
  let lastEventTime = 0

  const source: RelaySource = new RelaySource({
    base: config.relayHost,
    logger: log,
    metrics,
    handlers: { cursor: () => lastReceived, frame: (data) => onFrame(data) },
  })
  const enricher =
    config.enrich === undefined
      ? undefined
      : new Enricher({
          config: config.enrich,
          logger: service.logger.child({ component: 'enrich' }),
          registry: service.registry,
          signal: stop.signal,
        })
  const pipeline = new Pipeline({
    sink: service.sink,
    format,
    metrics,
    maxInFlight: config.maxInFlight,
    onPause: () => source.pause(),
    onResume: () => source.resume(),
    enricher,
  })

  function onCompleted(): void {
    const committed = tracker.committed
    if (committed !== undefined && committed !== lastCommitted) {
      lastCommitted = committed
      saver.update({ host: config.relayHost, seq: committed })
    }
  }

  function onFrame(data: Buffer): void {
    let frame: DecodedFrame
    try {
      frame = decodeFrame(data)
    } catch (err) {
      const reason = err instanceof FrameError ? err.reason : 'invalid-frame'
      metrics.decodeErrors.inc({ reason })
      log.warn({ reason, err: String(err), bytes: data.length }, 'undecodable frame skipped')
      return
    }
    frames++
    if (frame.type === 'error') {
      onErrorFrame(frame.error, frame.message)
      return
    }
    const seq = frame.type === '#info' ? undefined : frame.seq
    if (seq !== undefined) lastReceived = seq
    if (frame.type === 'unknown') {
      metrics.skippedMessages.inc({ type: 'unknown' })
      log.warn({ t: frame.t, seq }, 'unknown message type skipped')
    } else if (frame.type === '#info') {
      log.warn({ name: frame.name, message: frame.message }, 'relay info message')
    }
    if (frame.type !== 'unknown' && frame.type !== '#info') lastEventTime = Date.parse(frame.time)
    const result = splitMessage(frame, keep)
    if (result.filtered > 0) metrics.filteredEvents.inc({ filter: 'collection' }, result.filtered)
    for (const d of result.dropped) {
      metrics.droppedEvents.inc({ reason: d.reason })
      log.warn(d, 'operation dropped')
    }
    events += result.events.length
    const complete = tracker.add(seq)
    pipeline.submit(result.events, () => {
      complete()
      onCompleted()
    })
  }

  function onErrorFrame(error: string, message: string | undefined): void {
    metrics.relayErrors.inc({ error: KNOWN_ERRORS.has(error) ? error : 'other' })
    if (error === 'FutureCursor') {
      log.error(
        { cursor: lastReceived, message },
        'relay says the cursor is in the future (relay reset or wrong relay): DROPPING the cursor and continuing from the live stream; events between may be missing',
      )
      lastReceived = undefined
    } else if (error === 'ConsumerTooSlow') {
      log.warn(
        { message },
        'relay says we are too slow; it will disconnect and we resume from the cursor',
      )
    } else {
      log.error({ error, message }, 'relay sent an error frame')
    }
  }

  const progress = setInterval(() => {
    const lag = lastEventTime > 0 ? (Date.now() - lastEventTime) / 1000 : 0
    metrics.lag.set(lag)
    log.info(
      {
        framesPerSec: Math.round(frames / (PROGRESS_INTERVAL_MS / 1000)),
        eventsPerSec: Math.round(events / (PROGRESS_INTERVAL_MS / 1000)),
        lagSeconds: Math.round(lag * 10) / 10,
        cursor: lastCommitted,
        inFlight: pipeline.inFlight,
      },
      'progress',
    )
    frames = 0
    events = 0
  }, PROGRESS_INTERVAL_MS)
  progress.unref()

  try {
    await service.startMetrics(() => source.connected)
    await service.sink.start(stop.signal)
    if (!stop.signal.aborted) await source.run(stop.signal)
  } catch (err) {
    if (!stop.signal.aborted) service.fail(err instanceof Error ? err : new Error(String(err)))
  } finally {
    clearInterval(progress)
    log.info({ inFlight: pipeline.inFlight }, 'stopping: flushing output')
    await pipeline.close()
    await service.drainAndClose(SHUTDOWN_TIMEOUT_MS)
    await saver.flush()
    log.info({ cursor: lastCommitted }, 'stopped')
  }
  if (service.fatal) throw service.fatal
}

import { redactedOutput } from '../config/config.ts'
import { ConsecutiveTracker } from '../cursor/tracker.ts'
import { type RelayCursor, RelayCursorFile, ThrottledSaver } from '../cursor/file-store.ts'
import type { AtKafkaEvent } from '../events.ts'
import { FrameError } from '../firehose/frame.ts'
import { Pipeline } from '../pipeline.ts'
import { RelaySource } from '../relay/source.ts'
import { type ServiceDeps, Service, createFormatter } from '../service.ts'
import { type LabelsConfig, SUBSCRIBE_LABELS_PATH } from './config.ts'
import { infoEvent, labelEvents } from './event.ts'
import { type DecodedLabelFrame, decodeLabelFrame } from './frame.ts'

/** Labeler error names counted under their own label; anything else is `other`. */
const KNOWN_ERRORS = new Set(['FutureCursor', 'ConsumerTooSlow', 'OutdatedCursor'])
const PROGRESS_INTERVAL_MS = 10000
const SHUTDOWN_TIMEOUT_MS = 30000

/**
 * `atkafka labels`: a labeler's subscribeLabels → one event per label → format → sink, with the
 * cursor saved only over messages whose every label the sink acknowledged.
 * Resolves when stopped; rejects with the fatal error that stopped it.
 */
export async function runLabels(config: LabelsConfig, deps: ServiceDeps): Promise<void> {
  const service = new Service(config, deps)
  const { metrics, stop } = service
  const log = service.logger.child({ component: 'labels' })
  const store = new RelayCursorFile(config.cursorFile)
  await store.checkWritable()

  let start: number | undefined
  if (config.cursor !== undefined) {
    start = config.cursor
    log.info({ cursor: start }, 'starting from the cursor given on the command line')
  } else {
    const saved = await store.load()
    if (saved !== undefined && saved.host !== config.labelerHost) {
      log.warn(
        { file: store.path, savedHost: saved.host, labelerHost: config.labelerHost },
        'cursor file belongs to another labeler; ignoring it',
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
      labelerHost: config.labelerHost,
      output: redactedOutput(config.output),
      osprey: config.format.osprey,
    },
    'starting labels mode',
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
  const format = createFormatter(config.format)
  let events = 0
  let frames = 0
  /** Age of the newest label when it arrived: a quiet labeler is not a lagging one. */
  let lag = 0

  const source: RelaySource = new RelaySource({
    base: config.labelerHost,
    path: SUBSCRIBE_LABELS_PATH,
    logger: log,
    metrics,
    handlers: { cursor: () => lastReceived, frame: (data) => onFrame(data) },
  })
  const pipeline = new Pipeline({
    sink: service.sink,
    format,
    metrics,
    maxInFlight: config.maxInFlight,
    onPause: () => source.pause(),
    onResume: () => source.resume(),
  })

  function onCompleted(): void {
    const committed = tracker.committed
    if (committed !== undefined && committed !== lastCommitted) {
      lastCommitted = committed
      saver.update({ host: config.labelerHost, seq: committed })
    }
  }

  function onFrame(data: Buffer): void {
    let frame: DecodedLabelFrame
    try {
      frame = decodeLabelFrame(data)
    } catch (err) {
      const reason = err instanceof FrameError ? err.reason : 'invalid-frame'
      metrics.decodeErrors.inc({ reason })
      log.warn({ reason, err: String(err), bytes: data.length }, 'undecodable frame skipped')
      return
    }
    frames++
    let out: AtKafkaEvent[] = []
    let seq: number | undefined
    switch (frame.type) {
      case 'error':
        onErrorFrame(frame.error, frame.message)
        return
      case '#labels': {
        seq = frame.seq
        const result = labelEvents(frame)
        for (const d of result.dropped) {
          metrics.droppedEvents.inc({ reason: d.reason })
          log.warn(d, 'label dropped')
        }
        out = result.events
        const cts = Date.parse(out.at(-1)?.timestamp ?? '')
        if (!Number.isNaN(cts)) {
          lag = Math.max(0, (Date.now() - cts) / 1000)
          metrics.lag.set(lag)
        }
        break
      }
      case '#info':
        log.warn({ name: frame.name, message: frame.message }, 'labeler info message')
        out = [infoEvent(frame)]
        break
      case 'unknown':
        seq = frame.seq
        metrics.skippedMessages.inc({ type: 'unknown' })
        log.warn({ t: frame.t, seq }, 'unknown message type skipped')
        break
    }
    if (seq !== undefined) lastReceived = seq
    events += out.length
    const complete = tracker.add(seq)
    pipeline.submit(out, () => {
      complete()
      onCompleted()
    })
  }

  function onErrorFrame(error: string, message: string | undefined): void {
    metrics.relayErrors.inc({ error: KNOWN_ERRORS.has(error) ? error : 'other' })
    if (error === 'FutureCursor') {
      log.error(
        { cursor: lastReceived, message },
        'labeler says the cursor is in the future (labeler reset or wrong labeler): DROPPING the cursor and continuing from the live stream; labels between may be missing',
      )
      lastReceived = undefined
    } else if (error === 'ConsumerTooSlow') {
      log.warn(
        { message },
        'labeler says we are too slow; it will disconnect and we resume from the cursor',
      )
    } else {
      log.error({ error, message }, 'labeler sent an error frame')
    }
  }

  const progress = setInterval(() => {
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

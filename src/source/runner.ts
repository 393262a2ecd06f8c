import { ThrottledSaver } from '../cursor/file-store.ts'
import { ReplayBound } from '../cursor/replay-bound.ts'
import { ConsecutiveTracker } from '../cursor/tracker.ts'
import type { Enricher } from '../enrich/enricher.ts'
import type { Formatter } from '../format.ts'
import type { Logger } from '../logger.ts'
import { Pipeline } from '../pipeline.ts'
import { PROGRESS_INTERVAL_MS, type Service } from '../service.ts'
import type { Source, SourceCursor, SourceItem } from './port.ts'

export interface RunSourceOptions<P> {
  source: Source<P>
  /** How positions are saved; none when the position is the source's own ack (Tap). */
  cursor?: SourceCursor<P>
  format: Formatter
  enricher?: Enricher
  maxInFlight: number
  logger: Logger
}

/**
 * Run one source into the service's output until stopped: units → (enrich) → format → sink,
 * reading paused while `maxInFlight` messages are unacknowledged (and, for a stream with a
 * cursor, while a crash would make the peer send more than that again), positions saved only
 * over the contiguous run of units the output acknowledged, and one shutdown path: stop reading,
 * drain the output, save the cursor, close the source.
 * Resolves when stopped; rejects with the fatal error that stopped it.
 */
export async function runSource<P>(service: Service, opts: RunSourceOptions<P>): Promise<void> {
  const { metrics } = service
  const { source, cursor } = opts
  if (cursor !== undefined) await cursor.checkWritable()
  const start: P | undefined = cursor === undefined ? undefined : await cursor.start()
  // The cursor gauges show the loaded position from the start.
  if (start !== undefined) cursor?.onSaved?.(start)

  /** Events acknowledged when each cursor value was taken (for the replay bound). */
  const ackedAt = new Map<P, number>()
  const saver =
    cursor === undefined
      ? undefined
      : new ThrottledSaver<P>({
          store: cursor,
          intervalMs: cursor.intervalMs,
          onError: (err) => service.fail(err),
          onSaved: (p) => {
            cursor.onSaved?.(p)
            bound?.saved(takeAckedAt(p), pipeline.inFlight)
          },
        })
  const tracker = new ConsecutiveTracker<P>(start)
  let lastCommitted = start
  let pausedByPipeline = false
  const bound = cursor?.replayBound
    ? new ReplayBound({
        max: opts.maxInFlight,
        saveNow: () => saver?.saveNow(),
        setPaused: () => applyPause(),
      })
    : undefined
  const applyPause = () =>
    pausedByPipeline || bound?.paused === true ? source.pause() : source.resume()
  let events = 0
  let lag = 0

  /** The acknowledged count at `p`, forgetting it and every older entry. */
  function takeAckedAt(p: P): number {
    let acked = 0
    for (const [value, n] of ackedAt) {
      ackedAt.delete(value)
      acked = n
      if (value === p) break
    }
    return acked
  }

  const pipeline = new Pipeline({
    sink: service.sink,
    format: opts.format,
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
    router: service.router,
  })

  function onDone(acked: number): void {
    const committed = tracker.committed
    if (saver !== undefined && committed !== undefined && committed !== lastCommitted) {
      const first = lastCommitted === undefined
      lastCommitted = committed
      if (bound !== undefined) ackedAt.set(committed, bound.acked + acked)
      saver.update(committed)
      // The first position of a start without cursor: save it at once, so that a crash in the
      // next second resumes there instead of from the live stream.
      if (first && cursor?.saveFirstAtOnce) saver.saveNow()
    }
    bound?.acknowledged(acked, pipeline.inFlight)
  }

  function observed(time: number): void {
    if (Number.isNaN(time)) return
    // Age of the newest event on arrival: a quiet peer is not a lagging one.
    lag = Math.max(0, (Date.now() - time) / 1000)
    metrics.lag.set(lag)
  }

  function emit(item: SourceItem<P>): void {
    if (item.time !== undefined) observed(item.time)
    const complete = cursor === undefined ? undefined : tracker.add(item.position)
    const { done } = item
    const finish = (n: number) => () => {
      complete?.()
      onDone(n)
      done?.()
    }
    if ((item.messages ?? item.events ?? []).length === 0) {
      // Nothing to produce (filtered, unknown): done at once, in order behind the others.
      finish(0)()
    } else if (item.messages !== undefined) {
      const n = item.messages.length
      events += n
      pipeline.submitFormatted(item.messages, finish(n))
    } else {
      const list = item.events ?? []
      events += list.length
      pipeline.submit(list, finish(list.length), item.cursor)
    }
    bound?.read(pipeline.inFlight)
  }

  await service.serve({
    logger: opts.logger,
    ready: () => source.connected,
    prepare: source.prepare === undefined ? undefined : (signal) => source.prepare!(signal),
    run: (signal) => source.run(signal, { start, emit, observe: observed }),
    pipeline,
    progress: () => {
      const status = source.status
      const up = status === undefined || status.state === 'connected'
      const fields = {
        ...(up ? {} : status),
        ...source.progress?.(),
        eventsPerSec: Math.round(events / (PROGRESS_INTERVAL_MS / 1000)),
        // No lag while no connection is up: 0 would read as "caught up".
        ...(up ? { lagSeconds: Math.round(lag * 10) / 10 } : {}),
        ...(cursor === undefined ? {} : { cursor: cursor.show(lastCommitted) }),
        inFlight: pipeline.inFlight,
      }
      events = 0
      return fields
    },
    beforeDrain: () => source.stopReading?.(),
    afterDrain: async () => {
      await saver?.flush()
      await source.close?.()
    },
    stopped: () => ({
      ...(cursor === undefined ? {} : { cursor: cursor.show(lastCommitted) }),
      ...source.stopped?.(lastCommitted),
    }),
  })
}

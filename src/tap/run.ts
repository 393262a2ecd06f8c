import { redactedOutput } from '../config/config.ts'
import { describeEnrichment } from '../enrich/config.ts'
import { loadEnricher } from '../enrich/load.ts'
import { compileCollectionFilter } from '../filter.ts'
import { Pipeline } from '../pipeline.ts'
import { PROGRESS_INTERVAL_MS, type ServiceDeps, Service, createFormatter } from '../service.ts'
import { AckSender } from './acks.ts'
import type { TapConfig } from './config.ts'
import { parseTapEvent } from './event.ts'
import { createTapMetrics } from './metrics.ts'
import { type TapConnection, TapSource, channelUrl } from './source.ts'
import { tidTimeMs } from './timestamp.ts'

const ACK_FLUSH_TIMEOUT_MS = 5000

/**
 * `atkafka firehose tap`: Tap `/channel` → parse → filter → format → sink, acking each Tap
 * event only once the sink acknowledged what it produced. Events that are filtered out or cannot
 * be used are acked at once, so none stalls its repo. On shutdown the sink is flushed, the acks
 * that became due are sent, then the socket is closed.
 * Resolves when stopped; rejects with the fatal error that stopped it.
 */
export async function runTap(config: TapConfig, deps: ServiceDeps): Promise<void> {
  const service = new Service(config, deps)
  const { metrics } = service
  const tapMetrics = createTapMetrics(service.registry)
  const log = service.logger.child({ component: 'tap' })
  log.info(
    {
      url: channelUrl(config.tapHost),
      auth: config.adminPassword !== undefined,
      acks: !config.disableAcks,
      output: redactedOutput(config.output),
      osprey: config.format.osprey,
      metadata: describeEnrichment(config.enrich),
    },
    'starting tap mode',
  )

  const keep = compileCollectionFilter({
    watched: config.watchedCollections,
    ignored: config.ignoredCollections,
  })
  const format = createFormatter(config.format)
  const acks = new AckSender({ enabled: !config.disableAcks, metrics: tapMetrics, logger: log })
  let buffered = 0
  let events = 0
  let lastLiveTime = 0

  const source = new TapSource({
    base: config.tapHost,
    adminPassword: config.adminPassword,
    logger: log,
    metrics,
    onMessage: (text, conn) => onMessage(text, conn),
  })
  const enricher = await loadEnricher(config.enrich, service)
  const pipeline = new Pipeline({
    sink: service.sink,
    format,
    metrics,
    maxInFlight: config.maxInFlight,
    onPause: () => source.pause(),
    onResume: () => source.resume(),
    enricher,
  })

  function onMessage(text: string, conn: TapConnection): void {
    const parsed = parseTapEvent(text)
    if (!parsed.ok) {
      const { id, reason, detail, did } = parsed
      if (reason === 'unknown-type') {
        metrics.skippedMessages.inc({ type: 'unknown' })
        log.warn({ id, type: parsed.type, did }, 'unknown Tap event type skipped and acked')
      } else if (reason === 'invalid-record') {
        metrics.droppedEvents.inc({ reason })
        log.warn({ id, did, detail }, 'Tap event without a usable record dropped and acked')
      } else {
        metrics.decodeErrors.inc({ reason })
        log.warn(
          { id, reason, detail, did, bytes: text.length },
          id === undefined
            ? 'unreadable Tap event skipped (no id to ack)'
            : 'invalid Tap event skipped and acked',
        )
      }
      if (id !== undefined) acks.ack(conn, id)
      return
    }
    const { id, event } = parsed
    if ('operation' in event && !keep(event.operation.collection)) {
      metrics.filteredEvents.inc({ filter: 'collection' })
      log.debug({ id, collection: event.operation.collection }, 'filtered out; acked')
      acks.ack(conn, id)
      return
    }
    if (parsed.live && parsed.rev !== undefined) {
      lastLiveTime = tidTimeMs(parsed.rev) ?? lastLiveTime
    }
    events++
    tapMetrics.eventBuffer.set(++buffered)
    pipeline.submit([event], () => {
      tapMetrics.eventBuffer.set(--buffered)
      acks.ack(conn, id)
    })
  }

  await service.serve({
    logger: log,
    ready: () => source.connected,
    run: (signal) => source.run(signal),
    pipeline,
    progress: () => {
      const lag = lastLiveTime > 0 ? Math.max(0, (Date.now() - lastLiveTime) / 1000) : 0
      metrics.lag.set(lag)
      const fields = {
        eventsPerSec: Math.round(events / (PROGRESS_INTERVAL_MS / 1000)),
        liveLagSeconds: Math.round(lag * 10) / 10,
        inFlight: pipeline.inFlight,
        awaitingAck: buffered,
        connected: source.connected,
      }
      events = 0
      return fields
    },
    // Events still waiting for metadata are abandoned unacked by the pipeline: Tap resends them.
    beforeDrain: () => source.stopReading(),
    afterDrain: async () => {
      await acks.flush(AbortSignal.timeout(ACK_FLUSH_TIMEOUT_MS))
      await source.close()
    },
    stopped: () => ({ unacked: buffered }),
  })
}

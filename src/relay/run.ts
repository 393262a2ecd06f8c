import type { RelayConfig } from '../config/config.ts'
import { redactedOutput } from '../config/config.ts'
import { describeEnrichment } from '../enrich/config.ts'
import { loadEnricher } from '../enrich/load.ts'
import { compileCollectionFilter } from '../filter.ts'
import { decodeFrame } from '../firehose/frame.ts'
import { splitMessage } from '../firehose/split.ts'
import { type ServiceDeps, Service, createFormatter } from '../service.ts'
import { runSource } from '../source/runner.ts'
import { type FrameOutcome, XrpcSubscription, seqCursor } from '../source/xrpc-subscription.ts'

export const SUBSCRIBE_REPOS_PATH = '/xrpc/com.atproto.sync.subscribeRepos'

/**
 * `atkafka firehose relay`: subscribeRepos → decode → split → filter → (enrich) → format → sink,
 * with the cursor saved only over frames whose every event the sink acknowledged.
 * Resolves when stopped; rejects with the fatal error that stopped it.
 */
export async function runRelay(config: RelayConfig, deps: ServiceDeps): Promise<void> {
  const service = new Service(config, deps)
  const { metrics } = service
  const log = service.logger.child({ component: 'relay' })
  log.info(
    {
      relayHost: config.relayHost,
      output: redactedOutput(config.output),
      osprey: config.format.osprey,
      metadata: describeEnrichment(config.enrich),
    },
    'starting relay mode',
  )
  const keep = compileCollectionFilter({
    watched: config.watchedCollections,
    ignored: config.ignoredCollections,
  })

  function decode(data: Buffer): FrameOutcome {
    const frame = decodeFrame(data)
    if (frame.type === 'error') return { kind: 'error', error: frame.error, message: frame.message }
    if (frame.type === 'unknown') {
      metrics.skippedMessages.inc({ type: 'unknown' })
      log.warn({ t: frame.t, seq: frame.seq }, 'unknown message type skipped')
      return { kind: 'events', seq: frame.seq, events: [] }
    }
    if (frame.type === '#info') {
      log.warn({ name: frame.name, message: frame.message }, 'relay info message')
    }
    const result = splitMessage(frame, keep)
    if (result.filtered > 0) metrics.filteredEvents.inc({ filter: 'collection' }, result.filtered)
    for (const d of result.dropped) {
      metrics.droppedEvents.inc({ reason: d.reason })
      log.warn(d, 'operation dropped')
    }
    if (frame.type === '#info') return { kind: 'events', seq: undefined, events: result.events }
    return { kind: 'events', seq: frame.seq, events: result.events, time: Date.parse(frame.time) }
  }

  await runSource(service, {
    source: new XrpcSubscription({
      peer: 'relay',
      host: config.relayHost,
      path: SUBSCRIBE_REPOS_PATH,
      logger: log,
      metrics,
      decode,
    }),
    cursor: seqCursor({
      peer: 'relay',
      host: config.relayHost,
      file: config.cursorFile,
      cursor: config.cursor,
      logger: log,
      metrics,
    }),
    format: createFormatter(config.format),
    maxInFlight: config.maxInFlight,
    enricher: await loadEnricher(config.enrich, service),
    logger: log,
  })
}

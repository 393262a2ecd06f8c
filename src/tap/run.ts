import { redactedOutput } from '../config/config.ts'
import { describeEnrichment } from '../enrich/config.ts'
import { loadEnricher } from '../enrich/load.ts'
import { compileCollectionFilter } from '../filter.ts'
import { type ServiceDeps, Service, createFormatter } from '../service.ts'
import { runSource } from '../source/runner.ts'
import { AckSender } from './acks.ts'
import type { TapConfig } from './config.ts'
import { createTapMetrics } from './metrics.ts'
import { TapSource, channelUrl } from './source.ts'

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
  const acks = new AckSender({ enabled: !config.disableAcks, metrics: tapMetrics, logger: log })
  await runSource(service, {
    source: new TapSource({
      base: config.tapHost,
      adminPassword: config.adminPassword,
      logger: log,
      metrics,
      tapMetrics,
      acks,
      keep,
    }),
    format: createFormatter(config.format),
    maxInFlight: config.maxInFlight,
    enricher: await loadEnricher(config.enrich, service),
    logger: log,
  })
}

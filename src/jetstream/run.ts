import { redactedOutput } from '../config/config.ts'
import { describeEnrichment } from '../enrich/config.ts'
import { loadEnricher } from '../enrich/load.ts'
import { compileCollectionFilter } from '../filter.ts'
import type { Logger } from '../logger.ts'
import type { Metrics } from '../metrics.ts'
import { type ServiceDeps, Service, createFormatter } from '../service.ts'
import type { SourceCursor } from '../source/port.ts'
import { runSource } from '../source/runner.ts'
import type { JetstreamConfig } from './config.ts'
import { JetstreamCursorFile } from './cursor.ts'
import { JetstreamSource, REWIND_US } from './source.ts'

/**
 * `atkafka jetstream`: Jetstream's `/subscribe` → parse → filter → (enrich) → format → sink,
 * with the events relay mode produces for the same activity, and the cursor (`time_us`) saved
 * only over events the sink acknowledged. Resolves when stopped; rejects with the fatal error
 * that stopped it.
 */
export async function runJetstream(config: JetstreamConfig, deps: ServiceDeps): Promise<void> {
  const service = new Service(config, deps)
  const { metrics } = service
  const log = service.logger.child({ component: 'jetstream' })
  log.info(
    {
      jetstreamHost: config.jetstreamHost,
      wantedCollections: config.wantedCollections,
      wantedDids: config.wantedDids.length,
      output: redactedOutput(config.output),
      osprey: config.format.osprey,
      metadata: describeEnrichment(config.enrich),
    },
    'starting jetstream mode',
  )
  await runSource(service, {
    source: new JetstreamSource({
      host: config.jetstreamHost,
      wantedCollections: config.wantedCollections,
      wantedDids: config.wantedDids,
      keep: compileCollectionFilter({
        watched: config.watchedCollections,
        ignored: config.ignoredCollections,
      }),
      logger: log,
      metrics,
    }),
    cursor: jetstreamCursor(config, log, metrics),
    format: createFormatter(config.format),
    maxInFlight: config.maxInFlight,
    enricher: await loadEnricher(config.enrich, service),
    logger: log,
  })
}

/** The `time_us` Kafka acknowledged: `--cursor` first, else the cursor file, else live. */
function jetstreamCursor(
  config: JetstreamConfig,
  log: Logger,
  metrics: Metrics,
): SourceCursor<number> {
  const store = new JetstreamCursorFile(config.cursorFile)
  return {
    intervalMs: 1000,
    replayBound: true,
    saveFirstAtOnce: true,
    checkWritable: () => store.checkWritable(),
    save: (timeUs) => store.save({ host: config.jetstreamHost, timeUs }),
    onSaved: (timeUs) => metrics.cursor.set(timeUs),
    show: (timeUs) => timeUs,
    async start() {
      if (config.cursor !== undefined) {
        log.info({ cursor: config.cursor }, 'starting from the cursor given on the command line')
        return config.cursor
      }
      const saved = await store.load()
      if (saved === undefined) {
        log.info({ file: store.path }, 'no saved cursor; starting from the live stream')
        return undefined
      }
      // time_us is a wall-clock time: it carries over to another instance (the rewind covers
      // the instances' small differences).
      log.info(
        {
          cursor: saved.timeUs,
          file: store.path,
          savedHost: saved.host === config.jetstreamHost ? undefined : saved.host,
          rewindSeconds: REWIND_US / 1e6,
        },
        'resuming from the saved cursor, a few seconds earlier',
      )
      return saved.timeUs
    },
  }
}

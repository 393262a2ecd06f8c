import { plainFormatter } from '../format.ts'
import { type ServiceDeps, Service } from '../service.ts'
import type { SourceCursor } from '../source/port.ts'
import { runSource } from '../source/runner.ts'
import type { Logger } from '../logger.ts'
import { OzoneClient } from './client.ts'
import { type OzoneConfig, redactedOzoneConfig } from './config.ts'
import { OzoneCursorFile } from './cursor.ts'
import { type OzonePosition, START } from './dedup.ts'
import { type OzoneMetrics, createOzoneMetrics } from './metrics.ts'
import { OzoneSource } from './source.ts'

export interface OzoneDeps extends ServiceDeps {
  /** HTTP client for the PDS (default: global fetch). */
  fetch?: typeof globalThis.fetch
}

/**
 * `atkafka ozone-events`: poll Ozone's moderation events through the moderator's PDS and
 * produce each one, keyed by its id. The cursor file is written only over pages whose every
 * event Kafka acknowledged, together with the ids produced at its timestamp, so a restart
 * neither skips nor repeats an event. Resolves when stopped; rejects with the fatal error
 * (bad credentials, wrong labeler DID, Kafka refusing us, cursor not writable) that stopped it.
 */
export async function runOzone(config: OzoneConfig, deps: OzoneDeps): Promise<void> {
  const service = new Service(config, deps)
  const { metrics, stop } = service
  const ozoneMetrics = createOzoneMetrics(service.registry)
  const log = service.logger.child({ component: 'ozone' })
  const cursor = ozoneCursor(config, log, ozoneMetrics)
  // The poller starts where the cursor says: load it before the source exists.
  await cursor.checkWritable()
  const start = (await cursor.start()) ?? START
  log.info(redactedOzoneConfig(config), 'starting ozone mode')

  const client = new OzoneClient({
    pdsHost: config.pdsHost,
    identifier: config.identifier,
    password: config.password,
    labelerDid: config.labelerDid,
    logger: log,
    metrics: ozoneMetrics,
    signal: stop.signal,
    fetch: deps.fetch,
  })
  await runSource(service, {
    source: new OzoneSource({
      client,
      labelerDid: config.labelerDid,
      logger: log,
      metrics,
      ozoneMetrics,
      pollIntervalMs: config.pollIntervalMs,
      lookbackMs: config.lookbackMs,
      start,
    }),
    // Checked and loaded above.
    cursor: { ...cursor, checkWritable: async () => {}, start: async () => start },
    format: plainFormatter(),
    maxInFlight: config.maxInFlight,
    logger: log,
  })
}

/** The Ozone cursor file: the position and the ids produced at it, for this labeler only. */
function ozoneCursor(
  config: OzoneConfig,
  log: Logger,
  ozoneMetrics: OzoneMetrics,
): SourceCursor<OzonePosition> {
  const store = new OzoneCursorFile(config.cursorFile, config.labelerDid)
  return {
    intervalMs: 0,
    replayBound: false,
    saveFirstAtOnce: false,
    checkWritable: () => store.checkWritable(),
    save: (pos) => store.save(pos),
    onSaved: (pos) => {
      if (pos.createdAfter !== undefined) {
        ozoneMetrics.cursorTime.set(Date.parse(pos.createdAfter) / 1000)
      }
    },
    show: (pos) => pos?.createdAfter,
    async start() {
      const saved = await store.read()
      if (saved?.labelerDid !== undefined && saved.labelerDid !== config.labelerDid) {
        log.warn(
          { file: store.path, savedLabelerDid: saved.labelerDid, labelerDid: config.labelerDid },
          'cursor file belongs to another Ozone; ignoring it and starting from the oldest event',
        )
        return START
      }
      if (saved === undefined) {
        log.info({ file: store.path }, 'no saved cursor; starting from the oldest event')
        return START
      }
      log.info(
        {
          file: store.path,
          createdAfter: saved.position.createdAfter,
          ids: saved.position.produced.size,
        },
        saved.format === 'at-kafka'
          ? "resuming from at-kafka's cursor file"
          : 'resuming from the saved cursor',
      )
      return saved.position
    },
  }
}

import { ThrottledSaver } from '../cursor/file-store.ts'
import { ConsecutiveTracker } from '../cursor/tracker.ts'
import { plainFormatter } from '../format.ts'
import { Pipeline } from '../pipeline.ts'
import { PROGRESS_INTERVAL_MS, type ServiceDeps, Service } from '../service.ts'
import { OzoneClient } from './client.ts'
import { type OzoneConfig, redactedOzoneConfig } from './config.ts'
import { OzoneCursorFile } from './cursor.ts'
import { type OzonePosition, type PageResult, START, newestOf } from './dedup.ts'
import { createOzoneMetrics } from './metrics.ts'
import { eventTypeLabel, toMessage } from './page.ts'
import { OzonePoller } from './poller.ts'

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
  const store = new OzoneCursorFile(config.cursorFile, config.labelerDid)
  await store.checkWritable()

  let start: OzonePosition = START
  const saved = await store.read()
  if (saved?.labelerDid !== undefined && saved.labelerDid !== config.labelerDid) {
    log.warn(
      { file: store.path, savedLabelerDid: saved.labelerDid, labelerDid: config.labelerDid },
      'cursor file belongs to another Ozone; ignoring it and starting from the oldest event',
    )
  } else if (saved !== undefined) {
    start = saved.position
    log.info(
      { file: store.path, createdAfter: start.createdAfter, ids: start.produced.size },
      saved.format === 'at-kafka'
        ? "resuming from at-kafka's cursor file"
        : 'resuming from the saved cursor',
    )
  } else {
    log.info({ file: store.path }, 'no saved cursor; starting from the oldest event')
  }
  log.info(redactedOzoneConfig(config), 'starting ozone mode')

  const saver = new ThrottledSaver<OzonePosition>({
    store,
    intervalMs: 0,
    onError: (err) => service.fail(err),
    onSaved: (pos) => {
      if (pos.createdAfter !== undefined) {
        ozoneMetrics.cursorTime.set(Date.parse(pos.createdAfter) / 1000)
      }
    },
  })
  const tracker = new ConsecutiveTracker<OzonePosition>(start)
  let lastCommitted = start
  let produced = 0
  let duplicates = 0
  let pages = 0

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
  const poller: OzonePoller = new OzonePoller({
    client,
    logger: log,
    metrics: ozoneMetrics,
    pollIntervalMs: config.pollIntervalMs,
    lookbackMs: config.lookbackMs,
    start,
    onPage: (result, caughtUp) => onPage(result, caughtUp),
  })
  const pipeline = new Pipeline({
    sink: service.sink,
    format: plainFormatter(),
    metrics,
    maxInFlight: config.maxInFlight,
    onPause: () => poller.pause(),
    onResume: () => poller.resume(),
  })

  function onPage(result: PageResult, caughtUp: boolean): void {
    pages++
    duplicates += result.duplicates
    const newest = newestOf(result.next)
    metrics.lag.set(caughtUp || newest === undefined ? 0 : (Date.now() - Date.parse(newest)) / 1000)
    if (result.fresh.length === 0) return
    produced += result.fresh.length
    const messages = result.fresh.map((view) => {
      metrics.handledEvents.inc({ action_name: 'ozone', collection: eventTypeLabel(view) })
      return toMessage(view)
    })
    const complete = tracker.add(result.next)
    pipeline.submitMessages(messages, () => {
      complete()
      const committed = tracker.committed
      if (committed !== undefined && committed !== lastCommitted) {
        lastCommitted = committed
        saver.update(committed)
      }
    })
  }

  const connected = setInterval(() => metrics.connected.set(poller.healthy ? 1 : 0), 1000)
  connected.unref()

  await service.serve({
    logger: log,
    ready: () => poller.healthy,
    prepare: async (signal) => {
      if (!(await poller.check(signal))) return false
      log.info({ labelerDid: config.labelerDid, did: client.did }, 'Ozone answered; polling')
      return true
    },
    run: (signal) => poller.run(signal),
    pipeline,
    progress: () => {
      const fields = {
        eventsPerSec: Math.round(produced / (PROGRESS_INTERVAL_MS / 1000)),
        duplicates,
        pages,
        cursor: lastCommitted.createdAfter,
        inFlight: pipeline.inFlight,
        healthy: poller.healthy,
      }
      produced = 0
      duplicates = 0
      pages = 0
      return fields
    },
    afterDrain: async () => {
      clearInterval(connected)
      await saver.flush()
    },
    stopped: () => ({ cursor: lastCommitted.createdAfter, ids: lastCommitted.produced.size }),
  })
}

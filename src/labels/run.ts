import { redactedOutput } from '../config/config.ts'
import { type ServiceDeps, Service, createFormatter } from '../service.ts'
import { runSource } from '../source/runner.ts'
import { type FrameOutcome, XrpcSubscription, seqCursor } from '../source/xrpc-subscription.ts'
import { type LabelsConfig, SUBSCRIBE_LABELS_PATH } from './config.ts'
import { infoEvent, labelEvents } from './event.ts'
import { decodeLabelFrame } from './frame.ts'

/**
 * `atkafka labels`: a labeler's subscribeLabels → one event per label → format → sink, with the
 * cursor saved only over messages whose every label the sink acknowledged.
 * Resolves when stopped; rejects with the fatal error that stopped it.
 */
export async function runLabels(config: LabelsConfig, deps: ServiceDeps): Promise<void> {
  const service = new Service(config, deps)
  const { metrics } = service
  const log = service.logger.child({ component: 'labels' })
  log.info(
    {
      labelerHost: config.labelerHost,
      output: redactedOutput(config.output),
      osprey: config.format.osprey,
    },
    'starting labels mode',
  )

  function decode(data: Buffer): FrameOutcome {
    const frame = decodeLabelFrame(data)
    switch (frame.type) {
      case 'error':
        return { kind: 'error', error: frame.error, message: frame.message }
      case '#labels': {
        const result = labelEvents(frame)
        for (const d of result.dropped) {
          metrics.droppedEvents.inc({ reason: d.reason })
          log.warn(d, 'label dropped')
        }
        const newest = result.events.at(-1)?.timestamp
        return {
          kind: 'events',
          seq: frame.seq,
          events: result.events,
          time: newest === undefined ? undefined : Date.parse(newest),
        }
      }
      case '#info':
        log.warn({ name: frame.name, message: frame.message }, 'labeler info message')
        return { kind: 'events', seq: undefined, events: [infoEvent(frame)] }
      case 'unknown':
        metrics.skippedMessages.inc({ type: 'unknown' })
        log.warn({ t: frame.t, seq: frame.seq }, 'unknown message type skipped')
        return { kind: 'events', seq: frame.seq, events: [] }
    }
  }

  await runSource(service, {
    source: new XrpcSubscription({
      peer: 'labeler',
      host: config.labelerHost,
      path: SUBSCRIBE_LABELS_PATH,
      logger: log,
      metrics,
      decode,
    }),
    cursor: seqCursor({
      peer: 'labeler',
      host: config.labelerHost,
      file: config.cursorFile,
      cursor: config.cursor,
      logger: log,
      metrics,
    }),
    format: createFormatter(config.format),
    maxInFlight: config.maxInFlight,
    logger: log,
  })
}

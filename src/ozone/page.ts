import type { JsonObject } from '../events.ts'
import type { RoutedInput } from '../output.ts'
import { OzoneResponseError } from './errors.ts'

/**
 * One `tools.ozone.moderation.defs#modEventView` exactly as Ozone sent it. atkafka reads only
 * `id`, `createdAt` and `event.$type`; everything else passes through untouched.
 */
export type ModEventView = JsonObject & { id: number; createdAt: string }

/** One `tools.ozone.moderation.queryEvents` response. */
export interface EventPage {
  events: ModEventView[]
  /** Ozone's `"<createdAt ms>::<id>"` cursor of the last event; absent on an empty page. */
  cursor: string | undefined
}

const EVENT_TYPE_PREFIX = 'tools.ozone.moderation.defs#'

function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

/** Validate a queryEvents body once, at the boundary; throws {@link OzoneResponseError}. */
export function parsePage(body: unknown): EventPage {
  if (!isObject(body) || !Array.isArray(body.events)) {
    throw new OzoneResponseError('queryEvents answered without an "events" array')
  }
  const events: ModEventView[] = []
  for (const e of body.events) {
    if (!isObject(e) || typeof e.id !== 'number' || !Number.isSafeInteger(e.id)) {
      throw new OzoneResponseError('queryEvents returned an event without an integer "id"')
    }
    if (typeof e.createdAt !== 'string' || Number.isNaN(Date.parse(e.createdAt))) {
      throw new OzoneResponseError(`queryEvents returned event ${e.id} without a valid "createdAt"`)
    }
    events.push(e as ModEventView)
  }
  const cursor = typeof body.cursor === 'string' && body.cursor !== '' ? body.cursor : undefined
  return { events, cursor }
}

/**
 * The `collection` label of `atkafka_handled_events` for an Ozone event: the short name of its
 * `event.$type` (`modEventReport`, `modEventTakedown`, …) when it is one of Ozone's own event
 * types, else `other`. Ozone defines a few dozen, so the label stays low-cardinality.
 */
export function eventTypeLabel(view: ModEventView): string {
  const event = view.event
  const type = isObject(event) ? event.$type : undefined
  if (typeof type !== 'string' || !type.startsWith(EVENT_TYPE_PREFIX)) return 'other'
  const name = type.slice(EVENT_TYPE_PREFIX.length)
  return /^[A-Za-z][A-Za-z0-9]{0,63}$/.test(name) ? name : 'other'
}

/**
 * The DID an event is about: its subject's `did` (an account), or the authority of its subject's
 * `uri` (a record); `""` when neither.
 */
export function subjectDidOf(view: ModEventView): string {
  const subject = view.subject
  if (!isObject(subject)) return ''
  if (typeof subject.did === 'string') return subject.did
  const m = typeof subject.uri === 'string' ? /^at:\/\/(did:[^/]+)/.exec(subject.uri) : null
  return m === null ? '' : m[1]!
}

/** Kafka message of an event: key = its id, value = the view as JSON, as at-kafka. */
export function toMessage(view: ModEventView): RoutedInput {
  const id = String(view.id)
  return {
    key: id,
    value: JSON.stringify(view),
    meta: { kind: 'ozone', did: subjectDidOf(view), cursor: id, time: view.createdAt },
  }
}

import { type AtKafkaEvent, type EventKind, type OpAction, kindOf } from './events.ts'
import type { OutMessage } from './sink/sink.ts'
import type { TopicTemplate } from './sink/topic-template.ts'

/** What topic routing and the message headers need to know about one event. */
export interface EventMeta {
  kind: EventKind
  /** `""` when the event has none (a relay's `#info`). */
  did: string
  /** Operations only. */
  collection?: string
  /** Operations only. */
  action?: OpAction
  /** The source position the event came from (relay/labels seq, Tap id, Ozone id, time_us). */
  cursor?: string
  /** The event's timestamp as the event carries it; `""` when it has none. */
  time: string
}

export function metaOf(event: AtKafkaEvent, cursor: string | undefined): EventMeta {
  const meta: EventMeta = { kind: kindOf(event), did: event.did, time: event.timestamp }
  if ('operation' in event) {
    meta.collection = event.operation.collection
    meta.action = event.operation.action
  }
  if (cursor !== undefined) meta.cursor = cursor
  return meta
}

/**
 * The headers of a message (`--kafka-headers`), values as UTF-8 strings: `atkafka-kind` always;
 * `atkafka-did`, `atkafka-cursor` and `atkafka-time` when known; `atkafka-collection` and
 * `atkafka-action` on operations.
 */
export function headersOf(meta: EventMeta): Record<string, string> {
  const h: Record<string, string> = { 'atkafka-kind': meta.kind }
  if (meta.did !== '') h['atkafka-did'] = meta.did
  if (meta.collection !== undefined) h['atkafka-collection'] = meta.collection
  if (meta.action !== undefined) h['atkafka-action'] = meta.action
  if (meta.cursor !== undefined) h['atkafka-cursor'] = meta.cursor
  if (meta.time !== '') h['atkafka-time'] = meta.time
  return h
}

/** Where messages go: the topic of each (from `--output-topic`) and, with `--kafka-headers`, its headers. */
export interface Routing {
  /** Absent for outputs without topics (`--stdout`). */
  topic?: TopicTemplate
  headers: boolean
}

/** A formatted message with what routing needs. */
export interface RoutedInput {
  key: string
  value: string
  meta: EventMeta
}

/** Builds the sink's messages: the topic each goes to and its headers. */
export class Router {
  readonly #topic: TopicTemplate | undefined
  readonly #headers: boolean
  /** Whether {@link message} uses the event's {@link EventMeta} at all. */
  readonly needsMeta: boolean

  constructor(routing: Routing) {
    this.#topic = routing.topic
    this.#headers = routing.headers
    this.needsMeta =
      routing.headers || (routing.topic !== undefined && routing.topic.fixed === undefined)
  }

  /** The message for `value` keyed by `key`; `meta` may be omitted when {@link needsMeta} is false. */
  message(key: string, value: string, meta: EventMeta | undefined): OutMessage {
    const t = this.#topic
    const topic = t === undefined ? undefined : (t.fixed ?? t.render(meta!.kind, meta!.collection))
    const out: OutMessage = topic === undefined ? { key, value } : { key, value, topic }
    if (this.#headers) out.headers = headersOf(meta!)
    return out
  }
}

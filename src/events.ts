/**
 * The event shapes atkafka produces. Plain mode writes an {@link AtKafkaEvent} as JSON; Osprey mode
 * wraps it (see format.ts). Key order matters for byte-compatibility with at-kafka: did, timestamp,
 * eventMetadata, then exactly one payload key.
 */

export type JsonValue =
  null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue | undefined }

export type JsonObject = { [key: string]: JsonValue | undefined }

export type OpAction = 'create' | 'update' | 'delete'

export interface OperationPayload {
  action: OpAction
  collection: string
  rkey: string
  uri: string
  /** The record CID; `""` on deletes. */
  cid: string
  path: string
  /** The record as lexicon JSON; omitted on deletes. */
  record?: JsonObject
  /** Tap mode only: whether the record came from the live stream rather than backfill. */
  live?: boolean
  /** Tap mode only: the repo revision of the record. */
  rev?: string
}

export interface AccountPayload {
  active: boolean
  seq: number
  status?: string
}

export interface IdentityPayload {
  seq: number
  /** `""` when the relay sent none. */
  handle: string
  /** Tap mode only. */
  isActive?: boolean
  /** Tap mode only. */
  status?: string
}

export interface InfoPayload {
  name: string
  message?: string
}

export interface SyncPayload {
  seq: number
  rev: string
}

/**
 * Labels mode: one label of a labeler's `#labels` message, as sent (`sig` as `{"$bytes"}`), plus
 * the message's `seq`.
 */
export interface LabelPayload {
  ver?: number
  /** DID of the labeler that made the label. */
  src: string
  /** Subject: a DID (account) or an at:// URI (record). */
  uri: string
  /** Record version the label applies to. */
  cid?: string
  val: string
  /** A negation: removes the label `val` from the subject. */
  neg?: boolean
  cts: string
  exp?: string
  /** The labeler's signature over the label without `sig`. */
  sig?: { $bytes: string }
  seq: number
}

/** `eventMetadata`: `null` unless enrichment is configured. */
export type EventMetadata = JsonObject | null

interface EventBase {
  did: string
  timestamp: string
  eventMetadata: EventMetadata
}

export type AtKafkaEvent =
  | (EventBase & { operation: OperationPayload })
  | (EventBase & { account: AccountPayload })
  | (EventBase & { identity: IdentityPayload })
  | (EventBase & { info: InfoPayload })
  | (EventBase & { sync: SyncPayload })
  | (EventBase & { label: LabelPayload })

export type ActionName =
  | 'operation#create'
  | 'operation#update'
  | 'operation#delete'
  | 'account'
  | 'identity'
  | 'info'
  | 'sync'
  | 'label'

/**
 * What an event is, as the `atkafka-kind` header and the `{kind}` of a topic template: the payload
 * key of an {@link AtKafkaEvent}, or `ozone` for Ozone's moderation events.
 */
export type EventKind = 'operation' | 'identity' | 'account' | 'sync' | 'info' | 'label' | 'ozone'

export function kindOf(event: AtKafkaEvent): EventKind {
  if ('operation' in event) return 'operation'
  if ('account' in event) return 'account'
  if ('identity' in event) return 'identity'
  if ('sync' in event) return 'sync'
  if ('label' in event) return 'label'
  return 'info'
}

/** Kafka key for events that carry no DID (`#info`), as at-kafka. */
export const UNKNOWN_KEY = '<unknown>'

export function actionNameOf(event: AtKafkaEvent): ActionName {
  if ('operation' in event) return `operation#${event.operation.action}`
  if ('account' in event) return 'account'
  if ('identity' in event) return 'identity'
  if ('sync' in event) return 'sync'
  if ('label' in event) return 'label'
  return 'info'
}

export function collectionOf(event: AtKafkaEvent): string {
  return 'operation' in event ? event.operation.collection : ''
}

export function keyOf(event: AtKafkaEvent): string {
  return event.did === '' ? UNKNOWN_KEY : event.did
}

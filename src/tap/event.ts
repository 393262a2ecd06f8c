import type { AtKafkaEvent, JsonObject, OpAction } from '../events.ts'
import { recordTimestamp } from './timestamp.ts'

/**
 * Tap's `/channel` events, one JSON object per WebSocket text frame:
 *
 *   {"id":1,"type":"record","record":{"live":false,"did":"did:plc:…","rev":"3n2waowfhss2d",
 *    "collection":"app.bsky.feed.post","rkey":"3n2waow7u4s2d","action":"create",
 *    "record":{…},"cid":"bafyrei…"}}
 *   {"id":5,"type":"record","record":{"live":true,…,"action":"delete"}}      (no cid, no record)
 *   {"id":8,"type":"identity","identity":{"did":"did:plc:…","handle":"alice.test",
 *    "is_active":true,"status":"active"}}
 *
 * A create or update without `record` means Tap could not decode the record.
 */

/** Why a frame was not turned into an event: the `reason` label of its metric. */
export type TapProblemReason =
  'invalid-json' | 'invalid-id' | 'invalid-event' | 'unknown-type' | 'invalid-record'

export type TapParseResult =
  | { ok: true; id: number; event: AtKafkaEvent; live: boolean; rev?: string }
  | {
      ok: false
      /** The event id when it could be read: the event is acked so it never stalls its repo. */
      id: number | undefined
      reason: TapProblemReason
      detail: string
      did?: string
      /** `unknown-type`: the type Tap sent. */
      type?: string
    }

const ACTIONS: ReadonlySet<string> = new Set(['create', 'update', 'delete'])

type Obj = { readonly [key: string]: unknown }

function isObject(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

class Invalid extends Error {
  readonly reason: TapProblemReason
  constructor(reason: TapProblemReason, detail: string) {
    super(detail)
    this.reason = reason
  }
}

function str(o: Obj, key: string, where: string): string {
  const v = o[key]
  if (typeof v !== 'string') throw new Invalid('invalid-event', `${where}.${key} is not a string`)
  return v
}

function nonEmpty(o: Obj, key: string, where: string): string {
  const v = str(o, key, where)
  if (v === '') throw new Invalid('invalid-event', `${where}.${key} is empty`)
  return v
}

function bool(o: Obj, key: string, where: string): boolean {
  const v = o[key]
  if (typeof v !== 'boolean') throw new Invalid('invalid-event', `${where}.${key} is not a boolean`)
  return v
}

function did(o: Obj, where: string): string {
  const v = str(o, 'did', where)
  if (!v.startsWith('did:')) throw new Invalid('invalid-event', `${where}.did is not a DID`)
  return v
}

function recordEvent(r: Obj, now: () => Date): { event: AtKafkaEvent; live: boolean; rev: string } {
  const repo = did(r, 'record')
  const live = bool(r, 'live', 'record')
  const rev = str(r, 'rev', 'record')
  const collection = nonEmpty(r, 'collection', 'record')
  const rkey = nonEmpty(r, 'rkey', 'record')
  if (collection.includes('/') || rkey.includes('/')) {
    throw new Invalid('invalid-event', 'record.collection or record.rkey contains "/"')
  }
  const action = str(r, 'action', 'record')
  if (!ACTIONS.has(action)) throw new Invalid('invalid-event', `unknown action ${action}`)
  const path = `${collection}/${rkey}`
  const base = {
    action: action as OpAction,
    collection,
    rkey,
    uri: `at://${repo}/${path}`,
    cid: '',
    path,
  }
  if (action === 'delete') {
    return {
      event: {
        did: repo,
        timestamp: recordTimestamp(undefined, rkey, now),
        eventMetadata: null,
        operation: { ...base, live, rev },
      },
      live,
      rev,
    }
  }
  const cid = nonEmpty(r, 'cid', 'record')
  const record = r['record']
  if (!isObject(record)) {
    throw new Invalid(
      'invalid-record',
      record === undefined
        ? 'Tap sent no record (it could not decode it)'
        : 'record is not an object',
    )
  }
  return {
    event: {
      did: repo,
      timestamp: recordTimestamp(record, rkey, now),
      eventMetadata: null,
      operation: { ...base, cid, record: record as JsonObject, live, rev },
    },
    live,
    rev,
  }
}

function identityEvent(i: Obj, id: number, now: () => Date): AtKafkaEvent {
  const repo = did(i, 'identity')
  const handle = str(i, 'handle', 'identity')
  const isActive = bool(i, 'is_active', 'identity')
  const status = str(i, 'status', 'identity')
  return {
    did: repo,
    timestamp: now().toISOString(),
    eventMetadata: null,
    // Tap has no sequence numbers; its event id is the closest (not unique across Tap restarts).
    identity: { seq: id, handle, isActive, status },
  }
}

function readId(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? v : undefined
}

/** Parse and validate one `/channel` frame. Pure apart from `now` (identity and fallback times). */
export function parseTapEvent(text: string, now: () => Date = () => new Date()): TapParseResult {
  let msg: unknown
  try {
    msg = JSON.parse(text)
  } catch (err) {
    return { ok: false, id: undefined, reason: 'invalid-json', detail: String(err) }
  }
  if (!isObject(msg)) {
    return { ok: false, id: undefined, reason: 'invalid-json', detail: 'not a JSON object' }
  }
  const id = readId(msg['id'])
  if (id === undefined) {
    return { ok: false, id, reason: 'invalid-id', detail: `id ${JSON.stringify(msg['id'])}` }
  }
  const type = msg['type']
  const body = typeof type === 'string' ? msg[type] : undefined
  const bodyDid = isObject(body) && typeof body['did'] === 'string' ? body['did'] : undefined
  try {
    if (type === 'record' || type === 'identity') {
      if (!isObject(body)) throw new Invalid('invalid-event', `${type} is not an object`)
      if (type === 'identity')
        return { ok: true, id, event: identityEvent(body, id, now), live: false }
      return { ok: true, id, ...recordEvent(body, now) }
    }
    return {
      ok: false,
      id,
      reason: 'unknown-type',
      detail: `type ${JSON.stringify(type)}`,
      type: typeof type === 'string' ? type : undefined,
      did: bodyDid,
    }
  } catch (err) {
    if (!(err instanceof Invalid)) throw err
    return { ok: false, id, reason: err.reason, detail: err.message, did: bodyDid }
  }
}

/** The ack Tap expects for event `id`; any other frame makes Tap close the connection. */
export function ackFrame(id: number): string {
  return `{"type":"ack","id":${id}}`
}

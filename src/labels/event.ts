import { AtKafkaError } from '../errors.ts'
import type { AtKafkaEvent, LabelPayload } from '../events.ts'
import type { InfoMessage } from '../firehose/frame.ts'
import { ipldToJson } from '../firehose/ipld-json.ts'
import type { LabelsMessage } from './frame.ts'

/** A label of a `#labels` message that could not be turned into an event. */
export interface DroppedLabel {
  reason: 'invalid-label'
  seq: number
  /** Position of the label in the message. */
  index: number
  detail: string
}

export interface LabelEventsResult {
  events: AtKafkaEvent[]
  dropped: DroppedLabel[]
}

/** A label that does not match `com.atproto.label.defs#label`. */
export class InvalidLabelError extends AtKafkaError {
  override name = 'InvalidLabelError'
}

type Obj = Record<string, unknown>

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array)
}

function reqStr(label: Obj, key: string): string {
  const v = label[key]
  if (typeof v !== 'string' || v === '')
    throw new InvalidLabelError(`"${key}" is not a non-empty string`)
  return v
}

/** An optional field: absent or null is `undefined`; anything else must pass `ok`. */
function opt<T>(label: Obj, key: string, ok: (v: unknown) => v is T, what: string): T | undefined {
  const v = label[key]
  if (v === undefined || v === null) return undefined
  if (!ok(v)) throw new InvalidLabelError(`"${key}" is not ${what}`)
  return v
}

const isString = (v: unknown): v is string => typeof v === 'string'
const isBool = (v: unknown): v is boolean => typeof v === 'boolean'
const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v)
const isBytes = (v: unknown): v is Uint8Array => v instanceof Uint8Array

/**
 * The DID a label is about: the uri itself when it is a DID, the authority of an `at://` URI
 * when that is a DID, else `""` (the Kafka key becomes `<unknown>`).
 */
export function subjectDid(uri: string): string {
  if (uri.startsWith('did:')) return uri
  if (uri.startsWith('at://')) {
    const rest = uri.slice(5)
    const end = rest.search(/[/?#]/)
    const authority = end === -1 ? rest : rest.slice(0, end)
    if (authority.startsWith('did:')) return authority
  }
  return ''
}

/** Validate one `com.atproto.label.defs#label`; keys in the lexicon's order, then `seq`. */
export function parseLabel(value: unknown, seq: number): LabelPayload {
  if (!isObj(value)) throw new InvalidLabelError('not a map')
  const ver = opt(value, 'ver', isInt, 'an integer')
  const src = reqStr(value, 'src')
  const uri = reqStr(value, 'uri')
  const cid = opt(value, 'cid', isString, 'a string')
  const val = reqStr(value, 'val')
  const neg = opt(value, 'neg', isBool, 'a boolean')
  const cts = reqStr(value, 'cts')
  const exp = opt(value, 'exp', isString, 'a string')
  const sig = opt(value, 'sig', isBytes, 'bytes')
  return {
    ...(ver === undefined ? {} : { ver }),
    src,
    uri,
    ...(cid === undefined ? {} : { cid }),
    val,
    ...(neg === undefined ? {} : { neg }),
    cts,
    ...(exp === undefined ? {} : { exp }),
    ...(sig === undefined ? {} : { sig: ipldToJson(sig) as { $bytes: string } }),
    seq,
  }
}

/** One event per label of a `#labels` message, keyed (through `did`) by the subject's DID. */
export function labelEvents(msg: LabelsMessage): LabelEventsResult {
  const events: AtKafkaEvent[] = []
  const dropped: DroppedLabel[] = []
  for (let i = 0; i < msg.labels.length; i++) {
    let label: LabelPayload
    try {
      label = parseLabel(msg.labels[i], msg.seq)
    } catch (err) {
      if (!(err instanceof InvalidLabelError)) throw err
      dropped.push({ reason: 'invalid-label', seq: msg.seq, index: i, detail: err.message })
      continue
    }
    events.push({ did: subjectDid(label.uri), timestamp: label.cts, eventMetadata: null, label })
  }
  return { events, dropped }
}

/** An `#info` message (e.g. OutdatedCursor) as an info event, like relay mode writes it. */
export function infoEvent(msg: InfoMessage): AtKafkaEvent {
  const info: { name: string; message?: string } = { name: msg.name }
  if (msg.message !== undefined) info.message = msg.message
  return { did: '', timestamp: '', eventMetadata: null, info }
}

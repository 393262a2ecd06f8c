import { cborItemLength, decodeDagCbor } from './cbor.ts'
import { fastDecodeFirst } from './fast-cbor.ts'
import { isCid, type CidLike } from './ipld-json.ts'

/** Why a frame could not be decoded: the `reason` label of the decode-error metric. */
export type FrameErrorReason =
  'empty-frame' | 'invalid-header' | 'invalid-body' | 'unknown-op' | 'trailing-bytes'

export class FrameError extends Error {
  override name = 'FrameError'
  readonly reason: FrameErrorReason
  constructor(reason: FrameErrorReason, message: string, cause?: unknown) {
    super(message, { cause })
    this.reason = reason
  }
}

export interface RepoOp {
  action: string
  path: string
  cid: CidLike | null
}

export interface CommitMessage {
  type: '#commit'
  seq: number
  repo: string
  rev: string
  time: string
  ops: RepoOp[]
  blocks: Uint8Array
  tooBig: boolean
}

export interface IdentityMessage {
  type: '#identity'
  seq: number
  did: string
  time: string
  handle?: string
}

export interface AccountMessage {
  type: '#account'
  seq: number
  did: string
  time: string
  active: boolean
  status?: string
}

export interface SyncMessage {
  type: '#sync'
  seq: number
  did: string
  rev: string
  time: string
}

export interface InfoMessage {
  type: '#info'
  name: string
  message?: string
}

/** A message type this version does not know; skipped, but its seq still counts for the cursor. */
export interface UnknownMessage {
  type: 'unknown'
  t: string
  seq?: number
}

/** `op: -1`: the relay reports an error and will close the connection. */
export interface ErrorFrame {
  type: 'error'
  error: string
  message?: string
}

export type FirehoseMessage =
  CommitMessage | IdentityMessage | AccountMessage | SyncMessage | InfoMessage | UnknownMessage

export type DecodedFrame = FirehoseMessage | ErrorFrame

export type Obj = Record<string, unknown>

export function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array)
}

function str(body: Obj, key: string): string {
  const v = body[key]
  if (typeof v !== 'string') throw new FrameError('invalid-body', `field "${key}" is not a string`)
  return v
}

export function optStr(body: Obj, key: string): string | undefined {
  const v = body[key]
  if (v === undefined || v === null) return undefined
  if (typeof v !== 'string') throw new FrameError('invalid-body', `field "${key}" is not a string`)
  return v
}

export function seqOf(body: Obj): number {
  const v = body['seq']
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
    throw new FrameError('invalid-body', 'field "seq" is not a non-negative integer')
  }
  return v
}

function parseOps(value: unknown): RepoOp[] {
  if (!Array.isArray(value)) throw new FrameError('invalid-body', 'field "ops" is not an array')
  return value.map((op: unknown, i) => {
    if (!isObj(op)) throw new FrameError('invalid-body', `ops[${i}] is not an object`)
    const cid = op['cid']
    if (cid !== null && cid !== undefined && !isCid(cid)) {
      throw new FrameError('invalid-body', `ops[${i}].cid is not a CID`)
    }
    return { action: str(op, 'action'), path: str(op, 'path'), cid: cid ?? null }
  })
}

/** `#info {name, message?}`: shared by every subscription. */
export function infoMessage(body: Obj): InfoMessage {
  return { type: '#info', name: str(body, 'name'), message: optStr(body, 'message') }
}

/** A message type this version does not know; its seq, if any, still counts for the cursor. */
export function unknownMessage(t: string, body: Obj): UnknownMessage {
  const seq = body['seq']
  return {
    type: 'unknown',
    t,
    seq: typeof seq === 'number' && Number.isSafeInteger(seq) ? seq : undefined,
  }
}

function parseMessage(t: string, body: Obj): FirehoseMessage {
  switch (t) {
    case '#commit': {
      const blocks = body['blocks']
      if (!(blocks instanceof Uint8Array)) {
        throw new FrameError('invalid-body', 'field "blocks" is not bytes')
      }
      return {
        type: '#commit',
        seq: seqOf(body),
        repo: str(body, 'repo'),
        rev: str(body, 'rev'),
        time: str(body, 'time'),
        ops: parseOps(body['ops']),
        blocks,
        tooBig: body['tooBig'] === true,
      }
    }
    case '#identity':
      return {
        type: '#identity',
        seq: seqOf(body),
        did: str(body, 'did'),
        time: str(body, 'time'),
        handle: optStr(body, 'handle'),
      }
    case '#account': {
      const active = body['active']
      if (typeof active !== 'boolean') {
        throw new FrameError('invalid-body', 'field "active" is not a boolean')
      }
      return {
        type: '#account',
        seq: seqOf(body),
        did: str(body, 'did'),
        time: str(body, 'time'),
        active,
        status: optStr(body, 'status'),
      }
    }
    case '#sync':
      return {
        type: '#sync',
        seq: seqOf(body),
        did: str(body, 'did'),
        rev: str(body, 'rev'),
        time: str(body, 'time'),
      }
    case '#info':
      return infoMessage(body)
    default:
      return unknownMessage(t, body)
  }
}

/**
 * Header and body by the single-pass decoder, or undefined when it cannot say (any malformed or
 * unusual input): the reference path then gives the authoritative result and error.
 */
function fastHeaderAndBody(frame: Uint8Array): { header: Obj; body: unknown } | undefined {
  try {
    const first = fastDecodeFirst(frame, 0)
    if (!isObj(first.value) || first.end === frame.length) return undefined
    const second = fastDecodeFirst(frame, first.end)
    if (second.end !== frame.length) return undefined
    return { header: first.value, body: second.value }
  } catch {
    return undefined
  }
}

/** The reference decoder (@ipld/dag-cbor), with its errors mapped to reasons. */
function referenceHeaderAndBody(frame: Uint8Array): { header: Obj; body: unknown } {
  let headerLength: number
  let header: unknown
  try {
    headerLength = cborItemLength(frame)
    header = decodeDagCbor(frame.subarray(0, headerLength))
  } catch (err) {
    throw new FrameError('invalid-header', `undecodable frame header: ${String(err)}`, err)
  }
  if (!isObj(header)) throw new FrameError('invalid-header', 'frame header is not a map')
  if (headerLength === frame.length) throw new FrameError('invalid-body', 'frame has no body')
  let body: unknown
  try {
    body = decodeDagCbor(frame.subarray(headerLength))
  } catch (err) {
    const reason = String(err).includes('too many terminals') ? 'trailing-bytes' : 'invalid-body'
    throw new FrameError(reason, `undecodable frame body: ${String(err)}`, err)
  }
  return { header, body }
}

/**
 * Decode the envelope shared by every `com.atproto.*.subscribe*` stream: a DAG-CBOR header
 * `{op, t}` followed by a DAG-CBOR body. `op: -1` is an error frame; `op: 1` a message of type
 * `t` whose body is a map. Pure; throws {@link FrameError} on anything malformed.
 */
export function decodeEnvelope(
  frame: Uint8Array,
): ErrorFrame | { type: 'message'; t: string; body: Obj } {
  if (frame.length === 0) throw new FrameError('empty-frame', 'empty frame')
  const { header, body } = fastHeaderAndBody(frame) ?? referenceHeaderAndBody(frame)
  if (!isObj(body)) throw new FrameError('invalid-body', 'frame body is not a map')
  const op = header['op']
  if (op === -1) {
    const error = body['error']
    if (typeof error !== 'string') {
      throw new FrameError('invalid-body', 'error frame has no "error" string')
    }
    return { type: 'error', error, message: optStr(body, 'message') }
  }
  if (op !== 1) throw new FrameError('unknown-op', `unknown frame op ${String(op)}`)
  const t = header['t']
  if (typeof t !== 'string') throw new FrameError('invalid-header', 'frame header has no "t"')
  return { type: 'message', t, body }
}

/**
 * Decode one binary `com.atproto.sync.subscribeRepos` frame. Pure; throws {@link FrameError} on
 * anything malformed.
 */
export function decodeFrame(frame: Uint8Array): DecodedFrame {
  const envelope = decodeEnvelope(frame)
  return envelope.type === 'error' ? envelope : parseMessage(envelope.t, envelope.body)
}

import { cborItemLength, decodeDagCbor } from '../firehose/cbor.ts'
import {
  type ErrorFrame,
  FrameError,
  type InfoMessage,
  type UnknownMessage,
} from '../firehose/frame.ts'

/** `#labels`: labels as sent (validated one by one later, so one bad label drops only itself). */
export interface LabelsMessage {
  type: '#labels'
  seq: number
  labels: unknown[]
}

export type LabelMessage = LabelsMessage | InfoMessage | UnknownMessage

export type DecodedLabelFrame = LabelMessage | ErrorFrame

type Obj = Record<string, unknown>

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array)
}

function optStr(body: Obj, key: string): string | undefined {
  const v = body[key]
  if (v === undefined || v === null) return undefined
  if (typeof v !== 'string') throw new FrameError('invalid-body', `field "${key}" is not a string`)
  return v
}

function parseMessage(t: string, body: Obj): LabelMessage {
  switch (t) {
    case '#labels': {
      const seq = body['seq']
      if (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 0) {
        throw new FrameError('invalid-body', 'field "seq" is not a non-negative integer')
      }
      const labels = body['labels']
      if (!Array.isArray(labels)) {
        throw new FrameError('invalid-body', 'field "labels" is not an array')
      }
      return { type: '#labels', seq, labels }
    }
    case '#info': {
      const name = body['name']
      if (typeof name !== 'string') {
        throw new FrameError('invalid-body', 'field "name" is not a string')
      }
      return { type: '#info', name, message: optStr(body, 'message') }
    }
    default: {
      const seq = body['seq']
      return {
        type: 'unknown',
        t,
        seq: typeof seq === 'number' && Number.isSafeInteger(seq) ? seq : undefined,
      }
    }
  }
}

/**
 * Decode one binary `com.atproto.label.subscribeLabels` frame: a DAG-CBOR header `{op, t}`
 * followed by a DAG-CBOR body, as on the repo firehose. Pure; throws {@link FrameError}.
 */
export function decodeLabelFrame(frame: Uint8Array): DecodedLabelFrame {
  if (frame.length === 0) throw new FrameError('empty-frame', 'empty frame')
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
  return parseMessage(t, body)
}

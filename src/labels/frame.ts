import {
  type ErrorFrame,
  FrameError,
  type InfoMessage,
  type Obj,
  type UnknownMessage,
  decodeEnvelope,
  infoMessage,
  seqOf,
  unknownMessage,
} from '../firehose/frame.ts'

/** `#labels`: labels as sent (validated one by one later, so one bad label drops only itself). */
export interface LabelsMessage {
  type: '#labels'
  seq: number
  labels: unknown[]
}

export type LabelMessage = LabelsMessage | InfoMessage | UnknownMessage

export type DecodedLabelFrame = LabelMessage | ErrorFrame

function parseMessage(t: string, body: Obj): LabelMessage {
  switch (t) {
    case '#labels': {
      const seq = seqOf(body)
      const labels = body['labels']
      if (!Array.isArray(labels)) {
        throw new FrameError('invalid-body', 'field "labels" is not an array')
      }
      return { type: '#labels', seq, labels }
    }
    case '#info':
      return infoMessage(body)
    default:
      return unknownMessage(t, body)
  }
}

/**
 * Decode one binary `com.atproto.label.subscribeLabels` frame (the same envelope as the repo
 * firehose). Pure; throws {@link FrameError}.
 */
export function decodeLabelFrame(frame: Uint8Array): DecodedLabelFrame {
  const envelope = decodeEnvelope(frame)
  return envelope.type === 'error' ? envelope : parseMessage(envelope.t, envelope.body)
}

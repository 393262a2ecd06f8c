import { decodeFrame } from '../../src/firehose/frame.ts'
import { SEQ_BASE, TIME_BASE_MS } from './generate.ts'

/**
 * Rewrites `seq` and `time` of frames in place of a copy, so a corpus can be served many times
 * over with every frame unique: global frame g gets seq SEQ_BASE + g and time TIME_BASE_MS + g ms.
 * The unique time comes back in every event's `timestamp`, which is how the bench tells which
 * frame a Kafka message came from. Both fields are fixed width (a 64-bit CBOR integer, a 24-char
 * ISO string), so patching never moves a byte.
 */
export class FramePatcher {
  readonly #frames: readonly Buffer[]
  readonly #seqAt: Int32Array
  readonly #timeAt: Int32Array

  constructor(frames: readonly Buffer[]) {
    this.#frames = frames
    this.#seqAt = new Int32Array(frames.length)
    this.#timeAt = new Int32Array(frames.length)
    frames.forEach((bytes, i) => {
      const msg = decodeFrame(bytes)
      if (msg.type === 'error' || msg.type === '#info' || msg.type === 'unknown') {
        throw new Error(`frame ${i}: ${msg.type} frames cannot be replayed with new seqs`)
      }
      this.#seqAt[i] = findField(bytes, seqPattern(msg.seq), `frame ${i} seq`)
      this.#timeAt[i] = findField(bytes, timePattern(msg.time), `frame ${i} time`)
    })
  }

  get length(): number {
    return this.#frames.length
  }

  /** Global frame `g` (frame g mod length, with its seq and time made unique). */
  frame(g: number): Buffer {
    const src = this.#frames[g % this.#frames.length]!
    const i = g % this.#frames.length
    const out = Buffer.from(src)
    out.writeBigUInt64BE(BigInt(SEQ_BASE + g), this.#seqAt[i]!)
    out.write(timeOf(g), this.#timeAt[i]!, 'latin1')
    return out
  }
}

/** The `time` of global frame g. */
export function timeOf(g: number): string {
  return new Date(TIME_BASE_MS + g).toISOString()
}

/** The global frame a `timestamp` came from, or -1. */
export function frameOfTime(time: string): number {
  const ms = Date.parse(time)
  return Number.isFinite(ms) ? ms - TIME_BASE_MS : -1
}

export function seqOfFrame(g: number): number {
  return SEQ_BASE + g
}

/** Map key "seq" and a 64-bit unsigned value: returns where the 8 value bytes are. */
function seqPattern(seq: number): { bytes: Buffer; valueAt: number } {
  const bytes = Buffer.alloc(13)
  bytes.write('\x63seq\x1b', 0, 'latin1')
  bytes.writeBigUInt64BE(BigInt(seq), 5)
  if (seq < 2 ** 32) throw new Error(`seq ${seq} is not a 64-bit CBOR integer`)
  return { bytes, valueAt: 5 }
}

/** Map key "time" and a 24-byte text string. */
function timePattern(time: string): { bytes: Buffer; valueAt: number } {
  if (time.length !== 24) throw new Error(`time ${time} is not a 24-character ISO string`)
  return { bytes: Buffer.from('\x64time\x78\x18' + time, 'latin1'), valueAt: 7 }
}

function findField(frame: Buffer, p: { bytes: Buffer; valueAt: number }, what: string): number {
  const at = frame.indexOf(p.bytes)
  if (at < 0) throw new Error(`${what}: field not found`)
  if (frame.indexOf(p.bytes, at + 1) >= 0) throw new Error(`${what}: field found twice`)
  return at + p.valueAt
}

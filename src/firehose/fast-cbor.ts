import type { JsonValue } from '../events.ts'
import type { CidLike } from './ipld-json.ts'
import { base32Multibase, base58btc } from './multibase.ts'

/**
 * A single-pass DAG-CBOR decoder for the hot path. It accepts only input that the reference
 * decoder (@ipld/dag-cbor, strict) accepts, and gives the same values for it; for anything else
 * (malformed input, but also rare valid cases it does not handle: integers beyond 2^53, a
 * `__proto__` key in record JSON, very deep nesting) it throws {@link FAST_CBOR_UNSUPPORTED} and
 * the caller asks the reference decoder, whose answer (value or error) stands. So the fast path
 * changes speed, never results.
 */
export const FAST_CBOR_UNSUPPORTED: Error = Object.freeze(new Error('fast CBOR path unsupported'))

/** A CID decoded from DAG-CBOR tag 42: its binary form, with the string made on demand. */
export class Cid implements CidLike {
  readonly bytes: Uint8Array
  readonly '/': Uint8Array
  readonly #v0: boolean
  #string: string | undefined

  constructor(bytes: Uint8Array, v0: boolean) {
    this.bytes = bytes
    this['/'] = bytes
    this.#v0 = v0
  }

  toString(): string {
    this.#string ??= this.#v0 ? base58btc(this.bytes) : base32Multibase(this.bytes)
    return this.#string
  }

  /** As multiformats' CID (not the lexicon `$link` form). */
  toJSON(): { '/': string } {
    return { '/': this.toString() }
  }
}

const MAX_DEPTH = 128
const textDecoder = new TextDecoder()

// Decoder state: one decode runs at a time, synchronously.
let data: Uint8Array = new Uint8Array(0)
let pos = 0
let end = 0
/** Record mode: CIDs become `{$link}`, bytes `{$bytes}` (the lexicon JSON form). */
let json = false
let view: DataView | undefined

function fail(): never {
  throw FAST_CBOR_UNSUPPORTED
}

/** The argument of a head whose additional info is ≥ 24, minimally encoded (strict). */
function longArg(info: number): number {
  if (info === 24) {
    if (pos + 1 > end) fail()
    const v = data[pos]!
    pos += 1
    if (v < 24) fail()
    return v
  }
  if (info === 25) {
    if (pos + 2 > end) fail()
    const v = (data[pos]! << 8) | data[pos + 1]!
    pos += 2
    if (v < 256) fail()
    return v
  }
  if (info === 26) {
    if (pos + 4 > end) fail()
    const v =
      data[pos]! * 0x1000000 + ((data[pos + 1]! << 16) | (data[pos + 2]! << 8) | data[pos + 3]!)
    pos += 4
    if (v < 65536) fail()
    return v
  }
  if (info === 27) {
    if (pos + 8 > end) fail()
    const hi =
      data[pos]! * 0x1000000 + ((data[pos + 1]! << 16) | (data[pos + 2]! << 8) | data[pos + 3]!)
    const lo =
      data[pos + 4]! * 0x1000000 + ((data[pos + 5]! << 16) | (data[pos + 6]! << 8) | data[pos + 7]!)
    pos += 8
    // Beyond 2^53 the reference decoder returns a BigInt: leave that to it.
    if (hi === 0 || hi >= 0x200000) fail()
    return hi * 0x100000000 + lo
  }
  // 28-30 reserved, 31 indefinite length: not DAG-CBOR.
  return fail()
}

function text(n: number): string {
  const stop = pos + n
  if (stop > end) fail()
  let s = ''
  if (n < 32) {
    for (let i = pos; i < stop; i++) {
      const c = data[i]!
      if (c & 0x80) {
        s = textDecoder.decode(data.subarray(pos, stop))
        break
      }
      s += String.fromCharCode(c)
    }
  } else {
    s = textDecoder.decode(data.subarray(pos, stop))
  }
  pos = stop
  return s
}

// Map keys repeat endlessly ($type, createdAt, uri, cid…): hand back the same string object for
// the same short ASCII key, which spares building it and interning it again as a property name.
const KEY_SLOTS = 2048
const keyCache: Array<string | undefined> = new Array(KEY_SLOTS)

function keyText(n: number): string {
  const stop = pos + n
  if (n === 0 || n > 32 || stop > end) return text(n)
  let h = n
  for (let i = pos; i < stop; i++) {
    const c = data[i]!
    if (c & 0x80) return text(n)
    h = Math.imul(h ^ c, 0x01000193)
  }
  const slot = (h >>> 0) & (KEY_SLOTS - 1)
  const cached = keyCache[slot]
  if (cached !== undefined && cached.length === n) {
    let same = true
    for (let i = 0; i < n; i++) {
      if (cached.charCodeAt(i) !== data[pos + i]) {
        same = false
        break
      }
    }
    if (same) {
      pos = stop
      return cached
    }
  }
  const s = text(n)
  keyCache[slot] = s
  return s
}

function base64(bytes: Uint8Array): string {
  const b64 = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64')
  let stop = b64.length
  while (stop > 0 && b64.charCodeAt(stop - 1) === 0x3d) stop--
  return stop === b64.length ? b64 : b64.slice(0, stop)
}

/** An unsigned varint inside a CID, by multiformats' rules (≤ 9 bytes, minimal). */
function cidVarint(bytes: Uint8Array, at: number, stop: number): [number, number] {
  let value = 0
  let shift = 0
  let i = at
  for (;;) {
    if (i >= stop) fail()
    const b = bytes[i++]!
    value += (b & 0x7f) * 2 ** shift
    shift += 7
    if (b < 0x80) break
  }
  const length = i - at
  if (length > 9 || (length > 1 && bytes[i - 1] === 0)) fail()
  return [value, i]
}

/** Tag 42: a byte string of 0x00 then a binary CID, checked as multiformats' CID.decode does. */
function cid(): unknown {
  if (pos >= end) fail()
  const head = data[pos++]!
  if (head >>> 5 !== 2) fail()
  const info = head & 31
  const n = info < 24 ? info : longArg(info)
  const start = pos
  const stop = pos + n
  if (stop > end || n < 1 || data[start] !== 0) fail()
  pos = stop
  const [version, afterVersion] = cidVarint(data, start + 1, stop)
  let at = afterVersion
  let v0 = false
  if (version === 18) {
    v0 = true
    at = start + 1
  } else {
    if (version !== 1) fail()
    at = cidVarint(data, at, stop)[1]
  }
  at = cidVarint(data, at, stop)[1]
  const [digestSize, digestAt] = cidVarint(data, at, stop)
  if (digestAt + digestSize !== stop) fail()
  const bytes = data.slice(start + 1, stop)
  if (json) return { $link: v0 ? base58btc(bytes) : base32Multibase(bytes) }
  return new Cid(bytes, v0)
}

function float(info: number): number {
  view ??= new DataView(data.buffer, data.byteOffset, data.byteLength)
  let v: number
  if (info === 25) {
    if (pos + 2 > end) fail()
    const half = (data[pos]! << 8) | data[pos + 1]!
    pos += 2
    const exp = (half >> 10) & 0x1f
    const mant = half & 0x3ff
    if (exp === 31) fail() // Infinity or NaN: not allowed
    v = exp === 0 ? mant * 2 ** -24 : (mant + 1024) * 2 ** (exp - 25)
    if (half & 0x8000) v = -v
  } else if (info === 26) {
    if (pos + 4 > end) fail()
    v = view.getFloat32(pos, false)
    pos += 4
  } else {
    if (pos + 8 > end) fail()
    v = view.getFloat64(pos, false)
    pos += 8
  }
  if (!Number.isFinite(v)) fail()
  return v
}

function item(depth: number): unknown {
  if (pos >= end || depth > MAX_DEPTH) fail()
  const head = data[pos++]!
  const major = head >>> 5
  const info = head & 31
  if (major === 7) {
    switch (info) {
      case 20:
        return false
      case 21:
        return true
      case 22:
      case 23: // undefined: the reference decoder turns it into null
        return null
      case 25:
      case 26:
      case 27:
        return float(info)
      default:
        return fail()
    }
  }
  const arg = info < 24 ? info : longArg(info)
  switch (major) {
    case 0:
      return arg
    case 1:
      if (arg >= Number.MAX_SAFE_INTEGER) fail()
      return -1 - arg
    case 2: {
      const stop = pos + arg
      if (stop > end) fail()
      const bytes = data.subarray(pos, stop)
      pos = stop
      return json ? { $bytes: base64(bytes) } : bytes
    }
    case 3:
      return text(arg)
    case 4: {
      if (arg > end - pos) fail()
      const out: unknown[] = new Array(arg)
      for (let i = 0; i < arg; i++) out[i] = item(depth + 1)
      return out
    }
    case 5:
      return map(arg, depth)
    default:
      // major 6: only tag 42 (CID) exists in DAG-CBOR
      if (arg !== 42) fail()
      return cid()
  }
}

function map(n: number, depth: number): Record<string, unknown> {
  if (n * 2 > end - pos) fail()
  const out: Record<string, unknown> = {}
  // Keys that arrive in strictly increasing (length, string) order cannot repeat, which is how
  // DAG-CBOR orders them; only unordered input needs the own-property check.
  let ordered = true
  let prev = ''
  for (let i = 0; i < n; i++) {
    if (pos >= end) fail()
    const head = data[pos++]!
    if (head >>> 5 !== 3) fail() // keys must be strings
    const info = head & 31
    const key = keyText(info < 24 ? info : longArg(info))
    if (
      ordered &&
      i > 0 &&
      !(key.length > prev.length || (key.length === prev.length && key > prev))
    ) {
      ordered = false
    }
    if (!ordered && Object.hasOwn(out, key)) fail()
    prev = key
    const value = item(depth + 1)
    if (key === '__proto__') {
      // The reference decoder makes it an own property, and record JSON copies it with a
      // plain assignment; leave that to the reference path.
      if (json) fail()
      Object.defineProperty(out, key, {
        value,
        configurable: true,
        enumerable: true,
        writable: true,
      })
    } else {
      out[key] = value
    }
  }
  // ipldToJson takes any map whose "/" equals its "bytes" for a CID; so must we, by declining.
  if (json && out['/'] !== undefined && out['/'] === out['bytes']) fail()
  return out
}

function run(bytes: Uint8Array, start: number, asJson: boolean): unknown {
  data = bytes
  pos = start
  end = bytes.length
  json = asJson
  view = undefined
  try {
    return item(0)
  } finally {
    data = EMPTY
    view = undefined
  }
}

const EMPTY = new Uint8Array(0)

/**
 * Decode the DAG-CBOR item at `start`; returns it and where it ends. CIDs come back as
 * {@link Cid}, byte strings as views into `bytes`. Throws {@link FAST_CBOR_UNSUPPORTED}.
 */
export function fastDecodeFirst(bytes: Uint8Array, start: number): { value: unknown; end: number } {
  const value = run(bytes, start, false)
  return { value, end: pos }
}

/**
 * Decode a record block that must be exactly one DAG-CBOR item straight into its lexicon JSON
 * form (`{"$link"}`, `{"$bytes"}`), as `ipldToJson(decode(bytes))` would. Throws
 * {@link FAST_CBOR_UNSUPPORTED}.
 */
export function fastDecodeRecordJson(bytes: Uint8Array): JsonValue {
  const value = run(bytes, 0, true)
  if (pos !== bytes.length) fail()
  return value as JsonValue
}

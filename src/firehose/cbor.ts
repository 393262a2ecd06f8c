import { decode } from '@ipld/dag-cbor'

/**
 * Byte length of the CBOR data item starting at `offset`, without decoding it. Used to split a
 * firehose frame into its header and body (two DAG-CBOR items back to back).
 * Throws a RangeError on truncated or malformed input.
 */
export function cborItemLength(bytes: Uint8Array, offset = 0): number {
  return skipItem(bytes, offset, 0) - offset
}

const MAX_DEPTH = 64

function skipItem(bytes: Uint8Array, pos: number, depth: number): number {
  if (depth > MAX_DEPTH) throw new RangeError('CBOR nesting too deep')
  if (pos >= bytes.length) throw new RangeError('CBOR truncated')
  const initial = bytes[pos]!
  const major = initial >> 5
  const info = initial & 0x1f
  pos++
  let arg: number
  if (info < 24) {
    arg = info
  } else if (info === 24) {
    need(bytes, pos, 1)
    arg = bytes[pos]!
    pos += 1
  } else if (info === 25) {
    need(bytes, pos, 2)
    arg = (bytes[pos]! << 8) | bytes[pos + 1]!
    pos += 2
  } else if (info === 26) {
    need(bytes, pos, 4)
    arg =
      ((bytes[pos]! << 24) >>> 0) +
      ((bytes[pos + 1]! << 16) | (bytes[pos + 2]! << 8) | bytes[pos + 3]!)
    pos += 4
  } else if (info === 27) {
    need(bytes, pos, 8)
    const hi =
      ((bytes[pos]! << 24) >>> 0) +
      ((bytes[pos + 1]! << 16) | (bytes[pos + 2]! << 8) | bytes[pos + 3]!)
    const lo =
      ((bytes[pos + 4]! << 24) >>> 0) +
      ((bytes[pos + 5]! << 16) | (bytes[pos + 6]! << 8) | bytes[pos + 7]!)
    arg = hi * 2 ** 32 + lo
    pos += 8
  } else {
    // DAG-CBOR forbids indefinite lengths; 28-30 are reserved.
    throw new RangeError(`CBOR additional info ${info} not allowed`)
  }
  switch (major) {
    case 0:
    case 1:
    case 7:
      return pos
    case 2:
    case 3:
      need(bytes, pos, arg)
      return pos + arg
    case 4:
      for (let i = 0; i < arg; i++) pos = skipItem(bytes, pos, depth + 1)
      return pos
    case 5:
      for (let i = 0; i < arg * 2; i++) pos = skipItem(bytes, pos, depth + 1)
      return pos
    default:
      // major 6: tag, followed by one item
      return skipItem(bytes, pos, depth + 1)
  }
}

function need(bytes: Uint8Array, pos: number, n: number): void {
  if (pos + n > bytes.length) throw new RangeError('CBOR truncated')
}

/** Decode one DAG-CBOR item that must span `bytes` exactly. */
export function decodeDagCbor(bytes: Uint8Array): unknown {
  return decode(bytes)
}

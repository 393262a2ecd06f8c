import { hash } from 'node:crypto'

/** Why a record block could not be used. */
export type BlockProblem = 'missing-block' | 'cid-mismatch' | 'unsupported-cid'

const SHA256 = 0x12
const DAG_CBOR = 0x71

/** Read an unsigned LEB128 varint; returns [value, nextOffset]. */
function readVarint(bytes: Uint8Array, pos: number): [number, number] {
  let value = 0
  let shift = 0
  for (;;) {
    if (pos >= bytes.length) throw new RangeError('CAR varint truncated')
    const b = bytes[pos++]!
    value += (b & 0x7f) * 2 ** shift
    if ((b & 0x80) === 0) return [value, pos]
    shift += 7
    if (shift > 49) throw new RangeError('CAR varint too long')
  }
}

/** Byte length of the binary CID starting at `pos`. */
function cidLength(bytes: Uint8Array, pos: number): number {
  if (bytes[pos] === 0x12 && bytes[pos + 1] === 0x20) return 34 // CIDv0
  const [version, p1] = readVarint(bytes, pos)
  if (version !== 1) throw new RangeError(`CAR block CID version ${version} not supported`)
  const [, p2] = readVarint(bytes, p1) // codec
  const [, p3] = readVarint(bytes, p2) // multihash code
  const [digestLength, p4] = readVarint(bytes, p3)
  return p4 + digestLength - pos
}

/**
 * Find the blocks whose binary CIDs are `wanted` inside a CAR v1 file, without decoding or
 * hashing any other block (MST nodes, the commit). Returns the block data for each wanted CID,
 * by index (undefined when absent). Throws a RangeError when the CAR itself is malformed.
 */
export function findCarBlocks(
  car: Uint8Array,
  wanted: readonly Uint8Array[],
): Array<Uint8Array | undefined> {
  const found: Array<Uint8Array | undefined> = new Array(wanted.length)
  if (wanted.length === 0) return found
  let missing = wanted.length
  const [headerLength, afterVarint] = readVarint(car, 0)
  let pos = afterVarint + headerLength
  if (pos > car.length) throw new RangeError('CAR header truncated')
  while (pos < car.length) {
    let sectionLength: number
    ;[sectionLength, pos] = readVarint(car, pos)
    const end = pos + sectionLength
    if (end > car.length) throw new RangeError('CAR block truncated')
    const cidEnd = pos + cidLength(car, pos)
    if (cidEnd > end) throw new RangeError('CAR block CID truncated')
    for (let w = 0; w < wanted.length; w++) {
      if (found[w] === undefined && sameBytes(wanted[w]!, car, pos, cidEnd)) {
        found[w] = car.subarray(cidEnd, end)
        missing--
      }
    }
    if (missing === 0) break
    pos = end
  }
  return found
}

/** Whether `a` equals `b[start, end)`; compares from the end, where digests differ first. */
function sameBytes(a: Uint8Array, b: Uint8Array, start: number, end: number): boolean {
  const n = a.length
  if (n !== end - start) return false
  for (let i = n - 1; i >= 0; i--) if (a[i] !== b[start + i]) return false
  return true
}

/**
 * Check that `data` hashes to the binary CID `cidBytes` (CIDv1, dag-cbor, sha2-256: the only
 * kind a record may have). Returns the problem, or undefined when the block is good.
 */
export function verifyBlock(cidBytes: Uint8Array, data: Uint8Array): BlockProblem | undefined {
  // CIDv1 dag-cbor sha2-256: 0x01 0x71 0x12 0x20 <32 bytes>
  if (
    cidBytes.length !== 36 ||
    cidBytes[0] !== 0x01 ||
    cidBytes[1] !== DAG_CBOR ||
    cidBytes[2] !== SHA256 ||
    cidBytes[3] !== 0x20
  ) {
    return 'unsupported-cid'
  }
  const digest = hash('sha256', data, 'buffer')
  for (let i = 0; i < 32; i++) {
    if (digest[i] !== cidBytes[4 + i]) return 'cid-mismatch'
  }
  return undefined
}

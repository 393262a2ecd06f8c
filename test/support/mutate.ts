/**
 * Deterministic mutations of real firehose frames for fuzzing: bit flips, byte edits,
 * truncation, insertion, deletion, splices of two frames, overwritten CBOR heads and lengths.
 * The same seed gives the same mutations, so a failure can be replayed.
 */

/** A small seeded PRNG (mulberry32). */
export function prng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

export const MUTATIONS = [
  'bit-flip',
  'byte-set',
  'truncate',
  'insert',
  'delete',
  'splice',
  'cbor-head',
  'length-max',
  'zero-run',
  'header-only',
] as const

export type Mutation = (typeof MUTATIONS)[number]

/** CBOR heads that stress a decoder: huge lengths, reserved and indefinite forms, deep tags. */
const NASTY_HEADS = [
  0x1f, 0x3f, 0x5f, 0x7f, 0x9f, 0xbf, 0xff, 0x1c, 0x5b, 0x7b, 0x9b, 0xbb, 0xd8, 0xd9, 0xf7, 0xf9,
  0xfa, 0xfb,
]

/**
 * Mutate `frame` (never in place). `other` is a second frame for splices. Returns the bytes and
 * the mutation applied.
 */
export function mutateFrame(
  frame: Uint8Array,
  other: Uint8Array,
  rand: () => number,
): { kind: Mutation; bytes: Uint8Array } {
  const int = (n: number) => Math.floor(rand() * n)
  const kind = MUTATIONS[int(MUTATIONS.length)]!
  const b = Uint8Array.from(frame)
  // Favour the first bytes (header, field names, seq) as often as the rest.
  const pos = () => (rand() < 0.5 ? int(Math.min(b.length, 64)) : int(b.length))
  switch (kind) {
    case 'bit-flip': {
      const flips = 1 + int(8)
      for (let i = 0; i < flips; i++) b[pos()]! ^= 1 << int(8)
      return { kind, bytes: b }
    }
    case 'byte-set': {
      const edits = 1 + int(4)
      for (let i = 0; i < edits; i++) b[pos()] = int(256)
      return { kind, bytes: b }
    }
    case 'truncate':
      return { kind, bytes: b.subarray(0, int(b.length)) }
    case 'insert': {
      const at = pos()
      const extra = Uint8Array.from({ length: 1 + int(16) }, () => int(256))
      return { kind, bytes: Buffer.concat([b.subarray(0, at), extra, b.subarray(at)]) }
    }
    case 'delete': {
      const at = pos()
      const n = 1 + int(32)
      return { kind, bytes: Buffer.concat([b.subarray(0, at), b.subarray(at + n)]) }
    }
    case 'splice': {
      const at = int(b.length)
      const from = int(other.length)
      return { kind, bytes: Buffer.concat([b.subarray(0, at), other.subarray(from)]) }
    }
    case 'cbor-head':
      b[pos()] = NASTY_HEADS[int(NASTY_HEADS.length)]!
      return { kind, bytes: b }
    case 'length-max': {
      // A definite-length head claiming 2^32-1 (or 2^64-1) items or bytes.
      const at = pos()
      const major = [2, 3, 4, 5][int(4)]! << 5
      const wide = rand() < 0.5
      const head = wide
        ? [major | 27, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]
        : [major | 26, 0xff, 0xff, 0xff, 0xff]
      b.set(head.slice(0, b.length - at), at)
      return { kind, bytes: b }
    }
    case 'zero-run': {
      const at = pos()
      b.fill(0, at, at + 1 + int(256))
      return { kind, bytes: b }
    }
    case 'header-only': {
      // Keep only a prefix up to a random point inside the first 40 bytes, then random bytes.
      const keep = int(Math.min(40, b.length))
      const tail = Uint8Array.from({ length: int(64) }, () => int(256))
      return { kind, bytes: Buffer.concat([b.subarray(0, keep), tail]) }
    }
  }
}

import { createHash } from 'node:crypto'
import * as dagCbor from '@ipld/dag-cbor'
import { CID } from 'multiformats/cid'
import * as Digest from 'multiformats/hashes/digest'
import { cborItemLength } from '../../src/firehose/cbor.ts'

/** CIDv1 dag-cbor sha2-256 of `bytes`. */
export function cidOf(bytes: Uint8Array): CID {
  const digest = createHash('sha256').update(bytes).digest()
  return CID.createV1(0x71, Digest.create(0x12, digest))
}

export function concat(...parts: Uint8Array[]): Uint8Array {
  return new Uint8Array(Buffer.concat(parts))
}

function varint(n: number): Uint8Array {
  const out: number[] = []
  while (n >= 0x80) {
    out.push((n & 0x7f) | 0x80)
    n = Math.floor(n / 128)
  }
  out.push(n)
  return Uint8Array.from(out)
}

/** A CAR v1 file of the given blocks (first block as root). */
export function makeCar(blocks: Array<{ cid: CID; bytes: Uint8Array }>): Uint8Array {
  const header = dagCbor.encode({ version: 1, roots: blocks.length > 0 ? [blocks[0]!.cid] : [] })
  const parts = [varint(header.length), header]
  for (const b of blocks) {
    parts.push(varint(b.cid.bytes.length + b.bytes.length), b.cid.bytes, b.bytes)
  }
  return concat(...parts)
}

export function encodeFrame(header: unknown, body: unknown): Uint8Array {
  return concat(dagCbor.encode(header), dagCbor.encode(body))
}

export interface OpSpec {
  action: 'create' | 'update' | 'delete'
  path: string
  record?: Record<string, unknown>
  /** Leave the record block out of the CAR. */
  omitBlock?: boolean
  /** Put different bytes under the op's CID in the CAR. */
  corrupt?: boolean
}

/** A `#commit` frame with real CAR blocks for its records. */
export function commitFrame(opts: {
  seq: number
  repo: string
  ops: OpSpec[]
  time?: string
  rev?: string
}): Uint8Array {
  const blocks: Array<{ cid: CID; bytes: Uint8Array }> = []
  const commitBlock = dagCbor.encode({ did: opts.repo, version: 3, rev: opts.rev ?? '3lxyz' })
  blocks.push({ cid: cidOf(commitBlock), bytes: commitBlock })
  const ops = opts.ops.map((op) => {
    if (op.action === 'delete') return { action: 'delete', path: op.path, cid: null }
    const bytes = dagCbor.encode(op.record ?? { $type: op.path.split('/')[0] })
    const cid = cidOf(bytes)
    if (!op.omitBlock) {
      blocks.push({
        cid,
        bytes: op.corrupt ? dagCbor.encode({ tampered: true }) : bytes,
      })
    }
    return { action: op.action, path: op.path, cid }
  })
  return encodeFrame(
    { op: 1, t: '#commit' },
    {
      seq: opts.seq,
      repo: opts.repo,
      commit: blocks[0]!.cid,
      rev: opts.rev ?? '3lxyz',
      since: null,
      blocks: makeCar(blocks),
      ops,
      blobs: [],
      rebase: false,
      tooBig: false,
      time: opts.time ?? '2026-01-01T00:00:00.000Z',
    },
  )
}

/**
 * Re-encode a real frame with another seq (and optionally another repo DID), keeping its blocks:
 * builds long, distinct streams out of the real capture.
 */
export function reseqFrame(frame: Uint8Array, seq: number, didSuffix = ''): Uint8Array {
  const headerLength = cborItemLength(frame)
  const header = dagCbor.decode(frame.subarray(0, headerLength)) as Record<string, unknown>
  const body = dagCbor.decode(frame.subarray(headerLength)) as Record<string, unknown>
  body['seq'] = seq
  if (didSuffix !== '') {
    if (typeof body['repo'] === 'string') body['repo'] = body['repo'] + didSuffix
    if (typeof body['did'] === 'string') body['did'] = body['did'] + didSuffix
  }
  return encodeFrame(header, body)
}

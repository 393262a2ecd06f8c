import { readFileSync } from 'node:fs'
import { join } from 'node:path'

/** The real relay capture in shared/fixtures beside the repository. */
export const FIXTURE_DIR = join(
  import.meta.dirname,
  '..',
  '..',
  '..',
  'shared',
  'fixtures',
  'firehose-2026-07-04',
)

/** Frames of frames.bin: `[uint32 LE length][frame bytes]` each. */
export function loadFrames(): Buffer[] {
  const data = readFileSync(join(FIXTURE_DIR, 'frames.bin'))
  const frames: Buffer[] = []
  let pos = 0
  while (pos < data.length) {
    const len = data.readUInt32LE(pos)
    frames.push(data.subarray(pos + 4, pos + 4 + len))
    pos += 4 + len
  }
  return frames
}

export interface OracleEvent {
  did: string
  kind: 'commit' | 'identity' | 'account'
  commit?: {
    rev: string
    operation: 'create' | 'update' | 'delete'
    collection: string
    rkey: string
    record?: Record<string, unknown>
    cid?: string
  }
  identity?: { did: string; seq: number; time: string; handle?: string }
  account?: { did: string; seq: number; time: string; active: boolean; status?: string }
}

/** expected_v1.jsonl: the same events as an independent implementation produced them. */
export function loadOracle(): OracleEvent[] {
  return readFileSync(join(FIXTURE_DIR, 'expected_v1.jsonl'), 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as OracleEvent)
}

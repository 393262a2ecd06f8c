import { closeSync, existsSync, fstatSync, mkdirSync, openSync, readFileSync } from 'node:fs'
import { readSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { open } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { decodeFrame } from '../../src/firehose/frame.ts'
import { splitMessage } from '../../src/firehose/split.ts'
import { CorpusGenerator, GENERATOR_VERSION, SEQ_BASE, TIME_BASE_MS } from './generate.ts'

export const REPO_ROOT = resolve(import.meta.dirname, '..', '..')
export const CACHE_DIR = join(REPO_ROOT, '.cache', 'bench')
/** The real relay capture beside the repository. */
export const REAL_CAPTURE_DIR = join(REPO_ROOT, '..', 'shared', 'fixtures', 'firehose-2026-07-04')

/** What a generated corpus holds, written beside its frames. */
export interface CorpusMeta {
  generator: number
  seed: number
  frames: number
  ops: number
  events: number
  bytes: number
  medianFrameBytes: number
  /** Share of ops (per `action:collection`) and of frames (per message type). */
  mix: Record<string, number>
  generatedInSeconds: number
}

/** A corpus ready to serve: frames plus what each one is expected to produce. */
export interface Corpus {
  name: string
  frames: Buffer[]
  /** Events atkafka produces for each frame (decoded once at load). */
  events: Uint32Array
  ops: Uint32Array
  totalEvents: number
  totalOps: number
  totalBytes: number
  meta?: CorpusMeta
}

/**
 * `[uint32 LE length][frame]…`, the format of the real capture's frames.bin. With `maxBytes`,
 * only the whole frames within the file's first `maxBytes` bytes.
 */
export function readFramesFile(path: string, maxBytes = Infinity): Buffer[] {
  let data: Buffer
  if (Number.isFinite(maxBytes)) {
    const fd = openSync(path, 'r')
    try {
      data = Buffer.alloc(Math.min(fstatSync(fd).size, maxBytes))
      data = data.subarray(0, readSync(fd, data, 0, data.length, 0))
    } finally {
      closeSync(fd)
    }
  } else {
    data = readFileSync(path)
  }
  const frames: Buffer[] = []
  let pos = 0
  while (pos + 4 <= data.length) {
    const len = data.readUInt32LE(pos)
    if (pos + 4 + len > data.length) {
      if (Number.isFinite(maxBytes)) break
      throw new Error(`${path}: the frame at byte ${pos} is cut short`)
    }
    frames.push(data.subarray(pos + 4, pos + 4 + len))
    pos += 4 + len
  }
  return frames
}

export function corpusDir(seed: number, frames: number): string {
  return join(CACHE_DIR, `corpus-g${GENERATOR_VERSION}-seed${seed}-n${frames}`)
}

/**
 * Generate a corpus into the cache (`.cache/bench/corpus-g<version>-seed<seed>-n<frames>`),
 * unless it is there already. Returns its directory.
 */
export async function ensureCorpus(
  seed: number,
  frames: number,
  progress: (done: number) => void = () => {},
): Promise<string> {
  const dir = corpusDir(seed, frames)
  if (existsSync(join(dir, 'meta.json'))) return dir
  mkdirSync(CACHE_DIR, { recursive: true })
  const tmp = `${dir}.tmp-${process.pid}`
  rmSync(tmp, { recursive: true, force: true })
  mkdirSync(tmp)
  const started = performance.now()
  const gen = new CorpusGenerator(seed, frames)
  const out = await open(join(tmp, 'frames.bin'), 'w')
  const sizes: number[] = []
  const counts = new Map<string, number>()
  let ops = 0
  let events = 0
  let bytes = 0
  try {
    const len = Buffer.alloc(4)
    for (let i = 0; i < frames; i++) {
      const f = await gen.next()
      len.writeUInt32LE(f.bytes.length)
      await out.write(len)
      await out.write(f.bytes)
      sizes.push(f.bytes.length)
      bytes += f.bytes.length
      ops += f.ops
      events += f.events
      counts.set(f.kind, (counts.get(f.kind) ?? 0) + 1)
      for (const k of f.opKinds) counts.set(k, (counts.get(k) ?? 0) + 1)
      if ((i + 1) % 1000 === 0) progress(i + 1)
    }
  } finally {
    await out.close()
  }
  sizes.sort((a, b) => a - b)
  const mix: Record<string, number> = {}
  for (const [k, v] of [...counts].sort((a, b) => b[1] - a[1])) {
    const share = k.startsWith('#') ? v / frames : v / ops
    mix[k] = Math.round(share * 10000) / 100
  }
  const meta: CorpusMeta = {
    generator: GENERATOR_VERSION,
    seed,
    frames,
    ops,
    events,
    bytes,
    medianFrameBytes: sizes[sizes.length >> 1] ?? 0,
    mix,
    generatedInSeconds: Math.round((performance.now() - started) / 100) / 10,
  }
  writeFileSync(join(tmp, 'meta.json'), JSON.stringify(meta, null, 2) + '\n')
  rmSync(dir, { recursive: true, force: true })
  renameSync(tmp, dir)
  return dir
}

/** Count what atkafka produces per frame, with its own decoder (nothing filtered). */
function countEvents(frames: readonly Buffer[]): { events: Uint32Array; ops: Uint32Array } {
  const events = new Uint32Array(frames.length)
  const ops = new Uint32Array(frames.length)
  const keep = () => true
  frames.forEach((bytes, i) => {
    const msg = decodeFrame(bytes)
    if (msg.type === 'error') return
    if (msg.type === '#commit') ops[i] = msg.ops.length
    events[i] = splitMessage(msg, keep).events.length
  })
  return { events, ops }
}

function corpusFrom(name: string, frames: Buffer[], meta?: CorpusMeta): Corpus {
  const { events, ops } = countEvents(frames)
  let totalEvents = 0
  let totalOps = 0
  let totalBytes = 0
  for (let i = 0; i < frames.length; i++) {
    totalEvents += events[i]!
    totalOps += ops[i]!
    totalBytes += frames[i]!.length
  }
  return { name, frames, events, ops, totalEvents, totalOps, totalBytes, meta }
}

export function loadCorpus(dir: string): Corpus {
  const meta = JSON.parse(readFileSync(join(dir, 'meta.json'), 'utf8')) as CorpusMeta
  const corpus = corpusFrom(
    `synthetic seed ${meta.seed}, ${meta.frames} frames`,
    readFramesFile(join(dir, 'frames.bin')),
    meta,
  )
  if (corpus.totalEvents !== meta.events) {
    throw new Error(
      `corpus ${dir}: the decoder finds ${corpus.totalEvents} events, the generator wrote ${meta.events}`,
    )
  }
  return corpus
}

export function loadRealCapture(): Corpus {
  const frames = readFramesFile(join(REAL_CAPTURE_DIR, 'frames.bin'))
  return corpusFrom('real capture (150 frames)', frames)
}

export { SEQ_BASE, TIME_BASE_MS }

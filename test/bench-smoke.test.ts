import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { describe, it } from 'node:test'
import { lexToJson } from '@atproto/lex-json'
import { cborToLexRecord, readCar } from '@atproto/repo'
import { decodeAll } from '@atproto/lex-cbor'
import type { Cid } from '@atproto/lex-data'
import { CorpusGenerator, type GeneratedFrame } from '../bench/corpus/generate.ts'
import { FramePatcher, frameOfTime, seqOfFrame, timeOf } from '../bench/corpus/patch.ts'
import { tapEventsOf } from '../bench/corpus/tap-events.ts'
import { jetstreamEventsOf } from '../bench/jetstream-feed.ts'
import { parseJetstreamEvent } from '../src/jetstream/event.ts'
import { decodeFrame } from '../src/firehose/frame.ts'
import { splitMessage } from '../src/firehose/split.ts'
import { loadFrames } from './support/fixtures.ts'

// Correctness of the benchmark's corpus only; the benchmark itself (`npm run bench`) measures
// speed. No timing here.

const FRAMES = 400

async function generate(seed: number, n: number): Promise<GeneratedFrame[]> {
  const gen = new CorpusGenerator(seed, n)
  const out: GeneratedFrame[] = []
  for (let i = 0; i < n; i++) out.push(await gen.next())
  return out
}

function digest(frames: readonly GeneratedFrame[]): string {
  const h = createHash('sha256')
  for (const f of frames) h.update(f.bytes)
  return h.digest('hex')
}

type Obj = Record<string, unknown>

describe('bench corpus generator', () => {
  let corpus: GeneratedFrame[] = []

  it('is deterministic for a seed', async () => {
    corpus = await generate(7, FRAMES)
    const again = await generate(7, FRAMES)
    assert.equal(digest(again), digest(corpus))
    const other = await generate(8, 50)
    assert.notEqual(digest(other), digest(corpus.slice(0, 50)))
  })

  it('writes frames atkafka decodes into exactly the generated ops, none dropped', () => {
    const keep = () => true
    let ops = 0
    for (const [i, f] of corpus.entries()) {
      const msg = decodeFrame(f.bytes)
      assert.equal(msg.type, f.kind, `frame ${i}`)
      if (msg.type !== f.kind) continue
      assert.equal(msg.type === '#commit' ? msg.seq : (msg as { seq: number }).seq, f.seq)
      const result = splitMessage(msg, keep)
      assert.deepEqual(result.dropped, [], `frame ${i}`)
      assert.equal(result.events.length, f.events, `frame ${i}`)
      if (msg.type === '#commit') {
        assert.equal(msg.ops.length, f.ops)
        ops += f.ops
      }
    }
    assert.ok(ops >= FRAMES * 0.9, `${ops} ops`)
  })

  it('writes real Sync 1.1 commits: prevData, signed commit block, MST, records as @atproto/repo reads them', async () => {
    const keep = () => true
    let records = 0
    for (const f of corpus) {
      if (f.kind !== '#commit') continue
      const [, body] = [...decodeAll(f.bytes)] as [Obj, Obj]
      assert.ok(body['prevData'], 'prevData present')
      assert.equal(typeof body['since'], 'string')
      const car = await readCar(body['blocks'] as Uint8Array)
      const commit = car.blocks.get(car.roots[0]!)
      assert.ok(commit, 'commit block present')
      assert.ok(car.blocks.size > f.ops, 'MST blocks beside the records')
      const msg = decodeFrame(f.bytes)
      assert.equal(msg.type, '#commit')
      if (msg.type !== '#commit') continue
      const events = splitMessage(msg, keep).events
      for (const [i, op] of (body['ops'] as Obj[]).entries()) {
        const event = events[i]!
        assert.ok('operation' in event)
        if (op['action'] === 'delete') {
          assert.equal(event.operation.record, undefined)
          continue
        }
        const bytes = car.blocks.get(op['cid'] as Cid)
        assert.ok(bytes, 'record block present')
        assert.deepEqual(event.operation.record, lexToJson(cborToLexRecord(bytes)))
        records++
      }
    }
    assert.ok(records > 0)
  })

  it('has the firehose mix: mostly likes and follows, posts, deletes, identity/account', () => {
    const count = (p: (k: string) => boolean) => corpus.flatMap((f) => f.opKinds).filter(p).length
    const ops = corpus.reduce((s, f) => s + f.ops, 0)
    const likes = count((k) => k === 'create:app.bsky.feed.like') / ops
    assert.ok(likes > 0.3 && likes < 0.7, `likes ${likes}`)
    assert.ok(count((k) => k === 'create:app.bsky.feed.post') > 0)
    assert.ok(count((k) => k.startsWith('delete:')) > 0)
    assert.ok(corpus.some((f) => f.kind !== '#commit'))
  })

  it('patches seq and time so a corpus can be replayed with every frame unique', () => {
    for (const frames of [corpus.map((f) => Buffer.from(f.bytes)), loadFrames()]) {
      const patcher = new FramePatcher(frames)
      for (const g of [0, 1, frames.length - 1, frames.length, 3 * frames.length + 5]) {
        const msg = decodeFrame(patcher.frame(g))
        assert.ok('seq' in msg && 'time' in msg, `frame ${g}`)
        assert.equal(msg.seq, seqOfFrame(g))
        assert.equal(msg.time, timeOf(g))
        assert.equal(frameOfTime(msg.time), g)
      }
    }
  })

  it('turns frames into Tap events: one per op and per identity/account', async () => {
    const events = await tapEventsOf(corpus.map((f) => f.bytes))
    assert.equal(
      events.length,
      corpus.reduce((s, f) => s + f.events, 0),
    )
    const first = JSON.parse(`{"id":1,${events[0]!.body}`) as Obj
    assert.equal(first['id'], 1)
    assert.ok(first['type'] === 'record' || first['type'] === 'identity')
  })

  it('turns frames into Jetstream events that jetstream mode reads', async () => {
    const events = await jetstreamEventsOf(corpus.map((f) => f.bytes))
    assert.ok(events.length > 0)
    for (const e of events.slice(0, 200)) {
      const parsed = parseJetstreamEvent(`{"did":"${e.did}","time_us":1779719009132431,${e.rest}`)
      assert.ok(parsed.ok, e.rest)
    }
  })
})

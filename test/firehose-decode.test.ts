import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import * as dagCbor from '@ipld/dag-cbor'
import type { AtKafkaEvent } from '../src/events.ts'
import { compileCollectionFilter } from '../src/filter.ts'
import { FrameError, decodeFrame, type FirehoseMessage } from '../src/firehose/frame.ts'
import { splitMessage } from '../src/firehose/split.ts'
import { loadFrames, loadOracle } from './support/fixtures.ts'
import { commitFrame, encodeFrame } from './support/frames.ts'

const keepAll = () => true

function message(frame: Uint8Array): FirehoseMessage {
  const decoded = decodeFrame(frame)
  assert.notEqual(decoded.type, 'error')
  return decoded as FirehoseMessage
}

describe('real relay capture against the independent oracle', () => {
  const frames = loadFrames()
  const oracle = loadOracle()

  it('decodes every frame', () => {
    assert.equal(frames.length, 150)
    const types = frames.map((f) => decodeFrame(f).type)
    assert.equal(types.filter((t) => t === '#commit').length, 148)
    assert.equal(types.filter((t) => t === '#identity').length, 1)
    assert.equal(types.filter((t) => t === '#account').length, 1)
  })

  it('every commit op matches the oracle: record, collection, rkey, cid and action', () => {
    const ours: AtKafkaEvent[] = []
    for (const f of frames) {
      const r = splitMessage(message(f), keepAll)
      assert.deepEqual(r.dropped, [])
      ours.push(...r.events)
    }
    const ops = ours.filter((e) => 'operation' in e)
    const expected = oracle.filter((e) => e.kind === 'commit')
    assert.equal(ops.length, expected.length)
    assert.equal(ops.length, 150)
    // The oracle was captured from another consumer: match by did + path, not by position.
    const byKey = new Map(
      expected.map((e) => [`${e.did}/${e.commit!.collection}/${e.commit!.rkey}`, e]),
    )
    for (const e of ops) {
      if (!('operation' in e)) continue
      const op = e.operation
      const want = byKey.get(`${e.did}/${op.collection}/${op.rkey}`)
      assert.ok(want, `oracle has ${e.did}/${op.path}`)
      const c = want.commit!
      assert.equal(op.action, c.operation)
      assert.equal(op.collection, c.collection)
      assert.equal(op.rkey, c.rkey)
      assert.equal(op.path, `${c.collection}/${c.rkey}`)
      assert.equal(op.uri, `at://${e.did}/${c.collection}/${c.rkey}`)
      if (c.operation === 'delete') {
        assert.equal(op.cid, '')
        assert.equal('record' in op, false, 'deletes omit record')
      } else {
        assert.equal(op.cid, c.cid)
        assert.deepEqual(op.record, c.record)
      }
    }
    const counts = { create: 0, update: 0, delete: 0 }
    for (const e of ops) if ('operation' in e) counts[e.operation.action]++
    assert.deepEqual(counts, { create: 144, update: 2, delete: 4 })
  })

  it('identity and account events match the oracle and at-kafka shapes', () => {
    const events = frames.flatMap((f) => splitMessage(message(f), keepAll).events)
    const identity = events.find((e) => 'identity' in e)!
    const account = events.find((e) => 'account' in e)!
    const oi = oracle.find((e) => e.kind === 'identity')!.identity!
    const oa = oracle.find((e) => e.kind === 'account')!.account!
    assert.deepEqual(identity, {
      did: oi.did,
      timestamp: oi.time,
      eventMetadata: null,
      identity: { seq: oi.seq, handle: oi.handle ?? '' },
    })
    assert.deepEqual(account, {
      did: oa.did,
      timestamp: oa.time,
      eventMetadata: null,
      account: { active: oa.active, seq: oa.seq },
    })
    assert.deepEqual(Object.keys(identity), ['did', 'timestamp', 'eventMetadata', 'identity'])
  })

  it('collection filters skip ops before decoding and count them', () => {
    const keep = compileCollectionFilter({ watched: ['app.bsky.feed.*'], ignored: [] })
    let filtered = 0
    let kept = 0
    for (const f of frames) {
      const r = splitMessage(message(f), keep)
      filtered += r.filtered
      for (const e of r.events) {
        if ('operation' in e) {
          assert.match(e.operation.collection, /^app\.bsky\.feed\./)
          kept++
        }
      }
    }
    assert.equal(kept + filtered, 150)
    assert.ok(filtered > 0 && kept > 0)
  })
})

describe('hand-made frames', () => {
  const did = 'did:plc:testtesttesttesttesttest'

  it('splits a multi-op commit into one event per op, in order', () => {
    const frame = commitFrame({
      seq: 7,
      repo: did,
      ops: [
        {
          action: 'create',
          path: 'app.bsky.feed.post/a',
          record: { $type: 'app.bsky.feed.post', text: 'hi' },
        },
        {
          action: 'update',
          path: 'app.bsky.actor.profile/self',
          record: { $type: 'app.bsky.actor.profile' },
        },
        { action: 'delete', path: 'app.bsky.feed.like/b' },
      ],
    })
    const r = splitMessage(message(frame), keepAll)
    assert.deepEqual(r.dropped, [])
    assert.deepEqual(
      r.events.map((e) => ('operation' in e ? `${e.operation.action} ${e.operation.path}` : '')),
      [
        'create app.bsky.feed.post/a',
        'update app.bsky.actor.profile/self',
        'delete app.bsky.feed.like/b',
      ],
    )
    const create = r.events[0]!
    assert.ok('operation' in create)
    assert.deepEqual(create.operation.record, { $type: 'app.bsky.feed.post', text: 'hi' })
    assert.match(create.operation.cid, /^bafyrei/)
  })

  it('renders CIDs as $link and bytes as unpadded $bytes', () => {
    const frame = commitFrame({
      seq: 8,
      repo: did,
      ops: [
        {
          action: 'create',
          path: 'com.example.thing/x',
          record: { $type: 'com.example.thing', data: new Uint8Array([1, 2, 3, 4]) },
        },
      ],
    })
    const [e] = splitMessage(message(frame), keepAll).events
    assert.ok(e && 'operation' in e)
    assert.deepEqual(e.operation.record, { $type: 'com.example.thing', data: { $bytes: 'AQIDBA' } })
  })

  it('drops a record whose block does not hash to the op CID, and reports it', () => {
    const frame = commitFrame({
      seq: 9,
      repo: did,
      ops: [
        { action: 'create', path: 'app.bsky.feed.post/bad', corrupt: true },
        { action: 'create', path: 'app.bsky.feed.post/good', record: { text: 'fine' } },
      ],
    })
    const r = splitMessage(message(frame), keepAll)
    assert.equal(r.events.length, 1)
    assert.deepEqual(
      r.dropped.map((d) => [d.reason, d.path, d.seq]),
      [['cid-mismatch', 'app.bsky.feed.post/bad', 9]],
    )
  })

  it('reports a create whose block is missing from the CAR', () => {
    const frame = commitFrame({
      seq: 10,
      repo: did,
      ops: [{ action: 'create', path: 'app.bsky.feed.post/gone', omitBlock: true }],
    })
    const r = splitMessage(message(frame), keepAll)
    assert.equal(r.events.length, 0)
    assert.equal(r.dropped[0]?.reason, 'missing-block')
  })

  it('decodes #sync, #info, unknown types and error frames', () => {
    const sync = message(
      encodeFrame(
        { op: 1, t: '#sync' },
        { seq: 11, did, rev: '3abc', blocks: new Uint8Array(), time: '2026-01-01T00:00:00Z' },
      ),
    )
    assert.deepEqual(splitMessage(sync, keepAll).events, [
      {
        did,
        timestamp: '2026-01-01T00:00:00Z',
        eventMetadata: null,
        sync: { seq: 11, rev: '3abc' },
      },
    ])
    const info = message(encodeFrame({ op: 1, t: '#info' }, { name: 'OutdatedCursor' }))
    assert.deepEqual(splitMessage(info, keepAll).events, [
      { did: '', timestamp: '', eventMetadata: null, info: { name: 'OutdatedCursor' } },
    ])
    const unknown = message(encodeFrame({ op: 1, t: '#future' }, { seq: 12, x: 1 }))
    assert.deepEqual(unknown, { type: 'unknown', t: '#future', seq: 12 })
    assert.deepEqual(splitMessage(unknown, keepAll).events, [])
    assert.deepEqual(
      decodeFrame(
        encodeFrame({ op: -1 }, { error: 'FutureCursor', message: 'Cursor in the future.' }),
      ),
      { type: 'error', error: 'FutureCursor', message: 'Cursor in the future.' },
    )
    const account = message(
      encodeFrame(
        { op: 1, t: '#account' },
        { seq: 13, did, time: 't', active: false, status: 'takendown' },
      ),
    )
    assert.deepEqual(splitMessage(account, keepAll).events[0], {
      did,
      timestamp: 't',
      eventMetadata: null,
      account: { active: false, seq: 13, status: 'takendown' },
    })
  })

  it('rejects malformed frames with a typed reason', () => {
    const cases: Array<[Uint8Array, string]> = [
      [new Uint8Array(), 'empty-frame'],
      [Uint8Array.from([0xff, 0x00]), 'invalid-header'],
      [dagCbor.encode({ op: 1, t: '#commit' }), 'invalid-body'],
      [encodeFrame({ op: 1, t: '#commit' }, { seq: 1 }), 'invalid-body'],
      [encodeFrame({ op: 1, t: '#identity' }, { seq: -1, did, time: 't' }), 'invalid-body'],
      [encodeFrame({ op: 2, t: '#commit' }, {}), 'unknown-op'],
      [encodeFrame([1, 2], {}), 'invalid-header'],
    ]
    const real = loadFrames()[0]!
    cases.push([real.subarray(0, real.length - 10), 'invalid-body'])
    for (const [bytes, reason] of cases) {
      assert.throws(
        () => decodeFrame(bytes),
        (err: unknown) => err instanceof FrameError && err.reason === reason,
        `expected ${reason}`,
      )
    }
  })

  it('survives random corruption of real frames without throwing anything but FrameError', () => {
    const frames = loadFrames()
    let seed = 42
    const rand = () => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff
      return seed
    }
    for (let i = 0; i < 2000; i++) {
      const f = Uint8Array.from(frames[rand() % frames.length]!)
      for (let j = 0; j < 1 + (rand() % 4); j++) f[rand() % f.length] = rand() & 0xff
      try {
        const m = decodeFrame(f)
        if (m.type !== 'error') splitMessage(m, keepAll)
      } catch (err) {
        assert.ok(err instanceof FrameError, `unexpected ${String(err)}`)
      }
    }
  })
})

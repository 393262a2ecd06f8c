import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { AtKafkaEvent } from '../src/events.ts'
import { ospreyFormatter, plainFormatter } from '../src/format.ts'
import { SNOWFLAKE_EPOCH_MS, Snowflake, workerIdFromHostname } from '../src/snowflake.ts'

const op: AtKafkaEvent = {
  did: 'did:plc:abc',
  timestamp: '2026-07-04T14:38:07.517Z',
  eventMetadata: null,
  operation: {
    action: 'create',
    collection: 'app.bsky.feed.post',
    rkey: '3k',
    uri: 'at://did:plc:abc/app.bsky.feed.post/3k',
    cid: 'bafyrei',
    path: 'app.bsky.feed.post/3k',
    record: { text: 'hi' },
  },
}

describe('formats', () => {
  it('plain JSON keeps at-kafka key order', () => {
    assert.equal(
      plainFormatter()(op),
      '{"did":"did:plc:abc","timestamp":"2026-07-04T14:38:07.517Z","eventMetadata":null,"operation":{"action":"create","collection":"app.bsky.feed.post","rkey":"3k","uri":"at://did:plc:abc/app.bsky.feed.post/3k","cid":"bafyrei","path":"app.bsky.feed.post/3k","record":{"text":"hi"}}}',
    )
  })

  it('Osprey envelope: exact integer action_id, UTC send_time with Z', () => {
    const ids = new Snowflake(5, () => Date.UTC(2090, 0, 1))
    const now = new Date(Date.UTC(2026, 6, 4, 14, 38, 9, 5))
    const text = ospreyFormatter(ids, () => now)(op)
    const id = /"action_id":(\d+),/.exec(text)?.[1]
    assert.ok(id !== undefined)
    assert.ok(BigInt(id) > BigInt(Number.MAX_SAFE_INTEGER), 'exceeds 2^53 and still exact')
    const parsed = JSON.parse(text) as { data: Record<string, unknown>; send_time: string }
    assert.deepEqual(Object.keys(parsed), ['data', 'send_time'])
    assert.deepEqual(Object.keys(parsed.data), [
      'action_name',
      'action_id',
      'data',
      'timestamp',
      'secret_data',
      'encoding',
    ])
    assert.equal(parsed.data.action_name, 'operation#create')
    assert.deepEqual(parsed.data.data, op)
    assert.equal(parsed.data.timestamp, op.timestamp)
    assert.deepEqual(parsed.data.secret_data, {})
    assert.equal(parsed.data.encoding, 'UTF8')
    assert.equal(parsed.send_time, '2026-07-04T14:38:09.005Z')
  })

  it('action names for every kind', () => {
    const f = ospreyFormatter(new Snowflake(0))
    const name = (e: AtKafkaEvent) =>
      (JSON.parse(f(e)) as { data: { action_name: string } }).data.action_name
    const base = { did: 'did:plc:x', timestamp: 't', eventMetadata: null }
    assert.equal(name({ ...base, account: { active: true, seq: 1 } }), 'account')
    assert.equal(name({ ...base, identity: { seq: 1, handle: '' } }), 'identity')
    assert.equal(name({ ...base, sync: { seq: 1, rev: 'r' } }), 'sync')
    assert.equal(name({ ...base, did: '', info: { name: 'OutdatedCursor' } }), 'info')
    assert.equal(
      name({
        ...base,
        operation: { ...(op as { operation: object }).operation, action: 'delete' },
      } as AtKafkaEvent),
      'operation#delete',
    )
  })
})

describe('snowflake ids', () => {
  it('are unique and increasing within a process, even past 4096 per millisecond', () => {
    const ids = new Snowflake(1, () => SNOWFLAKE_EPOCH_MS + 1000)
    let last = -1n
    const seen = new Set<bigint>()
    for (let i = 0; i < 20000; i++) {
      const id = ids.next()
      assert.ok(id > last)
      last = id
      seen.add(id)
    }
    assert.equal(seen.size, 20000)
  })

  it('differ across workers and across a restart', () => {
    const t = SNOWFLAKE_EPOCH_MS + 5000
    const a = new Snowflake(1, () => t).next()
    const b = new Snowflake(2, () => t).next()
    assert.notEqual(a, b)
    const later = new Snowflake(1, () => t + 1).next()
    assert.ok(later > a)
    assert.ok(a < 2n ** 63n)
  })

  it('rejects worker ids out of range and derives a stable one from the host name', () => {
    assert.throws(() => new Snowflake(1024))
    assert.throws(() => new Snowflake(-1))
    assert.equal(workerIdFromHostname('host-a'), workerIdFromHostname('host-a'))
    assert.ok(workerIdFromHostname('host-a') <= 1023)
  })
})

import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { Values } from '../src/config/config.ts'
import { resolveOptions } from '../src/config/resolve.ts'
import { ConfigError } from '../src/errors.ts'
import { tapConfig } from '../src/tap/config.ts'
import { ackFrame, parseTapEvent } from '../src/tap/event.ts'
import { createdAtMs, recordTimestamp, tidTimeMs } from '../src/tap/timestamp.ts'
import { validateEvent } from './support/schema.ts'

// Frames as the real Tap (indigo cmd/tap) sent them to a client of /channel.
const DID = 'did:plc:aze5rvvbgvoldj6mmpt6wdws'
const BACKFILLED_POST = `{"id":3,"type":"record","record":{"live":false,"did":"${DID}","rev":"3n2waowfhss2d","collection":"app.bsky.feed.post","rkey":"3n2waow7u4s2d","action":"create","record":{"$type":"app.bsky.feed.post","createdAt":"2026-11-22T18:29:52.285Z","text":"hello one"},"cid":"bafyreibw36djysw5jgawca4aphpv6useo24d7oas4vvdbdazj2flyx2zru"}}`
const PROFILE = `{"id":2,"type":"record","record":{"live":false,"did":"${DID}","rev":"3n2waowfhss2d","collection":"app.bsky.actor.profile","rkey":"self","action":"create","record":{"$type":"app.bsky.actor.profile","displayName":"Alice"},"cid":"bafyreih3fl4ddihebc5fk7lbx4gg56jtiqpfxhabbgrbteacb6alqej7me"}}`
const LIVE_DELETE = `{"id":5,"type":"record","record":{"live":true,"did":"${DID}","rev":"3n2waozkzss2d","collection":"app.bsky.feed.post","rkey":"3n2waow7u4s2d","action":"delete"}}`
const UNDECODABLE = `{"id":6,"type":"record","record":{"live":true,"did":"${DID}","rev":"3n2waozlv5s2d","collection":"com.example.weird","rkey":"3n2waozlqbk2d","action":"create","cid":"bafyreih4jqi7ban6ipspup4xxet3mj22oexn7qxiyqihcuj3urqhjaclye"}}`
const IDENTITY = `{"id":9,"type":"identity","identity":{"did":"${DID}","handle":"handle.invalid","is_active":false,"status":"deactivated"}}`

const NOW = new Date('2026-11-22T20:00:00.000Z')
const now = () => NOW

describe('Tap event parsing', () => {
  it('a backfilled record becomes a plain operation with live and rev', () => {
    const r = parseTapEvent(BACKFILLED_POST, now)
    assert.ok(r.ok)
    assert.equal(r.id, 3)
    assert.equal(r.live, false)
    validateEvent(r.event)
    assert.equal(
      JSON.stringify(r.event),
      `{"did":"${DID}","timestamp":"2026-11-22T18:29:52.285Z","eventMetadata":null,"operation":{"action":"create","collection":"app.bsky.feed.post","rkey":"3n2waow7u4s2d","uri":"at://${DID}/app.bsky.feed.post/3n2waow7u4s2d","cid":"bafyreibw36djysw5jgawca4aphpv6useo24d7oas4vvdbdazj2flyx2zru","path":"app.bsky.feed.post/3n2waow7u4s2d","record":{"$type":"app.bsky.feed.post","createdAt":"2026-11-22T18:29:52.285Z","text":"hello one"},"live":false,"rev":"3n2waowfhss2d"}}`,
    )
  })

  it('a record without createdAt or TID rkey gets the current time', () => {
    const r = parseTapEvent(PROFILE, now)
    assert.ok(r.ok)
    assert.equal(r.event.timestamp, NOW.toISOString())
  })

  it('a delete has cid "" and no record, and its time comes from the rkey', () => {
    const r = parseTapEvent(LIVE_DELETE, now)
    assert.ok(r.ok && 'operation' in r.event)
    validateEvent(r.event)
    assert.equal(r.live, true)
    assert.equal(r.event.operation.cid, '')
    assert.equal('record' in r.event.operation, false)
    const t = Date.parse(r.event.timestamp)
    assert.ok(Math.abs(t - Date.parse('2026-11-22T18:29:52.285Z')) < 1000, r.event.timestamp)
  })

  it('an identity event keeps handle, is_active and status', () => {
    const r = parseTapEvent(IDENTITY, now)
    assert.ok(r.ok)
    validateEvent(r.event)
    assert.deepEqual(r.event, {
      did: DID,
      timestamp: NOW.toISOString(),
      eventMetadata: null,
      identity: { seq: 9, handle: 'handle.invalid', isActive: false, status: 'deactivated' },
    })
  })

  it('a create Tap could not decode is a problem that still carries its id', () => {
    const r = parseTapEvent(UNDECODABLE, now)
    assert.equal(r.ok, false)
    if (r.ok) return
    assert.equal(r.id, 6)
    assert.equal(r.reason, 'invalid-record')
    assert.equal(r.did, DID)
  })

  it('malformed frames: reasons, and the id whenever it can be read', () => {
    const cases: Array<[string, string, number | undefined]> = [
      ['not json', 'invalid-json', undefined],
      ['[1,2]', 'invalid-json', undefined],
      ['{"type":"record"}', 'invalid-id', undefined],
      ['{"id":-1,"type":"record"}', 'invalid-id', undefined],
      ['{"id":1.5,"type":"record"}', 'invalid-id', undefined],
      ['{"id":7,"type":"record","record":null}', 'invalid-event', 7],
      ['{"id":7,"type":"record","record":{"did":"x"}}', 'invalid-event', 7],
      [BACKFILLED_POST.replace('"action":"create"', '"action":"upsert"'), 'invalid-event', 3],
      [BACKFILLED_POST.replace('"live":false', '"live":"no"'), 'invalid-event', 3],
      [BACKFILLED_POST.replace(/"cid":"[^"]*"/, '"cid":""'), 'invalid-event', 3],
      [BACKFILLED_POST.replace('"rkey":"3n2waow7u4s2d"', '"rkey":"a/b"'), 'invalid-event', 3],
      [IDENTITY.replace('"is_active":false', '"is_active":0'), 'invalid-event', 9],
      [IDENTITY.replace(`"did":"${DID}"`, '"did":"alice"'), 'invalid-event', 9],
      ['{"id":8,"type":"account","account":{"did":"did:plc:x"}}', 'unknown-type', 8],
      ['{"id":8}', 'unknown-type', 8],
    ]
    for (const [text, reason, id] of cases) {
      const r = parseTapEvent(text, now)
      assert.equal(r.ok, false, text)
      if (r.ok) continue
      assert.equal(r.reason, reason, text)
      assert.equal(r.id, id, text)
    }
  })

  it('the ack is exactly {"type":"ack","id":N}', () => {
    assert.equal(ackFrame(42), '{"type":"ack","id":42}')
    assert.deepEqual(JSON.parse(ackFrame(42)), { type: 'ack', id: 42 })
  })
})

describe('Tap timestamps', () => {
  it('createdAt: RFC 3339 forms, normalised to UTC milliseconds', () => {
    assert.equal(createdAtMs('2024-05-01T12:00:00Z'), Date.UTC(2024, 4, 1, 12))
    assert.equal(createdAtMs('2024-05-01T12:00:00.123456Z'), Date.UTC(2024, 4, 1, 12, 0, 0, 123))
    assert.equal(createdAtMs('2024-05-01T14:00:00+02:00'), Date.UTC(2024, 4, 1, 12))
    assert.equal(createdAtMs('2024-05-01T14:00:00+0200'), Date.UTC(2024, 4, 1, 12))
    assert.equal(createdAtMs('2024-05-01 12:00'), Date.UTC(2024, 4, 1, 12), 'no zone means UTC')
    assert.equal(createdAtMs('2024-02-29T00:00:00Z'), Date.UTC(2024, 1, 29))
    for (const bad of [
      'yesterday',
      '2023-02-29T00:00:00Z',
      '2024-13-01T00:00:00Z',
      '2024-04-31T00:00:00Z',
      '2024-05-01T25:00:00Z',
      '2024-05-01',
      42,
      null,
    ]) {
      assert.equal(createdAtMs(bad), undefined, String(bad))
    }
  })

  it('TID record keys give their creation time', () => {
    const t = tidTimeMs('3n2waow7u4s2d')
    assert.ok(t !== undefined)
    assert.ok(Math.abs(t - Date.parse('2026-11-22T18:29:52.285Z')) < 1000)
    assert.equal(tidTimeMs('self'), undefined)
    assert.equal(tidTimeMs('kn2waow7u4s2d'), undefined, 'top bit set')
  })

  it('order of preference: createdAt, then the rkey TID, then now', () => {
    const tid = '3n2waow7u4s2d'
    const tidIso = new Date(tidTimeMs(tid)!).toISOString()
    assert.equal(
      recordTimestamp({ createdAt: '2020-01-01T00:00:00Z' }, tid, now),
      '2020-01-01T00:00:00.000Z',
    )
    assert.equal(recordTimestamp({ createdAt: 'garbage' }, tid, now), tidIso)
    assert.equal(recordTimestamp({ createdAt: '0000-01-01T00:00:00Z' }, tid, now), tidIso)
    assert.equal(recordTimestamp(undefined, tid, now), tidIso)
    assert.equal(recordTimestamp({}, 'self', now), NOW.toISOString())
  })
})

describe('Tap config', () => {
  const tap = (cli: Record<string, unknown>, env: Record<string, string> = {}) =>
    tapConfig(new Values(resolveOptions('tap', cli, { ATKAFKA_STDOUT: 'true', ...env })))

  it("at-kafka's env vars and defaults", () => {
    const c = tap({})
    assert.equal(c.tapHost, 'ws://localhost:2480')
    assert.equal(c.disableAcks, false)
    assert.equal(c.workers, 10)
    assert.equal(c.adminPassword, undefined)
    const e = tap(
      {},
      {
        ATKAFKA_TAP_HOST: 'https://tap.example.com/channel',
        ATKAFKA_DISABLE_ACKS: 'true',
        ATKAFKA_TAP_WORKERS: '4',
        ATKAFKA_TAP_ADMIN_PASSWORD: 's3cret',
        ATKAFKA_OSPREY_COMPATIBLE: 'true',
      },
    )
    assert.equal(e.tapHost, 'wss://tap.example.com')
    assert.equal(e.disableAcks, true)
    assert.equal(e.workers, 4)
    assert.equal(e.adminPassword, 's3cret')
    assert.equal(e.format.osprey, true)
    assert.equal(tap({ tapHost: 'http://127.0.0.1:9/prefix/' }).tapHost, 'ws://127.0.0.1:9/prefix')
  })

  it('bad values are refused with the flag named', () => {
    assert.throws(() => tap({ tapWorkers: '0' }), /--tap-workers/)
    assert.throws(() => tap({ tapHost: 'ftp://x' }), /--tap-host/)
    assert.throws(() => tap({ tapHost: 'ws://admin:pw@x' }), ConfigError)
    assert.throws(
      () => tap({ tapAdminPassword: 'hunter2', tapWorkers: 'x' }),
      (err: Error) => !err.message.includes('hunter2'),
    )
  })
})

describe('record timestamp fast path', () => {
  it('gives what the full parse gives, for canonical and near-canonical createdAt values', () => {
    const values = [
      '2024-05-01T12:00:00.000Z',
      '2024-02-29T23:59:59.999Z',
      '2023-02-29T12:00:00.000Z',
      '2023-02-31T12:00:00.000Z',
      '2024-05-01T24:00:00.000Z',
      '2024-05-01T12:60:00.000Z',
      '2024-05-01T12:00:60.000Z',
      '2024-13-01T12:00:00.000Z',
      '0000-01-01T00:00:00.000Z',
      '2024-05-01T12:00:00.000z',
      '2024-05-01 12:00:00.000Z',
    ]
    const min = Date.parse('0001-01-01T00:00:00.000Z')
    for (const createdAt of values) {
      const full = createdAtMs(createdAt)
      const want =
        full === undefined || full < min
          ? recordTimestamp(undefined, '3n2waow7u4s2d')
          : new Date(full).toISOString()
      assert.equal(recordTimestamp({ createdAt }, '3n2waow7u4s2d'), want, createdAt)
    }
  })
})

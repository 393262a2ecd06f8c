import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { Values } from '../src/config/config.ts'
import { resolveOptions } from '../src/config/resolve.ts'
import { ConfigError } from '../src/errors.ts'
import {
  jetstreamConfig,
  normalizeJetstreamHost,
  wantedCollectionsOf,
} from '../src/jetstream/config.ts'
import { parseJetstreamEvent, timestampOf } from '../src/jetstream/event.ts'
import { RecentEvents } from '../src/jetstream/recent.ts'
import { REWIND_US, jetstreamUrl } from '../src/jetstream/source.ts'
import { validateEvent } from './support/schema.ts'

// Events as Jetstream's own golden files show them (its internal/subscribe/testdata).
const DID = 'did:plc:mcc5yghbk7tixqryac2yxku7'
const LIKE = `{"did":"${DID}","time_us":1779719009132431,"kind":"commit","commit":{"rev":"3mmoojp7vgo2g","operation":"create","collection":"app.bsky.feed.like","rkey":"3mmoojp7etg2g","record":{"$type":"app.bsky.feed.like","createdAt":"2026-05-25T14:23:28.778Z","subject":{"cid":"bafyreiaxf7tgbfydx3465sckitq6v564thxe2wwydbi7cwxbxvgssje3em","uri":"at://did:plc:vfnmgxg2yscfliemmcxzyfyh/app.bsky.feed.post/3mmoodizfwc2j"}},"cid":"bafyreidqpc7si3dbimffi64lz3xsx2qt45ip7rpna2qpslcddp23itjjzm"}}`
const DELETE = `{"did":"${DID}","time_us":1779719009153272,"kind":"commit","commit":{"rev":"3mmoojpae7c2e","operation":"delete","collection":"org.hypercerts.claim.activity","rkey":"3mmontn3gnc2e"}}`
const IDENTITY = `{"did":"${DID}","time_us":1779719010267528,"kind":"identity","identity":{"did":"${DID}","seq":30340180350,"time":"2026-05-25T14:23:29.950Z"}}`
const ACCOUNT = `{"did":"${DID}","time_us":1779719010267529,"kind":"account","account":{"did":"${DID}","active":false,"status":"deactivated","seq":30340180351,"time":"2026-05-25T14:23:29.951Z"}}`

const config = (env: Record<string, string>, cli: Record<string, unknown> = {}) =>
  jetstreamConfig(new Values(resolveOptions('jetstream', cli, { ATKAFKA_STDOUT: 'true', ...env })))

describe('Jetstream events', () => {
  it('a commit becomes the operation relay mode produces', () => {
    const r = parseJetstreamEvent(LIKE)
    assert.ok(r.ok)
    assert.equal(r.timeUs, 1779719009132431)
    validateEvent(r.event)
    assert.equal(
      JSON.stringify(r.event),
      `{"did":"${DID}","timestamp":"2026-05-25T14:23:29.132Z","eventMetadata":null,"operation":{"action":"create","collection":"app.bsky.feed.like","rkey":"3mmoojp7etg2g","uri":"at://${DID}/app.bsky.feed.like/3mmoojp7etg2g","cid":"bafyreidqpc7si3dbimffi64lz3xsx2qt45ip7rpna2qpslcddp23itjjzm","path":"app.bsky.feed.like/3mmoojp7etg2g","record":{"$type":"app.bsky.feed.like","createdAt":"2026-05-25T14:23:28.778Z","subject":{"cid":"bafyreiaxf7tgbfydx3465sckitq6v564thxe2wwydbi7cwxbxvgssje3em","uri":"at://did:plc:vfnmgxg2yscfliemmcxzyfyh/app.bsky.feed.post/3mmoodizfwc2j"}}}}`,
    )
  })

  it('a delete has cid "" and no record', () => {
    const r = parseJetstreamEvent(DELETE)
    assert.ok(r.ok)
    validateEvent(r.event)
    assert.ok('operation' in r.event)
    assert.equal(r.event.operation.cid, '')
    assert.equal('record' in r.event.operation, false)
  })

  it('identity and account keep the relay seq and time; a missing handle is ""', () => {
    const i = parseJetstreamEvent(IDENTITY)
    assert.ok(i.ok)
    validateEvent(i.event)
    assert.equal(
      JSON.stringify(i.event),
      `{"did":"${DID}","timestamp":"2026-05-25T14:23:29.950Z","eventMetadata":null,"identity":{"seq":30340180350,"handle":""}}`,
    )
    const a = parseJetstreamEvent(ACCOUNT)
    assert.ok(a.ok)
    validateEvent(a.event)
    assert.equal(
      JSON.stringify(a.event),
      `{"did":"${DID}","timestamp":"2026-05-25T14:23:29.951Z","eventMetadata":null,"account":{"active":false,"seq":30340180351,"status":"deactivated"}}`,
    )
    assert.notEqual(i.key, a.key)
  })

  it('bad input: a reason for each, with what could be read', () => {
    const cases: Array<[string, string]> = [
      ['not json', 'invalid-json'],
      ['[1,2]', 'invalid-json'],
      ['{"time_us":1779719009132431,"kind":"commit"}', 'invalid-event'],
      [`{"did":"${DID}","time_us":"soon","kind":"commit"}`, 'invalid-event'],
      [`{"did":"${DID}","time_us":1779719009132431,"kind":"sync","sync":{}}`, 'unknown-kind'],
      [`{"did":"${DID}","time_us":1779719009132431,"kind":"commit"}`, 'invalid-event'],
      [
        `{"did":"${DID}","time_us":1779719009132431,"kind":"commit","commit":{"rev":"r","operation":"upsert","collection":"a.b.c","rkey":"k"}}`,
        'invalid-op',
      ],
      [
        `{"did":"${DID}","time_us":1779719009132431,"kind":"commit","commit":{"rev":"r","operation":"create","collection":"a.b.c","rkey":"k","record":{}}}`,
        'invalid-op',
      ],
      [
        `{"did":"${DID}","time_us":1779719009132431,"kind":"commit","commit":{"rev":"r","operation":"create","collection":"a.b.c","rkey":"k","cid":"bafy","record":[1]}}`,
        'invalid-record',
      ],
      [
        `{"did":"${DID}","time_us":1779719009132431,"kind":"identity","identity":{}}`,
        'invalid-event',
      ],
    ]
    for (const [text, reason] of cases) {
      const r = parseJetstreamEvent(text)
      assert.equal(r.ok, false, text)
      assert.equal(!r.ok && r.reason, reason, text)
    }
    const unknown = parseJetstreamEvent(cases[4]![0])
    assert.ok(!unknown.ok && unknown.did === DID && unknown.timeUs === 1779719009132431)
  })

  it('time_us as a timestamp: milliseconds, UTC', () => {
    assert.equal(timestampOf(1779719009132999), '2026-05-25T14:23:29.132Z')
  })

  it('recent events: a replay is recognised, old keys are forgotten', () => {
    const recent = new RecentEvents(1000)
    assert.equal(recent.check('a', 1000), false)
    assert.equal(recent.check('b', 1500), false)
    assert.equal(recent.check('a', 1000), true)
    assert.equal(recent.check('c', 2600), false)
    assert.equal(recent.size, 1, 'a and b are older than the window')
  })
})

describe('Jetstream config', () => {
  it('defaults, env vars, and the host normalised', () => {
    const c = config({})
    assert.equal(c.jetstreamHost, 'wss://jetstream2.us-east.bsky.network')
    assert.equal(c.cursorFile, 'atkafka-jetstream-cursor.json')
    assert.deepEqual(c.wantedCollections, [])
    assert.deepEqual(c.wantedDids, [])
    const d = config({
      ATKAFKA_JETSTREAM_HOST: 'https://jetstream.example.com/subscribe?cursor=1',
      ATKAFKA_WATCHED_COLLECTIONS: 'app.bsky.feed.post,app.bsky.graph.*,com.example',
      ATKAFKA_WATCHED_DIDS: `${DID},${DID}`,
      ATKAFKA_CURSOR: '1779719009132431',
    })
    assert.equal(d.jetstreamHost, 'wss://jetstream.example.com')
    assert.deepEqual(d.wantedCollections, [
      'app.bsky.feed.post',
      'app.bsky.graph.*',
      'com.example.*',
    ])
    assert.deepEqual(d.wantedDids, [DID])
    assert.equal(d.cursor, 1779719009132431)
    assert.equal(normalizeJetstreamHost('ws://localhost:6008/'), 'ws://localhost:6008')
  })

  it("Jetstream's limits: more than 100 collections or 10,000 DIDs is an error", () => {
    const collections = Array.from({ length: 101 }, (_, i) => `com.example.c${i}`)
    assert.equal(wantedCollectionsOf(collections.slice(0, 100)).length, 100)
    assert.deepEqual(wantedCollectionsOf(['app.bsky.feed.post', '*']), [], '* is everything')
    assert.throws(
      () => config({ ATKAFKA_WATCHED_COLLECTIONS: collections.join(',') }),
      (e: unknown) =>
        e instanceof ConfigError && /101 collections; Jetstream takes at most 100/.test(e.message),
    )
    const dids = Array.from({ length: 10001 }, (_, i) => `did:plc:${String(i).padStart(24, 'z')}`)
    assert.equal(
      config({ ATKAFKA_WATCHED_DIDS: dids.slice(0, 10000).join(',') }).wantedDids.length,
      10000,
    )
    assert.throws(
      () => config({ ATKAFKA_WATCHED_DIDS: dids.join(',') }),
      (e: unknown) =>
        e instanceof ConfigError && /10001 DIDs; Jetstream takes at most 10000/.test(e.message),
    )
  })

  it('bad values are refused with the flag named', () => {
    for (const [env, pattern] of [
      [{ ATKAFKA_WATCHED_DIDS: 'alice.test' }, /--watched-dids/],
      [{ ATKAFKA_WATCHED_COLLECTIONS: 'not a collection' }, /--watched-collections/],
      [{ ATKAFKA_CURSOR: '12' }, /--cursor .*time_us/],
      [{ ATKAFKA_JETSTREAM_HOST: 'ws://u:p@host' }, /credentials/],
    ] as const) {
      assert.throws(
        () => config(env),
        (e: unknown) => e instanceof ConfigError && pattern.test(e.message),
      )
    }
  })

  it('the subscription URL: filters in the query, or in an options_update when long', () => {
    const short = jetstreamUrl({
      host: 'ws://127.0.0.1:1',
      wantedCollections: ['app.bsky.feed.post', 'app.bsky.graph.*'],
      wantedDids: [DID],
      cursor: 1779719009132431 - REWIND_US,
    })
    assert.equal(
      short.url,
      `ws://127.0.0.1:1/subscribe?cursor=1779719006132431&wantedCollections=app.bsky.feed.post&wantedCollections=app.bsky.graph.*&wantedDids=${encodeURIComponent(DID)}`,
    )
    assert.equal(short.hello, undefined)
    const dids = Array.from({ length: 500 }, (_, i) => `did:plc:${String(i).padStart(24, 'a')}`)
    const long = jetstreamUrl({
      host: 'ws://127.0.0.1:1',
      wantedCollections: ['app.bsky.feed.post'],
      wantedDids: dids,
      cursor: undefined,
    })
    assert.equal(long.url, 'ws://127.0.0.1:1/subscribe?requireHello=true')
    assert.deepEqual(JSON.parse(long.hello!), {
      type: 'options_update',
      payload: {
        wantedCollections: ['app.bsky.feed.post'],
        wantedDids: dids,
        maxMessageSizeBytes: 0,
      },
    })
  })
})

// The headers of --kafka-headers: what each kind of event carries, checked against the schema.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { pino } from 'pino'
import { Registry } from 'prom-client'
import type { AtKafkaEvent } from '../src/events.ts'
import { createMetrics } from '../src/metrics.ts'
import { subjectDidOf, toMessage } from '../src/ozone/page.ts'
import { Router, headersOf, metaOf } from '../src/output.ts'
import { KafkaSink } from '../src/sink/kafka.ts'
import { FakeKafka } from './support/fake-producer.ts'
import { validateHeaders } from './support/schema.ts'

const post: AtKafkaEvent = {
  did: 'did:plc:abc',
  timestamp: '2024-11-20T10:00:00.000Z',
  eventMetadata: null,
  operation: {
    action: 'create',
    collection: 'app.bsky.feed.post',
    rkey: '3k',
    uri: 'at://did:plc:abc/app.bsky.feed.post/3k',
    cid: 'bafy',
    path: 'app.bsky.feed.post/3k',
  },
}
const identity: AtKafkaEvent = {
  did: 'did:plc:xyz',
  timestamp: '2024-11-20T10:00:01.000Z',
  eventMetadata: null,
  identity: { seq: 7, handle: 'x.test' },
}
const info: AtKafkaEvent = {
  did: '',
  timestamp: '',
  eventMetadata: null,
  info: { name: 'OutdatedCursor' },
}

describe('message headers', () => {
  it('operations: kind, did, collection, action, cursor, time', () => {
    assert.deepEqual(headersOf(metaOf(post, '31527015471')), {
      'atkafka-kind': 'operation',
      'atkafka-did': 'did:plc:abc',
      'atkafka-collection': 'app.bsky.feed.post',
      'atkafka-action': 'create',
      'atkafka-cursor': '31527015471',
      'atkafka-time': '2024-11-20T10:00:00.000Z',
    })
  })

  it('other events: no collection or action; what is unknown is left out', () => {
    assert.deepEqual(headersOf(metaOf(identity, '8')), {
      'atkafka-kind': 'identity',
      'atkafka-did': 'did:plc:xyz',
      'atkafka-cursor': '8',
      'atkafka-time': '2024-11-20T10:00:01.000Z',
    })
    assert.deepEqual(headersOf(metaOf(info, undefined)), { 'atkafka-kind': 'info' })
    for (const e of [post, identity, info]) validateHeaders(headersOf(metaOf(e, '1')))
  })

  it('Ozone events: kind ozone, the subject DID, the event id as cursor, createdAt as time', () => {
    const view = {
      id: 42,
      createdAt: '2024-11-20T10:00:02.000Z',
      event: { $type: 'tools.ozone.moderation.defs#modEventTakedown' },
      subject: {
        $type: 'com.atproto.repo.strongRef',
        uri: 'at://did:plc:sub/app.bsky.feed.post/1',
      },
    }
    const m = toMessage(view)
    assert.equal(m.key, '42')
    assert.equal(m.value, JSON.stringify(view))
    assert.deepEqual(headersOf(m.meta), {
      'atkafka-kind': 'ozone',
      'atkafka-did': 'did:plc:sub',
      'atkafka-cursor': '42',
      'atkafka-time': '2024-11-20T10:00:02.000Z',
    })
    validateHeaders(headersOf(m.meta))
    assert.equal(subjectDidOf({ id: 1, createdAt: '', subject: { did: 'did:plc:a' } }), 'did:plc:a')
    assert.equal(subjectDidOf({ id: 1, createdAt: '' }), '')
  })

  it('the router adds headers only when asked', () => {
    const plain = new Router({ headers: false })
    assert.equal(plain.needsMeta, false)
    assert.deepEqual(plain.message('k', 'v', undefined), { key: 'k', value: 'v' })
    const withHeaders = new Router({ headers: true })
    assert.equal(withHeaders.needsMeta, true)
    const m = withHeaders.message('did:plc:abc', '{}', metaOf(post, '1'))
    assert.equal(m.headers?.['atkafka-kind'], 'operation')
  })
})

describe('Kafka sink with headers', () => {
  it('hands each message its headers, and counts them in the request size', async () => {
    const kafka = new FakeKafka({})
    const sink = new KafkaSink({
      client: kafka,
      topic: 'events',
      partitions: 8,
      replicationFactor: 1,
      logger: pino({ level: 'silent' }),
      metrics: createMetrics(new Registry()),
      onFatal: (err) => assert.fail(err),
      lingerMs: 0,
      // Two messages of 10 bytes each fit, not with their headers.
      maxBatchBytes: 40,
    })
    await sink.start(AbortSignal.timeout(5000))
    const router = new Router({ headers: true })
    let done = 0
    sink.write(
      [post, identity].map((e) => router.message(e.did, '0123456789', metaOf(e, '5'))),
      () => done++,
    )
    await sink.flush(AbortSignal.timeout(5000))
    await sink.close()
    assert.equal(done, 1)
    const stored = kafka.records('events')
    assert.deepEqual(stored.map((r) => r.headers?.['atkafka-kind']).sort(), [
      'identity',
      'operation',
    ])
    assert.ok(stored.every((r) => r.headers?.['atkafka-cursor'] === '5'))
    assert.equal(kafka.calls.length, 2, 'headers count towards the request size limit')
  })
})

// Topic templates, topic-name sanitising, the router, and the sink's handling of several
// topics (creation on first use, --no-create-topics, acknowledgement across topics) on the
// Producer port with a fake producer.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { pino } from 'pino'
import { Registry } from 'prom-client'
import { Values, relayConfig } from '../src/config/config.ts'
import { resolveOptions } from '../src/config/resolve.ts'
import { ConfigError } from '../src/errors.ts'
import { labelsConfig } from '../src/labels/config.ts'
import type { AtKafkaEvent } from '../src/events.ts'
import { createMetrics } from '../src/metrics.ts'
import { Router, metaOf } from '../src/output.ts'
import { KafkaFatalError, KafkaSink, type KafkaSinkOptions } from '../src/sink/kafka.ts'
import { ProduceError } from '../src/sink/producer.ts'
import type { OutMessage } from '../src/sink/sink.ts'
import { TopicTemplate, sanitizeTopic } from '../src/sink/topic-template.ts'
import { FakeKafka } from './support/fake-producer.ts'

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

describe('topic templates', () => {
  it('renders {kind} and {collection}; {collection} is the kind on events that are not operations', () => {
    const t = TopicTemplate.parse('atproto.{collection}')
    assert.equal(t.fixed, undefined)
    assert.equal(t.render('operation', 'app.bsky.feed.post'), 'atproto.app.bsky.feed.post')
    assert.equal(t.render('identity'), 'atproto.identity')
    assert.equal(t.render('info', ''), 'atproto.info')
    const k = TopicTemplate.parse('{kind}-{collection}_x')
    assert.equal(k.render('operation', 'app.bsky.feed.like'), 'operation-app.bsky.feed.like_x')
    assert.equal(k.render('label'), 'label-label_x')
  })

  it('a plain topic name is one fixed topic, even when it reads like a placeholder', () => {
    for (const name of ['events', 'collection', 'kind', 'a.b_c-D9']) {
      const t = TopicTemplate.parse(name)
      assert.equal(t.fixed, name)
      assert.equal(t.render('operation', 'app.bsky.feed.post'), name)
    }
  })

  it('refuses unknown placeholders, stray braces and illegal fixed parts as config errors', () => {
    const cases: Array<[string, RegExp]> = [
      ['atproto.{did}', /unknown placeholder \{did\} \(known: \{kind\}, \{collection\}\)/],
      ['atproto.{Collection}', /unknown placeholder \{Collection\}/],
      ['atproto.{}', /unknown placeholder \{\}/],
      ['atproto.{collection', /unmatched brace/],
      ['atproto.collection}', /unmatched brace/],
      ['at proto.{collection}', /expected a Kafka topic name/],
      ['events/x', /expected a Kafka topic name/],
      ['..', /expected a Kafka topic name/],
      ['', /expected a Kafka topic name/],
      ['x'.repeat(250), /expected a Kafka topic name/],
    ]
    for (const [text, message] of cases) {
      assert.throws(
        () => TopicTemplate.parse(text, '--output-topic (ATKAFKA_OUTPUT_TOPIC)'),
        (err: Error) => {
          assert.ok(err instanceof ConfigError, text)
          assert.match(err.message, /--output-topic \(ATKAFKA_OUTPUT_TOPIC\)/)
          assert.match(err.message, message, text)
          return true
        },
      )
    }
  })

  it('characters Kafka forbids in a rendered name become _, and names are cut to 249', () => {
    assert.equal(sanitizeTopic('app.bsky.feed.post'), 'app.bsky.feed.post')
    assert.equal(sanitizeTopic('com.example/é x:y#z'), 'com.example___x_y_z')
    assert.equal(sanitizeTopic('a'.repeat(300)), 'a'.repeat(249))
    assert.equal(sanitizeTopic(''), '_')
    assert.equal(sanitizeTopic('.'), '_')
    assert.equal(sanitizeTopic('..'), '_')
    const t = TopicTemplate.parse('{collection}')
    assert.equal(t.render('operation', 'weird collection!'), 'weird_collection_')
    assert.equal(t.render('operation', '..'), '_')
    assert.equal(t.render('operation', 'x'.repeat(400)).length, 249)
  })
})

describe('routing options', () => {
  const kafka = { ATKAFKA_BOOTSTRAP_SERVERS: 'k:9092' }
  const relay = (cli: Record<string, unknown>, env: Record<string, string> = {}) =>
    relayConfig(new Values(resolveOptions('relay', cli, { ...kafka, ...env })))

  it('--output-topic template, --no-create-topics and ATKAFKA_CREATE_TOPICS', () => {
    const c = relay({ outputTopic: 'atproto.{collection}' })
    assert.ok(c.output.kind === 'kafka')
    assert.equal(c.output.topic, 'atproto.{collection}')
    assert.equal(c.output.topicTemplate.fixed, undefined)
    assert.equal(c.output.createTopics, true)
    const off = relay({ outputTopic: 'events', createTopics: false })
    assert.ok(off.output.kind === 'kafka' && !off.output.createTopics)
    const env = relay({ outputTopic: 'events' }, { ATKAFKA_CREATE_TOPICS: 'false' })
    assert.ok(env.output.kind === 'kafka' && !env.output.createTopics)
    assert.throws(
      () => relay({ outputTopic: 'atproto.{nsid}' }),
      /invalid value "atproto\.\{nsid\}" for --output-topic \(ATKAFKA_OUTPUT_TOPIC\): unknown placeholder \{nsid\}/,
    )
  })

  it('Osprey reads one topic: a template with --osprey-compatible is a config error', () => {
    assert.throws(
      () => relay({ outputTopic: 'atproto.{kind}', ospreyCompatible: true }),
      (err: Error) =>
        err instanceof ConfigError &&
        /"atproto\.\{kind\}" is a template, but Osprey reads one topic/.test(err.message),
    )
    const labels = (cli: Record<string, unknown>) =>
      labelsConfig(
        new Values(resolveOptions('labels', { ...cli, labelerHost: 'wss://l.test' }, kafka)),
      )
    assert.throws(
      () => labels({ outputTopic: '{kind}', ospreyCompatible: true }),
      /Osprey reads one topic/,
    )
    assert.equal(relay({ outputTopic: 'osprey', ospreyCompatible: true }).format.osprey, true)
  })
})

describe('the router', () => {
  it('puts each message in the topic of its event', () => {
    const plain = new Router({ topic: TopicTemplate.parse('events'), headers: false })
    assert.equal(plain.needsMeta, false)
    assert.deepEqual(plain.message('k', 'v', undefined), { key: 'k', value: 'v', topic: 'events' })
    const routed = new Router({
      topic: TopicTemplate.parse('atproto.{collection}'),
      headers: false,
    })
    assert.equal(routed.needsMeta, true)
    assert.equal(routed.message('k', '{}', metaOf(post, '1')).topic, 'atproto.app.bsky.feed.post')
    assert.equal(routed.message('k', '{}', metaOf(identity, '1')).topic, 'atproto.identity')
    assert.equal(routed.message('k', '{}', metaOf(info, undefined)).topic, 'atproto.info')
    assert.equal(routed.message('k', '{}', metaOf(post, '1')).headers, undefined)
  })
})

function makeSink(kafka: FakeKafka, overrides: Partial<KafkaSinkOptions> = {}) {
  const fatal: Error[] = []
  const sink = new KafkaSink({
    client: kafka,
    partitions: 8,
    replicationFactor: 1,
    logger: pino({ level: 'silent' }),
    metrics: createMetrics(new Registry()),
    onFatal: (err) => fatal.push(err),
    lingerMs: 0,
    retryBaseMs: 1,
    ...overrides,
  })
  return { sink, fatal }
}

/** `n` messages over `topics` and 10 keys, values numbered in order. */
function routedMessages(n: number, topics: readonly string[]): OutMessage[] {
  return Array.from({ length: n }, (_, i) => ({
    key: `did:plc:k${i % 10}`,
    value: JSON.stringify({ n: i }),
    topic: topics[i % topics.length]!,
    headers: { 'atkafka-kind': 'operation' },
  }))
}

describe('Kafka sink with several topics', () => {
  it('creates each topic on first use, once; every message in its topic, in order per key; units done only when every topic acknowledged', async () => {
    const topics = ['atproto.a', 'atproto.b', 'atproto.c']
    const kafka = new FakeKafka({
      delayMs: () => Math.random() * 3,
      // The first request to each producer fails after storing half: retried whole.
      fail: (call, attempt) =>
        attempt === 0 && call.records.length > 1
          ? { error: new ProduceError('retriable', 'NOT_LEADER'), written: 1 }
          : undefined,
    })
    const { sink, fatal } = makeSink(kafka, { producers: 3, maxBatchMessages: 9 })
    await sink.start(AbortSignal.timeout(5000))
    assert.equal(kafka.topics.size, 0, 'no topic known before the first message')
    const units = Array.from({ length: 30 }, (_, u) =>
      routedMessages(6, topics).map((m, i) => ({
        ...m,
        value: JSON.stringify({ n: u * 6 + i }),
      })),
    )
    const done: number[] = []
    units.forEach((unit, i) => sink.write(unit, () => done.push(i)))
    await sink.flush(AbortSignal.timeout(10_000))
    await sink.close()
    assert.deepEqual(fatal, [])
    assert.equal(done.length, 30)
    assert.deepEqual([...kafka.topics].sort(), topics)
    const all = units.flat()
    for (const topic of topics) {
      const got = kafka.records(topic)
      assert.equal(got.length, all.filter((m) => m.topic === topic).length, topic)
      assert.ok(got.every((r) => r.topic === topic && r.headers?.['atkafka-kind'] === 'operation'))
      const byKey = new Map<string, number[]>()
      for (const r of got) {
        byKey.set(r.key, [...(byKey.get(r.key) ?? []), (JSON.parse(r.value) as { n: number }).n])
      }
      for (const ns of byKey.values())
        assert.deepEqual(
          ns,
          [...ns].sort((a, b) => a - b),
        )
    }
    assert.ok(
      kafka.calls.some((c) => new Set(c.records.map((r) => r.topic)).size > 1),
      'requests carry several topics',
    )
  })

  it('a unit spread over two topics is not done while one topic has not acknowledged', async () => {
    let hold = true
    const kafka = new FakeKafka({
      fail: (call) =>
        hold && call.records.some((r) => r.topic === 'slow')
          ? { error: new ProduceError('retriable', 'REQUEST_TIMED_OUT') }
          : undefined,
    })
    const { sink } = makeSink(kafka, { producers: 2 })
    await sink.start(AbortSignal.timeout(5000))
    let done = 0
    sink.write(
      [
        { key: 'did:plc:a', value: '1', topic: 'fast' },
        { key: 'did:plc:b', value: '2', topic: 'slow' },
      ],
      () => done++,
    )
    await new Promise((r) => setTimeout(r, 50))
    assert.equal(kafka.records('fast').length, 1)
    assert.equal(done, 0, 'not done while "slow" has not acknowledged')
    hold = false
    await sink.flush(AbortSignal.timeout(10_000))
    assert.equal(done, 1)
    await sink.close()
  })

  it('--no-create-topics: a missing topic is a fatal error naming it; an existing one is used', async () => {
    const kafka = new FakeKafka({})
    kafka.topics.add('atproto.present')
    const { sink, fatal } = makeSink(kafka, { createTopics: false })
    await sink.start(AbortSignal.timeout(5000))
    let done = 0
    sink.write([{ key: 'did:plc:a', value: '1', topic: 'atproto.present' }], () => done++)
    await sink.flush(AbortSignal.timeout(5000))
    assert.equal(done, 1)
    sink.write([{ key: 'did:plc:a', value: '2', topic: 'atproto.missing' }], () => done++)
    await sink.flush(AbortSignal.timeout(5000))
    assert.equal(done, 1)
    assert.equal(fatal.length, 1)
    assert.ok(fatal[0] instanceof KafkaFatalError)
    assert.match(fatal[0].message, /Kafka topic "atproto\.missing" does not exist/)
    assert.match(fatal[0].message, /--no-create-topics/)
    assert.deepEqual([...kafka.topics], ['atproto.present'], 'nothing created')
    await sink.close()

    // The one topic of a plain --output-topic is checked at start.
    const { sink: fixed } = makeSink(new FakeKafka({}), { topic: 'events', createTopics: false })
    await assert.rejects(
      fixed.start(AbortSignal.timeout(5000)),
      /Kafka topic "events" does not exist/,
    )
    await fixed.close()
  })

  it('a topic deleted while running: after repeated failures it is created again, or with creation off the sink stops naming it', async () => {
    for (const create of [true, false]) {
      const kafka: FakeKafka = new FakeKafka({
        fail: (call) =>
          call.records.some((r) => !kafka.topics.has(r.topic))
            ? { error: new ProduceError('retriable', 'UNKNOWN_TOPIC_OR_PARTITION') }
            : undefined,
      })
      const { sink, fatal } = makeSink(kafka, { createTopics: create })
      await sink.start(AbortSignal.timeout(5000))
      kafka.topics.add('t')
      let done = 0
      sink.write([{ key: 'did:plc:a', value: '1', topic: 't' }], () => done++)
      await sink.flush(AbortSignal.timeout(5000))
      kafka.topics.delete('t')
      sink.write([{ key: 'did:plc:a', value: '2', topic: 't' }], () => done++)
      await sink.flush(AbortSignal.timeout(10_000))
      await sink.close()
      if (create) {
        assert.deepEqual(fatal, [])
        assert.equal(done, 2)
        assert.ok(kafka.topics.has('t'), 'created again')
        assert.deepEqual(
          kafka.records('t').map((r) => r.value),
          ['1', '2'],
        )
      } else {
        assert.equal(done, 1)
        assert.equal(fatal.length, 1)
        assert.match(fatal[0]!.message, /Kafka topic "t" does not exist/)
      }
    }
  })
})

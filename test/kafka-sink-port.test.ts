// The Kafka sink's own logic (lanes, batching, retries, halving, in-flight bound, acknowledgement
// of whole units) on the Producer port, against a fake producer.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { pino } from 'pino'
import { Registry } from 'prom-client'
import { createMetrics } from '../src/metrics.ts'
import { KafkaFatalError, KafkaSink, type KafkaSinkOptions } from '../src/sink/kafka.ts'
import type { Kafka } from 'kafkajs'
import { KafkaJsClient, unansweredPartitions } from '../src/sink/kafkajs-producer.ts'
import { ProduceError } from '../src/sink/producer.ts'
import { murmur2 } from '../src/sink/partitioner.ts'
import type { OutMessage } from '../src/sink/sink.ts'
import { FakeKafka, FakeKafkaJs } from './support/fake-producer.ts'
import { metricValue } from './support/atkafka.ts'

const TOPIC = 'events'

function makeSink(kafka: FakeKafka, overrides: Partial<KafkaSinkOptions> = {}) {
  const registry = new Registry()
  const fatal: Error[] = []
  const sink = new KafkaSink({
    client: kafka,
    topic: TOPIC,
    partitions: 8,
    replicationFactor: 1,
    logger: pino({ level: 'silent' }),
    metrics: createMetrics(registry),
    onFatal: (err) => fatal.push(err),
    lingerMs: 0,
    retryBaseMs: 1,
    ...overrides,
  })
  return { sink, registry, fatal }
}

/** `units` units of `size` messages, keys spread over `keys` DIDs, values numbered in order. */
function makeUnits(units: number, size: number, keys = 20): OutMessage[][] {
  let n = 0
  return Array.from({ length: units }, () =>
    Array.from({ length: size }, () => {
      const i = n++
      return { key: `did:plc:k${i % keys}`, value: JSON.stringify({ n: i }) }
    }),
  )
}

/** Asserts every message is stored once, in order per key. */
function assertStoredInOrder(kafka: FakeKafka, units: OutMessage[][]): void {
  const sent = units.flat()
  const got = kafka.records(TOPIC)
  assert.equal(got.length, sent.length, 'every message stored exactly once')
  const byKey = new Map<string, number[]>()
  for (const r of got) {
    byKey.set(r.key, [...(byKey.get(r.key) ?? []), (JSON.parse(r.value) as { n: number }).n])
  }
  for (const [key, ns] of byKey) {
    assert.deepEqual(
      ns,
      [...ns].sort((a, b) => a - b),
      `order of ${key}`,
    )
  }
}

async function run(sink: KafkaSink, units: OutMessage[][], before = false) {
  const done: number[] = []
  const write = () => units.forEach((u, i) => sink.write(u, () => done.push(i)))
  if (before) write()
  await sink.start(AbortSignal.timeout(5000))
  if (!before) write()
  await sink.flush(AbortSignal.timeout(20_000))
  await sink.close()
  return done
}

describe('Kafka sink on the Producer port', () => {
  it('producers acknowledging out of order: per-key order kept, each unit done once, one request in flight per producer', async () => {
    const kafka = new FakeKafka({ delayMs: () => Math.random() * 4 })
    const { sink } = makeSink(kafka, { producers: 4, maxBatchMessages: 7 })
    const units = makeUnits(200, 5)
    const done = await run(sink, units)
    assert.deepEqual(
      [...done].sort((a, b) => a - b),
      units.map((_, i) => i),
    )
    assert.equal(sink.pending, 0)
    assertStoredInOrder(kafka, units)
    assert.equal(kafka.maxInFlightPerProducer, 1)
    assert.equal(kafka.producersCreated, 4)
    assert.ok(new Set(kafka.calls.map((c) => c.producer)).size === 4, 'all producers used')
    for (const call of kafka.calls) {
      const lanes = new Set(call.records.map((r) => r.key))
      for (const key of lanes) {
        const owners = new Set(
          kafka.calls.filter((c) => c.records.some((r) => r.key === key)).map((c) => c.producer),
        )
        assert.equal(owners.size, 1, `${key} always goes to one producer`)
      }
    }
    assert.ok(kafka.closed, 'client closed')
  })

  it('a unit is done only when every message of it is acknowledged, across producers', async () => {
    let release: (() => void) | undefined
    const gate = new Promise<void>((r) => (release = r))
    const kafka = new FakeKafka({})
    const { sink } = makeSink(kafka, { producers: 2 })
    await sink.start(AbortSignal.timeout(5000))
    // Producer 1 is slow: hold its first request until released.
    kafka.behaviour.delayMs = (call) => (call.producer === 1 && release !== undefined ? 50 : 0)
    let done = 0
    const unit = makeUnits(1, 20)[0]!
    sink.write(unit, () => done++)
    await new Promise((r) => setTimeout(r, 20))
    assert.equal(done, 0, 'not done while one producer has not acknowledged')
    release!()
    await gate
    await sink.flush(AbortSignal.timeout(5000))
    assert.equal(done, 1)
    await sink.close()
  })

  it('a request that partly succeeded and failed is sent again whole: nothing lost, nothing twice, order kept', async () => {
    const kafka = new FakeKafka({
      fail: (call, attempt) =>
        attempt < 3 && call.records.length > 1
          ? {
              error: new ProduceError('retriable', 'NOT_LEADER_OR_FOLLOWER'),
              written: call.records.length >> 1,
            }
          : undefined,
    })
    const { sink, registry } = makeSink(kafka, { producers: 2, maxBatchMessages: 16 })
    const units = makeUnits(50, 4)
    const done = await run(sink, units)
    assert.equal(done.length, 50)
    assertStoredInOrder(kafka, units)
    const text = await registry.metrics()
    assert.ok(metricValue(text, 'atkafka_produce_retries') > 0)
    assert.equal(metricValue(text, 'atkafka_produced_events', { status: 'ok' }), 200)
    assert.ok(kafka.producersCreated > 2, 'a producer failing again and again is replaced')
  })

  it('a request some partitions acknowledged before it failed: only the rest is sent again, nothing twice, order kept', async () => {
    const kafka = new FakeKafka({
      fail: (_call, attempt) =>
        attempt === 0
          ? {
              error: new ProduceError('retriable', 'REQUEST_TIMED_OUT'),
              partitionsWritten: (p: number) => p % 2 === 0,
            }
          : undefined,
    })
    const { sink, registry } = makeSink(kafka, { maxBatchMessages: 40 })
    const units = makeUnits(20, 10)
    const done = await run(sink, units, true)
    assert.equal(done.length, 20)
    assertStoredInOrder(kafka, units)
    // Each failed request (200 records, 40 a request) is followed by one of its odd partitions' records.
    const retried = kafka.calls.filter((c) =>
      c.records.every((r) => kafka.partitionOf(r) % 2 === 1),
    )
    assert.ok(retried.length >= 5, 'the rest of each failed request sent alone')
    const text = await registry.metrics()
    assert.equal(metricValue(text, 'atkafka_produced_events', { status: 'ok' }), 200)
  })

  it('a batch refused as too large is halved until it fits; a single message refused is dropped with a metric, its unit still done', async () => {
    const big = 'x'.repeat(1000)
    const kafka = new FakeKafka({
      fail: (call) =>
        call.records.length > 4 || call.records.some((r) => r.value.length > 500)
          ? { error: new ProduceError('too-large', 'MESSAGE_TOO_LARGE') }
          : undefined,
    })
    const { sink, registry } = makeSink(kafka, { maxBatchMessages: 64 })
    const units = makeUnits(10, 5)
    units[3]![2] = { key: units[3]![2]!.key, value: big }
    const done = await run(sink, units, true)
    assert.equal(done.length, 10, 'every unit done, the one with the dropped message too')
    const stored = kafka.records(TOPIC)
    assert.equal(stored.length, 49)
    assert.ok(!stored.some((r) => r.value === big))
    assert.ok(kafka.calls.every((c) => c.records.length <= 64))
    const text = await registry.metrics()
    assert.equal(metricValue(text, 'atkafka_dropped_events', { reason: 'too-large' }), 1)
    assert.equal(metricValue(text, 'atkafka_produced_events', { status: 'error' }), 1)
    assert.equal(metricValue(text, 'atkafka_produced_events', { status: 'ok' }), 49)
    const order = new Map<string, number[]>()
    for (const r of stored) {
      if (r.value === big) continue
      order.set(r.key, [...(order.get(r.key) ?? []), (JSON.parse(r.value) as { n: number }).n])
    }
    for (const ns of order.values())
      assert.deepEqual(
        ns,
        [...ns].sort((a, b) => a - b),
      )
  })

  it('a fatal error on send stops the sink: onFatal with a KafkaFatalError, no retry, flush returns', async () => {
    const kafka = new FakeKafka({
      fail: () => ({
        error: new ProduceError(
          'fatal',
          'Kafka refused the request (TOPIC_AUTHORIZATION_FAILED): no',
        ),
      }),
    })
    const { sink, fatal, registry } = makeSink(kafka)
    let done = 0
    await sink.start(AbortSignal.timeout(5000))
    sink.write(makeUnits(1, 3)[0]!, () => done++)
    await sink.flush(AbortSignal.timeout(5000))
    assert.equal(done, 0, 'nothing acknowledged')
    assert.equal(fatal.length, 1)
    assert.ok(fatal[0] instanceof KafkaFatalError)
    assert.match(fatal[0].message, /TOPIC_AUTHORIZATION_FAILED/)
    assert.equal(kafka.calls.length, 1, 'not retried')
    assert.equal(metricValue(await registry.metrics(), 'atkafka_produce_retries'), 0)
    assert.equal(sink.isReady(), false)
    await sink.close()
  })

  it('a fatal error while starting rejects start at once; a retriable one is retried', async () => {
    let failures = 2
    const kafka = new FakeKafka({
      ensureTopicError: () =>
        failures-- > 0 ? new ProduceError('retriable', 'connection refused') : undefined,
    })
    const { sink } = makeSink(kafka)
    await sink.start(AbortSignal.timeout(10_000))
    assert.ok(sink.isReady())
    await sink.close()

    const refused = new FakeKafka({
      ensureTopicError: () => new ProduceError('fatal', 'Kafka rejected the SASL credentials'),
    })
    const { sink: sink2 } = makeSink(refused)
    await assert.rejects(sink2.start(AbortSignal.timeout(5000)), (err: Error) => {
      assert.ok(err instanceof KafkaFatalError)
      assert.match(err.message, /SASL/)
      return true
    })
    await sink2.close()
  })

  it('a single failure its retry fixes (a leader moved) leaves the sink ready', async () => {
    let sends = 0
    const kafka = new FakeKafka({
      fail: (_call, attempt) =>
        attempt === 0
          ? { error: new ProduceError('retriable', 'NOT_LEADER_OR_FOLLOWER') }
          : undefined,
      // The retry takes a while: readiness is sampled meanwhile.
      delayMs: () => (sends++ > 0 ? 60 : 0),
    })
    const { sink, registry } = makeSink(kafka, { retryBaseMs: 5 })
    await sink.start(AbortSignal.timeout(5000))
    let done = 0
    sink.write(makeUnits(1, 3)[0]!, () => done++)
    const samples: boolean[] = []
    const deadline = Date.now() + 5000
    while (done === 0 && Date.now() < deadline) {
      samples.push(sink.isReady())
      await new Promise((r) => setTimeout(r, 5))
    }
    assert.ok(kafka.calls.length >= 2, 'the batch was retried')
    assert.ok(samples.length > 5)
    assert.deepEqual([...new Set(samples)], [true], 'ready all along')
    assert.equal(metricValue(await registry.metrics(), 'atkafka_produce_retries'), 1)
    await sink.flush(AbortSignal.timeout(5000))
    await sink.close()
  })

  it('a request that hung 5 s and then failed keeps the sink not ready while it is retried', async () => {
    let sends = 0
    const kafka = new FakeKafka({
      fail: (_call, attempt) =>
        attempt === 0 ? { error: new ProduceError('retriable', 'connection closed') } : undefined,
      delayMs: () => (sends++ === 0 ? 5200 : 300),
    })
    const { sink } = makeSink(kafka, { retryBaseMs: 5 })
    await sink.start(AbortSignal.timeout(5000))
    let done = 0
    sink.write(makeUnits(1, 3)[0]!, () => done++)
    await new Promise((r) => setTimeout(r, 5100))
    assert.equal(sink.isReady(), false, 'hung')
    await new Promise((r) => setTimeout(r, 250))
    assert.equal(done, 0)
    assert.equal(sink.isReady(), false, 'failed after hanging, retry under way')
    await sink.flush(AbortSignal.timeout(5000))
    assert.equal(done, 1)
    assert.ok(sink.isReady())
    await sink.close()
  })

  it('retriable failures: not ready while failing, ready again after', async () => {
    let failing = true
    const kafka = new FakeKafka({
      fail: () => (failing ? { error: new ProduceError('retriable', 'broker down') } : undefined),
    })
    const { sink } = makeSink(kafka, { retryBaseMs: 5 })
    await sink.start(AbortSignal.timeout(5000))
    let done = 0
    sink.write(makeUnits(1, 3)[0]!, () => done++)
    await new Promise((r) => setTimeout(r, 30))
    assert.equal(sink.isReady(), false)
    assert.equal(done, 0)
    failing = false
    await sink.flush(AbortSignal.timeout(20_000))
    assert.equal(done, 1)
    assert.ok(sink.isReady())
    await sink.close()
  })
})

describe('KafkaJS adapter: a send KafkaJS resolves without answering every partition', () => {
  it('unansweredPartitions names the partitions without an answer and the records of the others', () => {
    const records = makeUnits(1, 40)[0]!.map((m) => ({ topic: TOPIC, ...m }))
    const part = (key: string) => (murmur2(key) & 0x7fffffff) % 8
    const results = [0, 1, 2, 4, 5, 6, 7].map((p) => ({ topicName: TOPIC, partition: p }))
    const { missing, acknowledged } = unansweredPartitions(records, results, () => 8)
    assert.deepEqual(missing, [`${TOPIC}/3`])
    assert.deepEqual(
      acknowledged,
      records.flatMap((r, i) => (part(r.key) === 3 ? [] : [i])),
    )
    const all = unansweredPartitions(
      records,
      [...results, { topicName: TOPIC, partition: 3 }],
      () => 8,
    )
    assert.deepEqual(all.missing, [])
    assert.equal(all.acknowledged.length, 40)
  })

  it('the sink sends the skipped partitions again: nothing lost, nothing twice, order kept', async () => {
    // Every other send leaves partitions 3 and 5 out of its answer (and unwritten).
    const fake = new FakeKafkaJs({ skip: (n) => new Set(n % 2 === 0 ? [3, 5] : []) })
    const client = new KafkaJsClient(fake as unknown as Kafka, { compression: 'none' })
    const { sink, registry } = makeSink(new FakeKafka(), { client, maxBatchMessages: 30 })
    const units = makeUnits(20, 10)
    const done = await run(sink, units, true)
    assert.equal(done.length, 20)
    const got = fake.values(TOPIC).map((v) => (JSON.parse(v) as { n: number }).n)
    assert.equal(got.length, 200, 'every message stored exactly once')
    assert.deepEqual(
      [...new Set(got)].sort((a, b) => a - b),
      units.flat().map((_, i) => i),
    )
    const byKey = new Map<string, number[]>()
    for (const m of units.flat()) {
      const n = (JSON.parse(m.value) as { n: number }).n
      byKey.set(m.key, [...(byKey.get(m.key) ?? []), got.indexOf(n)])
    }
    for (const [key, at] of byKey)
      assert.deepEqual(
        at,
        [...at].sort((a, b) => a - b),
        key,
      )
    const text = await registry.metrics()
    assert.ok(metricValue(text, 'atkafka_produce_retries') > 0, 'the skipped records retried')
    assert.equal(metricValue(text, 'atkafka_produced_events', { status: 'ok' }), 200)
  })
})

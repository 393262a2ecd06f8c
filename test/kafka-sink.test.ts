// The Kafka sink itself against the real broker: several producers, batches the broker accepts.
import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { describe, it } from 'node:test'
import { pino } from 'pino'
import { Registry } from 'prom-client'
import { createMetrics } from '../src/metrics.ts'
import { KAFKA_CLIENTS, createProducerClient } from '../src/sink/clients.ts'
import { KafkaSink } from '../src/sink/kafka.ts'
import { consumeAll, createTopic } from './harness/kafka.ts'
import { metricValue } from './support/atkafka.ts'

const bootstrap = process.env.KAFKA_BOOTSTRAP_SERVERS

describe('Kafka sink', () => {
  for (const client of KAFKA_CLIENTS)
    it(`${client}: 4 producers into 1 partition: a backlog of 3-byte characters goes in batches the broker takes, in order per key`, async () => {
      assert.ok(
        bootstrap,
        'KAFKA_BOOTSTRAP_SERVERS must point at the test broker (npm test sets it)',
      )
      const topic = `sink-${randomUUID()}`
      await createTopic(bootstrap, topic, 1)
      const registry = new Registry()
      const metrics = createMetrics(registry)
      const logger = pino({ level: 'silent' })
      const sink = new KafkaSink({
        client: createProducerClient({
          client,
          brokers: [bootstrap],
          security: { ssl: false },
          compression: 'none',
          logger,
        }),
        topic,
        partitions: 1,
        replicationFactor: 1,
        producers: 4,
        logger,
        metrics,
        onFatal: (err) => assert.fail(err),
      })
      // Written before the sink connects: a backlog, as after an outage. 6,000 values of 2,000
      // characters of 3 UTF-8 bytes each: 36 MB, where any 1 MiB batch for the one partition is too large.
      const keys = Array.from({ length: 50 }, (_, i) => `did:plc:sink${i}`)
      const sent = Array.from({ length: 6000 }, (_, i) => ({
        key: keys[i % keys.length]!,
        value: JSON.stringify({ n: i, text: '✓'.repeat(2000) }),
      }))
      let done = 0
      for (let i = 0; i < sent.length; i += 10) sink.write(sent.slice(i, i + 10), () => done++)
      await sink.start(AbortSignal.timeout(30_000))
      await sink.flush(AbortSignal.timeout(120_000))
      await sink.close()
      assert.equal(done, 600, 'every unit acknowledged')
      const text = await registry.metrics()
      assert.equal(metricValue(text, 'atkafka_produce_retries'), 0, 'no batch refused or retried')
      assert.equal(metricValue(text, 'atkafka_produced_events', { status: 'ok' }), 6000)
      const got = await consumeAll(bootstrap, topic, { expected: 6000, timeoutMs: 120_000 })
      assert.equal(got.length, 6000, 'exactly once')
      const order = new Map<string, number[]>()
      for (const m of got)
        order.set(m.key!, [...(order.get(m.key!) ?? []), (JSON.parse(m.value) as { n: number }).n])
      for (const [key, ns] of order)
        assert.deepEqual(
          ns,
          [...ns].sort((a, b) => a - b),
          key,
        )
    })
})

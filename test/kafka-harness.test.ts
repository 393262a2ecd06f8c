// The Kafka test harness itself: the shared broker (KAFKA_BOOTSTRAP_SERVERS, set by
// `npm test`) and a broker of its own that is killed and restarted.

import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { Kafka, logLevel } from 'kafkajs'
import type { Message } from 'kafkajs'
import {
  DEFAULT_KAFKA_VERSION,
  consoleConsumerArgs,
  consumeAll,
  createTopic,
  runKafkaTool,
  startKafka,
} from './harness/kafka.ts'

function bootstrapFromEnv(): string {
  const bootstrap = process.env.KAFKA_BOOTSTRAP_SERVERS
  assert.ok(bootstrap, 'KAFKA_BOOTSTRAP_SERVERS is not set: run the tests with `npm test`')
  return bootstrap
}

async function produce(bootstrap: string, topic: string, messages: Message[]): Promise<void> {
  const kafka = new Kafka({ brokers: [bootstrap], logLevel: logLevel.NOTHING })
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 })
  await producer.connect()
  try {
    await producer.send({ topic, acks: -1, messages })
  } finally {
    await producer.disconnect()
  }
}

void test('produce 10 keyed messages to 3 partitions and read them back', async () => {
  const bootstrap = bootstrapFromEnv()
  const topic = `harness-${randomUUID()}`
  await createTopic(bootstrap, topic, 3)

  const sent = Array.from({ length: 10 }, (_, i) => ({ key: `key-${i}`, value: `value-${i}` }))
  await produce(bootstrap, topic, sent)

  const got = await consumeAll(bootstrap, topic, { expected: 10, timeoutMs: 30_000 })
  assert.equal(got.length, 10)
  const byKey = (a: { key: string | null }, b: { key: string | null }) =>
    (a.key ?? '').localeCompare(b.key ?? '')
  assert.deepEqual(
    got.map((m) => ({ key: m.key, value: m.value })).sort(byKey),
    [...sent].sort(byKey),
  )
  // The same key always lands on the same partition; offsets are per partition.
  assert.ok(got.every((m) => m.partition >= 0 && m.partition < 3))
  assert.equal(new Set(got.map((m) => `${m.partition}/${m.offset}`)).size, 10)

  // Without `expected`: stops once every partition is read up to its high-water mark.
  const again = await consumeAll(bootstrap, topic, { idleMs: 200 })
  assert.deepEqual(again, got)
})

void test('the default Kafka version is the same in the harness and in scripts/kafka/fetch.sh', () => {
  const script = readFileSync(
    join(import.meta.dirname, '..', 'scripts', 'kafka', 'fetch.sh'),
    'utf8',
  )
  assert.match(
    script,
    new RegExp(`^default_version="${DEFAULT_KAFKA_VERSION.replaceAll('.', '\\.')}"$`, 'm'),
  )
  assert.match(DEFAULT_KAFKA_VERSION, /^4\./)
})

void test('the Java console consumer (runKafkaTool) reads back produced records, headers too', async () => {
  const bootstrap = bootstrapFromEnv()
  const topic = `harness-tool-${randomUUID()}`
  await createTopic(bootstrap, topic, 1)
  await produce(bootstrap, topic, [
    { key: 'did:plc:a', value: '{"n":1}', headers: { 'content-type': 'application/json' } },
    { key: 'did:plc:b', value: '{"n":2}' },
    { key: 'did:plc:a', value: '{"n":3}', headers: { 'content-type': 'application/json' } },
  ])

  const { code, stdout, stderr } = await runKafkaTool(
    'ConsoleConsumer',
    consoleConsumerArgs({
      bootstrap,
      topic,
      maxMessages: 3,
      timeoutMs: 20_000,
      formatter: { 'print.key': 'true', 'print.headers': 'true' },
    }),
  )
  assert.equal(code, 0, stderr)
  assert.deepEqual(stdout.trimEnd().split('\n'), [
    'content-type:application/json\tdid:plc:a\t{"n":1}',
    'NO_HEADERS\tdid:plc:b\t{"n":2}',
    'content-type:application/json\tdid:plc:a\t{"n":3}',
  ])
  assert.match(stderr, /Processed a total of 3 messages/)
})

void test('a broker killed with SIGKILL restarts on the same port and keeps its data', async () => {
  const broker = await startKafka()
  try {
    const topic = `restart-${randomUUID()}`
    await createTopic(broker.bootstrap, topic, 1)
    await produce(broker.bootstrap, topic, [{ key: 'before-kill', value: 'still here' }])

    await broker.kill()
    const port = broker.port
    await broker.start()
    assert.equal(broker.port, port)
    assert.equal(broker.bootstrap, `127.0.0.1:${port}`)

    const got = await consumeAll(broker.bootstrap, topic, { expected: 1, timeoutMs: 30_000 })
    assert.deepEqual(
      got.map((m) => ({ key: m.key, value: m.value })),
      [{ key: 'before-kill', value: 'still here' }],
    )

    // The record is in the partition's first log segment on disk (DumpLogSegments).
    const segment = join(broker.dataDir, 'logs', `${topic}-0`, '00000000000000000000.log')
    const dump = await runKafkaTool(
      'DumpLogSegments',
      ['--files', segment, '--print-data-log', '--deep-iteration'],
      { version: broker.version },
    )
    assert.equal(dump.code, 0, dump.stderr)
    assert.match(dump.stdout, /key: before-kill payload: still here/)
  } finally {
    await broker.stop()
  }
})

import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { zstdDecompressSync } from 'node:zlib'
import { Partitioners, type PartitionerArgs } from 'kafkajs'
import { pino } from 'pino'
import { Registry } from 'prom-client'
import { createMetrics } from '../src/metrics.ts'
import { KafkaSink } from '../src/sink/kafka.ts'
import { FastDefaultPartitioner } from '../src/sink/kafkajs-producer.ts'
import { murmur2 } from '../src/sink/partitioner.ts'
import { PlatformaticClient, javaPartitioner } from '../src/sink/platformatic-producer.ts'
import { consumeAll, createTopic } from './harness/kafka.ts'
import { FIXTURE_DIR, loadOracle } from './support/fixtures.ts'

// The sink's partitioner must put every key on the same partition as KafkaJS's DefaultPartitioner
// (murmur2, as the Java client and at-kafka), or per-DID order across versions breaks.

function metadata(n: number): PartitionerArgs['partitionMetadata'] {
  return Array.from({ length: n }, (_, i) => ({
    partitionErrorCode: 0,
    partitionId: i,
    leader: 1,
    replicas: [1],
    isr: [1],
  }))
}

function keys(): string[] {
  let seed = 12345
  const rand = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0)
  const alphabet = 'abcdefghijklmnopqrstuvwxyz234567'
  const out = [
    '',
    'a',
    'ab',
    'abc',
    'abcd',
    '<unknown>',
    'did:web:example.com',
    'ü',
    'é🦋x',
    '日本語のキー',
  ]
  for (let i = 0; i < 5000; i++) {
    let did = 'did:plc:'
    for (let j = 0; j < 24; j++) did += alphabet[rand() & 31]
    out.push(did)
  }
  for (let i = 0; i < 2000; i++) {
    let s = ''
    const n = rand() % 40
    for (let j = 0; j < n; j++)
      s += String.fromCodePoint(
        rand() % 3 === 0 ? 0x80 + (rand() % 0x2000) : 0x20 + (rand() % 0x5f),
      )
    out.push(s)
  }
  return out
}

describe('Kafka sink partitioner', () => {
  it('puts every string key on the partition KafkaJS DefaultPartitioner chooses', () => {
    const ours = FastDefaultPartitioner()
    const theirs = Partitioners.DefaultPartitioner()
    for (const n of [1, 4, 7, 200, 1000]) {
      const partitionMetadata = metadata(n)
      for (const key of keys()) {
        const args = { topic: 't', partitionMetadata, message: { key, value: 'v' } }
        assert.equal(ours(args), theirs(args), `key ${JSON.stringify(key)}, ${n} partitions`)
      }
    }
  })

  it('leaves explicit partitions and Buffer keys to KafkaJS', () => {
    const ours = FastDefaultPartitioner()
    const partitionMetadata = metadata(200)
    assert.equal(
      ours({ topic: 't', partitionMetadata, message: { key: 'k', value: 'v', partition: 17 } }),
      17,
    )
    const theirs = Partitioners.DefaultPartitioner()
    const key = Buffer.from('did:plc:abc')
    assert.equal(
      ours({ topic: 't', partitionMetadata, message: { key, value: 'v' } }),
      theirs({ topic: 't', partitionMetadata, message: { key, value: 'v' } }),
    )
  })
})

/** The DIDs of the real relay capture. */
function realDids(): string[] {
  const docs = JSON.parse(
    zstdDecompressSync(readFileSync(join(FIXTURE_DIR, 'did_docs.json.zst'))).toString('utf8'),
  ) as Record<string, unknown>
  return [...new Set([...Object.keys(docs), ...loadOracle().map((e) => e.did)])]
}

describe('murmur2 partitions of @platformatic/kafka', () => {
  it("murmur2 gives the Java client's values (Kafka's own UtilsTest cases)", () => {
    const cases: Array<[string, number]> = [
      ['21', -973932308],
      ['foobar', -790332482],
      ['a-little-bit-long-string', -985981536],
      ['a-little-bit-longer-string', -1486304829],
      ['lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8', -58897971],
      ['abc', 479470107],
    ]
    for (const [key, java] of cases) assert.equal(murmur2(key), java, key)
  })

  it('the partitioner given to platformatic puts real DIDs where KafkaJS DefaultPartitioner does', () => {
    const theirs = Partitioners.DefaultPartitioner()
    const dids = realDids()
    assert.ok(dids.length > 100, `${dids.length} DIDs`)
    for (const n of [1, 4, 200]) {
      const partitionMetadata = metadata(n)
      for (const key of [...dids, ...keys()]) {
        const raw = javaPartitioner({ topic: 't', key, value: 'v' })
        assert.ok(raw >= 0)
        const expected = theirs({ topic: 't', partitionMetadata, message: { key, value: 'v' } })
        assert.equal(raw % n, expected, `key ${JSON.stringify(key)}, ${n} partitions`)
      }
    }
  })

  it('real DIDs produced through the platformatic adapter land on the Java partitions of a 200-partition topic', async () => {
    const bootstrap = process.env.KAFKA_BOOTSTRAP_SERVERS
    assert.ok(bootstrap, 'KAFKA_BOOTSTRAP_SERVERS must point at the test broker (npm test sets it)')
    const topic = `partitions-${randomUUID()}`
    await createTopic(bootstrap, topic, 200)
    const logger = pino({ level: 'silent' })
    const sink = new KafkaSink({
      client: new PlatformaticClient({
        brokers: [bootstrap],
        security: { ssl: false },
        compression: 'none',
        logger,
      }),
      topic,
      partitions: 200,
      replicationFactor: 1,
      producers: 4,
      logger,
      metrics: createMetrics(new Registry()),
      onFatal: (err) => assert.fail(err),
    })
    const dids = realDids()
    sink.write(
      dids.map((did) => ({ key: did, value: did })),
      () => {},
    )
    await sink.start(AbortSignal.timeout(30_000))
    await sink.flush(AbortSignal.timeout(60_000))
    await sink.close()
    const got = await consumeAll(bootstrap, topic, { expected: dids.length })
    assert.equal(got.length, dids.length)
    const theirs = Partitioners.DefaultPartitioner()
    const partitionMetadata = metadata(200)
    for (const m of got) {
      const expected = theirs({ topic, partitionMetadata, message: { key: m.key!, value: 'v' } })
      assert.equal(m.partition, expected, m.key!)
    }
  })
})

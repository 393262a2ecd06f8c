import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { Partitioners, type PartitionerArgs } from 'kafkajs'
import { FastDefaultPartitioner } from '../src/sink/partitioner.ts'

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

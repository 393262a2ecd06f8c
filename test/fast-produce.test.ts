// Imported as src/sink/kafkajs.ts does: the swaps only work before KafkaJS loads.
import '../src/sink/pooled-encoder.ts'
import { crc32c } from '../src/sink/crc32c.ts'
import {
  type ProduceArgs,
  canEncodeFast,
  encodeProduceRequest,
  groupMessagesPerPartition,
  kafkajsOriginals,
} from '../src/sink/fast-produce.ts'
import assert from 'node:assert/strict'
import { createRequire } from 'node:module'
import { describe, it } from 'node:test'

const require = createRequire(import.meta.url)
type CreateRequest = (opts: {
  correlationId: number
  clientId: string | null
  request: object
}) => Promise<{ buffer: Buffer }>
type ProduceV7 = (args: ProduceArgs) => object

const NOW = 1_790_000_000_123

/** A deterministic produce request with every shape of key and value atkafka can send. */
function randomArgs(seed: number): ProduceArgs {
  let x = seed
  const rand = (n: number) => (x = (Math.imul(x, 1103515245) + 12345) >>> 0) % n
  const text = () => ['', 'a', 'é✓-'.repeat(rand(50)), 'x'.repeat(rand(3000)), '😀'][rand(5)]!
  const keyOf = () => {
    const k = rand(6)
    return k === 0 ? null : k === 1 ? Buffer.from(text()) : `did:plc:${text()}`
  }
  const valueOf = () => (rand(8) === 0 ? Buffer.from(text()) : JSON.stringify({ t: text() }))
  return {
    acks: [-1, 1][rand(2)]!,
    timeout: 30000,
    transactionalId: rand(4) === 0 ? 'txn-é' : null,
    producerId: rand(2) === 0 ? -1 : 4000 + rand(1_000_000),
    producerEpoch: rand(3),
    topicData: Array.from({ length: 1 + rand(3) }, (_, t) => ({
      topic: `topic-${t}`,
      partitions: Array.from({ length: 1 + rand(4) }, (_, p) => ({
        partition: p * 7,
        firstSequence: rand(2 ** 31),
        messages: Array.from({ length: 1 + rand(200) }, () => ({ key: keyOf(), value: valueOf() })),
      })),
    })),
  }
}

/** What KafkaJS itself sends for these arguments, framed, at time {@link NOW}. */
async function kafkajsBytes(args: ProduceArgs, apiVersion: number, correlationId: number) {
  const originals = kafkajsOriginals!
  const request = Object.assign(originals.produceV3(args), { apiVersion })
  const realNow = Date.now
  Date.now = () => NOW
  try {
    const framed = await originals.createRequest({ correlationId, clientId: 'atkafka-✓', request })
    return framed.buffer
  } finally {
    Date.now = realNow
  }
}

describe('one-pass produce request encoder', () => {
  it('is in place when loaded before KafkaJS', () => {
    assert.notEqual(kafkajsOriginals, undefined)
  })

  it('writes the bytes KafkaJS writes, framed, for 60 random requests', async () => {
    const { Long, crc32C } = kafkajsOriginals!
    for (let seed = 1; seed <= 60; seed++) {
      const args = randomArgs(seed)
      assert.equal(canEncodeFast(args), true)
      const correlationId = seed * 977
      const header = { apiKey: 0, apiVersion: 7, correlationId, clientId: 'atkafka-✓' }
      const ours = encodeProduceRequest(args, header, Long, crc32C, NOW)
      const theirs = await kafkajsBytes(args, 7, correlationId)
      assert.equal(ours.length, theirs.length, `seed ${seed}: length`)
      assert.ok(ours.equals(theirs), `seed ${seed}: bytes differ`)
    }
  })

  it('is what the patched KafkaJS sends, and leaves other requests to KafkaJS', async () => {
    const createRequest = require('kafkajs/src/protocol/request.js') as CreateRequest
    const produceV7 = require('kafkajs/src/protocol/requests/produce/v7/request.js') as ProduceV7
    const args = randomArgs(99)
    const realNow = Date.now
    Date.now = () => NOW
    try {
      const sent = await createRequest({
        correlationId: 5,
        clientId: 'atkafka-✓',
        request: produceV7(args),
      })
      assert.ok(sent.buffer.equals(await kafkajsBytes(args, 7, 5)))
      // Headers, timestamps and compression take KafkaJS's own path, with the same result.
      const messages = [{ key: 'k', value: 'v', headers: { h: 'x' }, timestamp: String(NOW - 5) }]
      const other: ProduceArgs = {
        acks: -1,
        timeout: 1000,
        topicData: [{ topic: 't', partitions: [{ partition: 0, messages }] }],
      }
      assert.equal(canEncodeFast(other), false)
      assert.equal(canEncodeFast({ ...args, compression: 1 }), false)
      const viaPatch = await createRequest({
        correlationId: 6,
        clientId: 'c',
        request: produceV7(other),
      })
      const request = Object.assign(kafkajsOriginals!.produceV3(other), { apiVersion: 7 })
      const direct = await kafkajsOriginals!.createRequest({
        correlationId: 6,
        clientId: 'c',
        request,
      })
      assert.ok(viaPatch.buffer.equals(direct.buffer))
    } finally {
      Date.now = realNow
    }
  })
})

describe('produce path helpers', () => {
  it('CRC-32C: the same as KafkaJS on every length 0..300 and on 1 MB', () => {
    const { crc32C } = kafkajsOriginals!
    let x = 7
    const bytes = Buffer.alloc(1 << 20)
    for (let i = 0; i < bytes.length; i++)
      bytes[i] = (x = (Math.imul(x, 1103515245) + 12345) >>> 0) >>> 24
    for (let n = 0; n <= 300; n++) {
      const b = bytes.subarray(n, n + n)
      assert.equal(crc32c(b), crc32C(b), `length ${n}`)
    }
    assert.equal(crc32c(bytes), crc32C(bytes))
    // The check value of CRC-32C.
    assert.equal(crc32c(Buffer.from('123456789')), 0xe3069283)
  })

  it('groups messages by partition as KafkaJS does, in order', () => {
    const messages = Array.from({ length: 500 }, (_, i) => ({
      key: `k${i % 37}`,
      value: String(i),
    }))
    const args = {
      topic: 't',
      partitionMetadata: new Array(7).fill({}),
      messages,
      partitioner: ({ message }: { message: { key: string } }) => Number(message.key.slice(1)) % 7,
    }
    const ours = groupMessagesPerPartition(args)
    assert.deepEqual(ours, kafkajsOriginals!.groupMessagesPerPartition(args))
    assert.deepEqual(Object.keys(ours), ['0', '1', '2', '3', '4', '5', '6'])
    assert.deepEqual(groupMessagesPerPartition({ ...args, partitionMetadata: [] }), {})
    const patched = require('kafkajs/src/producer/groupMessagesPerPartition.js') as unknown
    assert.equal(patched, groupMessagesPerPartition)
  })
})

// Imported first, as src/sink/kafkajs.ts does: the swap only works before KafkaJS loads.
import { pooledEncoderInstalled } from '../src/sink/pooled-encoder.ts'
import assert from 'node:assert/strict'
import { createRequire } from 'node:module'
import { describe, it } from 'node:test'

type Encoder = { buffer: Buffer } & Record<string, (...args: unknown[]) => Encoder>
type EncoderClass = new (size?: number) => Encoder

const require = createRequire(import.meta.url)
const Pooled = require('kafkajs/src/protocol/encoder.js') as EncoderClass
const Original = Object.getPrototypeOf(Pooled) as EncoderClass

/** A deterministic mix of every kind of write KafkaJS's produce path makes. */
function encodeAll(E: EncoderClass, seed: number): Buffer {
  let x = seed
  const rand = (n: number) => (x = (Math.imul(x, 1103515245) + 12345) >>> 0) % n
  const e = new E()
  for (let i = 0; i < 400; i++) {
    const text = 'é✓-'.repeat(rand(300)) + 'x'.repeat(rand(2000))
    switch (rand(9)) {
      case 0:
        e.writeInt8!(rand(200) - 100)
        break
      case 1:
        e.writeInt16!(rand(60000) - 30000)
        break
      case 2:
        e.writeInt32!(rand(2 ** 31) - 2 ** 30)
        break
      case 3:
        e.writeInt64!(String(rand(2 ** 31) * 2 ** 20))
        break
      case 4:
        e.writeString!(text)
        break
      case 5:
        e.writeBytes!(Buffer.from(text))
        break
      case 6:
        e.writeVarIntBytes!(text)
        break
      case 7:
        e.writeVarLong!(rand(2 ** 31) - 2 ** 30)
        break
      default:
        e.writeEncoder!(new E().writeVarIntString!(text))
        break
    }
  }
  return e.buffer
}

describe("KafkaJS's encoder with pooled buffers", () => {
  it('is in place when loaded before KafkaJS', () => {
    assert.equal(pooledEncoderInstalled, true)
    assert.equal(Pooled.name, 'PooledEncoder')
    assert.notEqual(Original, Function.prototype)
  })

  it('writes exactly the bytes of the original, even over dirty pool memory', () => {
    for (let seed = 1; seed <= 30; seed++) {
      // Leave garbage in Node's buffer pool: uninitialised bytes would show up in the output.
      for (let i = 0; i < 64; i++) Buffer.allocUnsafe(128).fill(0xa5)
      assert.ok(encodeAll(Pooled, seed).equals(encodeAll(Original, seed)), `seed ${seed}`)
    }
  })
})

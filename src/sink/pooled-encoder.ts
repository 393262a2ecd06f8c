import { createRequire } from 'node:module'

/** The part of KafkaJS's protocol `Encoder` (kafkajs/src/protocol/encoder.js) this module relies on. */
interface EncoderInstance {
  buf: Buffer
  offset: number
}
interface EncoderClass {
  new (initialSize?: number): EncoderInstance
  nextPowerOfTwo(n: number): number
  prototype: EncoderInstance & { ensureAvailable(length: number): void }
}

const ENCODER_MODULE = 'kafkajs/src/protocol/encoder.js'

/**
 * KafkaJS encodes every record of a produce request with a new `Encoder` whose buffer comes
 * from `Buffer.alloc`: a fresh, zero-filled ArrayBuffer per record (and per growth step). At tens
 * of thousands of messages a second that was the costliest single item of the produce path
 * (13% of CPU in a relay → Kafka profile) and a steady source of native-memory churn.
 *
 * This swaps in a subclass whose buffers come from `Buffer.allocUnsafe` (small ones from Node's
 * shared pool). It is safe because an Encoder only ever exposes the bytes it has written
 * (`buf.slice(0, offset)`) and nothing else in KafkaJS touches `buf`. It must run before KafkaJS
 * itself loads (see ./kafkajs.ts); if the module is not where expected, nothing changes.
 *
 * Returns whether the pooled encoder is in place.
 */
function install(): boolean {
  const require = createRequire(import.meta.url)
  let path: string
  try {
    path = require.resolve(ENCODER_MODULE)
  } catch {
    return false
  }
  if (require.cache[path] !== undefined) return false
  const Encoder = require(path) as EncoderClass
  if (typeof Encoder !== 'function' || typeof Encoder.nextPowerOfTwo !== 'function') return false
  class PooledEncoder extends Encoder {
    constructor(initialSize = 511) {
      super(0)
      this.buf = Buffer.allocUnsafe(Encoder.nextPowerOfTwo(initialSize))
    }
    ensureAvailable(length: number): void {
      if (this.offset + length > this.buf.length) {
        const grown = Buffer.allocUnsafe(Encoder.nextPowerOfTwo(this.offset + length))
        this.buf.copy(grown, 0, 0, this.offset)
        this.buf = grown
      }
    }
  }
  require.cache[path]!.exports = PooledEncoder
  return true
}

export const pooledEncoderInstalled = install()

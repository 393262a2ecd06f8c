const SEED = 0x9747b28c
const M = 0x5bd1e995

/**
 * Kafka's murmur2 (the Java client's `Utils.murmur2`) of a key's UTF-8 bytes, in 32-bit integer
 * arithmetic (KafkaJS computes it with 64-bit Long objects, @platformatic/kafka's
 * Java-compatible partitioner with BigInt; both cost far more).
 */
export function murmur2(key: string): number {
  let bytes: Uint8Array | undefined
  for (let i = 0; i < key.length; i++) {
    if (key.charCodeAt(i) > 0x7f) {
      bytes = Buffer.from(key, 'utf8')
      break
    }
  }
  const at = (i: number): number => (bytes === undefined ? key.charCodeAt(i) : bytes[i]!)
  const length = bytes === undefined ? key.length : bytes.length
  let h = (SEED ^ length) | 0
  const length4 = length >>> 2
  for (let i = 0; i < length4; i++) {
    const i4 = i * 4
    let k = at(i4) | (at(i4 + 1) << 8) | (at(i4 + 2) << 16) | (at(i4 + 3) << 24)
    k = Math.imul(k, M)
    k ^= k >>> 24
    k = Math.imul(k, M)
    h = Math.imul(h, M) ^ k
  }
  const tail = length & ~3
  const rest = length & 3
  if (rest === 3) h ^= at(tail + 2) << 16
  if (rest >= 2) h ^= at(tail + 1) << 8
  if (rest >= 1) {
    h ^= at(tail)
    h = Math.imul(h, M)
  }
  h ^= h >>> 13
  h = Math.imul(h, M)
  h ^= h >>> 15
  return h
}

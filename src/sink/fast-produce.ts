import { createRequire } from 'node:module'
import { crc32c } from './crc32c.ts'

/**
 * KafkaJS encodes a produce request in layers: an `Encoder` per record (writing each varint
 * through a new `Buffer.from([...])`), copied into the record batch, the batch copied into the
 * partition, the partition into the topic, the topic into the request, the request into its
 * frame: every byte of every message copied about six times, through dozens of short-lived
 * buffers per record. At tens of thousands of messages a second that was a fifth of the CPU of
 * relay → Kafka, most of it in the garbage collector.
 *
 * This writes the whole framed request into one buffer, in one pass over the messages, in the
 * layout KafkaJS would produce byte for byte (`test/fast-produce.test.ts` compares the two). It
 * covers what atkafka sends: no compression, no headers, no per-message timestamps, string or
 * Buffer keys and values. Anything else goes through KafkaJS's own encoder unchanged.
 *
 * Also replaced: the grouping of a request's messages by partition, which KafkaJS does by copying
 * the partition's whole array for each message (quadratic: a 5,000-message batch for one partition
 * copied 12 million array slots).
 *
 * Like ./pooled-encoder.ts it swaps modules in KafkaJS's require cache, so it must run before
 * KafkaJS loads (see ./kafkajs.ts); if a module is not where expected, nothing changes.
 */

interface Long {
  getHighBits(): number
  getLowBits(): number
}
interface LongClass {
  fromValue(value: unknown): Long
}

export interface ProduceMessage {
  key?: string | Buffer | null
  value: string | Buffer | null
  headers?: Record<string, unknown>
  timestamp?: unknown
}

export interface ProduceArgs {
  acks: number
  timeout: number
  transactionalId?: string | null
  producerId?: unknown
  producerEpoch?: number
  compression?: number
  topicData: Array<{
    topic: string
    partitions: Array<{ partition: number; firstSequence?: number; messages: ProduceMessage[] }>
  }>
}

export interface RequestHeader {
  apiKey: number
  apiVersion: number
  correlationId: number
  clientId: string | null
}

interface RequestObject {
  apiKey: number
  apiVersion: number
  encode: () => Promise<unknown>
  [FRAMED]?: (header: RequestHeader) => Buffer
}

type ProduceV3 = (args: ProduceArgs) => RequestObject
type CreateRequest = (args: {
  correlationId: number
  clientId: string | null
  request: RequestObject
}) => Promise<{ buffer: Buffer }>

const FRAMED = Symbol('atkafka.framedProduceRequest')
const MAGIC_BYTE = 2
const COMPRESSION_NONE = 0
const TRANSACTIONAL_MASK = 16

const require = createRequire(import.meta.url)

function kafkajsModule(path: string): string | undefined {
  try {
    return require.resolve(path)
  } catch {
    return undefined
  }
}

/** Byte length of a key or value; -1 for null. */
function byteLength(v: string | Buffer | null | undefined): number {
  if (v == null) return -1
  return typeof v === 'string' ? Buffer.byteLength(v, 'utf8') : v.length
}

function sizeOfVarInt(value: number): number {
  let u = ((value << 1) ^ (value >> 31)) >>> 0
  let n = 1
  while (u >= 0x80) {
    u >>>= 7
    n++
  }
  return n
}

function writeVarInt(buf: Buffer, at: number, value: number): number {
  let u = ((value << 1) ^ (value >> 31)) >>> 0
  while (u >= 0x80) {
    buf[at++] = (u & 0x7f) | 0x80
    u >>>= 7
  }
  buf[at++] = u
  return at
}

function writeBytes(buf: Buffer, at: number, v: string | Buffer, len: number): number {
  if (typeof v === 'string') buf.write(v, at, len, 'utf8')
  else v.copy(buf, at)
  return at + len
}

function isPlain(m: ProduceMessage): boolean {
  const k = m.key
  const v = m.value
  return (
    m.timestamp == null &&
    (m.headers == null || Object.keys(m.headers).length === 0) &&
    (k == null || typeof k === 'string' || Buffer.isBuffer(k)) &&
    (v == null || typeof v === 'string' || Buffer.isBuffer(v))
  )
}

interface GroupArgs<M> {
  topic: string
  partitionMetadata: unknown[]
  messages: M[]
  partitioner: (args: { topic: string; partitionMetadata: unknown[]; message: M }) => number
}

/** KafkaJS's `groupMessagesPerPartition` (same result: partition → its messages in order), linear. */
export function groupMessagesPerPartition<M>(args: GroupArgs<M>): Record<number, M[]> {
  const { topic, partitionMetadata, partitioner } = args
  const result: Record<number, M[]> = {}
  if (partitionMetadata.length === 0) return result
  for (const message of args.messages) {
    const partition = partitioner({ topic, partitionMetadata, message })
    const list = result[partition]
    if (list === undefined) result[partition] = [message]
    else list.push(message)
  }
  return result
}

/** Whether {@link encodeProduceRequest} handles these arguments. */
export function canEncodeFast(args: ProduceArgs): boolean {
  if ((args.compression ?? COMPRESSION_NONE) !== COMPRESSION_NONE) return false
  for (const t of args.topicData) {
    for (const p of t.partitions) {
      if (p.messages.length === 0 || !p.messages.every(isPlain)) return false
    }
  }
  return true
}

/** Per record: body size, key length, value length. */
const RECORD_FIELDS = 3

/**
 * The framed produce request (v3 layout, as every version up to 7 sends it) in one buffer.
 * Only for arguments {@link canEncodeFast} accepts. Timestamps are `now`, as in KafkaJS.
 */
export function encodeProduceRequest(
  args: ProduceArgs,
  header: RequestHeader,
  Long: LongClass,
  crc32C: (buf: Buffer) => number,
  now: number = Date.now(),
): Buffer {
  const clientIdLen = header.clientId == null ? -1 : Buffer.byteLength(header.clientId)
  const txnId = args.transactionalId ?? null
  const txnLen = txnId === null ? -1 : Buffer.byteLength(txnId)
  // Sizes first, so everything is written once into a buffer of the right size.
  let records = 0
  for (const t of args.topicData) for (const p of t.partitions) records += p.messages.length
  const sizes = new Int32Array(records * RECORD_FIELDS)
  let total = 4 + 2 + 2 + 4 + 2 + Math.max(clientIdLen, 0) // frame size, request header
  total += 2 + Math.max(txnLen, 0) + 2 + 4 + 4 // transactional id, acks, timeout, topics
  let r = 0
  for (const t of args.topicData) {
    total += 2 + Buffer.byteLength(t.topic) + 4
    for (const p of t.partitions) {
      total += 4 + 4 + 61 // partition, batch size, batch header incl. record count
      for (let i = 0; i < p.messages.length; i++, r++) {
        const m = p.messages[i]!
        const keyLen = byteLength(m.key)
        const valueLen = byteLength(m.value)
        const body =
          1 + // attributes
          1 + // timestamp delta: always 0
          sizeOfVarInt(i) +
          sizeOfVarInt(keyLen) +
          Math.max(keyLen, 0) +
          sizeOfVarInt(valueLen) +
          Math.max(valueLen, 0) +
          1 // no headers
        sizes[r * RECORD_FIELDS] = body
        sizes[r * RECORD_FIELDS + 1] = keyLen
        sizes[r * RECORD_FIELDS + 2] = valueLen
        total += sizeOfVarInt(body) + body
      }
    }
  }

  const buf = Buffer.allocUnsafe(total)
  let at = buf.writeInt32BE(total - 4, 0)
  at = buf.writeInt16BE(header.apiKey, at)
  at = buf.writeInt16BE(header.apiVersion, at)
  at = buf.writeInt32BE(header.correlationId, at)
  at = buf.writeInt16BE(clientIdLen, at)
  if (header.clientId != null) at += buf.write(header.clientId, at, clientIdLen, 'utf8')
  at = buf.writeInt16BE(txnLen, at)
  if (txnId !== null) at += buf.write(txnId, at, txnLen, 'utf8')
  at = buf.writeInt16BE(args.acks, at)
  at = buf.writeInt32BE(args.timeout, at)
  at = buf.writeInt32BE(args.topicData.length, at)
  const producerId = Long.fromValue(args.producerId ?? -1)
  const attributes = COMPRESSION_NONE | (txnId ? TRANSACTIONAL_MASK : 0)
  r = 0
  for (const t of args.topicData) {
    const topicLen = Buffer.byteLength(t.topic)
    at = buf.writeInt16BE(topicLen, at)
    at += buf.write(t.topic, at, topicLen, 'utf8')
    at = buf.writeInt32BE(t.partitions.length, at)
    for (const p of t.partitions) {
      at = buf.writeInt32BE(p.partition, at)
      const batchSizeAt = at
      const batchStart = at + 4
      at = batchStart
      at = buf.writeInt32BE(0, at) // first offset (int64)
      at = buf.writeInt32BE(0, at)
      const lengthAt = at
      at += 4
      at = buf.writeInt32BE(0, at) // partition leader epoch
      at = buf.writeInt8(MAGIC_BYTE, at)
      const crcAt = at
      at += 4
      const crcFrom = at
      at = buf.writeInt16BE(attributes, at)
      at = buf.writeInt32BE(p.messages.length - 1, at) // last offset delta
      at = buf.writeBigInt64BE(BigInt(now), at) // first timestamp
      at = buf.writeBigInt64BE(BigInt(now), at) // max timestamp
      at = buf.writeInt32BE(producerId.getHighBits(), at)
      at = buf.writeInt32BE(producerId.getLowBits(), at)
      at = buf.writeInt16BE(args.producerEpoch ?? 0, at)
      at = buf.writeInt32BE(p.firstSequence ?? 0, at)
      at = buf.writeInt32BE(p.messages.length, at)
      for (let i = 0; i < p.messages.length; i++, r++) {
        const m = p.messages[i]!
        const keyLen = sizes[r * RECORD_FIELDS + 1]!
        const valueLen = sizes[r * RECORD_FIELDS + 2]!
        at = writeVarInt(buf, at, sizes[r * RECORD_FIELDS]!)
        buf[at++] = 0 // attributes
        buf[at++] = 0 // timestamp delta
        at = writeVarInt(buf, at, i)
        at = writeVarInt(buf, at, keyLen)
        if (keyLen > 0) at = writeBytes(buf, at, m.key!, keyLen)
        at = writeVarInt(buf, at, valueLen)
        if (valueLen > 0) at = writeBytes(buf, at, m.value!, valueLen)
        buf[at++] = 0 // header count
      }
      buf.writeUInt32BE(crc32C(buf.subarray(crcFrom, at)) >>> 0, crcAt)
      buf.writeInt32BE(at - lengthAt - 4, lengthAt)
      buf.writeInt32BE(at - batchStart, batchSizeAt)
    }
  }
  if (at !== total) throw new Error(`produce request size mismatch: wrote ${at} of ${total}`)
  return buf
}

/** KafkaJS's own modules this replaces, kept for the fallback (and for tests). */
export interface KafkajsOriginals {
  produceV3: ProduceV3
  createRequest: CreateRequest
  Long: LongClass
  crc32C: (buf: Buffer) => number
  groupMessagesPerPartition: typeof groupMessagesPerPartition
}

function install(): KafkajsOriginals | undefined {
  const paths = {
    produceV3: kafkajsModule('kafkajs/src/protocol/requests/produce/v3/request.js'),
    createRequest: kafkajsModule('kafkajs/src/protocol/request.js'),
    long: kafkajsModule('kafkajs/src/utils/long.js'),
    crc32C: kafkajsModule('kafkajs/src/protocol/recordBatch/crc32C/index.js'),
    group: kafkajsModule('kafkajs/src/producer/groupMessagesPerPartition.js'),
  }
  const { produceV3: v3Path, createRequest: requestPath } = paths
  if (v3Path === undefined || requestPath === undefined) return undefined
  const groupPath = paths.group
  if (paths.long === undefined || paths.crc32C === undefined || groupPath === undefined) {
    return undefined
  }
  if ([v3Path, requestPath, groupPath].some((p) => require.cache[p] !== undefined)) return undefined
  const originals: KafkajsOriginals = {
    produceV3: require(v3Path) as ProduceV3,
    createRequest: require(requestPath) as CreateRequest,
    Long: require(paths.long) as LongClass,
    crc32C: require(paths.crc32C) as (buf: Buffer) => number,
    groupMessagesPerPartition: require(groupPath) as typeof groupMessagesPerPartition,
  }
  if (typeof originals.produceV3 !== 'function' || typeof originals.createRequest !== 'function') {
    return undefined
  }
  const { Long } = originals
  const produceV3: ProduceV3 = (args) => {
    const request = originals.produceV3(args)
    if (canEncodeFast(args)) {
      request[FRAMED] = (header) => encodeProduceRequest(args, header, Long, crc32c)
    }
    return request
  }
  const createRequest: CreateRequest = async (opts) => {
    const framed = opts.request[FRAMED]
    const { apiKey, apiVersion } = opts.request
    // Versions 3 to 8 share this layout (KafkaJS sends up to 7).
    if (framed === undefined || apiVersion < 3 || apiVersion > 8) {
      return originals.createRequest(opts)
    }
    try {
      const { correlationId, clientId } = opts
      return { buffer: framed({ apiKey, apiVersion, correlationId, clientId }) }
    } catch (err) {
      // Never expected (the layout is tested against KafkaJS's); KafkaJS's encoder still works.
      process.emitWarning(`one-pass produce encoder failed, using KafkaJS's: ${String(err)}`)
      return originals.createRequest(opts)
    }
  }
  require.cache[v3Path]!.exports = produceV3
  require.cache[requestPath]!.exports = createRequest
  require.cache[groupPath]!.exports = groupMessagesPerPartition
  return originals
}

/** KafkaJS's own encoders, when the fast one is in place. */
export const kafkajsOriginals = install()

import { setTimeout as sleep } from 'node:timers/promises'
import { Admin as PlatformaticAdmin } from '@platformatic/kafka'
import { Kafka, logLevel, type Admin } from 'kafkajs'
import { frameOfTime } from './corpus/patch.ts'

function client(bootstrap: string, clientId: string): Kafka {
  return new Kafka({
    clientId,
    brokers: bootstrap.split(','),
    logLevel: logLevel.NOTHING,
    retry: { retries: 5, initialRetryTime: 100, maxRetryTime: 1000 },
  })
}

async function withAdmin<T>(bootstrap: string, fn: (admin: Admin) => Promise<T>): Promise<T> {
  const admin = client(bootstrap, 'atkafka-bench-admin').admin()
  await admin.connect()
  try {
    return await fn(admin)
  } finally {
    await admin.disconnect()
  }
}

/**
 * Create the topic atkafka will produce to, with `message.timestamp.type=LogAppendTime`: the
 * broker stamps each message with the time it appended it, just before it acknowledges the
 * produce request. That stamp is the "Kafka ack" end of the latency measurement. Waits until
 * every partition has a working leader.
 */
export async function createBenchTopic(
  bootstrap: string,
  topic: string,
  partitions: number,
): Promise<void> {
  await withAdmin(bootstrap, async (admin) => {
    await admin.createTopics({
      topics: [
        {
          topic,
          numPartitions: partitions,
          replicationFactor: 1,
          configEntries: [{ name: 'message.timestamp.type', value: 'LogAppendTime' }],
        },
      ],
      // KafkaJS's own wait fails when the metadata does not know the topic yet; poll instead.
      waitForLeaders: false,
    })
    const deadline = Date.now() + 30_000
    for (;;) {
      try {
        await admin.fetchTopicOffsets(topic)
        return
      } catch (err) {
        if (Date.now() > deadline) throw err
        await sleep(100)
      }
    }
  })
}

export async function deleteTopic(bootstrap: string, topic: string): Promise<void> {
  await withAdmin(bootstrap, (admin) => admin.deleteTopics({ topics: [topic] })).catch(() => {})
}

/** Messages in a topic (sum of high-water marks; the topic is only ever appended to). */
export async function topicMessageCount(bootstrap: string, topic: string): Promise<number> {
  return withAdmin(bootstrap, async (admin) => {
    const offsets = await admin.fetchTopicOffsets(topic)
    return offsets.reduce((sum, o) => sum + Number(o.high) - Number(o.low), 0)
  })
}

/** Bytes the topic's partitions take in the brokers' log directories (DescribeLogDirs). */
export async function topicBytes(
  bootstrap: string,
  topic: string,
  partitions: number,
): Promise<number> {
  const admin = new PlatformaticAdmin({
    clientId: 'atkafka-bench-log-dirs',
    bootstrapBrokers: bootstrap.split(','),
  })
  try {
    const dirs = await admin.describeLogDirs({
      topics: [{ name: topic, partitions: Array.from({ length: partitions }, (_, i) => i) }],
    })
    let bytes = 0n
    for (const broker of dirs)
      for (const dir of broker.results)
        for (const t of dir.topics)
          if (t.name === topic) for (const p of t.partitions) bytes += p.partitionSize
    return Number(bytes)
  } finally {
    await admin.close()
  }
}

export interface LatencyResult {
  messages: number
  /** Milliseconds from the frame's send time to the broker's append time, per message. */
  latencies: Float64Array
  /** Messages whose frame could not be identified. */
  unmatched: number
  /** Frames whose message count differs from what the corpus says it should be. */
  wrongCounts: number
  /** Latest broker append time seen (ms since the epoch). */
  lastAppendMs: number
}

const TIMESTAMP_KEY = Buffer.from('"timestamp":"')

/**
 * Read a topic from the beginning and match each message to the frame it came from by its
 * `timestamp` (the bench gives every frame a unique time): latency = broker append time minus
 * the relay's send time of that frame.
 */
export async function measureLatency(opts: {
  bootstrap: string
  topic: string
  expected: number
  sendTimes: Float64Array
  /** Events each global frame should have produced. */
  eventsOf: (g: number) => number
  timeoutMs: number
}): Promise<LatencyResult> {
  const { sendTimes } = opts
  const kafka = client(opts.bootstrap, 'atkafka-bench-latency')
  const consumer = kafka.consumer({
    groupId: `atkafka-bench-${process.pid}-${Date.now()}`,
    maxWaitTimeInMs: 100,
    maxBytes: 64 * 1024 * 1024,
    maxBytesPerPartition: 4 * 1024 * 1024,
  })
  const latencies = new Float64Array(opts.expected)
  const perFrame = new Uint16Array(sendTimes.length)
  let messages = 0
  let matched = 0
  let unmatched = 0
  let lastAppendMs = 0
  await consumer.connect()
  try {
    await consumer.subscribe({ topic: opts.topic, fromBeginning: true })
    await consumer.run({
      autoCommit: false,
      partitionsConsumedConcurrently: 8,
      eachBatch: async ({ batch }) => {
        for (const m of batch.messages) {
          const appended = Number(m.timestamp)
          if (appended > lastAppendMs) lastAppendMs = appended
          const value = m.value
          const at = value === null ? -1 : value.indexOf(TIMESTAMP_KEY)
          const g =
            at < 0
              ? -1
              : frameOfTime(
                  value!.toString(
                    'latin1',
                    at + TIMESTAMP_KEY.length,
                    at + TIMESTAMP_KEY.length + 24,
                  ),
                )
          if (g < 0 || g >= sendTimes.length || Number.isNaN(sendTimes[g]!)) {
            unmatched++
          } else {
            perFrame[g]!++
            if (matched < latencies.length) latencies[matched++] = appended - sendTimes[g]!
          }
          messages++
        }
      },
    })
    const deadline = Date.now() + opts.timeoutMs
    while (messages < opts.expected && Date.now() < deadline) await sleep(50)
    await sleep(300)
  } finally {
    await consumer.disconnect().catch(() => {})
  }
  let wrongCounts = 0
  for (let g = 0; g < sendTimes.length; g++) {
    if (!Number.isNaN(sendTimes[g]!) && perFrame[g] !== opts.eventsOf(g)) wrongCounts++
  }
  return {
    messages,
    latencies: latencies.subarray(0, matched),
    unmatched,
    wrongCounts,
    lastAppendMs,
  }
}

/** The p-th percentile (0-100) of `values` (nearest rank). */
export function percentile(values: Float64Array, p: number): number {
  if (values.length === 0) return Number.NaN
  const sorted = values.slice().sort()
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))
  return sorted[i]!
}

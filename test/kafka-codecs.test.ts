// Every --kafka-compression codec, end to end: relay mode produces the real capture into a broker
// of this file's own, the official Java console consumer reads it back (exactly the events
// produced), and DumpLogSegments shows every stored batch carries the codec.
import assert from 'node:assert/strict'
import { readdirSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { decodeFrame, type FirehoseMessage } from '../src/firehose/frame.ts'
import { splitMessage } from '../src/firehose/split.ts'
import { keyOf } from '../src/events.ts'
import {
  type KafkaBroker,
  consoleConsumerArgs,
  kafkaVersion,
  runKafkaTool,
  startKafka,
} from './harness/kafka.ts'
import { eventually, relayToKafka, spawnAtkafka } from './support/atkafka.ts'
import { cursorSeq } from './support/faults.ts'
import { loadFrames } from './support/fixtures.ts'
import { type ReplayFrame, startReplayRelay } from './support/replay-relay.ts'

const CODECS = ['none', 'gzip', 'snappy', 'lz4', 'zstd'] as const
const LAST_SEQ = 31527015471

function seqOf(frame: Uint8Array): number | undefined {
  const m = decodeFrame(frame)
  return m.type === 'error' || m.type === '#info' ? undefined : m.seq
}

/** `key<TAB>value` of every message relay mode must produce for `frames`, sorted. */
function expectedLines(frames: readonly Uint8Array[]): string[] {
  return frames
    .flatMap((f) =>
      splitMessage(decodeFrame(f) as FirehoseMessage, () => true).events.map(
        (e) => `${keyOf(e)}\t${JSON.stringify(e)}`,
      ),
    )
    .sort()
}

/** The `compresscodec` of every record batch DumpLogSegments finds in the topic's segments. */
async function storedCodecs(broker: KafkaBroker, topic: string): Promise<string[]> {
  const logs = join(broker.dataDir, 'logs')
  const segments = readdirSync(logs)
    .filter((d) => d.startsWith(`${topic}-`))
    .flatMap((d) =>
      readdirSync(join(logs, d))
        .filter((f) => f.endsWith('.log'))
        .map((f) => join(logs, d, f)),
    )
  assert.ok(segments.length > 0, `no segment of ${topic} under ${logs}`)
  const r = await runKafkaTool('DumpLogSegments', ['--files', segments.join(',')])
  assert.equal(r.code, 0, r.stderr)
  return [...r.stdout.matchAll(/compresscodec: (\w+)/g)].map((m) => m[1]!.toLowerCase())
}

describe('every --kafka-compression codec, read back by the Java console consumer', () => {
  let broker: KafkaBroker
  let dir: string
  const real = loadFrames()
  const frames: ReplayFrame[] = real.map((bytes) => ({ seq: seqOf(bytes), bytes }))
  const expected = expectedLines(real)

  before(async () => {
    // A broker of its own: DumpLogSegments reads its data directory.
    broker = await startKafka()
    dir = await mkdtemp(join(tmpdir(), 'atkafka-codecs-'))
  })
  after(async () => {
    await broker?.stop()
    await rm(dir, { recursive: true, force: true })
  })

  for (const codec of CODECS) {
    it(`${codec}: exactly the events produced, every stored batch ${codec}`, async (t) => {
      const relay = await startReplayRelay({ frames })
      t.after(() => relay.close().catch(() => {}))
      const topic = `codec-${codec}`
      const cursorFile = join(dir, `${codec}.json`)
      const p = await spawnAtkafka([
        ...relayToKafka(relay.url, broker.bootstrap, topic),
        ...['--topic-partitions', '4', '--kafka-compression', codec, '--cursor-file', cursorFile],
      ])
      try {
        await eventually(
          async () => (await cursorSeq(cursorFile)) === LAST_SEQ,
          60000,
          'cursor at the last seq',
        )
        p.child.kill('SIGTERM')
        assert.equal(await p.exited, 0, p.stderr())
      } finally {
        p.child.kill('SIGKILL')
      }
      assert.match(p.stdout(), new RegExp(`"compression":"${codec}"`))

      const read = await runKafkaTool(
        'ConsoleConsumer',
        consoleConsumerArgs({
          bootstrap: broker.bootstrap,
          topic,
          timeoutMs: 5000,
          formatter: { 'print.key': 'true', 'key.separator': '\t' },
        }),
      )
      assert.match(read.stderr, new RegExp(`Processed a total of ${expected.length} messages`))
      const lines = read.stdout.split('\n').filter((l) => l !== '')
      assert.deepEqual(lines.sort(), expected, `the ${codec} topic as the Java consumer reads it`)

      const codecs = await storedCodecs(broker, topic)
      assert.ok(codecs.length > 0, 'no record batch found')
      assert.deepEqual(
        [...new Set(codecs)],
        [codec],
        `codecs of ${codecs.length} batches (Kafka ${kafkaVersion()})`,
      )
    })
  }
})

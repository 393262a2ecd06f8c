// Topic routing (--output-topic as a template), --kafka-headers and --no-create-topics against
// a real broker, on the replayed relay capture.
import assert from 'node:assert/strict'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { type AtKafkaEvent, keyOf, kindOf } from '../src/events.ts'
import { decodeFrame, type FirehoseMessage } from '../src/firehose/frame.ts'
import { splitMessage } from '../src/firehose/split.ts'
import { headersOf, metaOf } from '../src/output.ts'
import { TopicTemplate } from '../src/sink/topic-template.ts'
import { type ConsumedMessage, consumeAll, listTopics } from './harness/kafka.ts'
import { eventually, relayToKafka, spawnAtkafka } from './support/atkafka.ts'
import { loadFrames } from './support/fixtures.ts'
import { type ReplayFrame, startReplayRelay } from './support/replay-relay.ts'
import { validateHeaders } from './support/schema.ts'

const bootstrap = process.env.KAFKA_BOOTSTRAP_SERVERS
const LAST_SEQ = 31527015471

interface Expected {
  event: AtKafkaEvent
  seq: number | undefined
  key: string
  value: string
}

function seqOf(frame: Uint8Array): number | undefined {
  const m = decodeFrame(frame)
  return m.type === 'error' || m.type === '#info' ? undefined : m.seq
}

/** Every event relay mode produces for `frames`, in stream order, with its frame's seq. */
function expectedEvents(frames: readonly Uint8Array[]): Expected[] {
  return frames.flatMap((f) =>
    splitMessage(decodeFrame(f) as FirehoseMessage, () => true).events.map((event) => ({
      event,
      seq: seqOf(f),
      key: keyOf(event),
      value: JSON.stringify(event),
    })),
  )
}

async function cursorSeq(path: string): Promise<number | undefined> {
  try {
    return (JSON.parse(await readFile(path, 'utf8')) as { seq: number }).seq
  } catch {
    return undefined
  }
}

const fatalLines = (stderr: string) => stderr.split('\n').filter((l) => l.startsWith('atkafka:'))

describe('topic routing and headers against a real broker', () => {
  let dir: string
  const real = loadFrames()
  const frames: ReplayFrame[] = real.map((bytes) => ({ seq: seqOf(bytes), bytes }))

  before(async () => {
    assert.ok(bootstrap, 'KAFKA_BOOTSTRAP_SERVERS must point at the test broker (npm test sets it)')
    dir = await mkdtemp(join(tmpdir(), 'atkafka-routing-'))
  })
  after(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  it('routed.{collection} with --kafka-headers: every event in its topic with its headers, nothing lost, per-DID order kept in each topic', async (t) => {
    const relay = await startReplayRelay({ frames })
    t.after(() => relay.close().catch(() => {}))
    const cursorFile = join(dir, 'routed.json')
    const template = 'routed.{collection}'
    const p = await spawnAtkafka([
      ...relayToKafka(relay.url, bootstrap!, template),
      '--kafka-headers',
      '--topic-partitions',
      '4',
      '--cursor-file',
      cursorFile,
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

    const want = expectedEvents(real)
    const topicOf = (e: AtKafkaEvent) =>
      TopicTemplate.parse(template).render(
        kindOf(e),
        'operation' in e ? e.operation.collection : undefined,
      )
    const byTopic = new Map<string, Expected[]>()
    for (const w of want) {
      const topic = topicOf(w.event)
      byTopic.set(topic, [...(byTopic.get(topic) ?? []), w])
    }
    assert.ok(byTopic.has('routed.app.bsky.feed.post'))
    assert.ok(byTopic.has('routed.identity'), 'events that are not operations: their kind')
    assert.ok(byTopic.size >= 4, `several topics (${[...byTopic.keys()].join(', ')})`)

    const created = (await listTopics(bootstrap!)).filter((n) => n.startsWith('routed.'))
    assert.deepEqual(created.sort(), [...byTopic.keys()].sort(), 'exactly the topics used')

    let total = 0
    for (const [topic, expected] of byTopic) {
      const got: ConsumedMessage[] = await consumeAll(bootstrap!, topic, {
        expected: expected.length,
        timeoutMs: 30000,
      })
      total += got.length
      assert.deepEqual(
        got.map((m) => `${m.key}\t${m.value}`).sort(),
        expected.map((w) => `${w.key}\t${w.value}`).sort(),
        `${topic}: exactly its events`,
      )
      // consumeAll returns each partition in offset order: per-DID order within the topic.
      const seen = new Map<string, string[]>()
      for (const m of got) seen.set(m.key!, [...(seen.get(m.key!) ?? []), m.value])
      for (const [key, values] of seen) {
        assert.deepEqual(
          values,
          expected.filter((w) => w.key === key).map((w) => w.value),
          `${topic}: order of ${key}`,
        )
      }
      const headersByValue = new Map(
        expected.map((w) => [w.value, headersOf(metaOf(w.event, String(w.seq)))]),
      )
      for (const m of got) {
        assert.deepEqual(m.headers, headersByValue.get(m.value), `${topic}: headers`)
        validateHeaders(m.headers)
      }
    }
    assert.equal(total, want.length, 'nothing lost, nothing twice')
    const post = want.find((w) => 'operation' in w.event)!
    assert.deepEqual(Object.keys(headersOf(metaOf(post.event, '1'))), [
      'atkafka-kind',
      'atkafka-did',
      'atkafka-collection',
      'atkafka-action',
      'atkafka-cursor',
      'atkafka-time',
    ])
  })

  it('--no-create-topics: a missing topic (routed on first use, or the one topic at start) exits 1 with one line naming it', async (t) => {
    const relay = await startReplayRelay({ frames })
    t.after(() => relay.close().catch(() => {}))
    const template = TopicTemplate.parse('absent.{collection}')
    const possible = new Set(
      expectedEvents(real).map(({ event: e }) =>
        template.render(kindOf(e), 'operation' in e ? e.operation.collection : undefined),
      ),
    )
    const routed = await spawnAtkafka([
      ...relayToKafka(relay.url, bootstrap!, 'absent.{collection}'),
      '--no-create-topics',
      '--cursor-file',
      join(dir, 'absent.json'),
    ])
    assert.equal(await routed.exited, 1, routed.stderr())
    const lines = fatalLines(routed.stderr())
    assert.equal(lines.length, 1, routed.stderr())
    const m =
      /^atkafka: KafkaFatalError: Kafka topic "([^"]+)" does not exist and topic creation is off \(--no-create-topics\): create it, or drop --no-create-topics$/.exec(
        lines[0]!,
      )
    assert.ok(m !== null && possible.has(m[1]!), lines[0])
    assert.equal(await cursorSeq(join(dir, 'absent.json')), undefined, 'nothing committed')

    const fixed = await spawnAtkafka(
      [
        ...relayToKafka(relay.url, bootstrap!, 'absent-fixed'),
        '--cursor-file',
        join(dir, 'absent-fixed.json'),
      ],
      { env: { ATKAFKA_CREATE_TOPICS: 'false' } },
    )
    assert.equal(await fixed.exited, 1, fixed.stderr())
    assert.deepEqual(fatalLines(fixed.stderr()), [
      'atkafka: KafkaFatalError: Kafka topic "absent-fixed" does not exist and topic creation is off (--no-create-topics): create it, or drop --no-create-topics',
    ])
    const topics = await listTopics(bootstrap!)
    assert.ok(!topics.some((n) => n.startsWith('absent')), 'no topic created')
  })
})

// Fault 5: 10,000 mutations of the real relay frames (../shared/fixtures), sent between good
// frames on one connection: the process never dies, every bad frame is counted, and the good
// frames' events all reach Kafka.
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { keyOf } from '../../src/events.ts'
import { decodeFrame } from '../../src/firehose/frame.ts'
import { splitMessage } from '../../src/firehose/split.ts'
import { consumeAll } from '../harness/kafka.ts'
import { eventually, httpGet, metricValue, spawnAtkafka, relayToKafka } from '../support/atkafka.ts'
import { report, tally } from '../support/faults.ts'
import { loadFrames } from '../support/fixtures.ts'
import { reseqFrame } from '../support/frames.ts'
import { type Mutation, mutateFrame, prng } from '../support/mutate.ts'
import { type ReplayFrame, startReplayRelay } from '../support/replay-relay.ts'

const bootstrap = process.env.KAFKA_BOOTSTRAP_SERVERS
const MUTATIONS = 10000
const SEED = 20260704

/** What relay mode must do with a frame, by the same pure decoder it runs. */
interface Expected {
  decodeErrors: number
  errorFrames: number
  unknown: number
  dropped: number
  messages: string[]
}

function expectFrom(frames: readonly Uint8Array[]): Expected {
  const out: Expected = { decodeErrors: 0, errorFrames: 0, unknown: 0, dropped: 0, messages: [] }
  for (const bytes of frames) {
    try {
      const frame = decodeFrame(bytes)
      if (frame.type === 'error') {
        out.errorFrames++
        continue
      }
      if (frame.type === 'unknown') out.unknown++
      const result = splitMessage(frame, () => true)
      out.dropped += result.dropped.length
      for (const e of result.events) out.messages.push(`${keyOf(e)}\t${JSON.stringify(e)}`)
    } catch {
      out.decodeErrors++
    }
  }
  return out
}

describe('fault: fuzzed relay frames', () => {
  let dir: string
  before(async () => {
    assert.ok(bootstrap, 'KAFKA_BOOTSTRAP_SERVERS must point at the test broker (npm test sets it)')
    dir = await mkdtemp(join(tmpdir(), 'atkafka-fault-fuzz-'))
  })
  after(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  it(`${MUTATIONS} mutated frames: never dies, each bad frame counted, good ones flow`, async () => {
    const real = loadFrames()
    const rand = prng(SEED)
    const good: Uint8Array[] = []
    const bad: Uint8Array[] = []
    const kinds = new Map<Mutation, number>()
    const frames: ReplayFrame[] = []
    // A good frame (a real one under its own seq and DIDs), then ten mutations of good frames.
    for (let i = 0; bad.length < MUTATIONS; i++) {
      const seq = 1000 + i
      const bytes = reseqFrame(real[i % real.length]!, seq, `z${Math.floor(i / real.length)}`)
      good.push(bytes)
      frames.push({ seq, bytes })
      for (let j = 0; j < 10; j++) {
        const base = good[Math.floor(rand() * good.length)]!
        const other = real[Math.floor(rand() * real.length)]!
        const { kind, bytes: mutated } = mutateFrame(base, other, rand)
        kinds.set(kind, (kinds.get(kind) ?? 0) + 1)
        bad.push(mutated)
        frames.push({ seq: undefined, bytes: mutated })
      }
    }
    const lastSeq = 1000 + good.length
    good.push(reseqFrame(real[0]!, lastSeq, 'zend'))
    frames.push({ seq: lastSeq, bytes: good.at(-1)! })

    const fromGood = expectFrom(good)
    const fromBad = expectFrom(bad)
    assert.equal(fromGood.decodeErrors + fromGood.dropped, 0)
    const relay = await startReplayRelay({ frames })
    const topic = 'faults-fuzz'
    const p = await spawnAtkafka([
      ...relayToKafka(relay.url, bootstrap!, topic),
      '--topic-partitions',
      '8',
      '--cursor-file',
      join(dir, 'cursor.json'),
    ])
    let metrics = ''
    try {
      await eventually(
        async () => {
          metrics = (await httpGet(p.metricsPort, '/metrics').catch(() => ({ body: '' }))).body
          return metricValue(metrics, 'atkafka_cursor_seq') === lastSeq
        },
        120000,
        'the last good frame acknowledged',
      )
      assert.equal(p.child.exitCode, null, 'atkafka is still running')
      p.child.kill('SIGTERM')
      assert.equal(await p.exited, 0, p.stderr().slice(-2000))
    } finally {
      p.child.kill('SIGKILL')
      await relay.close()
    }

    const total = fromGood.messages.length + fromBad.messages.length
    console.log(
      `fuzz (seed ${SEED}): ${bad.length} mutations (${[...kinds].map(([k, n]) => `${k} ${n}`).join(', ')}); ` +
        `${fromBad.decodeErrors} undecodable, ${fromBad.errorFrames} error frames, ` +
        `${fromBad.unknown} unknown types, ${fromBad.dropped} ops dropped, ` +
        `${fromBad.messages.length} events from frames that still decode`,
    )
    assert.equal(metricValue(metrics, 'atkafka_reconnects'), 0, 'one connection throughout')
    assert.equal(metricValue(metrics, 'atkafka_decode_errors'), fromBad.decodeErrors)
    assert.equal(metricValue(metrics, 'atkafka_relay_errors'), fromBad.errorFrames)
    assert.equal(metricValue(metrics, 'atkafka_skipped_messages'), fromBad.unknown)
    assert.equal(metricValue(metrics, 'atkafka_dropped_events'), fromBad.dropped)
    assert.equal(metricValue(metrics, 'atkafka_produced_events', { status: 'ok' }), total)

    const got = await consumeAll(bootstrap!, topic, {
      expected: total,
      idleMs: 1000,
      timeoutMs: 60000,
    })
    assert.equal(got.length, total)
    const ids = got.map((m) => `${m.key}\t${m.value}`)
    // Sent: the good frames' events and those of the mutated frames that still decode.
    const t = tally([...fromGood.messages, ...fromBad.messages], ids)
    report(
      'fuzz',
      t,
      `${good.length} good frames (${fromGood.messages.length} events), ${bad.length} mutated frames: ` +
        `${fromBad.decodeErrors + fromBad.errorFrames + fromBad.unknown} counted as bad frames, ` +
        `${fromBad.dropped} ops dropped and counted, ${fromBad.messages.length} events`,
    )
    assert.equal(t.lost, 0)
    assert.equal(t.duplicated, 0)
    assert.equal(tally(fromGood.messages, ids).lost, 0, 'every good event arrived')
  })
})

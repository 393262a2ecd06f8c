import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { decodeFrame, type FirehoseMessage } from '../src/firehose/frame.ts'
import { splitMessage } from '../src/firehose/split.ts'
import { keyOf } from '../src/events.ts'
import { consumeAll } from './harness/kafka.ts'
import { eventually, httpGet, metricValue, spawnAtkafka, relayToKafka } from './support/atkafka.ts'
import { loadFrames } from './support/fixtures.ts'
import { encodeFrame, reseqFrame } from './support/frames.ts'
import { type ReplayFrame, startReplayRelay } from './support/replay-relay.ts'
import { validateEvent, validateOspreyEvent } from './support/schema.ts'

const bootstrap = process.env.KAFKA_BOOTSTRAP_SERVERS
const LAST_SEQ = 31527015471

function seqOf(frame: Uint8Array): number | undefined {
  const m = decodeFrame(frame)
  return m.type === 'error' || m.type === '#info' ? undefined : m.seq
}

/** The messages relay mode must produce for `frames`: key and plain JSON value each. */
function expectedMessages(frames: readonly Uint8Array[]): Array<{ key: string; value: string }> {
  return frames.flatMap((f) =>
    splitMessage(decodeFrame(f) as FirehoseMessage, () => true).events.map((e) => ({
      key: keyOf(e),
      value: JSON.stringify(e),
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

const sortKV = (xs: Array<{ key: string | null; value: string }>) =>
  xs.map((m) => `${m.key}\t${m.value}`).sort()

describe('relay mode into a real Kafka broker', () => {
  let dir: string
  const real = loadFrames()
  const realFrames: ReplayFrame[] = real.map((bytes) => ({ seq: seqOf(bytes), bytes }))

  before(async () => {
    assert.ok(bootstrap, 'KAFKA_BOOTSTRAP_SERVERS must point at the test broker (npm test sets it)')
    dir = await mkdtemp(join(tmpdir(), 'atkafka-relay-'))
  })
  after(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  it('produces exactly the per-op events of the real capture, keyed by DID; restart adds nothing', async (t) => {
    const relay = await startReplayRelay({ frames: realFrames })
    t.after(() => relay.close().catch(() => {}))
    const topic = 'relay-exact'
    const cursorFile = join(dir, 'exact.json')
    const args = [
      ...relayToKafka(relay.url, bootstrap!, topic),
      '--topic-partitions',
      '8',
      '--cursor-file',
      cursorFile,
    ]
    const first = await spawnAtkafka(args)
    try {
      await eventually(
        async () => (await cursorSeq(cursorFile)) === LAST_SEQ,
        60000,
        'cursor at the last seq',
      )
      const metrics = (await httpGet(first.metricsPort, '/metrics')).body
      assert.equal(metricValue(metrics, 'atkafka_produced_events', { status: 'ok' }), 152)
      assert.equal(
        metricValue(metrics, 'atkafka_handled_events', { action_name: 'operation#create' }),
        144,
      )
      assert.equal(metricValue(metrics, 'atkafka_handled_events', { action_name: 'identity' }), 1)
      assert.equal((await httpGet(first.metricsPort, '/health')).status, 200)
      assert.equal((await httpGet(first.metricsPort, '/ready')).status, 200)
      first.child.kill('SIGTERM')
      assert.equal(await first.exited, 0)
    } finally {
      first.child.kill('SIGKILL')
    }
    const got = await consumeAll(bootstrap!, topic, { expected: 152, timeoutMs: 30000 })
    assert.equal(got.length, 152)
    assert.deepEqual(sortKV(got), sortKV(expectedMessages(real)))
    for (const m of got) validateEvent(JSON.parse(m.value))
    // Per-DID order: messages of one key appear in the order of the stream.
    const want = expectedMessages(real)
    const byKey = new Map<string, string[]>()
    for (const m of got.sort(
      (a, b) => a.partition - b.partition || Number(BigInt(a.offset) - BigInt(b.offset)),
    )) {
      byKey.set(m.key!, [...(byKey.get(m.key!) ?? []), m.value])
    }
    for (const [key, values] of byKey) {
      assert.deepEqual(
        values,
        want.filter((w) => w.key === key).map((w) => w.value),
      )
    }

    // A graceful stop saved the last seq: a restart resumes there and produces nothing new.
    const second = await spawnAtkafka(args)
    try {
      await second.waitFor(/resuming from the saved cursor/)
      await eventually(() => relay.connections === 2, 20000, 'second connection')
      await new Promise((r) => setTimeout(r, 1000))
      second.child.kill('SIGTERM')
      assert.equal(await second.exited, 0)
    } finally {
      second.child.kill('SIGKILL')
      await relay.close()
    }
    assert.deepEqual(relay.cursors, [undefined, LAST_SEQ])
    const again = await consumeAll(bootstrap!, topic, { idleMs: 1000, timeoutMs: 20000 })
    assert.equal(again.length, 152, 'no duplicates after a graceful restart')
  })

  it('into a new 200-partition topic: no warning or error line at start', async (t) => {
    const relay = await startReplayRelay({ frames: realFrames })
    t.after(() => relay.close().catch(() => {}))
    const topic = `relay-new-${randomUUID()}`
    const cursorFile = join(dir, 'new-topic.json')
    const p = await spawnAtkafka([
      ...relayToKafka(relay.url, bootstrap!, topic),
      '--topic-partitions',
      '200',
      '--cursor-file',
      cursorFile,
    ])
    try {
      await eventually(
        async () => (await cursorSeq(cursorFile)) === LAST_SEQ,
        60000,
        'cursor at the last seq',
      )
      await new Promise((r) => setTimeout(r, 2000))
      p.child.kill('SIGTERM')
      assert.equal(await p.exited, 0)
    } finally {
      p.child.kill('SIGKILL')
    }
    const lines = p
      .stdout()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { level: number; msg: string })
    assert.match(p.stdout(), /created topic/)
    const loud = lines.filter((l) => l.level >= 40)
    assert.deepEqual(loud, [], 'warning or error lines')
  })

  it("at-kafka's command-line layout (flags at three levels, repeated list flags) gives the same messages as atkafka's own", async (t) => {
    const relay = await startReplayRelay({ frames: realFrames })
    t.after(() => relay.close().catch(() => {}))
    const kept = new Set(['app.bsky.feed.post', 'app.bsky.feed.like'])
    const want = expectedMessages(real).filter((m) => {
      const op = (JSON.parse(m.value) as { operation?: { collection: string } }).operation
      return op === undefined || kept.has(op.collection)
    })
    const run = async (args: string[], cursorFile: string) => {
      const p = await spawnAtkafka(args)
      try {
        await eventually(
          async () => (await cursorSeq(cursorFile)) === LAST_SEQ,
          60000,
          'cursor at the last seq',
        )
        p.child.kill('SIGTERM')
        assert.equal(await p.exited, 0, p.stderr().slice(-2000))
      } finally {
        p.child.kill('SIGKILL')
      }
    }
    const ownFile = join(dir, 'layout-own.json')
    await run(
      relayToKafka(relay.url, bootstrap!, 'relay-layout-own', [
        '--topic-partitions',
        '8',
        '--cursor-file',
        ownFile,
        '--watched-collections',
        'app.bsky.feed.post,app.bsky.feed.like',
      ]),
      ownFile,
    )
    const goFile = join(dir, 'layout-go.json')
    await run(
      [
        '--bootstrap-servers',
        bootstrap!,
        '--output-topic',
        'relay-layout-go',
        '--debug=false',
        'firehose',
        '--relay-host',
        relay.url,
        '--osprey-compatible=false',
        '--watched-collections',
        'app.bsky.feed.post',
        '-watched-collections',
        'app.bsky.feed.like',
        '--no-event-metadata',
        'relay',
        '-topic-partitions',
        '8',
        '--cursor-file',
        goFile,
      ],
      goFile,
    )
    const own = await consumeAll(bootstrap!, 'relay-layout-own', { expected: want.length })
    const go = await consumeAll(bootstrap!, 'relay-layout-go', { expected: want.length })
    assert.ok(want.length > 0 && want.length < real.length * 2)
    assert.equal(go.length, want.length)
    assert.deepEqual(sortKV(go), sortKV(want))
    const placed = (xs: typeof go) => xs.map((m) => `${m.partition}\t${m.key}\t${m.value}`).sort()
    assert.deepEqual(placed(go), placed(own), 'same keys, values and partitions')
  })

  it('--stdout writes the same messages as Kafka receives', async () => {
    const relay = await startReplayRelay({ frames: realFrames })
    const p = await spawnAtkafka([
      'firehose',
      'relay',
      '--no-event-metadata',
      '--stdout',
      '--relay-host',
      relay.url,
      '--cursor-file',
      join(dir, 'stdout.json'),
    ])
    try {
      await eventually(
        () => p.stdout().split('\n').filter(Boolean).length >= 152,
        30000,
        '152 lines',
      )
      p.child.kill('SIGTERM')
      assert.equal(await p.exited, 0)
    } finally {
      p.child.kill('SIGKILL')
      await relay.close()
    }
    const lines = p.stdout().split('\n').filter(Boolean)
    assert.equal(lines.length, 152)
    assert.deepEqual(
      lines.sort(),
      expectedMessages(real)
        .map((m) => m.value)
        .sort(),
    )
    assert.doesNotMatch(p.stdout(), /"level"/, 'logs stay on stderr')
    assert.match(p.stderr(), /"msg":"stopped"/)
  })

  it('SIGKILL mid-stream, restart: every op present at least once', async () => {
    // 4,500 distinct frames: the real capture 30 times over, each copy under other DIDs.
    const frames: ReplayFrame[] = []
    let seq = 1000
    for (let copy = 0; copy < 30; copy++) {
      for (const f of real) {
        seq++
        frames.push({ seq, bytes: reseqFrame(f, seq, `k${copy}`) })
      }
    }
    const lastSeq = seq
    const relay = await startReplayRelay({ frames, pace: { burst: 10, intervalMs: 10 } })
    const topic = 'relay-kill'
    const cursorFile = join(dir, 'kill.json')
    const args = [
      ...relayToKafka(relay.url, bootstrap!, topic),
      '--topic-partitions',
      '8',
      '--cursor-file',
      cursorFile,
      '--max-in-flight',
      '500',
      // Three producers over eight partitions: producers share partitions, frames complete out
      // of order, and the cursor must still only move over frames wholly acknowledged.
      '--kafka-producers',
      '3',
    ]
    const kills: number[] = []
    try {
      for (let round = 0; round < 3; round++) {
        const p = await spawnAtkafka(args)
        const before = (await cursorSeq(cursorFile)) ?? 0
        await eventually(
          async () => ((await cursorSeq(cursorFile)) ?? 0) > before,
          60000,
          'progress',
        )
        await new Promise((r) => setTimeout(r, Math.random() * 300))
        p.child.kill('SIGKILL')
        await p.exited
        kills.push((await cursorSeq(cursorFile)) ?? 0)
        if (kills.at(-1) === lastSeq) break
      }
      const last = await spawnAtkafka(args)
      await last.waitFor(/connected to relay/)
      await eventually(
        async () => (await cursorSeq(cursorFile)) === lastSeq,
        90000,
        'cursor at the end',
      )
      last.child.kill('SIGTERM')
      assert.equal(await last.exited, 0)
    } finally {
      await relay.close()
    }
    const want = expectedMessages(frames.map((f) => f.bytes))
    const got = await consumeAll(bootstrap!, topic, {
      expected: want.length,
      idleMs: 2000,
      timeoutMs: 60000,
    })
    const have = new Set(got.map((m) => `${m.key}\t${m.value}`))
    const missing = want.filter((m) => !have.has(`${m.key}\t${m.value}`))
    const duplicates = got.length - have.size
    console.log(
      `SIGKILL test: ${want.length} ops sent, ${got.length} received, ${missing.length} lost, ${duplicates} duplicated, kills at cursor ${kills.join(', ')}`,
    )
    assert.equal(missing.length, 0)
    // Resumed connections asked for the saved cursor.
    assert.ok(relay.cursors.slice(1).every((c) => c !== undefined && c >= 1000))
  })

  it('Osprey mode: unique exact action ids, UTC send_time', async () => {
    const relay = await startReplayRelay({ frames: realFrames })
    const p = await spawnAtkafka([
      'firehose',
      'relay',
      '--no-event-metadata',
      '--stdout',
      '--osprey-compatible',
      '--osprey-worker-id',
      '7',
      '--relay-host',
      relay.url,
      '--cursor-file',
      join(dir, 'osprey.json'),
    ])
    try {
      await eventually(
        () => p.stdout().split('\n').filter(Boolean).length >= 152,
        30000,
        '152 lines',
      )
      p.child.kill('SIGTERM')
      await p.exited
    } finally {
      p.child.kill('SIGKILL')
      await relay.close()
    }
    const lines = p.stdout().split('\n').filter(Boolean)
    const ids = lines.map((l) => /"action_id":(\d+),/.exec(l)![1]!)
    assert.equal(new Set(ids).size, lines.length)
    for (const l of lines) {
      const o = JSON.parse(l) as { send_time: string; data: { action_name: string; data: unknown } }
      assert.match(o.send_time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/)
      validateOspreyEvent(o)
    }
    assert.equal(lines.filter((l) => l.includes('"action_name":"operation#delete"')).length, 4)
  })
})

describe('relay misbehaving', () => {
  it('FutureCursor: drops the cursor loudly and continues live', async () => {
    const frames = loadFrames()
      .slice(0, 5)
      .map((bytes) => ({ seq: seqOf(bytes), bytes }))
    const relay = await startReplayRelay({
      frames,
      onConnection: ({ ws, cursor }) => {
        if (cursor === 99999999999) {
          ws.send(
            encodeFrame({ op: -1 }, { error: 'FutureCursor', message: 'Cursor in the future.' }),
          )
          ws.close(1008, 'FutureCursor')
        }
      },
    })
    const dir = await mkdtemp(join(tmpdir(), 'atkafka-future-'))
    const p = await spawnAtkafka([
      'firehose',
      'relay',
      '--no-event-metadata',
      '--stdout',
      '--relay-host',
      relay.url,
      '--cursor',
      '99999999999',
      '--cursor-file',
      join(dir, 'c.json'),
    ])
    try {
      await eventually(
        () => p.stdout().split('\n').filter(Boolean).length >= 5,
        30000,
        'live events',
      )
      assert.match(p.stderr(), /DROPPING the cursor/)
      const metrics = (await httpGet(p.metricsPort, '/metrics')).body
      assert.equal(metricValue(metrics, 'atkafka_relay_errors', { error: 'FutureCursor' }), 1)
      p.child.kill('SIGTERM')
      assert.equal(await p.exited, 0)
    } finally {
      p.child.kill('SIGKILL')
      await relay.close()
      await rm(dir, { recursive: true, force: true })
    }
    assert.deepEqual(relay.cursors.slice(0, 2), [99999999999, undefined])
  })

  it('ignores a cursor file saved for another relay host', async () => {
    const frames = loadFrames()
      .slice(0, 3)
      .map((bytes) => ({ seq: seqOf(bytes), bytes }))
    const relay = await startReplayRelay({ frames })
    const dir = await mkdtemp(join(tmpdir(), 'atkafka-host-'))
    const cursorFile = join(dir, 'c.json')
    await writeFile(cursorFile, JSON.stringify({ host: 'wss://elsewhere.example', seq: 5 }))
    const p = await spawnAtkafka([
      'firehose',
      'relay',
      '--no-event-metadata',
      '--stdout',
      '--relay-host',
      relay.url,
      '--cursor-file',
      cursorFile,
    ])
    try {
      await eventually(() => p.stdout().split('\n').filter(Boolean).length >= 3, 30000, 'events')
      assert.match(p.stderr(), /belongs to another relay/)
      p.child.kill('SIGTERM')
      assert.equal(await p.exited, 0)
    } finally {
      p.child.kill('SIGKILL')
      await relay.close()
    }
    assert.deepEqual(relay.cursors, [undefined])
    const saved = JSON.parse(await readFile(cursorFile, 'utf8')) as { host: string; seq: number }
    assert.deepEqual([saved.host, saved.seq], [relay.url, frames[2]!.seq])
    await rm(dir, { recursive: true, force: true })
  })

  it('garbage, truncated and unknown frames are counted and skipped; drops reconnect from the last seq', async () => {
    const real = loadFrames().slice(0, 20)
    const frames: ReplayFrame[] = []
    real.forEach((bytes, i) => {
      frames.push({ seq: seqOf(bytes), bytes })
      if (i === 3) frames.push({ seq: undefined, bytes: Uint8Array.from([0xff, 0xfe, 0x00]) })
      if (i === 5) frames.push({ seq: undefined, bytes: bytes.subarray(0, bytes.length >> 1) })
      if (i === 7)
        frames.push({ seq: undefined, bytes: encodeFrame({ op: 1, t: '#mystery' }, { x: 1 }) })
    })
    const relay = await startReplayRelay({ frames, dropAfter: 12 })
    const dir = await mkdtemp(join(tmpdir(), 'atkafka-garbage-'))
    const p = await spawnAtkafka([
      'firehose',
      'relay',
      '--no-event-metadata',
      '--stdout',
      '--relay-host',
      relay.url,
      '--cursor-file',
      join(dir, 'c.json'),
    ])
    try {
      const want = expectedMessages(real).length
      await eventually(
        () => p.stdout().split('\n').filter(Boolean).length >= want,
        30000,
        'all good events',
      )
      const metrics = (await httpGet(p.metricsPort, '/metrics')).body
      assert.ok(metricValue(metrics, 'atkafka_decode_errors') >= 2)
      assert.equal(metricValue(metrics, 'atkafka_skipped_messages', { type: 'unknown' }), 1)
      assert.ok(metricValue(metrics, 'atkafka_reconnects') >= 1)
      p.child.kill('SIGTERM')
      assert.equal(await p.exited, 0)
      const lines = p.stdout().split('\n').filter(Boolean)
      assert.deepEqual(
        [...new Set(lines)].sort(),
        expectedMessages(real)
          .map((m) => m.value)
          .sort(),
      )
    } finally {
      p.child.kill('SIGKILL')
      await relay.close()
      await rm(dir, { recursive: true, force: true })
    }
    // The second connection resumed after the last frame the first one delivered.
    assert.equal(relay.cursors[0], undefined)
    assert.equal(typeof relay.cursors[1], 'number')
  })
})

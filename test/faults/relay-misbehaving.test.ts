// Fault 3: a relay that misbehaves in every way a connection can (reset, FIN without a close
// frame, close frames with odd or invalid codes, error frames, garbage instead of WebSocket
// framing, a truncated WebSocket frame, a 5 MB frame, a frame over the limit, one byte at a
// time, refused handshakes): atkafka reconnects with backoff, never crashes, counts every case
// in its metrics, and every event of the stream still reaches Kafka.
// (test/relay-kafka.test.ts covers FutureCursor and undecodable frames inside a good stream.)
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { keyOf } from '../../src/events.ts'
import { decodeFrame, type FirehoseMessage } from '../../src/firehose/frame.ts'
import { splitMessage } from '../../src/firehose/split.ts'
import { consumeAll } from '../harness/kafka.ts'
import { eventually, httpGet, metricValue, spawnAtkafka, relayToKafka } from '../support/atkafka.ts'
import { report, tally } from '../support/faults.ts'
import { loadFrames } from '../support/fixtures.ts'
import { commitFrame, encodeFrame, reseqFrame } from '../support/frames.ts'
import {
  type Behaviour,
  type RawConnection,
  closePayload,
  startRawRelay,
  wsFrame,
} from '../support/raw-relay.ts'
import type { ReplayFrame } from '../support/replay-relay.ts'

const bootstrap = process.env.KAFKA_BOOTSTRAP_SERVERS

/** Exact messages (key and value) relay mode produces for these frames. */
function messagesOf(frames: readonly Uint8Array[]): string[] {
  return frames.flatMap((f) =>
    splitMessage(decodeFrame(f) as FirehoseMessage, () => true).events.map(
      (e) => `${keyOf(e)}\t${JSON.stringify(e)}`,
    ),
  )
}

describe('fault: a relay that misbehaves', () => {
  let dir: string
  before(async () => {
    assert.ok(bootstrap, 'KAFKA_BOOTSTRAP_SERVERS must point at the test broker (npm test sets it)')
    dir = await mkdtemp(join(tmpdir(), 'atkafka-fault-relay-'))
  })
  after(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  it('reconnects with backoff, never crashes, counts each case; every event arrives', async () => {
    // The real capture three times (seq 10, 20, …: room for extra frames in between).
    const real = loadFrames()
    const stream: ReplayFrame[] = []
    for (let copy = 0; copy < 3; copy++) {
      for (const f of real) {
        const seq = (stream.length + 1) * 10
        stream.push({ seq, bytes: reseqFrame(f, seq, copy === 0 ? '' : `m${copy}`) })
      }
    }
    // A frame of 5 MB: five records of about 1 MB each (the protocol's limits).
    const bigRecords = Array.from({ length: 5 }, (_, i) => ({
      action: 'create' as const,
      path: `app.bsky.feed.post/big${i}`,
      record: {
        $type: 'app.bsky.feed.post',
        text: String(i).repeat(995_000),
        createdAt: '2026-01-01T00:00:00.000Z',
      },
    }))
    const extra: Uint8Array[] = []
    const fiveMb = (seq: number) => {
      const bytes = commitFrame({ seq, repo: 'did:plc:bigframe', ops: bigRecords })
      extra.push(bytes)
      return bytes
    }

    const frames = (n: number) => (c: RawConnection) => c.sendFrames(n)
    const then =
      (...steps: Array<(c: RawConnection) => Promise<void> | void>): Behaviour =>
      async (c) => {
        for (const step of steps) await step(c)
      }
    const close =
      (code: number, reason = '') =>
      (c: RawConnection) =>
        c.close(closePayload(code, reason))
    const cases: Array<{ name: string; reason: string; behaviour: Behaviour }> = [
      { name: 'TCP reset', reason: 'close-1006', behaviour: then(frames(20), (c) => c.reset()) },
      {
        name: 'TCP FIN without a close frame',
        reason: 'close-1006',
        behaviour: then(frames(20), (c) => void c.socket.end()),
      },
      {
        name: 'close 1011',
        reason: 'close-1011',
        behaviour: then(frames(20), close(1011, 'internal error')),
      },
      {
        name: 'close 4000 (application code)',
        reason: 'close-other',
        behaviour: then(frames(20), close(4000, 'custom')),
      },
      {
        name: 'close 1000 mid-stream',
        reason: 'close-1000',
        behaviour: then(frames(20), close(1000)),
      },
      {
        name: 'close 1005, a code never sent on the wire',
        reason: 'error',
        behaviour: then(frames(20), close(1005)),
      },
      {
        name: 'close frame with a 1-byte payload',
        reason: 'error',
        behaviour: then(frames(20), (c) => c.close(Uint8Array.of(3))),
      },
      {
        name: 'ConsumerTooSlow error frame',
        reason: 'close-1008',
        behaviour: then(
          frames(20),
          (c) => c.binary(encodeFrame({ op: -1 }, { error: 'ConsumerTooSlow', message: 'slow' })),
          close(1008, 'ConsumerTooSlow'),
        ),
      },
      {
        name: 'unknown error frame',
        reason: 'close-1011',
        behaviour: then(
          frames(20),
          (c) => c.binary(encodeFrame({ op: -1 }, { error: 'InternalServerError' })),
          close(1011),
        ),
      },
      {
        name: 'malformed error frame, garbage, text and truncated messages between good ones',
        reason: 'close-1000',
        behaviour: then(
          frames(10),
          (c) => c.binary(encodeFrame({ op: -1 }, { error: 42 })),
          (c) => c.binary(randomBytes(100)),
          (c) => c.write(wsFrame(0x1, Buffer.from('not a frame'))),
          (c) => c.binary(real[7]!.subarray(0, real[7]!.length >> 1)),
          frames(10),
          close(1000),
        ),
      },
      {
        name: 'garbage instead of WebSocket framing (reserved opcode)',
        reason: 'error',
        behaviour: then(frames(20), (c) => c.write(Buffer.from([0x83, 0x05, 1, 2, 3, 4, 5]))),
      },
      {
        name: 'a masked frame from the server',
        reason: 'error',
        behaviour: then(frames(20), (c) => c.write(Buffer.from([0x82, 0x83, 1, 2, 3, 4, 9, 9, 9]))),
      },
      {
        name: 'truncated WebSocket frame',
        reason: 'close-1006',
        behaviour: then(
          frames(20),
          (c) => c.write(Buffer.concat([wsFrame(0x2, Buffer.alloc(100_000)).subarray(0, 600)])),
          (c) => void c.socket.end(),
        ),
      },
      {
        name: '5 MB frame',
        reason: 'close-1000',
        behaviour: then(
          frames(20),
          (c) => c.binary(fiveMb(c.lastSeq! + 1)),
          frames(20),
          close(1000),
        ),
      },
      {
        name: 'frame over the 8 MB limit',
        reason: 'frame-too-large',
        behaviour: then(frames(20), (c) => c.binary(randomBytes(9 * 1024 * 1024)).catch(() => {})),
      },
      {
        name: 'one byte at a time',
        reason: 'close-1006',
        behaviour: then(
          (c) => c.sendFrames(5, { byteByByte: true }),
          frames(20),
          (c) => c.reset(),
        ),
      },
      // Three failures in a row without a frame: the backoff grows.
      { name: 'handshake refused (503)', reason: 'error', behaviour: { refuse: 503 } },
      { name: 'handshake refused again (503)', reason: 'error', behaviour: { refuse: 503 } },
      {
        name: 'close 1013 (try again later) before any frame',
        reason: 'close-other',
        behaviour: close(1013, 'try again later'),
      },
    ]
    const relay = await startRawRelay({
      frames: stream,
      behaviours: cases.map((c) => c.behaviour),
    })
    const topic = 'faults-relay-misbehaving'
    const cursorFile = join(dir, 'cursor.json')
    const p = await spawnAtkafka([
      ...relayToKafka(relay.url, bootstrap!, topic),
      '--topic-partitions',
      '8',
      '--cursor-file',
      cursorFile,
    ])
    let metrics = ''
    try {
      await eventually(
        () => relay.connections.length > cases.length,
        120000,
        `${cases.length} misbehaving connections, then a good one`,
      )
      await eventually(
        async () => {
          metrics = (await httpGet(p.metricsPort, '/metrics')).body
          return metricValue(metrics, 'atkafka_cursor_seq') === stream.at(-1)!.seq
        },
        60000,
        'the cursor at the end of the stream',
      )
      assert.equal(p.child.exitCode, null, 'atkafka is still running')
      assert.equal((await httpGet(p.metricsPort, '/health')).status, 200)
      assert.equal((await httpGet(p.metricsPort, '/ready')).status, 200)
      p.child.kill('SIGTERM')
      assert.equal(await p.exited, 0, p.stderr())
    } finally {
      p.child.kill('SIGKILL')
      await relay.close()
    }
    assert.deepEqual(relay.errors, [])

    // Every case counted under its reason.
    const expected = new Map<string, number>()
    for (const c of cases) expected.set(c.reason, (expected.get(c.reason) ?? 0) + 1)
    for (const [reason, n] of expected) {
      assert.equal(
        metricValue(metrics, 'atkafka_reconnects', { reason }),
        n,
        `reconnects{reason="${reason}"}`,
      )
    }
    assert.equal(metricValue(metrics, 'atkafka_reconnects'), cases.length)
    assert.equal(metricValue(metrics, 'atkafka_relay_errors', { error: 'ConsumerTooSlow' }), 1)
    assert.equal(metricValue(metrics, 'atkafka_relay_errors', { error: 'other' }), 1)
    assert.equal(metricValue(metrics, 'atkafka_decode_errors', { reason: 'text-frame' }), 1)
    assert.equal(metricValue(metrics, 'atkafka_decode_errors'), 4)

    // Backoff: about 0.5 s after a connection that delivered frames; doubling after each
    // connection without any (0.5–1 s, 1–2 s, 2–4 s, with jitter).
    const at = relay.connections.map((c) => c.at)
    const gap = (i: number) => at[i + 1]! - at[i]!
    const n = cases.length
    const noFrames = [gap(n - 3), gap(n - 2), gap(n - 1)]
    console.log(
      `relay misbehaving: ${n} cases; gaps after the three failures without frames ${noFrames.join(', ')} ms`,
    )
    assert.ok(noFrames[0]! >= 500 && noFrames[0]! <= 1000 + 1500, `gap ${noFrames[0]}`)
    assert.ok(noFrames[1]! >= 1000 && noFrames[1]! <= 2000 + 1500, `gap ${noFrames[1]}`)
    assert.ok(noFrames[2]! >= 2000 && noFrames[2]! <= 4000 + 1500, `gap ${noFrames[2]}`)
    // Each reconnect resumed after the last frame received.
    for (const [i, c] of relay.connections.entries()) {
      if (i > 0) assert.notEqual(c.cursor, undefined, `connection ${i} sent a cursor`)
    }

    const want = messagesOf([...stream.map((f) => f.bytes), ...extra])
    const got = await consumeAll(bootstrap!, topic, {
      expected: want.length,
      idleMs: 1000,
      timeoutMs: 60000,
    })
    const t = tally(
      want,
      got.map((m) => `${m.key}\t${m.value}`),
    )
    report(
      'relay-misbehaving',
      t,
      `${n} misbehaving connections, the 5 MB frame's ${bigRecords.length} events included`,
    )
    assert.equal(t.lost, 0, `lost: ${t.missing.map((m) => m.slice(0, 120)).join(', ')}`)
  })
})

// Shutdown with the broker frozen (SIGSTOP) and messages in flight: after --shutdown-timeout
// atkafka exits, with code 1, and its cursor covers only what Kafka acknowledged.
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { type KafkaBroker, consumeAll, startKafka } from '../harness/kafka.ts'
import { eventually, httpGet, metricValue, spawnAtkafka, relayToKafka } from '../support/atkafka.ts'
import { cursorSeq, idsOf, sleep, syntheticStream } from '../support/faults.ts'
import { startReplayRelay } from '../support/replay-relay.ts'

const SHUTDOWN_TIMEOUT_S = 3
/**
 * What "a few seconds" after the timeout may take: closing the client (given up after 2 s), the
 * final cursor save, and the last-resort exit 2 s after main returned.
 */
const GRACE_S = 8

describe('fault: SIGINT while the Kafka broker is frozen', () => {
  let broker: KafkaBroker
  let dir: string
  before(async () => {
    // A broker of its own: the shared one must never be frozen.
    broker = await startKafka()
    dir = await mkdtemp(join(tmpdir(), 'atkafka-fault-frozen-'))
  })
  after(async () => {
    broker?.signal('SIGCONT')
    await broker?.stop()
    await rm(dir, { recursive: true, force: true })
  })

  it(`exits 1 within --shutdown-timeout ${SHUTDOWN_TIMEOUT_S}s + ${GRACE_S}s, cursor only over acknowledged events`, async () => {
    const firstSeq = 1
    const stream = syntheticStream({ commits: 20000, opsPerCommit: 1, tag: 'frozen', firstSeq })
    const relay = await startReplayRelay({
      frames: stream.frames,
      pace: { burst: 20, intervalMs: 10 },
    })
    const cursorFile = join(dir, 'cursor.json')
    const topic = 'faults-frozen-shutdown'
    const p = await spawnAtkafka(
      relayToKafka(relay.url, broker.bootstrap, topic, [
        '--topic-partitions',
        '4',
        '--cursor-file',
        cursorFile,
        '--shutdown-timeout',
        `${SHUTDOWN_TIMEOUT_S}s`,
      ]),
    )
    try {
      await p.waitFor(/metrics server listening/)
      const produced = async () =>
        metricValue((await httpGet(p.metricsPort, '/metrics')).body, 'atkafka_produced_events', {
          status: 'ok',
        })
      await eventually(async () => (await produced()) >= 500, 60000, '500 events in Kafka')
      broker.signal('SIGSTOP')
      // The relay keeps sending: messages pile up unacknowledged.
      await sleep(1500)
      const inFlight = metricValue(
        (await httpGet(p.metricsPort, '/metrics')).body,
        'atkafka_in_flight',
      )
      const started = Date.now()
      p.child.kill('SIGINT')
      const code = await Promise.race([p.exited, sleep((SHUTDOWN_TIMEOUT_S + 20) * 1000)])
      const seconds = (Date.now() - started) / 1000
      if (code === undefined) {
        const logs = (p.stdout() + p.stderr())
          .split('\n')
          .filter((l) => l.startsWith('{'))
          .map((l) => JSON.parse(l) as { time: string; msg: string; component?: string })
          .filter((l) => Date.parse(l.time) >= started - 1000)
          .map((l) => `${l.time} ${l.component ?? ''} ${l.msg}`)
        assert.fail(`still running ${seconds} s after SIGINT:\n${logs.slice(-40).join('\n')}`)
      }
      console.log(
        `frozen broker: exit ${code} ${seconds.toFixed(1)} s after SIGINT (in flight ${inFlight}, timeout ${SHUTDOWN_TIMEOUT_S} s)`,
      )
      assert.equal(code, 1, p.stderr().slice(-3000))
      assert.ok(seconds < SHUTDOWN_TIMEOUT_S + GRACE_S, `exited after ${seconds} s`)
      assert.match(p.stdout(), /shutdown timed out with unacknowledged messages/)
      assert.match(p.stdout(), /"msg":"stopped"/)
      assert.match(p.stderr(), /atkafka: ShutdownTimeoutError: shutdown timed out after 3000 ms/)
    } finally {
      p.child.kill('SIGKILL')
      broker.signal('SIGCONT')
      await relay.close()
    }
    const cursor = await cursorSeq(cursorFile)
    assert.ok(cursor !== undefined && cursor >= firstSeq, 'a cursor was saved before the freeze')
    const got = new Set(idsOf(await consumeAll(broker.bootstrap, topic, { timeoutMs: 60000 })))
    const covered = stream.uris.slice(0, cursor - firstSeq + 1)
    const missing = covered.filter((uri) => !got.has(`${uri}#create`))
    assert.deepEqual(
      missing,
      [],
      `events at or below the saved cursor ${cursor} missing from Kafka`,
    )
    assert.ok(cursor < stream.lastSeq, 'the cursor did not reach the end of the stream')
  })
})

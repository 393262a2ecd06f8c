// Fault 4: the Kafka broker stops answering for 60 s (frozen with SIGSTOP: connections hang,
// nothing is refused) while the relay keeps offering frames: reading pauses, memory stays
// bounded, and nothing is lost once the broker is back.
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { type KafkaBroker, consumeAll, startKafka } from '../harness/kafka.ts'
import { eventually, httpGet, metricValue, spawnAtkafka, relayToKafka } from '../support/atkafka.ts'
import {
  cursorSeq,
  idsOf,
  report,
  sampleRss,
  sleep,
  syntheticStream,
  tally,
} from '../support/faults.ts'
import { startReplayRelay } from '../support/replay-relay.ts'

const OUTAGE_MS = 60000
const MAX_IN_FLIGHT = 10000
/** The stated bound on atkafka's resident memory during the outage (README). */
const RSS_BOUND = 384 * 1024 * 1024

const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(0)} MB`

describe('fault: Kafka unreachable for 60 s while the relay keeps sending', () => {
  let broker: KafkaBroker
  let dir: string
  before(async () => {
    broker = await startKafka()
    dir = await mkdtemp(join(tmpdir(), 'atkafka-fault-outage-'))
  })
  after(async () => {
    broker?.signal('SIGCONT')
    await broker?.stop()
    await rm(dir, { recursive: true, force: true })
  })

  it(`reading pauses, RSS stays under ${mb(RSS_BOUND)}, nothing lost after recovery`, async () => {
    // 40,000 ops of 2 KB (84 MB) offered at about 1,250 ops/s.
    const stream = syntheticStream({
      commits: 8000,
      opsPerCommit: 5,
      tag: 'out',
      textBytes: 2000,
    })
    const relay = await startReplayRelay({
      frames: stream.frames,
      pace: { burst: 5, intervalMs: 20 },
    })
    const cursorFile = join(dir, 'cursor.json')
    const topic = 'faults-broker-outage'
    const p = await spawnAtkafka([
      ...relayToKafka(relay.url, broker.bootstrap, topic),
      '--topic-partitions',
      '8',
      '--cursor-file',
      cursorFile,
      '--max-in-flight',
      String(MAX_IN_FLIGHT),
    ])
    const rss = sampleRss(p.child.pid!)
    const metrics = async () => (await httpGet(p.metricsPort, '/metrics')).body
    let outageRss = 0
    let rssBefore = 0
    let maxInFlight = 0
    const sentLate: number[] = []
    let handledLate: number[] = []
    let reconnectsDuring = 0
    try {
      await eventually(
        async () =>
          metricValue(await metrics().catch(() => ''), 'atkafka_produced_events', {
            status: 'ok',
          }) >= 5000,
        60000,
        '5,000 ops in Kafka',
      )
      rssBefore = rss.max()
      const reconnectsBefore = metricValue(await metrics(), 'atkafka_reconnects')
      broker.signal('SIGSTOP')
      const frozenAt = Date.now()
      const outage = sampleRss(p.child.pid!)
      try {
        // A produce request that hangs this long turns /ready to 503 (10 s, and then some).
        await eventually(
          async () => (await httpGet(p.metricsPort, '/ready')).status === 503,
          20000,
          '/ready 503 while the broker hangs',
        )
        while (Date.now() - frozenAt < OUTAGE_MS) {
          const text = await metrics()
          maxInFlight = Math.max(maxInFlight, metricValue(text, 'atkafka_in_flight'))
          // After 20 s atkafka reads nothing (what the relay sends meanwhile fills the socket
          // buffers of the kernel, 32 MB and more on Linux).
          if (Date.now() - frozenAt > 20000) {
            sentLate.push(relay.sent)
            handledLate.push(metricValue(text, 'atkafka_handled_events'))
          }
          assert.equal(p.child.exitCode, null, 'atkafka is still running')
          await sleep(1000)
        }
        assert.equal((await httpGet(p.metricsPort, '/ready')).status, 503)
        reconnectsDuring = metricValue(await metrics(), 'atkafka_reconnects') - reconnectsBefore
      } finally {
        outage.stop()
        broker.signal('SIGCONT')
      }
      outageRss = outage.max()
      console.log(
        `outage: RSS ${mb(rssBefore)} before, at most ${mb(outageRss)} during 60 s; ` +
          `in flight at most ${maxInFlight}; relay sent ${sentLate[0]} → ${sentLate.at(-1)} frames ` +
          `over the last 40 s; ${reconnectsDuring} relay reconnects`,
      )
      await eventually(
        async () => (await cursorSeq(cursorFile)) === stream.lastSeq,
        180000,
        'the cursor at the end of the stream',
      )
      assert.equal((await httpGet(p.metricsPort, '/ready')).status, 200)
      p.child.kill('SIGTERM')
      assert.equal(await p.exited, 0, p.stderr())
    } finally {
      rss.stop()
      p.child.kill('SIGKILL')
      await relay.close()
    }
    handledLate = [...new Set(handledLate)]
    assert.equal(handledLate.length, 1, `reading paused: handled ${handledLate.join(' → ')}`)
    assert.ok(maxInFlight <= MAX_IN_FLIGHT * 1.1, `in flight ${maxInFlight}`)
    assert.ok(outageRss < RSS_BOUND, `RSS ${mb(outageRss)} during the outage`)
    assert.equal(reconnectsDuring, 0, 'a paused connection is not dropped as idle')
    const got = await consumeAll(broker.bootstrap, topic, {
      expected: stream.uris.length,
      idleMs: 2000,
      timeoutMs: 90000,
    })
    const t = tally(
      stream.uris.map((u) => `${u}#create`),
      idsOf(got),
    )
    report(
      'broker-unreachable-60s',
      t,
      `RSS ${mb(rssBefore)} before, at most ${mb(outageRss)} during the outage (bound ${mb(RSS_BOUND)}), ${mb(rss.max())} while catching up; max-in-flight ${MAX_IN_FLIGHT}, 2 KB events`,
    )
    assert.equal(t.lost, 0, `lost: ${t.missing.slice(0, 5).join(', ')}`)
  })
})

// Fault 1: the Kafka broker is killed with SIGKILL while relay mode streams 50,000 ops, and
// restarted 10 s later: every op reaches Kafka at least once, atkafka stays up, and /ready
// says 503 while the broker is down.
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { type KafkaBroker, consumeAll, startKafka } from '../harness/kafka.ts'
import { eventually, httpGet, metricValue, spawnAtkafka, relayToKafka } from '../support/atkafka.ts'
import { cursorSeq, idsOf, report, sleep, syntheticStream, tally } from '../support/faults.ts'
import { startReplayRelay } from '../support/replay-relay.ts'

describe('fault: Kafka broker killed with SIGKILL mid-stream', () => {
  let broker: KafkaBroker
  let dir: string
  before(async () => {
    broker = await startKafka()
    dir = await mkdtemp(join(tmpdir(), 'atkafka-fault-broker-'))
  })
  after(async () => {
    await broker?.stop()
    await rm(dir, { recursive: true, force: true })
  })

  it('50,000 ops, broker down 10 s: all present, atkafka up, /ready 503 meanwhile', async () => {
    const stream = syntheticStream({ commits: 5000, tag: 'bk' })
    // About 2,500 ops/s: the kill lands mid-stream.
    const relay = await startReplayRelay({
      frames: stream.frames,
      pace: { burst: 5, intervalMs: 20 },
    })
    const cursorFile = join(dir, 'cursor.json')
    const topic = 'faults-broker-kill'
    const p = await spawnAtkafka([
      ...relayToKafka(relay.url, broker.bootstrap, topic),
      '--topic-partitions',
      '8',
      '--cursor-file',
      cursorFile,
    ])
    const metric = async (name: string, labels?: Record<string, string>) =>
      metricValue((await httpGet(p.metricsPort, '/metrics')).body, name, labels)
    let producedAtKill = 0
    let readyWhileDown: number[] = []
    try {
      await eventually(
        async () =>
          (await metric('atkafka_produced_events', { status: 'ok' }).catch(() => 0)) >= 10000,
        60000,
        '10,000 ops in Kafka',
      )
      assert.equal((await httpGet(p.metricsPort, '/ready')).status, 200)
      producedAtKill = await metric('atkafka_produced_events', { status: 'ok' })
      const killedAt = Date.now()
      await broker.kill()
      // /ready turns 503 once produce requests fail, and stays so until the broker is back.
      await eventually(
        async () => (await httpGet(p.metricsPort, '/ready')).status === 503,
        9000,
        '/ready 503 after the kill',
      )
      while (Date.now() - killedAt < 10000) {
        readyWhileDown.push((await httpGet(p.metricsPort, '/ready')).status)
        assert.equal((await httpGet(p.metricsPort, '/health')).status, 200)
        assert.equal(p.child.exitCode, null, 'atkafka is still running')
        await sleep(500)
      }
      const inFlightWhileDown = await metric('atkafka_in_flight')
      await broker.start()
      console.log(
        `broker back ${((Date.now() - killedAt) / 1000).toFixed(1)} s after the kill; ` +
          `${inFlightWhileDown} messages were waiting`,
      )
      await eventually(
        async () => (await cursorSeq(cursorFile)) === stream.lastSeq,
        120000,
        'the cursor at the end of the stream',
      )
      assert.equal((await httpGet(p.metricsPort, '/ready')).status, 200)
      assert.ok((await metric('atkafka_produce_retries')) > 0, 'failed produce requests retried')
      readyWhileDown = [...new Set(readyWhileDown)]
      p.child.kill('SIGTERM')
      assert.equal(await p.exited, 0, p.stderr())
    } finally {
      p.child.kill('SIGKILL')
      await relay.close()
    }
    assert.deepEqual(readyWhileDown, [503], '/ready said 503 all the time the broker was down')
    const got = await consumeAll(broker.bootstrap, topic, {
      expected: stream.uris.length,
      idleMs: 2000,
      timeoutMs: 90000,
    })
    const t = tally(
      stream.uris.map((u) => `${u}#create`),
      idsOf(got),
    )
    report('broker-sigkill', t, `broker killed after ${producedAtKill} ops were acknowledged`)
    assert.equal(t.lost, 0, `lost: ${t.missing.slice(0, 5).join(', ')}`)
  })
})

// Fault 2: atkafka killed with SIGKILL at five random points of a stream and restarted each
// time: nothing is lost, and each kill repeats at most --max-in-flight events.
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { consumeAll } from '../harness/kafka.ts'
import { eventually, httpGet, metricValue, spawnAtkafka, relayToKafka } from '../support/atkafka.ts'
import { cursorSeq, idsOf, report, sleep, syntheticStream, tally } from '../support/faults.ts'
import { startReplayRelay } from '../support/replay-relay.ts'

const bootstrap = process.env.KAFKA_BOOTSTRAP_SERVERS
const MAX_IN_FLIGHT = 1000
const KILLS = 5

describe('fault: atkafka killed with SIGKILL at five random points', () => {
  let dir: string
  before(async () => {
    assert.ok(bootstrap, 'KAFKA_BOOTSTRAP_SERVERS must point at the test broker (npm test sets it)')
    dir = await mkdtemp(join(tmpdir(), 'atkafka-fault-kill-'))
  })
  after(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  it(`loses nothing; each kill repeats at most --max-in-flight (${MAX_IN_FLIGHT}) events`, async () => {
    // 50,000 ops at about 3,000 ops/s while connected: the stream outlasts the five kills.
    const stream = syntheticStream({ commits: 5000, tag: 'kill' })
    const relay = await startReplayRelay({
      frames: stream.frames,
      pace: { burst: 6, intervalMs: 20 },
    })
    const cursorFile = join(dir, 'cursor.json')
    // Each run writes its own topic: what a run repeats of the runs before is exactly what the
    // kill before it made it read again.
    const topic = (run: number) => `faults-kill-${run}`
    const args = (run: number) => [
      ...relayToKafka(relay.url, bootstrap!, topic(run)),
      '--topic-partitions',
      '8',
      '--cursor-file',
      cursorFile,
      '--max-in-flight',
      String(MAX_IN_FLIGHT),
    ]
    const killedAt: Array<{ afterMs: number; savedSeq: number | undefined }> = []
    try {
      for (let run = 0; run < KILLS; run++) {
        const p = await spawnAtkafka(args(run))
        try {
          await eventually(
            async () => {
              const m = await httpGet(p.metricsPort, '/metrics').catch(() => undefined)
              return (
                m !== undefined &&
                metricValue(m.body, 'atkafka_produced_events') > 0 &&
                (await cursorSeq(cursorFile)) !== undefined
              )
            },
            60000,
            `run ${run} producing`,
          )
          const afterMs = Math.round(Math.random() * 1500)
          await sleep(afterMs)
          assert.equal(p.child.exitCode, null, `run ${run} still running before the kill`)
          p.child.kill('SIGKILL')
          assert.equal(await p.exited, 'SIGKILL')
          killedAt.push({ afterMs, savedSeq: await cursorSeq(cursorFile) })
        } finally {
          p.child.kill('SIGKILL')
        }
      }
      assert.ok(
        (killedAt.at(-1)!.savedSeq ?? 0) < stream.lastSeq,
        'the last kill came before the end of the stream',
      )
      const last = await spawnAtkafka(args(KILLS))
      try {
        await eventually(
          async () => (await cursorSeq(cursorFile)) === stream.lastSeq,
          120000,
          'the cursor at the end of the stream',
        )
        last.child.kill('SIGTERM')
        assert.equal(await last.exited, 0, last.stderr())
      } finally {
        last.child.kill('SIGKILL')
      }
    } finally {
      await relay.close()
    }

    const runs: string[][] = []
    for (let run = 0; run <= KILLS; run++) {
      runs.push(idsOf(await consumeAll(bootstrap!, topic(run), { idleMs: 1000, timeoutMs: 60000 })))
    }
    // Kill k made run k+1 repeat what runs 0..k had already written.
    const perKill: number[] = []
    const seen = new Set<string>(runs[0])
    for (let run = 1; run <= KILLS; run++) {
      let repeated = 0
      for (const id of runs[run]!) if (seen.has(id)) repeated++
      perKill.push(repeated)
      for (const id of runs[run]!) seen.add(id)
    }
    const sent = stream.uris.map((u) => `${u}#create`)
    const t = tally(sent, runs.flat())
    report(
      'atkafka-sigkill',
      t,
      `max-in-flight ${MAX_IN_FLIGHT}; repeated per kill ${perKill.join(', ')}; killed ${killedAt
        .map((k) => `${k.afterMs} ms after the first ack (saved seq ${k.savedSeq})`)
        .join(', ')}; resumed at cursors ${relay.cursors.slice(1).join(', ')}`,
    )
    assert.equal(t.lost, 0, `lost: ${t.missing.slice(0, 5).join(', ')}`)
    for (const [k, n] of perKill.entries()) {
      assert.ok(n <= MAX_IN_FLIGHT, `kill ${k + 1} repeated ${n} events (> ${MAX_IN_FLIGHT})`)
    }
    // Every resumed connection asked for a saved cursor.
    assert.ok(relay.cursors.slice(1).every((c) => c !== undefined))
  })
})

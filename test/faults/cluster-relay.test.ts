// Cluster faults in relay mode: a replayed capture streams into a three-broker KRaft cluster
// (RF 3, min.insync.replicas 2) while brokers are killed, restarted one by one, or taken down;
// every partition is read back after each scenario (lost, duplicated, per-DID order). One
// cluster serves all scenarios, each on its own topic, fully in sync before the next starts.
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import type { KafkaCluster } from '../harness/kafka-cluster.ts'
import {
  type RelayRun,
  busiestLeader,
  counted,
  mb,
  readBack,
  secs,
  startFaultCluster,
  startRelayRun,
} from '../support/cluster-faults.ts'
import { eventually } from '../support/atkafka.ts'
import { report, sleep } from '../support/faults.ts'

const ONE_DOWN_MS = 60_000
const TWO_DOWN_MS = 15_000
const MAX_IN_FLIGHT = 2000
/** The bound on atkafka's resident memory the README states for an outage. */
const RSS_BOUND = 384 * 1024 * 1024

describe('cluster faults: relay mode into three brokers (RF 3, min.insync.replicas 2)', () => {
  let cluster: KafkaCluster
  let dir: string
  const runs: RelayRun[] = []

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'atkafka-cluster-relay-'))
    const t0 = Date.now()
    cluster = await startFaultCluster()
    console.log(`cluster of 3 (Kafka ${cluster.version}) up in ${secs(Date.now() - t0)}`)
  })
  after(async () => {
    for (const r of runs) await r.close()
    await Promise.all(cluster?.nodes.map((n) => n.kill()) ?? [])
    if (dir) await rm(dir, { recursive: true, force: true })
  })

  async function run(o: Omit<Parameters<typeof startRelayRun>[0], 'cluster' | 'dir'>) {
    const r = await startRelayRun({ cluster, dir, ...o })
    runs.push(r)
    return r
  }

  /** Read everything back, print the figures, assert 0 lost and per-DID order. */
  async function check(r: RelayRun, scenario: string, extra: string) {
    const b = await readBack(cluster.bootstrap, r.topic, r.ids)
    report(scenario, b, `${extra}; peak RSS ${mb(r.peakRss())}`)
    assert.equal(b.lost, 0, `lost: ${b.missing.slice(0, 5).join(', ')}`)
    assert.deepEqual(b.outOfOrder, [], 'per-DID order')
  }

  it('SIGKILL of the leader of the busiest partitions mid-stream, back 10 s later: 0 lost, order kept', async () => {
    // 30,000 ops at about 2,500 ops/s.
    const r = await run({ topic: 'cluster-leader-kill', commits: 3000, commitsPer20Ms: 5 })
    await eventually(async () => (await r.produced()) >= 8000, 60_000, '8,000 ops in Kafka')
    const target = await busiestLeader(cluster, r.topic, r.keys, 8)
    const node = cluster.node(target.node)
    const atKill = await r.produced()
    const killedAt = Date.now()
    await node.kill()
    await sleep(10_000)
    await node.start()
    const back = Date.now()
    assert.equal(await r.finish(), 0, r.p.stderr())
    const retries = r.final('atkafka_produce_retries')
    await cluster.waitForFullIsr({ topics: [r.topic] })
    const spans = r.ready.notReadySpans(killedAt)
    const notReady = spans.reduce((a, s) => a + s.ms, 0)
    await r.close()
    await check(
      r,
      'cluster-leader-sigkill',
      `node ${target.node} (leader of partitions ${target.partitions.join(',')}, ` +
        `${(target.share * 100).toFixed(0)}% of the ops) killed after ${atKill} acknowledged, ` +
        `restarted 10 s later (serving ${secs(back - killedAt)} after the kill); ` +
        `/ready 503 for ${secs(notReady)} (${spans.length} spans); ${retries} produce retries`,
    )
  })

  it('rolling restart of all three brokers (SIGTERM, ISR back, next) during 50,000 ops: 0 lost, /ready 200 throughout', async () => {
    // 50,000 ops at about 1,000 ops/s.
    const r = await run({ topic: 'cluster-rolling', commits: 5000, commitsPer20Ms: 2 })
    await eventually(async () => (await r.produced()) >= 5000, 60_000, '5,000 ops in Kafka')
    const from = Date.now()
    const steps: string[] = []
    const atStop: number[] = []
    for (const node of cluster.nodes) {
      const t0 = Date.now()
      atStop.push(await r.produced())
      await node.stop()
      const stopped = Date.now()
      await node.start()
      const isr = await cluster.waitForFullIsr({ topics: [r.topic] })
      steps.push(
        `node ${node.nodeId}: stop ${secs(stopped - t0)}, ` +
          `start + ISR ${secs(Date.now() - stopped)} (ISR wait ${secs(isr)})`,
      )
    }
    const rolled = Date.now()
    assert.equal(await r.finish(), 0, r.p.stderr())
    const failures = r.produceFailures()
    const spans = r.ready.notReadySpans(from)
    const samples = r.ready.between(from, rolled).length
    await r.close()
    await check(
      r,
      'cluster-rolling-restart',
      `restart of 3 nodes took ${secs(rolled - from)} (${steps.join('; ')}); ` +
        `SIGTERMs after ${atStop.join(', ')} ops acknowledged; /ready non-200 in ` +
        `${spans.length} spans (longest ${secs(Math.max(0, ...spans.map((s) => s.ms)))}) ` +
        `of ${samples} samples; failed produce requests: ${counted(failures)}`,
    )
    assert.ok(atStop.at(-1)! < r.ids.length, 'every broker restarted mid-stream')
    assert.deepEqual(
      spans,
      [],
      `/ready not 200 during the rolling restart: ${r.ready.reasons(from)}`,
    )
  })

  it(`one broker down ${secs(ONE_DOWN_MS)} (min.insync.replicas 2): production continues on the other two`, async () => {
    // 60,000 ops at about 750 ops/s: the stream outlasts the outage.
    const r = await run({
      topic: 'cluster-one-down',
      commits: 12000,
      opsPerCommit: 5,
      commitsPer20Ms: 3,
    })
    await eventually(async () => (await r.produced()) >= 5000, 60_000, '5,000 ops in Kafka')
    const target = await busiestLeader(cluster, r.topic, r.keys, 8)
    const node = cluster.node(target.node)
    const killedAt = Date.now()
    await node.kill()
    // Leaderships move once the controller drops the node (broker.session.timeout.ms, 6 s).
    await eventually(
      async () => {
        const parts = await cluster.partitions(r.topic).catch(() => [])
        return parts.length === 8 && parts.every((p) => p.leader > 0 && p.leader !== node.nodeId)
      },
      30_000,
      'every partition led by the two nodes left',
    )
    const moved = Date.now()
    // Then production goes on: ready, and ops acknowledged, for the rest of the outage.
    await eventually(async () => r.ready.between(Date.now() - 150).some((s) => s.status === 200))
    const steadyFrom = Date.now()
    const producedFrom = await r.produced()
    await sleep(Math.max(0, ONE_DOWN_MS - (Date.now() - killedAt)))
    const producedTo = await r.produced()
    const steadyTo = Date.now()
    const isrDuring = (await cluster.partitions(r.topic).catch(() => [])).map((p) => p.isr.length)
    await node.start()
    assert.equal(await r.finish(), 0, r.p.stderr())
    await cluster.waitForFullIsr({ topics: [r.topic] })
    const steadySpans = r.ready.notReadySpans(steadyFrom).filter((s) => s.start < steadyTo)
    const firstSpan = r.ready.notReadySpans(killedAt)[0]
    await r.close()
    const rate = (producedTo - producedFrom) / ((steadyTo - steadyFrom) / 1000)
    await check(
      r,
      'cluster-one-broker-down',
      `node ${target.node} down ${secs(ONE_DOWN_MS)}; leaders moved ${secs(moved - killedAt)} ` +
        `after the kill, /ready 503 for ${secs(firstSpan?.ms ?? 0)} then 200; ` +
        `${producedTo - producedFrom} ops acknowledged over the ${secs(steadyTo - steadyFrom)} ` +
        `after (${rate.toFixed(0)} ops/s) with ISR sizes ${[...new Set(isrDuring)].join(',')}`,
    )
    assert.ok(producedTo - producedFrom > 0, 'ops acknowledged with one broker down')
    assert.ok(producedTo < r.ids.length, 'the stream outlasted the outage')
    assert.deepEqual(steadySpans, [], 'ready while the two nodes carry the topic')
  })

  it(`two brokers down ${secs(TWO_DOWN_MS)} (below min.insync.replicas): reading pauses, /ready 503, in flight bounded, everything arrives after`, async () => {
    // 30,000 ops at about 2,500 ops/s.
    const r = await run({
      topic: 'cluster-two-down',
      commits: 3000,
      commitsPer20Ms: 5,
      extra: ['--max-in-flight', String(MAX_IN_FLIGHT)],
    })
    await eventually(async () => (await r.produced()) >= 5000, 60_000, '5,000 ops in Kafka')
    const target = await busiestLeader(cluster, r.topic, r.keys, 8)
    const down = cluster.nodes.filter((n) => n.nodeId !== target.node).slice(0, 1)
    down.unshift(cluster.node(target.node))
    const atKill = await r.produced()
    const downAt = Date.now()
    await Promise.all(down.map((n) => n.kill()))
    let first503 = 0
    await eventually(
      async () => r.ready.between(downAt).some((s) => s.status === 503),
      30_000,
      '/ready 503',
    )
    first503 = r.ready.between(downAt).find((s) => s.status === 503)!.at - downAt
    const handled: number[] = []
    let maxInFlight = 0
    while (Date.now() - downAt < TWO_DOWN_MS) {
      handled.push(await r.metric('atkafka_handled_events'))
      maxInFlight = Math.max(maxInFlight, await r.metric('atkafka_in_flight'))
      await sleep(500)
    }
    const reasons = r.ready.reasons(downAt)
    const producedDown = (await r.produced()) - atKill
    const restartAt = Date.now()
    await Promise.all(down.map((n) => n.start()))
    const upAt = Date.now()
    assert.equal(await r.finish(), 0, r.p.stderr())
    const caughtUp = Date.now()
    await cluster.waitForFullIsr({ topics: [r.topic] })
    const stalled = handled.slice(-Math.floor(handled.length / 2))
    await r.close()
    await check(
      r,
      'cluster-two-brokers-down',
      `nodes ${down.map((n) => n.nodeId).join(',')} killed after ${atKill} ops ` +
        `acknowledged (${producedDown} more while down), restarted ${secs(restartAt - downAt)} later (serving after ` +
        `${secs(upAt - downAt)}); ` +
        `/ready 503 ${secs(first503)} after the kill ("${reasons[0]}"); ` +
        `reading paused at ${stalled[0]} handled, at most ${maxInFlight} in flight ` +
        `(--max-in-flight ${MAX_IN_FLIGHT}); caught up ${secs(caughtUp - upAt)} after the restart`,
    )
    assert.equal(new Set(stalled).size, 1, `reading paused: handled ${stalled.join(' → ')}`)
    assert.ok(maxInFlight <= MAX_IN_FLIGHT * 1.1, `in flight ${maxInFlight}`)
    assert.ok(r.peakRss() < RSS_BOUND, `peak RSS ${mb(r.peakRss())}`)
    assert.ok(
      reasons.some((x) => /output is not acknowledging/.test(x)),
      `503 says why: ${reasons.join(' | ')}`,
    )
  })
})

// Cluster fault in Tap mode: the real Tap backfills repos of a real PDS into atkafka, producing
// to a three-broker KRaft cluster (RF 3, min.insync.replicas 2); the leader of the busiest
// partition is killed with SIGKILL mid-backfill and restarted 10 s later. Tap events are acked
// only after Kafka has their messages (checked on every /metrics sample), Tap's outbox drains,
// and every record is in Kafka.
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import type { KafkaCluster } from '../harness/kafka-cluster.ts'
import { type PdsHandle, type TestAccount, createAccount, startPds } from '../harness/pds.ts'
import { type TapHandle, startTap } from '../harness/tap.ts'
import {
  type AtkafkaProcess,
  eventually,
  httpGet,
  metricValue,
  spawnAtkafka,
} from '../support/atkafka.ts'
import {
  ReadyWatch,
  busiestLeader,
  mb,
  readBack,
  secs,
  startFaultCluster,
} from '../support/cluster-faults.ts'
import { report, sampleRss, sleep } from '../support/faults.ts'

const ACCOUNTS = 6
const POSTS = 300

/** `n` posts in one repo (applyWrites, 100 per commit); their URIs, in order. */
async function posts(account: TestAccount, n: number): Promise<string[]> {
  const uris: string[] = []
  for (let start = 0; start < n; start += 100) {
    const writes = Array.from({ length: Math.min(100, n - start) }, (_, i) => ({
      $type: 'com.atproto.repo.applyWrites#create' as const,
      collection: 'app.bsky.feed.post',
      value: {
        $type: 'app.bsky.feed.post',
        text: `backfill ${start + i}`,
        createdAt: new Date().toISOString(),
      },
    }))
    const res = await account.agent.com.atproto.repo.applyWrites({ repo: account.did, writes })
    for (const r of res.data.results ?? []) {
      if ('uri' in r && typeof r.uri === 'string') uris.push(r.uri)
    }
  }
  return uris
}

describe('cluster fault: Tap mode, leader killed mid-backfill', () => {
  let cluster: KafkaCluster
  let pds: PdsHandle
  let tap: TapHandle
  let p: AtkafkaProcess | undefined

  before(async () => {
    ;[cluster, pds] = await Promise.all([startFaultCluster(), startPds()])
    // Tap's default retry timeout (60 s): a redelivery would only mean atkafka never answered.
    tap = await startTap({ relayUrl: pds.pdsUrl, plcUrl: pds.plcUrl })
  })
  after(async () => {
    p?.child.kill('SIGKILL')
    await tap?.close()
    await pds?.close()
    await Promise.all(cluster?.nodes.map((n) => n.kill()) ?? [])
  })

  it('every Tap event acked only after Kafka has it; 0 lost', async () => {
    const accounts = await Promise.all(
      Array.from({ length: ACCOUNTS }, () => createAccount(pds.pdsUrl)),
    )
    const uris = (await Promise.all(accounts.map((a) => posts(a, POSTS)))).flat()
    const topic = 'cluster-tap-leader-kill'
    p = await spawnAtkafka([
      'firehose',
      'tap',
      '--no-event-metadata',
      '--tap-host',
      tap.url,
      '--bootstrap-servers',
      cluster.bootstrap,
      '--output-topic',
      topic,
      '--topic-partitions',
      '4',
      '--replication-factor',
      '3',
      // A few events in flight at a time: the backfill lasts long enough to be hit.
      '--max-in-flight',
      '20',
    ])
    await p.waitFor(/connected to Tap/, 60_000)
    const rss = sampleRss(p.child.pid!)
    const ready = new ReadyWatch(p.metricsPort)
    // Acks sent to Tap never exceed messages Kafka acknowledged (one message per record event).
    let samples = 0
    let ackedAheadOf: string | undefined
    let watching = true
    const watcher = (async () => {
      while (watching) {
        const m = await httpGet(p!.metricsPort, '/metrics').catch(() => undefined)
        if (m !== undefined) {
          const acked = metricValue(m.body, 'atkafka_acks_sent', { status: 'ok' })
          const produced = metricValue(m.body, 'atkafka_produced_events', { status: 'ok' })
          samples++
          if (acked > produced) ackedAheadOf ??= `${acked} acked, ${produced} produced`
        }
        await sleep(50)
      }
    })()
    const metric = async (name: string, labels?: Record<string, string>) =>
      metricValue((await httpGet(p!.metricsPort, '/metrics')).body, name, labels)
    let atKill = 0
    let killedAt = 0
    let target: Awaited<ReturnType<typeof busiestLeader>> | undefined
    try {
      await tap.addRepos(accounts.map((a) => a.did))
      await eventually(
        async () => (await metric('atkafka_produced_events', { status: 'ok' })) >= 300,
        120_000,
        '300 records in Kafka',
      )
      target = await busiestLeader(
        cluster,
        topic,
        uris.map((u) => u.split('/')[2]!),
        4,
      )
      const node = cluster.node(target.node)
      atKill = await metric('atkafka_produced_events', { status: 'ok' })
      killedAt = Date.now()
      await node.kill()
      await sleep(10_000)
      await node.start()
      await eventually(
        async () => {
          const r = await tap.request('/stats/outbox-buffer')
          return (
            ((await r.json()) as { outbox_buffer: number }).outbox_buffer === 0 &&
            (await metric('atkafka_produced_events', { status: 'ok' })) >= uris.length
          )
        },
        180_000,
        "every record produced and Tap's outbox empty",
      )
      await cluster.waitForFullIsr({ topics: [topic] })
      watching = false
      await watcher
      await ready.stop()
      p.child.kill('SIGTERM')
      assert.equal(await p.exited, 0, p.stderr())
    } finally {
      watching = false
      rss.stop()
      await ready.stop()
      p.child.kill('SIGKILL')
    }
    const spans = ready.notReadySpans(killedAt)
    const b = await readBack(
      cluster.bootstrap,
      topic,
      uris.map((u) => `${u}#create`),
    )
    report(
      'cluster-tap-leader-sigkill',
      b,
      `node ${target.node} (leader of partitions ${target.partitions.join(',')}) killed after ` +
        `${atKill} records acknowledged, back 10 s later; /ready 503 for ` +
        `${secs(spans.reduce((a, s) => a + s.ms, 0))}; acks never ahead of Kafka over ` +
        `${samples} samples; peak RSS ${mb(rss.max())}; besides the records, ` +
        `${b.received - b.sent - b.duplicated} identity and account events`,
    )
    assert.equal(ackedAheadOf, undefined, `a Tap event acked before Kafka had it: ${ackedAheadOf}`)
    assert.equal(b.lost, 0, `lost: ${b.missing.slice(0, 5).join(', ')}`)
  })
})

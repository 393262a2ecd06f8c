// Tap mode scaled out: two atkafka processes on one real Tap (indigo cmd/tap) share its events
// during a backfill of a real PDS's repos, producing into the real Kafka broker of
// scripts/test.ts.
//
// What Tap guarantees per repo (its outbox.go): a live event is sent only once every earlier
// event of the repo is acked, and nothing later is sent before the live event is acked;
// historical (backfill) events and identity events are sent concurrently with each other, to
// whichever connection takes them. Since atkafka acks only after Kafka acknowledged, this gives,
// per DID in Kafka (first copies, in partition order): every live event after all events Tap
// made before it, live events in commit order, and every later event after them. Historical
// events between two live ones have no order (one instance happens to keep Tap's; two do not).
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import type { AtKafkaEvent } from '../src/events.ts'
import { consumeAll } from './harness/kafka.ts'
import {
  type PdsHandle,
  type TestAccount,
  createAccount,
  createPost,
  deleteRecord,
  putRecord,
  startPds,
} from './harness/pds.ts'
import { type TapHandle, startTap } from './harness/tap.ts'
import {
  type AtkafkaProcess,
  eventually,
  httpGet,
  metricValue,
  spawnAtkafka,
} from './support/atkafka.ts'
import { validateEvent } from './support/schema.ts'

const bootstrap = process.env.KAFKA_BOOTSTRAP_SERVERS

type OpEvent = Extract<AtKafkaEvent, { operation: unknown }>
const isOp = (e: AtKafkaEvent): e is OpEvent => 'operation' in e

interface Read {
  key: string | null
  partition: number
  offset: number
  event: AtKafkaEvent
}

/**
 * Everything in `topic` (`expected` messages when known), read once when the test knows it is
 * all there: while they wait, the tests poll metrics and Tap, not Kafka.
 */
async function readTopic(topic: string, expected?: number): Promise<Read[]> {
  const got = await consumeAll(bootstrap!, topic, { expected, idleMs: 500, timeoutMs: 30000 })
  return got.map((m) => ({
    key: m.key,
    partition: m.partition,
    offset: Number(m.offset),
    event: JSON.parse(m.value) as AtKafkaEvent,
  }))
}

async function metric(
  atk: AtkafkaProcess,
  name: string,
  labels: Record<string, string> = {},
): Promise<number> {
  const { body } = await httpGet(atk.metricsPort, '/metrics')
  return metricValue(body, name, labels)
}

/** `n` posts in one repo, written with applyWrites (100 per commit); their URIs. */
async function createPosts(account: TestAccount, n: number, label: string): Promise<string[]> {
  const uris: string[] = []
  for (let start = 0; start < n; start += 100) {
    const writes = []
    for (let i = start; i < Math.min(n, start + 100); i++) {
      writes.push({
        $type: 'com.atproto.repo.applyWrites#create' as const,
        collection: 'app.bsky.feed.post',
        value: {
          $type: 'app.bsky.feed.post',
          text: `${label} ${i}`,
          createdAt: new Date().toISOString(),
        },
      })
    }
    const res = await account.agent.com.atproto.repo.applyWrites({ repo: account.did, writes })
    for (const r of res.data.results ?? []) {
      if ('uri' in r && typeof r.uri === 'string') uris.push(r.uri)
    }
  }
  assert.equal(uris.length, n)
  return uris
}

async function connected(p: AtkafkaProcess): Promise<void> {
  try {
    await p.waitFor(/connected to Tap/, 60000)
  } catch (err) {
    throw new Error(`${String(err)}\natkafka log:\n${p.stdout().slice(-4000)}`)
  }
}

async function exitOf(p: AtkafkaProcess, ms = 60000): Promise<number | string> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      p.child.kill('SIGKILL')
      reject(new Error(`atkafka did not exit within ${ms} ms; log:\n${p.stdout().slice(-4000)}`))
    }, ms)
  })
  try {
    return await Promise.race([p.exited, late])
  } finally {
    clearTimeout(timer)
  }
}

async function outboxBuffer(tap: TapHandle): Promise<number> {
  const res = await tap.request('/stats/outbox-buffer')
  const body = (await res.json()) as { outbox_buffer: number }
  return body.outbox_buffer
}

/**
 * Wait until Tap has every account's latest commit (it stores a repo's rev with the commit's
 * events, in one transaction) and its outbox is empty. Tap drops an event from its outbox only
 * once acked, and atkafka acks only what Kafka acknowledged: then every event is in Kafka.
 */
async function allAckedBy(tap: TapHandle, accounts: TestAccount[]): Promise<void> {
  for (const acc of accounts) {
    const { rev } = (await acc.agent.com.atproto.sync.getLatestCommit({ did: acc.did })).data
    await eventually(
      async () => {
        const info = (await (await tap.request(`/info/${acc.did}`)).json()) as { rev?: string }
        return info.rev === rev
      },
      120000,
      `Tap at ${acc.did}'s latest commit`,
    )
  }
  await eventually(async () => (await outboxBuffer(tap)) === 0, 120000, "Tap's outbox to empty")
}

/** A key for one event: the same for every copy Tap delivers of it. */
function eventKey(e: AtKafkaEvent): string {
  if (isOp(e)) {
    const o = e.operation
    return `${o.action} ${o.uri} ${o.cid} ${o.live ? 'live' : 'backfill'}`
  }
  return `${Object.keys(e).find((k) => k !== 'did' && k !== 'timestamp' && k !== 'eventMetadata')} ${e.did}`
}

/** Per DID, the first copy of each event, in partition (offset) order. */
function firstCopiesByDid(read: Read[]): Map<string, Read[]> {
  const byDid = new Map<string, Read[]>()
  const seen = new Set<string>()
  for (const r of [...read].sort((a, b) => a.partition - b.partition || a.offset - b.offset)) {
    const k = eventKey(r.event)
    if (seen.has(k)) continue
    seen.add(k)
    const list = byDid.get(r.event.did) ?? []
    list.push(r)
    byDid.set(r.event.did, list)
  }
  return byDid
}

/** Pairs of historical events of one DID in Kafka out of Tap's order (its MST walk: by path). */
function backfillInversions(events: Read[]): number {
  const paths = events
    .map((r) => r.event)
    .filter((e): e is OpEvent => isOp(e) && e.operation.live !== true)
    .map((e) => e.operation.path)
  let n = 0
  for (let i = 1; i < paths.length; i++) if (paths[i]! < paths[i - 1]!) n++
  return n
}

/**
 * Tap's per-repo guarantee as seen in Kafka (first copies of one DID, in offset order): every
 * historical record event before the first live one (all of them were made by the backfill,
 * before any live event was released), and live events in commit (rev) order.
 */
function assertTapOrder(did: string, events: Read[]): void {
  const ops = events.map((r) => r.event).filter(isOp)
  const firstLive = ops.findIndex((e) => e.operation.live === true)
  if (firstLive >= 0) {
    const lateBackfill = ops.slice(firstLive).filter((e) => e.operation.live !== true)
    assert.deepEqual(
      lateBackfill.map((e) => e.operation.path),
      [],
      `${did}: a backfill event in Kafka after a live one`,
    )
  }
  const revs = ops.filter((e) => e.operation.live === true).map((e) => e.operation.rev!)
  assert.deepEqual(revs, [...revs].sort(), `${did}: live events out of commit order`)
}

describe('tap mode scaled out: two instances on one Tap', () => {
  let pds: PdsHandle
  const taps: TapHandle[] = []
  const procs: AtkafkaProcess[] = []

  before(async () => {
    assert.ok(bootstrap, 'KAFKA_BOOTSTRAP_SERVERS must point at the test broker (npm test sets it)')
    pds = await startPds()
  })
  after(async () => {
    for (const p of procs) p.child.kill('SIGKILL')
    for (const t of taps) await t.close()
    await pds?.close()
  })

  async function atkafka(tap: TapHandle, topic: string, extra: string[] = []) {
    const p = await spawnAtkafka([
      'firehose',
      'tap',
      '--no-event-metadata',
      '--tap-host',
      tap.url,
      '--bootstrap-servers',
      bootstrap!,
      '--output-topic',
      topic,
      '--topic-partitions',
      '4',
      ...extra,
    ])
    procs.push(p)
    return p
  }

  /**
   * Acks never run ahead of Kafka: at every sample, each instance has acked at most what it
   * produced (nothing here is filtered or dropped).
   */
  function watchAcks(instances: AtkafkaProcess[]): { stop(): Promise<string[]> } {
    const violations: string[] = []
    let running = true
    const loop = (async () => {
      while (running) {
        for (const [i, p] of instances.entries()) {
          if (p.child.exitCode !== null || p.child.signalCode !== null) continue
          try {
            // acks first: a later produced count can only be larger
            const acked = await metric(p, 'atkafka_acks_sent', { status: 'ok' })
            const produced = await metric(p, 'atkafka_produced_events', { status: 'ok' })
            if (acked > produced)
              violations.push(`instance ${i}: ${acked} acks, ${produced} produced`)
          } catch {
            // killed meanwhile
          }
        }
        await new Promise((r) => setTimeout(r, 100))
      }
    })()
    return {
      async stop() {
        running = false
        await loop
        return violations
      },
    }
  }

  it('share a backfill: every event in Kafka, per-DID order as Tap gives it, acks after Kafka', async () => {
    const accounts = await Promise.all([1, 2, 3].map(() => createAccount(pds.pdsUrl)))
    const backfilled = new Map<string, string[]>()
    for (const [i, a] of accounts.entries()) {
      backfilled.set(a.did, await createPosts(a, 300, `backfill ${i}`))
    }
    const tap = await startTap({ relayUrl: pds.pdsUrl, plcUrl: pds.plcUrl, retryTimeout: '60s' })
    taps.push(tap)
    const topic = 'tap-scale-out'
    // A small in-flight bound makes each instance stop reading often, so Tap hands the backfill
    // to both connections.
    const a = await atkafka(tap, topic, ['--max-in-flight', '20'])
    const b = await atkafka(tap, topic, ['--max-in-flight', '20'])
    await Promise.all([connected(a), connected(b)])
    const acks = watchAcks([a, b])

    await tap.addRepos(accounts.map((x) => x.did))
    // Live writes all through the backfill (Tap holds a repo's live events until its backfill is
    // out, then releases them one at a time), then an update and a delete per repo.
    const during = new Map<string, string[]>(accounts.map((acc) => [acc.did, []]))
    let backfillInKafka = false
    const writer = (async () => {
      for (let round = 0; round < 30 && (round < 10 || !backfillInKafka); round++) {
        for (const acc of accounts)
          during.get(acc.did)!.push((await createPost(acc, `live ${round}`)).uri)
      }
    })()
    const produced = async () =>
      (await metric(a, 'atkafka_produced_events', { status: 'ok' })) +
      (await metric(b, 'atkafka_produced_events', { status: 'ok' }))
    // the backfill and each repo's identity event
    const backfillEvents = accounts.length * 301
    try {
      await eventually(
        async () => (await produced()) >= backfillEvents,
        120000,
        'the backfill in Kafka',
      )
    } finally {
      backfillInKafka = true
      await writer
    }
    // One event per record created (live, or in the backfill when Tap's snapshot has it).
    const writes = [...during.values()].reduce((n, l) => n + l.length, 0)
    const after = new Map<string, { update: string; delete: string }>()
    for (const acc of accounts) {
      const profile = await putRecord(acc, 'app.bsky.actor.profile', 'self', {
        displayName: 'after the backfill',
      })
      const victim = backfilled.get(acc.did)![0]!
      await deleteRecord(acc, 'app.bsky.feed.post', victim.split('/').pop()!)
      after.set(acc.did, { update: profile.uri, delete: victim })
    }

    await allAckedBy(tap, accounts)
    const violations = await acks.stop()
    assert.deepEqual(violations, [], 'acks never ahead of what Kafka acknowledged')
    // Both instances took part.
    const producedA = await metric(a, 'atkafka_produced_events', { status: 'ok' })
    const producedB = await metric(b, 'atkafka_produced_events', { status: 'ok' })
    assert.ok(producedA > 0 && producedB > 0, `both produced (${producedA} + ${producedB})`)
    const total = backfillEvents + writes + 2 * accounts.length
    assert.ok(producedA + producedB >= total, `${producedA + producedB} produced, ${total} events`)
    const read = await readTopic(topic, producedA + producedB)
    assert.equal(producedA + producedB, read.length, 'what both produced is what Kafka holds')

    // Every event at least once; one partition per DID, keyed by it.
    for (const r of read) {
      validateEvent(r.event)
      assert.equal(r.key, r.event.did)
    }
    const byDid = firstCopiesByDid(read)
    const inversions: number[] = []
    const liveCounts: number[] = []
    for (const acc of accounts) {
      const events = byDid.get(acc.did) ?? []
      assert.equal(new Set(read.filter((r) => r.key === acc.did).map((r) => r.partition)).size, 1)
      const uris = new Set(events.map((r) => (isOp(r.event) ? r.event.operation.uri : '')))
      for (const u of [...backfilled.get(acc.did)!, ...during.get(acc.did)!]) {
        assert.ok(uris.has(u), u)
      }
      assert.ok(
        events.some((r) => 'identity' in r.event),
        `${acc.did}: identity event`,
      )
      const ops = events.map((r) => r.event).filter(isOp)
      const { update, delete: gone } = after.get(acc.did)!
      assert.ok(
        ops.some((e) => e.operation.uri === update && e.operation.live === true),
        'profile update, live',
      )
      assert.ok(
        ops.some(
          (e) =>
            e.operation.uri === gone &&
            e.operation.action === 'delete' &&
            e.operation.live === true,
        ),
        'delete, live',
      )
      assertTapOrder(acc.did, events)
      inversions.push(backfillInversions(events))
      liveCounts.push(ops.filter((e) => e.operation.live === true).length)
    }
    const duplicates = read.length - [...byDid.values()].reduce((n, l) => n + l.length, 0)
    console.log(
      `scale-out: ${producedA} + ${producedB} produced by the two instances; ${duplicates} duplicates; ` +
        `live events per DID: ${liveCounts.join(', ')}; ` +
        `backfill events out of Tap's order per DID: ${inversions.join(', ')}`,
    )

    for (const p of [a, b]) p.child.kill('SIGTERM')
    assert.equal(await exitOf(a), 0)
    assert.equal(await exitOf(b), 0)
  })

  it('one instance SIGKILLed mid-backfill: the other gets its unacked events, nothing is lost', async () => {
    const acc = await createAccount(pds.pdsUrl)
    const uris = await createPosts(acc, 400, 'kill')
    const tap = await startTap({ relayUrl: pds.pdsUrl, plcUrl: pds.plcUrl, retryTimeout: '3s' })
    taps.push(tap)
    const topic = 'tap-scale-out-kill'
    const a = await atkafka(tap, topic, ['--max-in-flight', '5'])
    const b = await atkafka(tap, topic, ['--max-in-flight', '5'])
    await Promise.all([connected(a), connected(b)])
    const acks = watchAcks([a, b])
    await tap.addRepos([acc.did])
    await eventually(
      async () => (await metric(a, 'atkafka_produced_events', { status: 'ok' })) >= 20,
      60000,
      'instance A producing',
    )
    a.child.kill('SIGKILL')
    assert.equal(await exitOf(a), 'SIGKILL')
    const live = await createPost(acc, 'live after the kill')

    await allAckedBy(tap, [acc])
    const read = await readTopic(topic)
    const seen = new Set(read.map((r) => (isOp(r.event) ? r.event.operation.uri : '')))
    for (const u of [...uris, live.uri]) assert.ok(seen.has(u), u)
    const violations = await acks.stop()
    assert.deepEqual(violations, [], 'acks never ahead of what Kafka acknowledged')
    for (const r of read) validateEvent(r.event)
    const events = firstCopiesByDid(read).get(acc.did) ?? []
    assert.ok(events.some((r) => 'identity' in r.event))
    assertTapOrder(acc.did, events)
    console.log(
      `scale-out kill: ${read.length} messages for ${uris.length + 2} events (duplicates from the killed instance's unacked events)`,
    )
    b.child.kill('SIGTERM')
    assert.equal(await exitOf(b), 0)
  })
})

// Tap mode against the real Tap (indigo cmd/tap, built by scripts/tap/build.sh) following a
// real PDS + PLC, producing to the real Kafka broker of scripts/test.ts. Every assertion reads
// what reached Kafka (and what Tap itself reports through its HTTP API).
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import type { AtKafkaEvent } from '../src/events.ts'
import { consumeAll } from './harness/kafka.ts'
import {
  type PdsHandle,
  type TestAccount,
  createAccount,
  createPost,
  createProfile,
  createRecord,
  deleteRecord,
  putRecord,
  startPds,
} from './harness/pds.ts'
import { type TapHandle, type TapOptions, startTap } from './harness/tap.ts'
import {
  type AtkafkaProcess,
  eventually,
  httpGet,
  metricValue,
  spawnAtkafka,
  metadataFlag,
} from './support/atkafka.ts'
import { validateEvent, validateHeaders, validateOspreyEvent } from './support/schema.ts'

const bootstrap = process.env.KAFKA_BOOTSTRAP_SERVERS

type OpEvent = Extract<AtKafkaEvent, { operation: unknown }>
type IdentityEvent = Extract<AtKafkaEvent, { identity: unknown }>

interface Read {
  key: string | null
  partition: number
  offset: number
  event: AtKafkaEvent
}

async function readTopic(topic: string, expected?: number): Promise<Read[]> {
  const got = await consumeAll(bootstrap!, topic, { expected, idleMs: 500, timeoutMs: 30000 })
  return got.map((m) => ({
    key: m.key,
    partition: m.partition,
    offset: Number(m.offset),
    event: JSON.parse(m.value) as AtKafkaEvent,
  }))
}

const isOp = (e: AtKafkaEvent): e is OpEvent => 'operation' in e
const isIdentity = (e: AtKafkaEvent): e is IdentityEvent => 'identity' in e

async function metric(
  atk: AtkafkaProcess,
  name: string,
  labels: Record<string, string> = {},
): Promise<number> {
  const { body } = await httpGet(atk.metricsPort, '/metrics')
  return metricValue(body, name, labels)
}

/** `n` posts in one repo, written with applyWrites (100 per commit). */
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

/** Wait for the connection to Tap; on failure the error carries atkafka's log. */
async function connected(p: AtkafkaProcess): Promise<void> {
  try {
    await p.waitFor(/connected to Tap/, 60000)
  } catch (err) {
    throw new Error(`${String(err)}\natkafka log:\n${p.stdout().slice(-4000)}`)
  }
}

/** The exit code; fails (with atkafka's log) if it takes longer than `ms`. */
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

describe('tap mode against a real Tap', () => {
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

  async function tapFor(opts: Partial<TapOptions> = {}): Promise<TapHandle> {
    const tap = await startTap({ relayUrl: pds.pdsUrl, plcUrl: pds.plcUrl, ...opts })
    taps.push(tap)
    return tap
  }

  async function atkafka(
    tap: TapHandle,
    topic: string,
    extra: string[] = [],
    env: Record<string, string> = {},
  ): Promise<AtkafkaProcess> {
    const p = await spawnAtkafka(
      [
        'firehose',
        'tap',
        ...metadataFlag(extra),
        '--tap-host',
        tap.url,
        '--bootstrap-servers',
        bootstrap!,
        '--output-topic',
        topic,
        '--topic-partitions',
        '4',
        ...extra,
      ],
      { env },
    )
    procs.push(p)
    return p
  }

  it('backfilled and live records, deletes and identity events reach Kafka, in order, all acked', async () => {
    const alice = await createAccount(pds.pdsUrl)
    const bob = await createAccount(pds.pdsUrl)
    const p1 = await createPost(alice, 'one')
    const p2 = await createPost(alice, 'two')
    const p3 = await createRecord(alice, 'app.bsky.feed.post', {
      text: 'three',
      createdAt: '2020-01-02T03:04:05.678+01:00',
    })
    await createProfile(alice, 'Alice')
    await createPost(bob, 'bob is not followed')

    // Handles are verified through the PDS, so identity events carry the real handle.
    const tap = await tapFor({ retryTimeout: '3s', resolveHandlesVia: pds.pdsUrl })
    const topic = 'tap-basic'
    const atk = await atkafka(tap, topic)
    await connected(atk)
    await tap.addRepos([alice.did])
    // identity + 3 posts + profile
    await eventually(
      async () => (await metric(atk, 'atkafka_produced_events', { status: 'ok' })) >= 5,
      30000,
      'the backfill in Kafka',
    )

    const p4 = await createPost(alice, 'four, live')
    await putRecord(alice, 'app.bsky.actor.profile', 'self', { displayName: 'Alice 2' })
    await deleteRecord(alice, 'app.bsky.feed.post', p1.rkey)
    // A record Tap cannot decode (a nested object with an empty $type): Tap sends the live
    // create without its record, and that repo's later events wait for its ack.
    const poison = await createRecord(alice, 'com.example.undecodable', { nested: { $type: '' } })
    const p5 = await createPost(alice, 'five, after the undecodable record')
    const total = 9
    await eventually(
      async () => (await metric(atk, 'atkafka_produced_events', { status: 'ok' })) >= total,
      30000,
      'the live events in Kafka',
    )

    const read = await readTopic(topic, total)
    assert.equal(read.length, total)
    for (const r of read) {
      validateEvent(r.event)
      assert.equal(r.key, alice.did)
      assert.equal(r.event.did, alice.did)
    }
    const events = read.map((r) => r.event)
    const ops = events.filter(isOp)
    const byUri = (uri: string) => ops.filter((e) => e.operation.uri === uri)

    // Backfill
    for (const ref of [p1, p2, p3]) {
      const create = byUri(ref.uri).find((e) => e.operation.action === 'create')
      assert.ok(create, ref.uri)
      assert.equal(create.operation.live, false)
      assert.equal(create.operation.cid, ref.cid)
      assert.equal(create.operation.collection, 'app.bsky.feed.post')
      assert.equal(create.operation.path, `app.bsky.feed.post/${ref.rkey}`)
      assert.match(create.operation.rev!, /^[2-7a-z]{13}$/)
    }
    assert.equal(byUri(p3.uri)[0]!.timestamp, '2020-01-02T02:04:05.678Z', 'from createdAt')
    assert.equal(byUri(p2.uri)[0]!.operation.record?.['text'], 'two')

    // Live
    const p4Event = byUri(p4.uri)[0]!
    assert.equal(p4Event.operation.live, true)
    assert.equal(
      p4Event.timestamp,
      new Date(String(p4Event.operation.record?.['createdAt'])).toISOString(),
    )
    const profile = ops.filter((e) => e.operation.collection === 'app.bsky.actor.profile')
    assert.deepEqual(
      profile.map((e) => [
        e.operation.action,
        e.operation.live,
        e.operation.record?.['displayName'],
      ]),
      [
        ['create', false, 'Alice'],
        ['update', true, 'Alice 2'],
      ],
    )
    const del = byUri(p1.uri).find((e) => e.operation.action === 'delete')
    assert.ok(del)
    assert.equal(del.operation.live, true)
    assert.equal(del.operation.cid, '')
    assert.equal('record' in del.operation, false)
    assert.equal(byUri(p5.uri)[0]?.operation.live, true, 'not stalled by the undecodable record')
    assert.equal(byUri(poison.uri).length, 0)
    assert.equal(await metric(atk, 'atkafka_dropped_events', { reason: 'invalid-record' }), 1)
    assert.ok(!events.some((e) => e.did === bob.did))

    // Identity event from adding the repo
    const identity = events.filter(isIdentity)
    assert.equal(identity.length, 1)
    assert.equal(identity[0]!.identity.handle, alice.handle)
    assert.equal(identity[0]!.identity.isActive, true)
    assert.equal(identity[0]!.identity.status, 'active')

    // Per-DID order: the live events are in Kafka in the order they were made.
    const offsetOf = (pred: (e: OpEvent) => boolean) =>
      read.find((r) => isOp(r.event) && pred(r.event))!.offset
    const liveOrder = [
      offsetOf((e) => e.operation.uri === p4.uri),
      offsetOf((e) => e.operation.action === 'update'),
      offsetOf((e) => e.operation.uri === p1.uri && e.operation.action === 'delete'),
      offsetOf((e) => e.operation.uri === p5.uri),
    ]
    assert.deepEqual(
      [...liveOrder].sort((a, b) => a - b),
      liveOrder,
    )

    // Acks: every event (the dropped one included) was acked and Tap took the acks: its outbox
    // empties (it deletes acked events every 10 s) and nothing came again meanwhile, although
    // that took several retry timeouts.
    assert.equal(await metric(atk, 'atkafka_acks_sent', { status: 'ok' }), total + 1)
    await eventually(async () => (await outboxBuffer(tap)) === 0, 30000, "Tap's outbox to empty")
    assert.equal((await readTopic(topic)).length, total, 'no redelivery')
    assert.equal(await metric(atk, 'atkafka_acks_sent', { status: 'ok' }), total + 1)
    assert.equal(await metric(atk, 'atkafka_tap_event_buffer_size'), 0)

    atk.child.kill('SIGTERM')
    assert.equal(await exitOf(atk), 0)
  })

  it('SIGKILL with events in flight, then a restart: every record reaches Kafka', async () => {
    const carol = await createAccount(pds.pdsUrl)
    const uris = await createPosts(carol, 300, 'carol')
    const tap = await tapFor({ retryTimeout: '2s' })
    const topic = 'tap-sigkill'
    // One event at a time makes the backfill slow enough to kill in the middle.
    const first = await atkafka(tap, topic, ['--max-in-flight', '1'])
    await connected(first)
    await tap.addRepos([carol.did])
    let produced = 0
    let maxInFlight = 0
    await eventually(
      async () => {
        produced = await metric(first, 'atkafka_produced_events', { status: 'ok' })
        maxInFlight = Math.max(maxInFlight, await metric(first, 'atkafka_in_flight'))
        return produced >= 30
      },
      30000,
      '30 events in Kafka',
    )
    first.child.kill('SIGKILL')
    assert.equal(await exitOf(first), 'SIGKILL')
    assert.ok(produced < 301, `killed in the middle (${produced} produced)`)
    assert.ok(maxInFlight <= 1, `--max-in-flight 1 holds (saw ${maxInFlight})`)
    assert.ok((await outboxBuffer(tap)) > 0, 'Tap still holds unacked events')

    const second = await atkafka(tap, topic)
    let read: Read[] = []
    await eventually(
      async () => {
        read = await readTopic(topic)
        const seen = new Set(read.map((r) => (isOp(r.event) ? r.event.operation.uri : '')))
        return uris.every((u) => seen.has(u))
      },
      90000,
      'all 300 records in Kafka',
    )
    for (const r of read) validateEvent(r.event)
    console.log(
      `sigkill: ${produced} produced before the kill; ${read.length} messages for 301 events after the restart`,
    )
    second.child.kill('SIGTERM')
    assert.equal(await exitOf(second), 0)
  })

  it('SIGTERM flushes Kafka and sends the pending acks before exiting', async () => {
    const dave = await createAccount(pds.pdsUrl)
    const uris = await createPosts(dave, 300, 'dave')
    const tap = await tapFor({ retryTimeout: '3s' })
    const first = await atkafka(tap, 'tap-sigterm-a', ['--max-in-flight', '1'])
    await connected(first)
    await tap.addRepos([dave.did])
    let produced = 0
    await eventually(
      async () => {
        produced = await metric(first, 'atkafka_produced_events', { status: 'ok' })
        return produced >= 30
      },
      30000,
      '30 events in Kafka',
    )
    first.child.kill('SIGTERM')
    assert.equal(await exitOf(first), 0)
    const a = await readTopic('tap-sigterm-a')
    assert.ok(a.length < 301, `stopped in the middle (${a.length} written)`)

    // Everything the first process wrote was acked: Tap sends only the rest to the next one.
    const second = await atkafka(tap, 'tap-sigterm-b')
    const uriOf = (r: Read) => (isOp(r.event) ? r.event.operation.uri : `identity:${r.event.did}`)
    const inA = new Set(a.map(uriOf))
    let b: Read[] = []
    await eventually(
      async () => {
        b = await readTopic('tap-sigterm-b')
        const seen = new Set([...inA, ...b.map(uriOf)])
        return uris.every((u) => seen.has(u))
      },
      90000,
      'the rest of the records in the second topic',
    )
    await new Promise((r) => setTimeout(r, 7000))
    b = await readTopic('tap-sigterm-b')
    const again = b.map(uriOf).filter((u) => inA.has(u))
    assert.deepEqual(again, [], 'events written before SIGTERM were acked and not sent again')
    console.log(`sigterm: ${a.length} written before SIGTERM, ${b.length} after`)
    second.child.kill('SIGTERM')
    assert.equal(await exitOf(second), 0)
  })

  it('reconnects after a Tap restart and goes on, acking on the new connection', async () => {
    const gina = await createAccount(pds.pdsUrl)
    const early = await createPost(gina, 'before the restart')
    const tap = await tapFor({ retryTimeout: '2s' })
    const topic = 'tap-restart'
    const atk = await atkafka(tap, topic)
    await connected(atk)
    await tap.addRepos([gina.did])
    await eventually(
      async () => (await metric(atk, 'atkafka_acks_sent', { status: 'ok' })) >= 2,
      30000,
      'identity and post acked',
    )
    await tap.restart()
    await eventually(
      async () =>
        (await metric(atk, 'atkafka_reconnects')) >= 1 &&
        (await metric(atk, 'atkafka_source_connected')) === 1,
      60000,
      'a new connection to the restarted Tap',
    )
    const late = await createPost(gina, 'after the restart')
    let read: Read[] = []
    await eventually(
      async () => {
        read = await readTopic(topic)
        return read.some((r) => isOp(r.event) && r.event.operation.uri === late.uri)
      },
      60000,
      'the post made after the restart',
    )
    const lateEvent = read.map((r) => r.event).find((e) => isOp(e) && e.operation.uri === late.uri)
    assert.ok(lateEvent && isOp(lateEvent) && lateEvent.operation.live === true)
    assert.ok(read.some((r) => isOp(r.event) && r.event.operation.uri === early.uri))
    await eventually(async () => (await outboxBuffer(tap)) === 0, 30000, "Tap's outbox to empty")
    atk.child.kill('SIGTERM')
    assert.equal(await exitOf(atk), 0)
  })

  it('admin password on both sides; Osprey format, collection filters, metadata and --kafka-headers apply', async () => {
    const tap = await tapFor({ adminPassword: 'tap-secret' })
    const erin = await createAccount(pds.pdsUrl)
    const post = await createPost(erin, 'behind a password')
    await createProfile(erin, 'Erin')

    const none = await atkafka(tap, 'tap-auth-none')
    assert.equal(await exitOf(none), 1)
    assert.match(none.stderr(), /TapAuthError: Tap refused the connection with HTTP 401/)
    const wrong = await atkafka(tap, 'tap-auth-wrong', ['--tap-admin-password', 'nope'])
    assert.equal(await exitOf(wrong), 1)
    assert.match(wrong.stderr(), /check --tap-admin-password/)
    assert.ok(!wrong.stdout().includes('nope') && !wrong.stderr().includes('nope'))

    const topic = 'tap-auth'
    const atk = await atkafka(
      tap,
      topic,
      [
        '--osprey-compatible',
        '--watched-collections',
        'app.bsky.feed.*',
        '--plc-host',
        pds.plcUrl,
        // .test handles cannot be verified here: take the DID document's claim
        '--skip-handle-verification',
        '--kafka-headers',
      ],
      { ATKAFKA_TAP_ADMIN_PASSWORD: 'tap-secret' },
    )
    await connected(atk)
    await tap.addRepos([erin.did])
    await eventually(
      async () => (await metric(atk, 'atkafka_acks_sent', { status: 'ok' })) >= 3,
      30000,
      'identity, post and profile acked',
    )
    const got = await consumeAll(bootstrap!, topic, { expected: 2, timeoutMs: 30000 })
    assert.equal(got.length, 2, 'identity and post; the profile is filtered out')
    const wrapped = got.map(
      (m) =>
        JSON.parse(m.value) as {
          data: { action_name: string; data: AtKafkaEvent }
          send_time: string
        },
    )
    for (const w of wrapped) validateOspreyEvent(w)
    const names = wrapped.map((w) => w.data.action_name).sort()
    assert.deepEqual(names, ['identity', 'operation#create'])
    const op = wrapped.find((w) => w.data.action_name === 'operation#create')!.data.data
    assert.ok(isOp(op))
    assert.equal(op.operation.uri, post.uri)
    for (const w of wrapped) {
      const meta = w.data.data.eventMetadata as { pdsHost?: string; handle?: string } | null
      assert.equal(meta?.pdsHost, pds.pdsUrl, 'eventMetadata from --plc-host')
      assert.equal(meta?.handle, erin.handle)
    }
    // Headers: the Tap event id as the cursor, through the metadata stage too.
    const cursors = new Set<string>()
    for (const [i, m] of got.entries()) {
      const e = wrapped[i]!.data.data
      const h = m.headers!
      validateHeaders(h)
      assert.equal(h['atkafka-kind'], isOp(e) ? 'operation' : 'identity')
      assert.equal(h['atkafka-did'], erin.did)
      assert.equal(h['atkafka-time'], e.timestamp)
      assert.match(String(h['atkafka-cursor']), /^[1-9][0-9]*$/)
      cursors.add(String(h['atkafka-cursor']))
      if (isOp(e)) {
        assert.equal(h['atkafka-collection'], 'app.bsky.feed.post')
        assert.equal(h['atkafka-action'], 'create')
      }
    }
    assert.equal(cursors.size, 2, 'each event its own Tap id')
    assert.equal(await metric(atk, 'atkafka_filtered_events', { filter: 'collection' }), 1)
    assert.ok(!atk.stdout().includes('tap-secret'))
    atk.child.kill('SIGTERM')
    assert.equal(await exitOf(atk), 0)
  })

  it('--stdout writes JSON lines and acks once they are written', async () => {
    const hana = await createAccount(pds.pdsUrl)
    const post = await createPost(hana, 'to stdout')
    const tap = await tapFor({ retryTimeout: '1s' })
    const p = await spawnAtkafka(['firehose', 'tap', '--stdout', '--no-event-metadata'], {
      env: { ATKAFKA_TAP_HOST: tap.url },
    })
    procs.push(p)
    await p.waitFor(/connected to Tap/, 60000)
    await tap.addRepos([hana.did])
    const lines = () =>
      p
        .stdout()
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => JSON.parse(l) as AtKafkaEvent)
    await eventually(
      async () => (await metric(p, 'atkafka_acks_sent', { status: 'ok' })) >= 2,
      30000,
      'identity and post acked',
    )
    // Three retry timeouts later Tap has sent nothing again: the acks counted.
    await new Promise((r) => setTimeout(r, 3000))
    const events = lines()
    for (const e of events) validateEvent(e)
    assert.equal(events.filter((e) => isOp(e) && e.operation.uri === post.uri).length, 1)
    assert.equal(events.filter(isIdentity).length, 1)
    assert.equal(events.length, 2)
    p.child.kill('SIGTERM')
    assert.equal(await exitOf(p), 0)
  })

  it('--disable-acks sends no acks', async () => {
    const frank = await createAccount(pds.pdsUrl)
    const post = await createPost(frank, 'never acked')

    // Tap waiting for acks sends the same events again and again.
    const acking = await tapFor({ retryTimeout: '1s' })
    const atk = await atkafka(acking, 'tap-noacks', ['--disable-acks'])
    await connected(atk)
    await acking.addRepos([frank.did])
    let copies = 0
    await eventually(
      async () => {
        const read = await readTopic('tap-noacks')
        copies = read.filter((r) => isOp(r.event) && r.event.operation.uri === post.uri).length
        return copies >= 3
      },
      30000,
      'the post sent again after the retry timeout',
    )
    assert.equal(await metric(atk, 'atkafka_acks_sent'), 0)
    assert.ok((await outboxBuffer(acking)) > 0)
    atk.child.kill('SIGTERM')
    assert.equal(await exitOf(atk), 0)

    // Tap in fire-and-forget mode (TAP_DISABLE_ACKS) with --disable-acks: each event once.
    const faf = await tapFor({ env: { TAP_DISABLE_ACKS: 'true' } })
    const atk2 = await atkafka(faf, 'tap-faf', [], { ATKAFKA_DISABLE_ACKS: 'true' })
    await connected(atk2)
    await faf.addRepos([frank.did])
    const read = await readTopic('tap-faf', 2)
    assert.equal(read.length, 2)
    assert.ok(read.some((r) => isOp(r.event) && r.event.operation.uri === post.uri))
    assert.ok(read.some((r) => isIdentity(r.event)))
    atk2.child.kill('SIGTERM')
    assert.equal(await exitOf(atk2), 0)
  })
})

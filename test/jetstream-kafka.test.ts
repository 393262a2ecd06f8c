// Jetstream mode end to end: a Jetstream (in-process, speaking its /subscribe protocol) fed with
// the real activity of a dev-env PDS, atkafka reading it into the real broker; the same activity
// read from the PDS firehose by relay mode gives the same events.
import assert from 'node:assert/strict'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { decodeAll } from '@atproto/lex-cbor'
import { type AtKafkaEvent, kindOf } from '../src/events.ts'
import { REWIND_US } from '../src/jetstream/source.ts'
import { type ConsumedMessage, consumeAll } from './harness/kafka.ts'
import {
  type PdsHandle,
  type TestAccount,
  createAccount,
  createPost,
  createProfile,
  createRecord,
  deleteRecord,
  startPds,
  updateHandle,
} from './harness/pds.ts'
import {
  type AtkafkaProcess,
  eventually,
  httpGet,
  metricValue,
  relayToKafka,
  spawnAtkafka,
} from './support/atkafka.ts'
import { cursorSeq, sleep } from './support/faults.ts'
import {
  type FakeJetstream,
  JetstreamConverter,
  type JetstreamWireEvent,
  collectFrames,
  followFirehose,
  startFakeJetstream,
} from './support/jetstream.ts'
import { validateEvent, validateHeaders } from './support/schema.ts'

const bootstrap = process.env.KAFKA_BOOTSTRAP_SERVERS

/** `atkafka jetstream` arguments producing from `host` into `topic`. */
function jetstreamToKafka(host: string, topic: string, cursorFile: string): string[] {
  return [
    'jetstream',
    '--jetstream-host',
    host,
    '--bootstrap-servers',
    bootstrap!,
    '--output-topic',
    topic,
    '--topic-partitions',
    '4',
    '--cursor-file',
    cursorFile,
    '--no-event-metadata',
  ]
}

async function savedTimeUs(path: string): Promise<number | undefined> {
  try {
    return (JSON.parse(await readFile(path, 'utf8')) as { time_us: number }).time_us
  } catch {
    return undefined
  }
}

/** Messages per key (DID), in the order Kafka holds them. */
function byKey(messages: readonly ConsumedMessage[]): Map<string, string[]> {
  const out = new Map<string, string[]>()
  for (const m of messages) {
    const list = out.get(m.key ?? '') ?? []
    list.push(m.value)
    out.set(m.key ?? '', list)
  }
  return out
}

function seqOf(frame: Uint8Array): number | undefined {
  const [, body] = [...decodeAll(frame)] as [unknown, { seq?: number }]
  return body.seq
}

/** An op's identity: the same create, update or delete in both modes. */
const opId = (e: AtKafkaEvent) =>
  'operation' in e ? `${e.operation.uri}#${e.operation.action}#${e.operation.cid}` : undefined

async function stop(p: AtkafkaProcess): Promise<void> {
  p.child.kill('SIGTERM')
  assert.equal(await p.exited, 0, p.stderr().slice(-3000))
}

describe('jetstream mode into a real Kafka broker, fed by a real PDS', () => {
  let pds: PdsHandle
  let dir: string
  const servers: FakeJetstream[] = []
  const children: AtkafkaProcess[] = []

  before(async () => {
    assert.ok(bootstrap, 'KAFKA_BOOTSTRAP_SERVERS must point at the test broker (npm test sets it)')
    pds = await startPds()
    dir = await mkdtemp(join(tmpdir(), 'atkafka-jetstream-'))
  })
  after(async () => {
    for (const c of children) c.child.kill('SIGKILL')
    for (const s of servers) await s.close()
    await pds?.close()
    await rm(dir, { recursive: true, force: true })
  })

  async function spawn(args: string[]): Promise<AtkafkaProcess> {
    const p = await spawnAtkafka(args)
    children.push(p)
    return p
  }

  it('gives the events relay mode gives for the same activity, in the same order per DID', async () => {
    const alice = await createAccount(pds.pdsUrl)
    const bob = await createAccount(pds.pdsUrl)
    const post = await createPost(alice, 'hello through Jetstream')
    const like = await createRecord(bob, 'app.bsky.feed.like', {
      subject: { uri: post.uri, cid: post.cid },
      createdAt: new Date().toISOString(),
    })
    await createProfile(alice, 'Alice')
    await createProfile(alice, 'Alice Again')
    await deleteRecord(bob, 'app.bsky.feed.like', like.rkey)
    await updateHandle(bob, `b${Date.now().toString(36)}`)

    const frames = await collectFrames(pds.firehoseUrl)
    const lastSeq = seqOf(frames.at(-1)!)!
    const js = await startFakeJetstream()
    servers.push(js)
    const converter = new JetstreamConverter()
    for (const f of frames) for (const e of await converter.convert(f)) js.publish(e)
    const first = js.events[0]!.time_us
    const last = js.events.at(-1)!.time_us

    const relayCursor = join(dir, 'relay.json')
    const relay = await spawn([
      ...relayToKafka(pds.pdsUrl, bootstrap!, 'js-vs-relay-r'),
      '--topic-partitions',
      '4',
      '--cursor',
      '0',
      '--cursor-file',
      relayCursor,
    ])
    const jsCursor = join(dir, 'js.json')
    const jet = await spawn([
      ...jetstreamToKafka(js.url, 'js-vs-relay-j', jsCursor),
      '--cursor',
      String(first),
      '--kafka-headers',
    ])
    const filtered = await spawn([
      ...jetstreamToKafka(js.url, 'js-vs-relay-likes', join(dir, 'likes.json')),
      '--cursor',
      String(first),
      '--watched-collections',
      'app.bsky.feed.like',
    ])
    await eventually(
      async () =>
        (await cursorSeq(relayCursor)) === lastSeq &&
        (await savedTimeUs(jsCursor)) === last &&
        (await savedTimeUs(join(dir, 'likes.json'))) === last,
      60000,
      'both modes through the whole activity',
    )
    await Promise.all([stop(relay), stop(jet), stop(filtered)])
    assert.deepEqual(
      js.requests.map((r) => `${r.cursor} ${r.wantedCollections.join(',')}`).sort(),
      [`${first - REWIND_US} `, `${first - REWIND_US} app.bsky.feed.like`],
    )

    const fromRelay = (await consumeAll(bootstrap!, 'js-vs-relay-r')).filter(
      // Jetstream does not pass #sync on.
      (m) => !('sync' in (JSON.parse(m.value) as AtKafkaEvent)),
    )
    const fromJetstream = await consumeAll(bootstrap!, 'js-vs-relay-j')
    for (const m of fromJetstream) {
      const e = JSON.parse(m.value) as AtKafkaEvent
      validateEvent(e)
      // --kafka-headers: the event's time_us as the cursor.
      validateHeaders(m.headers)
      assert.equal(m.headers?.['atkafka-kind'], kindOf(e))
      assert.equal(m.headers?.['atkafka-did'], e.did)
      assert.equal(m.headers?.['atkafka-time'], e.timestamp)
      const timeUs = Number(m.headers?.['atkafka-cursor'])
      assert.ok(timeUs >= first && timeUs <= last, `cursor ${timeUs}`)
      assert.ok(js.events.some((j) => j.time_us === timeUs && j.did === e.did))
    }
    assert.ok(fromRelay.length >= 10, `${fromRelay.length} events from the relay`)
    assert.deepEqual(byKey(fromJetstream), byKey(fromRelay))

    // Server-side filter: the likes, and every identity and account event.
    const likes = await consumeAll(bootstrap!, 'js-vs-relay-likes')
    const wanted = fromRelay.filter((m) => {
      const e = JSON.parse(m.value) as AtKafkaEvent
      return !('operation' in e) || e.operation.collection === 'app.bsky.feed.like'
    })
    assert.deepEqual(byKey(likes), byKey(wanted))
    assert.deepEqual(
      likes
        .map((m) => opId(JSON.parse(m.value) as AtKafkaEvent))
        .filter(Boolean)
        .sort(),
      [`${like.uri}#create#${like.cid}`, `${like.uri}#delete#`].sort(),
    )
  })

  it('restarts resume from the saved time_us; SIGKILL loses nothing', async () => {
    const js = await startFakeJetstream()
    servers.push(js)
    const follow = followFirehose(pds.firehoseUrl, js)
    const cursorFile = join(dir, 'restart.json')
    const topic = 'js-restart'
    const args = jetstreamToKafka(js.url, topic, cursorFile)
    const accounts: TestAccount[] = []
    for (let i = 0; i < 4; i++) accounts.push(await createAccount(pds.pdsUrl))

    let p = await spawn(args)
    await eventually(() => js.connected === 1, 30000, 'connected to Jetstream')
    assert.equal(js.requests[0]!.cursor, undefined, 'no cursor file: the live stream')

    // Activity all along: posts by four accounts.
    let posting = true
    let posts = 0
    const activity = (async () => {
      while (posting) {
        await Promise.all(accounts.map((a) => createPost(a, `post ${posts++}`)))
      }
    })()
    try {
      const waitProduced = async (min: number) =>
        eventually(
          async () => {
            const m = await httpGet(p.metricsPort, '/metrics').catch(() => undefined)
            return m !== undefined && metricValue(m.body, 'atkafka_produced_events') >= min
          },
          30000,
          `${min} events produced`,
        )

      // A clean restart: everything read was acknowledged and saved; it resumes a few seconds
      // before the saved time_us.
      await waitProduced(40)
      await stop(p)
      const saved = await savedTimeUs(cursorFile)
      assert.ok(saved !== undefined && saved > 0)
      p = await spawn(args)
      await eventually(() => js.requests.length === 2, 30000, 'reconnected')
      assert.equal(js.requests[1]!.cursor, saved - REWIND_US)

      // Killed twice while producing.
      for (let kill = 0; kill < 2; kill++) {
        await waitProduced(40)
        await sleep(Math.round(Math.random() * 500))
        p.child.kill('SIGKILL')
        assert.equal(await p.exited, 'SIGKILL')
        const atKill = await savedTimeUs(cursorFile)
        const requests = js.requests.length
        p = await spawn(args)
        await eventually(() => js.requests.length === requests + 1, 30000, 'reconnected')
        assert.equal(js.requests.at(-1)!.cursor, atKill! - REWIND_US)
      }
    } finally {
      posting = false
      await activity
    }
    // Let the last frames through the converter, then wait until all is produced.
    await sleep(1500)
    follow.stop()
    const last = js.events.at(-1)!.time_us
    await eventually(async () => (await savedTimeUs(cursorFile)) === last, 60000, 'caught up')
    await stop(p)

    const got = await consumeAll(bootstrap!, topic)
    const ids = new Set(got.map((m) => opId(JSON.parse(m.value) as AtKafkaEvent)))
    const missing = js.events.filter(
      (e: JetstreamWireEvent) =>
        e.kind === 'commit' &&
        !ids.has(
          `at://${e.did}/${String(e.commit!['collection'])}/${String(e.commit!['rkey'])}#${String(e.commit!['operation'])}#${String(e.commit!['cid'] ?? '')}`,
        ),
    )
    const published = js.events.filter((e) => e.kind === 'commit').length
    console.log(
      `jetstream restarts: ${posts} posts, ${published} commit events published, ${got.length} messages in Kafka, ${missing.length} missing`,
    )
    assert.ok(published >= posts - accounts.length, 'every post reached the Jetstream')
    assert.equal(missing.length, 0, 'every event reached Kafka')
  })
})

describe('jetstream mode: what a real Jetstream rarely does', () => {
  const DID_A = 'did:plc:aaaaaaaaaaaaaaaaaaaaaaaa'
  const DID_B = 'did:plc:bbbbbbbbbbbbbbbbbbbbbbbb'
  let n = 0
  const post = (did: string, timeUs: number): JetstreamWireEvent => ({
    did,
    time_us: timeUs,
    kind: 'commit',
    commit: {
      rev: `3mmoojp7vgo${(n++).toString(36).padStart(2, '2')}`,
      operation: 'create',
      collection: 'app.bsky.feed.post',
      rkey: `3mmoojp7etg${n.toString(36).padStart(2, '2')}`,
      record: {
        $type: 'app.bsky.feed.post',
        text: `edge ${n}`,
        createdAt: '2026-12-01T00:00:00.000Z',
      },
      cid: 'bafyreidqpc7si3dbimffi64lz3xsx2qt45ip7rpna2qpslcddp23itjjzm',
    },
  })
  const lines = (p: AtkafkaProcess) =>
    p
      .stdout()
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as AtKafkaEvent)

  it('unknown kinds, bad JSON, a binary frame, a cursor in the future and an abrupt close', async () => {
    const js = await startFakeJetstream()
    const dir = await mkdtemp(join(tmpdir(), 'atkafka-jetstream-edge-'))
    const future = (Date.now() + 3600_000) * 1000
    const p = await spawnAtkafka([
      'jetstream',
      '--jetstream-host',
      js.url,
      '--stdout',
      '--no-event-metadata',
      '--cursor',
      String(future),
      '--cursor-file',
      join(dir, 'cursor.json'),
    ])
    try {
      await eventually(() => js.connected === 1, 30000, 'connected')
      assert.equal(js.requests[0]!.cursor, future - REWIND_US)
      const now = Date.now() * 1000
      const e1 = post(DID_A, now)
      js.publish(e1)
      js.sendRaw('{"did":"' + DID_A + '","time_us":' + (now + 1) + ',"kind":"sync","sync":{}}')
      js.sendRaw('{"did":')
      js.sendRaw(Buffer.from([1, 2, 3]))
      const e2 = post(DID_B, now + 2)
      const e3 = post(DID_A, now + 3)
      js.publish(e2)
      js.publish(e3)
      await eventually(() => lines(p).length === 3, 20000, 'three events on stdout')
      js.dropAll()
      await eventually(() => js.requests.length === 2 && js.connected === 1, 30000, 'reconnected')
      // Resumed a few seconds before the newest event: the three come again and are dropped.
      assert.equal(js.requests[1]!.cursor, e3.time_us - REWIND_US)
      const e4 = post(DID_B, now + 4)
      js.publish(e4)
      await eventually(() => lines(p).length >= 4, 20000, 'the fourth event')
      await sleep(300)
      const uris = lines(p).map((e) => ('operation' in e ? e.operation.rkey : ''))
      assert.deepEqual(
        uris,
        [e1, e2, e3, e4].map((e) => e.commit!['rkey']),
      )
      const m = (await httpGet(p.metricsPort, '/metrics')).body
      assert.equal(metricValue(m, 'atkafka_skipped_messages', { type: 'unknown' }), 1)
      assert.equal(metricValue(m, 'atkafka_decode_errors', { reason: 'invalid-json' }), 1)
      assert.equal(metricValue(m, 'atkafka_decode_errors', { reason: 'binary-frame' }), 1)
      assert.equal(metricValue(m, 'atkafka_relay_errors', { error: 'FutureCursor' }), 1)
      assert.ok(metricValue(m, 'atkafka_reconnects') >= 1)
      assert.match(p.stderr(), /a cursor in the future/)
      await stop(p)
      const saved = JSON.parse(await readFile(join(dir, 'cursor.json'), 'utf8')) as {
        time_us: number
        host: string
      }
      assert.equal(saved.time_us, e4.time_us)
      assert.equal(saved.host, js.url)
    } finally {
      p.child.kill('SIGKILL')
      await js.close()
      await rm(dir, { recursive: true, force: true })
    }
  })

  it('thousands of DIDs go in an options_update; only their events are produced', async () => {
    const js = await startFakeJetstream()
    const dir = await mkdtemp(join(tmpdir(), 'atkafka-jetstream-dids-'))
    const many = Array.from({ length: 2000 }, (_, i) => `did:plc:${String(i).padStart(24, 'z')}`)
    const p = await spawnAtkafka(
      [
        ...['jetstream', '--jetstream-host', js.url, '--stdout', '--no-event-metadata'],
        ...['--cursor-file', join(dir, 'c.json')],
      ],
      { env: { ATKAFKA_WATCHED_DIDS: [DID_A, ...many].join(',') } },
    )
    try {
      await eventually(() => js.hellos.length === 1, 30000, 'options_update')
      assert.equal(js.requests[0]!.requireHello, true)
      assert.deepEqual(js.requests[0]!.wantedDids, [])
      assert.equal((js.hellos[0]!['wantedDids'] as string[]).length, 2001)
      const now = Date.now() * 1000
      const a = post(DID_A, now)
      js.publish(post(DID_B, now + 1))
      js.publish(a)
      await eventually(() => lines(p).length === 1, 20000, 'one event')
      assert.equal(lines(p)[0]!.did, DID_A)
      await stop(p)
    } finally {
      p.child.kill('SIGKILL')
      await js.close()
      await rm(dir, { recursive: true, force: true })
    }
  })
})

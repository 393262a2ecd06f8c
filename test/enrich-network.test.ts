// eventMetadata and service filters against a real PLC, PDS and AppView (@atproto/dev-env
// TestNetwork on a throwaway PostgreSQL), with atkafka as a real process producing into Kafka.
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import type { AtKafkaEvent, JsonObject } from '../src/events.ts'
import { consumeAll } from './harness/kafka.ts'
import { type FullNetworkHandle, startFullNetwork } from './harness/network.ts'
import {
  type TestAccount,
  createAccount,
  createPost,
  createProfile,
  follow,
  updateHandle,
} from './harness/pds.ts'
import {
  type AtkafkaProcess,
  eventually,
  httpGet,
  metricValue,
  spawnAtkafka,
  relayToKafka,
} from './support/atkafka.ts'
import { validateEvent } from './support/schema.ts'

const bootstrap = process.env.KAFKA_BOOTSTRAP_SERVERS

type Metadata = JsonObject & {
  didDocument?: JsonObject
  pdsHost?: string
  handle?: string
  didCreatedAt?: string
  accountAge?: number
  profile?: JsonObject
}

/** A rejection handler that prints the process's log (stdout: events go to Kafka) first. */
function showLogs(p: AtkafkaProcess) {
  return (err: unknown): never => {
    console.error(p.stdout().slice(-4000))
    throw err
  }
}

function metadataOf(e: AtKafkaEvent): Metadata {
  assert.ok(e.eventMetadata !== null, `eventMetadata of ${JSON.stringify(e).slice(0, 200)}`)
  return e.eventMetadata as Metadata
}

async function metrics(p: AtkafkaProcess): Promise<string> {
  return (await httpGet(p.metricsPort, '/metrics')).body
}

async function readTopic(topic: string): Promise<AtKafkaEvent[]> {
  const got = await consumeAll(bootstrap!, topic, { idleMs: 500, timeoutMs: 15000 })
  return got.map((m) => JSON.parse(m.value) as AtKafkaEvent)
}

/** Events per DID in stream order (Kafka keeps one key's messages in order). */
function byDid(events: readonly AtKafkaEvent[]): Map<string, AtKafkaEvent[]> {
  const out = new Map<string, AtKafkaEvent[]>()
  for (const e of events) out.set(e.did, [...(out.get(e.did) ?? []), e])
  return out
}

describe('eventMetadata against a real PLC, PDS and AppView', () => {
  let net: FullNetworkHandle
  let dir: string
  let alice: TestAccount
  let bob: TestAccount
  const running: AtkafkaProcess[] = []

  async function getJson(url: string): Promise<unknown> {
    const res = await fetch(url)
    assert.equal(res.status, 200, url)
    return res.json()
  }

  async function lastSeq(): Promise<number> {
    const seq = await net.network.pds.ctx.sequencer.curr()
    assert.ok(seq !== null)
    return seq
  }

  /** atkafka relay mode on the PDS firehose into `topic`, with extra flags. */
  async function start(topic: string, extra: string[]): Promise<AtkafkaProcess> {
    const p = await spawnAtkafka([
      ...relayToKafka(net.pdsUrl, bootstrap!, topic, [
        '--topic-partitions',
        '4',
        '--cursor-file',
        join(dir, `${topic}.json`),
        ...extra,
      ]),
    ])
    running.push(p)
    await p.waitFor(/metrics server listening/)
    return p
  }

  /** Replay the whole PDS history and wait until the saved cursor reached its last event. */
  async function replay(topic: string, extra: string[]): Promise<AtkafkaProcess> {
    const target = await lastSeq()
    const p = await start(topic, ['--cursor', '0', ...extra])
    await eventually(
      async () => metricValue(await metrics(p), 'atkafka_cursor_seq') >= target,
      60000,
      `${topic}: cursor at ${target}`,
    ).catch(showLogs(p))
    return p
  }

  async function stop(p: AtkafkaProcess): Promise<void> {
    p.child.kill('SIGTERM')
    assert.equal(await p.exited, 0, p.stderr().slice(-2000))
  }

  before(async () => {
    assert.ok(bootstrap, 'KAFKA_BOOTSTRAP_SERVERS must point at the test broker (npm test sets it)')
    dir = await mkdtemp(join(tmpdir(), 'atkafka-enrich-'))
    net = await startFullNetwork()
    // alice is "established" (more than 10 followers and posts): her profile gets cached.
    alice = await createAccount(net.pdsUrl)
    await createProfile(alice, 'Alice')
    for (let i = 0; i < 11; i++) await createPost(alice, `post ${i}`)
    for (let i = 0; i < 11; i++) {
      const fan = await createAccount(net.pdsUrl)
      await follow(fan, alice.did)
    }
    bob = await createAccount(net.pdsUrl)
    await createPost(bob, 'first post')
    await net.network.processAll()
  })

  after(async () => {
    for (const p of running) p.child.kill('SIGKILL')
    await net?.close()
    await rm(dir, { recursive: true, force: true })
  })

  let replayed: AtKafkaEvent[] = []

  it('writes the real DID document, PDS, creation time, account age and profile; one PLC lookup per DID', async () => {
    const p = await replay('enrich-full', ['--plc-host', net.plcUrl, '--api-host', net.appviewUrl])
    const text = await metrics(p)
    await stop(p)
    replayed = await readTopic('enrich-full')
    assert.ok(replayed.length > 40, `events: ${replayed.length}`)
    for (const e of replayed) validateEvent(e)
    const perDid = byDid(replayed)

    for (const account of [alice, bob]) {
      const events = perDid.get(account.did)
      assert.ok(events && events.length > 0, `events of ${account.handle}`)
      const doc = await getJson(`${net.plcUrl}/${account.did}`)
      const audit = (await getJson(`${net.plcUrl}/${account.did}/log/audit`)) as Array<{
        createdAt: string
      }>
      const createdAt = audit[0]!.createdAt
      const maxAge = Math.ceil((Date.now() - Date.parse(createdAt)) / 1000)
      for (const e of events) {
        const m = metadataOf(e)
        assert.deepEqual(
          Object.keys(m),
          ['didDocument', 'pdsHost', 'handle', 'didCreatedAt', 'accountAge', 'profile'],
          'at-kafka key order',
        )
        assert.deepEqual(m.didDocument, doc)
        assert.equal(m.pdsHost, net.pdsUrl)
        // Handles under .test resolve neither by DNS nor by https: verification fails, as in at-kafka.
        assert.equal(m.handle, 'handle.invalid')
        assert.equal(m.didCreatedAt, createdAt)
        assert.ok(
          Number.isInteger(m.accountAge) && m.accountAge! >= 0 && m.accountAge! <= maxAge,
          `accountAge ${m.accountAge} within 0..${maxAge}`,
        )
        assert.equal(m.profile?.did, account.did)
      }
    }
    const aliceProfile = metadataOf(perDid.get(alice.did)![0]!).profile!
    assert.equal(aliceProfile.followersCount, 11)
    assert.equal(aliceProfile.postsCount, 11)
    assert.equal(aliceProfile.displayName, 'Alice')
    const bobProfile = metadataOf(perDid.get(bob.did)![0]!).profile!
    assert.equal(bobProfile.followersCount, 0)
    assert.equal(bobProfile.postsCount, 1)

    // One uncached DID document per DID, plus one per #identity event that is not the DID's
    // first event (it refreshes the cached document); one audit log per DID.
    let expectedDocs = 0
    for (const events of perDid.values()) {
      expectedDocs += 1 + events.slice(1).filter((e) => 'identity' in e).length
    }
    const docs = metricValue(text, 'atkafka_plc_requests', { kind: 'did_doc', cached: 'false' })
    const cachedDocs = metricValue(text, 'atkafka_plc_requests', {
      kind: 'did_doc',
      cached: 'true',
    })
    const audits = metricValue(text, 'atkafka_plc_requests', { kind: 'audit_log', cached: 'false' })
    console.log(
      `full replay: ${replayed.length} events of ${perDid.size} DIDs; did_doc uncached ${docs}, cached ${cachedDocs}; audit_log uncached ${audits}; handle checks ${metricValue(text, 'atkafka_plc_requests', { kind: 'handle' })}; profile requests ${metricValue(text, 'atkafka_api_requests', { cached: 'false' })}`,
    )
    assert.equal(docs, expectedDocs)
    assert.ok(cachedDocs > 0)
    assert.equal(
      metricValue(text, 'atkafka_plc_requests', { kind: 'did_doc', status: 'ok' }),
      docs + cachedDocs,
    )
    assert.equal(audits, perDid.size)
    assert.equal(metricValue(text, 'atkafka_plc_requests', { kind: 'handle' }), docs)
    assert.equal(metricValue(text, 'atkafka_plc_requests', { kind: 'handle', status: 'ok' }), 0)
    assert.equal(metricValue(text, 'atkafka_metadata_incomplete_events'), 0)
    assert.equal(metricValue(text, 'atkafka_cache_size', { kind: 'identity' }), perDid.size)
    assert.equal(metricValue(text, 'atkafka_cache_size', { kind: 'audit_log' }), perDid.size)
  })

  it('watched and ignored services keep or drop events by the PDS host of the DID document', async () => {
    const total = replayed.length
    assert.ok(total > 0)
    const cases: Array<{ flag: string; pattern: string; kept: boolean }> = [
      { flag: '--watched-services', pattern: '*.bsky.network,pds.example.com', kept: false },
      { flag: '--watched-services', pattern: '*.localhost', kept: true },
      { flag: '--ignored-services', pattern: 'localhost', kept: false },
      { flag: '--ignored-services', pattern: '*.bsky.network', kept: true },
    ]
    let n = 0
    for (const c of cases) {
      const topic = `enrich-services-${n++}`
      const p = await replay(topic, ['--plc-host', net.plcUrl, c.flag, c.pattern])
      const text = await metrics(p)
      await stop(p)
      const handled = metricValue(text, 'atkafka_handled_events')
      const filtered = metricValue(text, 'atkafka_filtered_events', { filter: 'service' })
      const events = c.kept ? await readTopic(topic) : []
      console.log(`${c.flag} ${c.pattern}: produced ${handled}, filtered ${filtered}`)
      assert.equal(handled + filtered, total, `${c.flag} ${c.pattern}`)
      assert.equal(handled, c.kept ? total : 0, `${c.flag} ${c.pattern}`)
      if (c.kept) {
        assert.equal(events.length, total)
        assert.ok(events.every((e) => e.did === '' || metadataOf(e).pdsHost === net.pdsUrl))
      }
    }
  })

  it('live: cached lookups, a profile change busts the profile, an #identity event refreshes the handle', async () => {
    const topic = 'enrich-live'
    const p = await start(topic, [
      '--plc-host',
      net.plcUrl,
      '--api-host',
      net.appviewUrl,
      '--skip-handle-verification',
    ])
    await eventually(
      async () => metricValue(await metrics(p), 'atkafka_source_connected') === 1,
      30000,
      'connected',
    ).catch(showLogs(p))
    const count = async (name: string, labels: Record<string, string>) =>
      metricValue(await metrics(p), name, labels)
    const docs = () => count('atkafka_plc_requests', { kind: 'did_doc', cached: 'false' })
    const audits = () => count('atkafka_plc_requests', { kind: 'audit_log', cached: 'false' })
    const profiles = () => count('atkafka_api_requests', { kind: 'profile', cached: 'false' })
    const cachedProfiles = () => count('atkafka_api_requests', { kind: 'profile', cached: 'true' })

    let events: AtKafkaEvent[] = []
    const waitFor = async (what: string, pred: (e: AtKafkaEvent) => boolean) => {
      let found: AtKafkaEvent | undefined
      await eventually(
        async () => {
          events = await readTopic(topic)
          found = events.find(pred)
          return found !== undefined
        },
        30000,
        what,
      )
      return found!
    }
    const postEvent = (uri: string) => (e: AtKafkaEvent) =>
      'operation' in e && e.operation.uri === uri

    const p1 = await createPost(alice, 'live 1')
    const e1 = await waitFor('post 1', postEvent(p1.uri))
    assert.equal(metadataOf(e1).handle, alice.handle)
    assert.equal(metadataOf(e1).profile?.displayName, 'Alice')
    assert.deepEqual([await docs(), await audits(), await profiles()], [1, 1, 1])

    // The second event of the same DID: every answer from the caches.
    const p2 = await createPost(alice, 'live 2')
    const e2 = await waitFor('post 2', postEvent(p2.uri))
    assert.deepEqual(metadataOf(e2).didDocument, metadataOf(e1).didDocument)
    assert.deepEqual([await docs(), await audits(), await profiles()], [1, 1, 1])
    assert.equal(await cachedProfiles(), 1)
    assert.equal(
      await count('atkafka_plc_requests', { kind: 'did_doc', cached: 'true' }),
      1,
      'second event: DID document from the cache',
    )

    // A profile record change drops the cached profile: the next event shows the new one.
    const before = await profiles()
    const change = await createProfile(alice, 'Alice Changed')
    await waitFor('profile update', postEvent(change.uri))
    await net.network.processAll()
    const p3 = await createPost(alice, 'live 3')
    const e3 = await waitFor('post 3', postEvent(p3.uri))
    assert.equal(metadataOf(e3).profile?.displayName, 'Alice Changed')
    assert.ok((await profiles()) >= before + 2, 'profile fetched again after the change')
    assert.equal(await docs(), 1)

    // A handle change: the #identity event itself carries the new handle.
    const newHandle = await updateHandle(alice, `a${Date.now().toString(36)}`)
    const idEvent = await waitFor(
      'identity event',
      (e) => 'identity' in e && e.did === alice.did && e.identity.handle === newHandle,
    )
    assert.equal(metadataOf(idEvent).handle, newHandle)
    assert.ok(
      (metadataOf(idEvent).didDocument!.alsoKnownAs as string[]).includes(`at://${newHandle}`),
    )
    assert.equal(await docs(), 2, 'the #identity event refreshed the DID document')
    const p4 = await createPost(alice, 'live 4')
    const e4 = await waitFor('post 4', postEvent(p4.uri))
    assert.equal(metadataOf(e4).handle, newHandle)
    assert.equal(await docs(), 2)
    assert.equal(await audits(), 1)
    for (const e of events) validateEvent(e)
    console.log(
      `live: did_doc uncached ${await docs()}, audit_log uncached ${await audits()}, profile uncached ${await profiles()}, profile cached ${await cachedProfiles()}`,
    )
    await stop(p)
  })

  it('PLC stopped: every event still produced, without identity metadata, and counted', async () => {
    // TestNetwork.close() closes the PLC once more at the end; its server allows that.
    await net.network.plc.close()
    const p = await replay('enrich-no-plc', [
      '--plc-host',
      net.plcUrl,
      '--api-host',
      net.appviewUrl,
      '--lookup-timeout',
      '2s',
    ])
    const text = await metrics(p)
    await stop(p)
    const events = await readTopic('enrich-no-plc')
    const withDid = events.filter((e) => e.did !== '')
    assert.ok(events.length > replayed.length, `${events.length} events`)
    for (const e of withDid) {
      validateEvent(e)
      const m = metadataOf(e)
      for (const key of ['didDocument', 'pdsHost', 'handle', 'didCreatedAt', 'accountAge']) {
        assert.ok(!(key in m), `${key} absent`)
      }
    }
    const aliceEvent = withDid.find((e) => e.did === alice.did)!
    assert.equal(metadataOf(aliceEvent).profile?.did, alice.did, 'the AppView still answers')
    const failed = (kind: string) =>
      metricValue(text, 'atkafka_plc_requests', { kind, status: 'error' }) +
      metricValue(text, 'atkafka_plc_requests', { kind, status: 'unavailable' })
    console.log(
      `PLC stopped: ${withDid.length} events; did_doc error ${metricValue(text, 'atkafka_plc_requests', { kind: 'did_doc', status: 'error' })}, unavailable ${metricValue(text, 'atkafka_plc_requests', { kind: 'did_doc', status: 'unavailable' })}; incomplete identity ${metricValue(text, 'atkafka_metadata_incomplete_events', { missing: 'identity' })}`,
    )
    assert.ok(failed('did_doc') > 0)
    assert.ok(failed('audit_log') > 0)
    assert.equal(metricValue(text, 'atkafka_plc_requests', { status: 'ok' }), 0)
    assert.equal(
      metricValue(text, 'atkafka_metadata_incomplete_events', { missing: 'identity' }),
      withDid.length,
    )
    assert.equal(
      metricValue(text, 'atkafka_metadata_incomplete_events', { missing: 'audit_log' }),
      withDid.length,
    )
  })
})

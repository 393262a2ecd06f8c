import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import type { AtKafkaEvent } from '../src/events.ts'
import { consumeAll } from './harness/kafka.ts'
import {
  type PdsHandle,
  createAccount,
  createPost,
  createProfile,
  createRecord,
  deleteRecord,
  startPds,
  updateHandle,
} from './harness/pds.ts'
import { type AtkafkaProcess, eventually, spawnAtkafka } from './support/atkafka.ts'
import { validateEvent } from './support/schema.ts'

const bootstrap = process.env.KAFKA_BOOTSTRAP_SERVERS

describe('relay mode against a real PDS firehose', () => {
  let pds: PdsHandle
  let dir: string
  let atkafka: AtkafkaProcess | undefined

  before(async () => {
    assert.ok(bootstrap, 'KAFKA_BOOTSTRAP_SERVERS must point at the test broker (npm test sets it)')
    pds = await startPds()
    dir = await mkdtemp(join(tmpdir(), 'atkafka-pds-'))
  })
  after(async () => {
    atkafka?.child.kill('SIGKILL')
    await pds?.close()
    await rm(dir, { recursive: true, force: true })
  })

  it('accounts, posts, likes, a profile update, a delete and a handle change reach Kafka', async () => {
    const alice = await createAccount(pds.pdsUrl)
    const bob = await createAccount(pds.pdsUrl)
    const post = await createPost(alice, 'hello from a real PDS')
    const like = await createRecord(bob, 'app.bsky.feed.like', {
      subject: { uri: post.uri, cid: post.cid },
      createdAt: new Date().toISOString(),
    })
    await createProfile(alice, 'Alice')
    await createProfile(alice, 'Alice Again')
    await deleteRecord(bob, 'app.bsky.feed.like', like.rkey)
    const newHandle = await updateHandle(bob, `b${Date.now().toString(36)}`)

    const topic = 'relay-pds'
    atkafka = await spawnAtkafka([
      'firehose',
      'relay',
      '--no-event-metadata',
      '--relay-host',
      pds.pdsUrl,
      '--cursor',
      '0',
      '--bootstrap-servers',
      bootstrap!,
      '--output-topic',
      topic,
      '--topic-partitions',
      '4',
      '--cursor-file',
      join(dir, 'cursor.json'),
    ])
    let events: AtKafkaEvent[] = []
    const has = (pred: (e: AtKafkaEvent) => boolean) => events.some(pred)
    const handleChanged = (e: AtKafkaEvent) =>
      'identity' in e && e.did === bob.did && e.identity.handle === newHandle
    await eventually(
      async () => {
        const got = await consumeAll(bootstrap!, topic, { idleMs: 500, timeoutMs: 10000 })
        events = got.map((m) => JSON.parse(m.value) as AtKafkaEvent)
        return has(handleChanged)
      },
      60000,
      'the handle change in Kafka',
    )
    atkafka.child.kill('SIGTERM')
    assert.equal(await atkafka.exited, 0)

    for (const e of events) validateEvent(e)
    const ops = events.filter(
      (e): e is Extract<AtKafkaEvent, { operation: unknown }> => 'operation' in e,
    )
    const postEvent = ops.find((e) => e.operation.uri === post.uri)
    assert.ok(postEvent)
    assert.equal(postEvent.did, alice.did)
    assert.equal(postEvent.operation.action, 'create')
    assert.equal(postEvent.operation.cid, post.cid)
    assert.equal(postEvent.operation.record?.['text'], 'hello from a real PDS')
    assert.equal(postEvent.operation.record?.['$type'], 'app.bsky.feed.post')

    const likeEvents = ops.filter((e) => e.operation.uri === like.uri)
    assert.deepEqual(
      likeEvents.map((e) => e.operation.action),
      ['create', 'delete'],
    )
    assert.deepEqual(likeEvents[0]!.operation.record?.['subject'], { uri: post.uri, cid: post.cid })
    assert.equal(likeEvents[1]!.operation.cid, '')
    assert.equal('record' in likeEvents[1]!.operation, false)

    const profile = ops.filter((e) => e.operation.collection === 'app.bsky.actor.profile')
    assert.deepEqual(
      profile.map((e) => e.operation.action),
      ['create', 'update'],
    )
    assert.equal(profile[1]!.operation.record?.['displayName'], 'Alice Again')

    for (const account of [alice, bob]) {
      assert.ok(
        has((e) => 'account' in e && e.did === account.did && e.account.active),
        'account event',
      )
      assert.ok(
        has((e) => 'identity' in e && e.did === account.did),
        'identity event',
      )
    }
  })
})

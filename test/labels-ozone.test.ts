// Labels mode against a real Ozone (@atproto/dev-env TestNetwork: PLC, PDS, AppView, Ozone on a
// throwaway PostgreSQL) and a real Kafka broker: labels are applied and negated through Ozone's
// moderation API, atkafka subscribes to Ozone's com.atproto.label.subscribeLabels, and the test
// reads the topic back and compares it with Ozone's own label table.
import { AtpAgent } from '@atproto/api'
import * as dagCbor from '@ipld/dag-cbor'
import { base58btc } from 'multiformats/bases/base58'
import assert from 'node:assert/strict'
import { createPublicKey, verify } from 'node:crypto'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import type { AtKafkaEvent, LabelPayload } from '../src/events.ts'
import { normalizeLabelerHost } from '../src/labels/config.ts'
import { consumeAll } from './harness/kafka.ts'
import {
  type FullNetworkHandle,
  OZONE_ADMIN_HANDLE,
  OZONE_ADMIN_PASSWORD,
  startFullNetwork,
} from './harness/network.ts'
import { type RecordRef, type TestAccount, createAccount, createPost } from './harness/pds.ts'
import {
  type AtkafkaProcess,
  eventually,
  httpGet,
  metricValue,
  spawnAtkafka,
} from './support/atkafka.ts'
import { validateEvent, validateHeaders, validateOspreyEvent } from './support/schema.ts'

const bootstrap = process.env.KAFKA_BOOTSTRAP_SERVERS
const DEFS = 'tools.ozone.moderation.defs'

type LabelEvent = Extract<AtKafkaEvent, { label: unknown }>

/** A row of Ozone's `label` table: its id is the subscribeLabels seq. */
interface LabelRow {
  id: number
  src: string
  uri: string
  cid: string
  val: string
  neg: boolean
  cts: string
  exp: string | null
  sig: Buffer | null
}

let net: FullNetworkHandle
let admin: AtpAgent
let dir: string
let alice: TestAccount
let bob: TestAccount
let alicePost: RecordRef
let bobPost: RecordRef
const running: AtkafkaProcess[] = []

/** Ozone's subscribeLabels URL, as a user would copy it. */
function labelerUrl(): string {
  return net.ozoneUrl.replace(/^http/, 'ws') + '/xrpc/com.atproto.label.subscribeLabels'
}

type Subject = { $type: string; did?: string; uri?: string; cid?: string }
const repo = (a: TestAccount): Subject => ({ $type: 'com.atproto.admin.defs#repoRef', did: a.did })
const record = (r: RecordRef): Subject => ({
  $type: 'com.atproto.repo.strongRef',
  uri: r.uri,
  cid: r.cid,
})

/** A modEventLabel through the PDS proxy, as the Ozone admin. */
async function label(
  subject: Subject,
  create: string[],
  negate: string[] = [],
  durationInHours?: number,
): Promise<void> {
  await admin
    .withProxy('atproto_labeler', net.ozoneDid as `did:${string}:${string}`)
    .tools.ozone.moderation.emitEvent({
      event: {
        $type: `${DEFS}#modEventLabel`,
        createLabelVals: create,
        negateLabelVals: negate,
        ...(durationInHours === undefined ? {} : { durationInHours }),
      },
      subject: subject as { $type: string },
      createdBy: net.ozoneDid,
    })
}

async function labelRows(): Promise<LabelRow[]> {
  const rows = await net.network.ozone.ctx.db.db
    .selectFrom('label')
    .selectAll()
    .orderBy('id', 'asc')
    .execute()
  return rows as unknown as LabelRow[]
}

async function maxSeq(): Promise<number> {
  return (await labelRows()).at(-1)?.id ?? 0
}

/** The event atkafka must write for a row, built independently of src/labels. */
function expectedEvent(row: LabelRow): string {
  assert.ok(row.sig, `label ${row.id} is signed`)
  const did = row.uri.startsWith('did:') ? row.uri : row.uri.split('/')[2]!
  const label: Record<string, unknown> = { ver: 1, src: row.src, uri: row.uri }
  if (row.cid !== '') label['cid'] = row.cid
  label['val'] = row.val
  if (row.neg) label['neg'] = true
  label['cts'] = row.cts
  if (row.exp !== null) label['exp'] = row.exp
  label['sig'] = { $bytes: row.sig.toString('base64').replace(/=+$/, '') }
  label['seq'] = row.id
  return JSON.stringify({ did, timestamp: row.cts, eventMetadata: null, label })
}

/** Ozone's label signing key (its did:key, secp256k1) as a node:crypto public key. */
function ozoneKey() {
  const didKey = net.network.ozone.ctx.signingKey.did()
  const bytes = base58btc.decode(didKey.slice('did:key:'.length))
  assert.deepEqual([...bytes.subarray(0, 2)], [0xe7, 0x01], 'a secp256k1 did:key')
  const point = bytes.subarray(2)
  const prefix =
    point.length === 33
      ? '3036301006072a8648ce3d020106052b8104000a032200'
      : '3056301006072a8648ce3d020106052b8104000a034200'
  return createPublicKey({
    key: Buffer.concat([Buffer.from(prefix, 'hex'), point]),
    format: 'der',
    type: 'spki',
  })
}

/** Checks the labeler's signature over the label as written to Kafka (all but `sig`, `seq`). */
function signatureValid(l: LabelPayload): boolean {
  const unsigned: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(l)) if (k !== 'sig' && k !== 'seq') unsigned[k] = v
  assert.ok(l.sig)
  return verify(
    'sha256',
    dagCbor.encode(unsigned),
    { key: ozoneKey(), dsaEncoding: 'ieee-p1363' },
    Buffer.from(l.sig.$bytes, 'base64'),
  )
}

function labelsArgs(topic: string, cursorFile: string, extra: string[] = []): string[] {
  return [
    'labels',
    '--labeler-host',
    labelerUrl(),
    '--bootstrap-servers',
    bootstrap!,
    '--output-topic',
    topic,
    '--cursor-file',
    cursorFile,
    ...extra,
  ]
}

async function start(args: string[]): Promise<AtkafkaProcess> {
  const proc = await spawnAtkafka(args)
  running.push(proc)
  await proc.waitFor(/metrics server listening/)
  return proc
}

async function metric(
  proc: AtkafkaProcess,
  name: string,
  labels: Record<string, string> = {},
): Promise<number> {
  return metricValue((await httpGet(proc.metricsPort, '/metrics')).body, name, labels)
}

async function labelEventsOf(topic: string, expected?: number) {
  const messages = await consumeAll(bootstrap!, topic, { expected, timeoutMs: 30000 })
  return messages.map((m) => {
    const event = JSON.parse(m.value) as LabelEvent
    validateEvent(event)
    assert.equal(m.key, event.did, 'keyed by the subject DID')
    return { ...m, event }
  })
}

async function savedCursor(path: string): Promise<{ host: string; seq: number } | undefined> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as { host: string; seq: number }
  } catch {
    return undefined
  }
}

/** Waits until `proc` has (re)connected `n` times in total. */
async function connected(proc: AtkafkaProcess, n = 1): Promise<void> {
  await eventually(
    () => (proc.stdout().match(/"msg":"connected to relay"/g) ?? []).length >= n,
    20000,
    `connection ${n}`,
  )
  // The connection is open; give Ozone a moment to attach it to its label sequencer.
  await sleep(300)
}

describe('labels mode against a real Ozone and Kafka', () => {
  before(async () => {
    assert.ok(bootstrap, 'KAFKA_BOOTSTRAP_SERVERS must point at the test broker (npm test sets it)')
    dir = await mkdtemp(join(tmpdir(), 'atkafka-labels-'))
    net = await startFullNetwork()
    admin = new AtpAgent({ service: net.pdsUrl })
    await admin.login({ identifier: OZONE_ADMIN_HANDLE, password: OZONE_ADMIN_PASSWORD })
    assert.equal(admin.session!.did, net.ozoneDid)
    alice = await createAccount(net.pdsUrl)
    bob = await createAccount(net.pdsUrl)
    alicePost = await createPost(alice, 'a post to label')
    bobPost = await createPost(bob, 'another post to label')
  })

  after(async () => {
    for (const p of running) p.child.kill('SIGKILL')
    await net?.close()
    if (dir) await rm(dir, { recursive: true, force: true })
  })

  it('applied and negated labels reach Kafka, one event per label, signed and keyed by subject, with --kafka-headers', async () => {
    // Before atkafka starts: replayed with --cursor 0.
    await label(repo(alice), ['spam', '!warn'])
    await label(record(alicePost), ['porn'], [], 24)
    const topic = 'labels-ozone'
    const cursorFile = join(dir, 'apply.json')
    const proc = await start(labelsArgs(topic, cursorFile, ['--cursor', '0', '--kafka-headers']))
    await eventually(
      async () => (await metric(proc, 'atkafka_produced_events', { status: 'ok' })) >= 3,
      30000,
      'the replayed labels',
    )
    const applied = (await labelRows()).find((r) => r.uri === alice.did && r.val === 'spam')!
    const appliedJson = expectedEvent(applied)

    // Live: negate one of them (Ozone rewrites that row under a new seq) and label a record.
    await label(repo(alice), [], ['spam'])
    await label(record(bobPost), ['nudity'])
    await eventually(
      async () => (await metric(proc, 'atkafka_produced_events', { status: 'ok' })) >= 5,
      30000,
      'the live labels',
    )
    proc.child.kill('SIGTERM')
    assert.equal(await proc.exited, 0)

    const rows = await labelRows()
    assert.equal(rows.length, 4)
    const got = await labelEventsOf(topic, 5)
    const values = got.map((m) => m.value)
    // Exactly Ozone's labels as it serves them, plus the application the negation replaced.
    assert.deepEqual([...values].sort(), [...rows.map(expectedEvent), appliedJson].sort())
    console.log(`labels: one event as written to Kafka: ${values.find((v) => v.includes('"exp"'))}`)
    const negation = got.find((m) => m.event.label.neg === true)!
    assert.equal(negation.event.label.val, 'spam')
    assert.equal(negation.event.label.uri, alice.did)
    const apply = got.find((m) => m.value === appliedJson)!
    assert.equal(apply.partition, negation.partition, 'one subject, one partition')
    assert.ok(BigInt(apply.offset) < BigInt(negation.offset), 'applied, then negated')
    assert.ok(apply.event.label.seq < negation.event.label.seq)
    const onPost = got.find((m) => m.event.label.val === 'porn')!
    assert.equal(onPost.key, alice.did)
    assert.equal(onPost.event.label.cid, alicePost.cid)
    assert.ok(onPost.event.label.exp !== undefined)
    for (const m of got) assert.ok(signatureValid(m.event.label), `signature of ${m.value}`)
    for (const m of got) {
      validateHeaders(m.headers)
      assert.deepEqual(m.headers, {
        'atkafka-kind': 'label',
        'atkafka-did': m.event.did,
        'atkafka-cursor': String(m.event.label.seq),
        'atkafka-time': m.event.timestamp,
      })
    }

    // Saved cursor: the last seq, for this labeler.
    assert.deepEqual(await savedCursor(cursorFile).then((c) => c && { ...c, savedAt: 0 }), {
      host: normalizeLabelerHost(net.ozoneUrl),
      seq: rows.at(-1)!.id,
      savedAt: 0,
    })
  })

  it('a crash mid-stream loses nothing; a graceful restart repeats nothing', async () => {
    const topic = 'labels-restart'
    const cursorFile = join(dir, 'restart.json')
    const from = await maxSeq()
    await writeFile(
      cursorFile,
      JSON.stringify({ host: normalizeLabelerHost(net.ozoneUrl), seq: from }) + '\n',
    )
    // A small in-flight bound: reading pauses and resumes many times on the way.
    const args = labelsArgs(topic, cursorFile, ['--max-in-flight', '4'])
    const first = await start(args)
    await first.waitFor(/resuming from the saved cursor/)
    await connected(first)

    // 40 moderation events of 2 labels each, on distinct values: no row is rewritten.
    const TOTAL = 80
    let made = 0
    const producer = (async () => {
      for (let i = 0; i < TOTAL / 2; i++) {
        const subject = i % 3 === 0 ? record(bobPost) : repo(i % 2 === 0 ? alice : bob)
        await label(subject, [`r${i}-a`, `r${i}-b`])
        made += 2
        await sleep(40)
      }
    })()
    let second: AtkafkaProcess | undefined
    try {
      await eventually(
        async () =>
          (await metric(first, 'atkafka_produced_events', { status: 'ok' })) >= 20 &&
          ((await savedCursor(cursorFile))?.seq ?? from) > from,
        30000,
        'a part of the stream in Kafka and its cursor saved',
      )
      first.child.kill('SIGKILL')
      await first.exited
      const atCrash = (await savedCursor(cursorFile))!.seq
      const madeAtCrash = made
      await sleep(1000)
      const whileDown = made - madeAtCrash
      console.log(
        `labels: killed after ${madeAtCrash} labels made (saved cursor ${atCrash - from} past the start); ${whileDown} more made while down`,
      )
      assert.ok(whileDown > 0, 'labels were made while atkafka was down')

      second = await start(args)
      await second.waitFor(new RegExp(`subscribeLabels\\?cursor=${atCrash}"`))
      await producer
      const end = await maxSeq()
      assert.equal((await labelRows()).filter((r) => r.id > from).length, TOTAL)
      await eventually(
        async () => (await savedCursor(cursorFile))?.seq === end,
        30000,
        'the cursor at the last label',
      )
      second.child.kill('SIGTERM')
      assert.equal(await second.exited, 0)

      const got = await labelEventsOf(topic)
      const seqs = got.map((m) => m.event.label.seq)
      const unique = new Set(seqs)
      const want = (await labelRows()).filter((r) => r.id > from)
      assert.deepEqual(
        [...unique].sort((a, b) => a - b),
        want.map((r) => r.id),
        'every label in Kafka',
      )
      const dups = seqs.filter((s, i) => seqs.indexOf(s) !== i)
      console.log(
        `labels: ${got.length} messages for ${want.length} labels (${dups.length} repeated after the crash)`,
      )
      assert.ok(
        dups.every((s) => s > atCrash),
        'only labels after the saved cursor are produced twice',
      )
      const byValue = new Map(want.map((r) => [r.id, expectedEvent(r)]))
      for (const m of got) assert.equal(m.value, byValue.get(m.event.label.seq))

      // Graceful restart: resumes at the saved cursor and writes only the new labels.
      const third = await start(args)
      await third.waitFor(new RegExp(`subscribeLabels\\?cursor=${end}"`))
      await connected(third)
      await label(repo(bob), ['after-restart'])
      await eventually(
        async () => (await metric(third, 'atkafka_produced_events', { status: 'ok' })) >= 1,
        20000,
        'the new label',
      )
      await sleep(500)
      assert.equal(await metric(third, 'atkafka_produced_events', { status: 'ok' }), 1)
      third.child.kill('SIGTERM')
      assert.equal(await third.exited, 0)
      const after = await labelEventsOf(topic, got.length + 1)
      assert.equal(after.length, got.length + 1)
      assert.equal(after.filter((m) => m.event.label.val === 'after-restart').length, 1)
    } finally {
      await producer.catch(() => {})
    }
  })

  it('FutureCursor and a cursor file of another labeler fall back to the live stream', async () => {
    const topic = 'labels-fallback'
    const future = await start(
      labelsArgs(topic, join(dir, 'future.json'), ['--cursor', '99999999']),
    )
    await eventually(
      async () => (await metric(future, 'atkafka_relay_errors', { error: 'FutureCursor' })) === 1,
      20000,
      'the FutureCursor error frame',
    )
    await connected(future, 2)
    await label(repo(alice), ['after-future-cursor'])
    await eventually(
      async () => (await metric(future, 'atkafka_produced_events', { status: 'ok' })) === 1,
      20000,
      'the live label',
    )
    future.child.kill('SIGTERM')
    assert.equal(await future.exited, 0)
    assert.match(future.stdout(), /cursor is in the future/)

    const otherFile = join(dir, 'other.json')
    await writeFile(otherFile, JSON.stringify({ host: 'wss://other.example', seq: 0 }) + '\n')
    const other = await start(labelsArgs(topic, otherFile))
    await other.waitFor(/cursor file belongs to another labeler/)
    await connected(other)
    await label(repo(bob), ['after-other-cursor'])
    await eventually(
      async () => (await metric(other, 'atkafka_produced_events', { status: 'ok' })) === 1,
      20000,
      'the live label',
    )
    other.child.kill('SIGTERM')
    assert.equal(await other.exited, 0)
    assert.equal((await savedCursor(otherFile))?.host, normalizeLabelerHost(net.ozoneUrl))
    const got = await labelEventsOf(topic, 2)
    assert.deepEqual(got.map((m) => m.event.label.val).sort(), [
      'after-future-cursor',
      'after-other-cursor',
    ])
  })

  it('replays a backlog of 1,000 labels from --cursor 0, in seq order per subject', async () => {
    const before = (await labelRows()).length
    const subjects = [repo(alice), repo(bob), record(alicePost), record(bobPost)]
    for (let i = 0; i < 20; i++) {
      await label(
        subjects[i % subjects.length]!,
        Array.from({ length: 50 }, (_, j) => `b${i}-${j}`),
      )
    }
    const rows = await labelRows()
    assert.equal(rows.length, before + 1000)
    const topic = 'labels-backlog'
    const proc = await start(labelsArgs(topic, join(dir, 'backlog.json'), ['--cursor', '0']))
    const started = performance.now()
    await eventually(
      async () => (await metric(proc, 'atkafka_produced_events', { status: 'ok' })) >= rows.length,
      60000,
      'the backlog in Kafka',
    )
    const seconds = (performance.now() - started) / 1000
    proc.child.kill('SIGTERM')
    assert.equal(await proc.exited, 0)
    console.log(
      `labels: replayed ${rows.length} labels into Kafka within ${seconds.toFixed(2)} s of the metrics ` +
        `server coming up (connect included; checked every 200 ms): at least ${Math.round(rows.length / seconds)} labels/s`,
    )
    const got = await labelEventsOf(topic, rows.length)
    assert.equal(got.length, rows.length)
    const bySubject = new Map<string, number[]>()
    for (const m of got) {
      const key = `${m.partition}:${m.event.label.uri}`
      bySubject.set(key, [...(bySubject.get(key) ?? []), m.event.label.seq])
    }
    for (const seqs of bySubject.values()) {
      assert.deepEqual(
        seqs,
        [...seqs].sort((a, b) => a - b),
      )
    }
    assert.deepEqual(got.map((m) => m.value).sort(), rows.map(expectedEvent).sort())
  })

  it('writes Osprey envelopes with action name "label" to stdout', async () => {
    const rows = await labelRows()
    const proc = await start([
      'labels',
      '--labeler-host',
      net.ozoneUrl,
      '--stdout',
      '--osprey-compatible',
      '--cursor',
      '0',
      '--cursor-file',
      join(dir, 'osprey.json'),
    ])
    const lines = () => proc.stdout().split('\n').filter(Boolean)
    await eventually(() => lines().length >= rows.length, 20000, 'every label on stdout')
    proc.child.kill('SIGTERM')
    assert.equal(await proc.exited, 0)
    const envelopes = lines().map(
      (l) => JSON.parse(l) as { data: { action_name: string; data: LabelEvent } },
    )
    for (const e of envelopes) validateOspreyEvent(e)
    assert.deepEqual(
      envelopes.map((e) => e.data.action_name),
      rows.map(() => 'label'),
    )
    assert.deepEqual(
      envelopes.map((e) => JSON.stringify(e.data.data)),
      rows.map(expectedEvent),
    )
  })
})

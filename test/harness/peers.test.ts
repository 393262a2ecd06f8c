// End-to-end checks of the peer harnesses (real PDS/PLC, real Tap, real AppView + Ozone on a
// real PostgreSQL), documenting the protocol facts atkafka relies on. Needs no Kafka.
// Every prerequisite (Go + C compiler for Tap, PostgreSQL server binaries, openssl) is
// required: a missing one fails the test, nothing is skipped. The first Tap test builds Tap
// (scripts/tap/build.sh, ~75 s cold) unless .cache/tap/bin/tap is already there.
//
//   node --test --test-concurrency=1 test/harness/peers.test.ts
import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { TestContext } from 'node:test'
import { Agent, AtpAgent, CredentialSession } from '@atproto/api'
import * as dagCbor from '@ipld/dag-cbor'
import WebSocket from 'ws'
import { OZONE_ADMIN_HANDLE, OZONE_ADMIN_PASSWORD, startFullNetwork } from './network.ts'
import {
  createAccount,
  createPost,
  createProfile,
  deleteRecord,
  follow,
  putRecord,
  startPds,
  updateHandle,
} from './pds.ts'
import { startTap } from './tap.ts'
import type { TapHandle } from './tap.ts'

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** Registers cleanups that run (in reverse order) after the test, pass or fail. */
function closer(t: TestContext) {
  const fns: (() => Promise<unknown> | unknown)[] = []
  t.after(async () => {
    const errors: unknown[] = []
    for (const fn of fns.reverse()) {
      try {
        await fn()
      } catch (err) {
        errors.push(err)
      }
    }
    if (errors.length > 0) throw errors.length === 1 ? errors[0] : new AggregateError(errors)
  })
  return <T>(value: T, fn: (v: T) => Promise<unknown> | unknown): T => {
    fns.push(() => fn(value))
    return value
  }
}

async function waitFor<T>(what: string, fn: () => T | undefined, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const v = fn()
    if (v !== undefined && v !== false) return v
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await sleep(20)
  }
}

// ---------------------------------------------------------------------------------------------
// firehose frames: DAG-CBOR header {op, t} then the body, back to back

function decodeFrame(frame: Uint8Array): { header: { op: number; t?: string }; body: unknown } {
  // the header is a tiny map: the shortest prefix that decodes is the whole header
  for (let i = 1; i <= Math.min(frame.length, 128); i++) {
    let header: { op: number; t?: string }
    try {
      header = dagCbor.decode(frame.subarray(0, i))
    } catch {
      continue
    }
    return { header, body: dagCbor.decode(frame.subarray(i)) }
  }
  throw new Error('no firehose frame header')
}

// ---------------------------------------------------------------------------------------------
// a raw Tap /channel client

interface TapRecordEvt {
  id: number
  type: 'record'
  record: {
    live: boolean
    did: string
    rev: string
    collection: string
    rkey: string
    action: 'create' | 'update' | 'delete'
    cid?: string
    record?: Record<string, unknown>
  }
}
interface TapIdentityEvt {
  id: number
  type: 'identity'
  identity: { did: string; handle: string; is_active: boolean; status: string }
}
type TapEvt = TapRecordEvt | TapIdentityEvt

interface Received {
  at: number
  raw: string
  evt: TapEvt
}

class TapClient {
  ws: WebSocket
  received: Received[] = []
  closed: { code: number } | undefined
  /** return true to leave an event unacked */
  hold: (evt: TapEvt) => boolean = () => false

  constructor(tap: TapHandle, headers: Record<string, string> = {}) {
    const h = { ...headers }
    if (tap.authHeader && !('authorization' in h)) h.authorization = tap.authHeader
    this.ws = new WebSocket(`${tap.url}/channel`, { headers: h })
    this.ws.on('message', (data: Buffer, isBinary: boolean) => {
      assert.equal(isBinary, false, 'Tap sends text frames')
      const raw = data.toString('utf8')
      const evt = JSON.parse(raw) as TapEvt
      this.received.push({ at: Date.now(), raw, evt })
      if (!this.hold(evt)) this.ack(evt.id)
    })
    this.ws.on('close', (code) => {
      this.closed = { code }
    })
  }

  static async open(tap: TapHandle, headers?: Record<string, string>): Promise<TapClient> {
    const c = new TapClient(tap, headers)
    await new Promise<void>((resolve, reject) => {
      c.ws.once('open', () => resolve())
      c.ws.once('error', reject)
    })
    return c
  }

  ack(id: number) {
    this.ws.send(JSON.stringify({ type: 'ack', id }))
  }

  records(): (Received & { evt: TapRecordEvt })[] {
    return this.received.filter(
      (r): r is Received & { evt: TapRecordEvt } => r.evt.type === 'record',
    )
  }

  identities(): (Received & { evt: TapIdentityEvt })[] {
    return this.received.filter(
      (r): r is Received & { evt: TapIdentityEvt } => r.evt.type === 'identity',
    )
  }

  waitRecord(what: string, pred: (r: TapRecordEvt['record']) => boolean, timeoutMs?: number) {
    return waitFor(what, () => this.records().find((r) => pred(r.evt.record)), timeoutMs)
  }

  async close() {
    if (this.ws.readyState === WebSocket.CLOSED) return
    const done = new Promise((r) => this.ws.once('close', r))
    this.ws.close()
    await done
  }
}

/** The HTTP status a WebSocket upgrade is answered with (101 when it opens). */
function upgradeStatus(url: string, headers: Record<string, string> = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers })
    ws.once('open', () => {
      ws.close()
      resolve(101)
    })
    ws.once('unexpected-response', (_req, res) => {
      resolve(res.statusCode ?? 0)
      res.resume()
      ws.terminate()
    })
    ws.once('error', (err) => {
      if (ws.readyState !== WebSocket.CLOSED) reject(err)
    })
  })
}

// ---------------------------------------------------------------------------------------------

void test(
  'PDS: a raw ws client gets a #commit for a created post',
  { timeout: 300_000 },
  async (t) => {
    const onClose = closer(t)
    const started = Date.now()
    const pds = onClose(await startPds(), (p) => p.close())
    t.diagnostic(`PLC + PDS started in ${Date.now() - started} ms: ${pds.pdsUrl}`)
    assert.match(
      pds.firehoseUrl,
      /^ws:\/\/localhost:\d+\/xrpc\/com\.atproto\.sync\.subscribeRepos$/,
    )

    const frames: { header: { op: number; t?: string }; body: Record<string, unknown> }[] = []
    const ws = new WebSocket(pds.firehoseUrl)
    onClose(ws, (w) => w.terminate())
    ws.on('message', (data: Buffer) => {
      const f = decodeFrame(new Uint8Array(data))
      frames.push(f as (typeof frames)[number])
    })
    await new Promise((r) => ws.once('open', r))

    const alice = await createAccount(pds.pdsUrl, 'alice')
    assert.equal(alice.handle, 'alice.test')
    assert.match(alice.did, /^did:plc:/)
    const post = await createPost(alice, 'hello firehose')

    const commit = await waitFor('the #commit of the post', () =>
      frames.find(
        (f) =>
          f.header.t === '#commit' &&
          (f.body.ops as { path: string }[]).some(
            (op) => op.path === `app.bsky.feed.post/${post.rkey}`,
          ),
      ),
    )
    assert.equal(commit.header.op, 1)
    assert.equal(commit.body.repo, alice.did)
    assert.equal(typeof commit.body.seq, 'number')
    assert.equal(typeof commit.body.rev, 'string')
    assert.ok(commit.body.blocks instanceof Uint8Array)
    const [op] = commit.body.ops as { action: string; path: string; cid: { toString(): string } }[]
    assert.equal(op.action, 'create')
    assert.equal(op.cid.toString(), post.cid)

    // account creation emitted #identity, #account, an empty #commit and #sync first
    const types = frames.filter((f) => f.body.repo === alice.did || f.body.did === alice.did)
    assert.deepEqual(
      types.slice(0, 4).map((f) => f.header.t),
      ['#identity', '#account', '#commit', '#sync'],
    )
    assert.equal(types[0].body.handle, 'alice.test')
  },
)

void test(
  'Tap: backfill (live:false), acks, live create/update/delete, identity events',
  { timeout: 300_000 },
  async (t) => {
    const onClose = closer(t)
    const pds = onClose(await startPds(), (p) => p.close())
    const alice = await createAccount(pds.pdsUrl, 'tapalice')
    const p1 = await createPost(alice, 'backfilled one')
    const p2 = await createPost(alice, 'backfilled two')

    const started = Date.now()
    const tap = onClose(
      await startTap({
        relayUrl: pds.pdsUrl,
        plcUrl: pds.plcUrl,
        retryTimeout: '2s',
        resolveHandlesVia: pds.pdsUrl,
      }),
      (tp) => tp.close(),
    )
    t.diagnostic(`Tap healthy in ${Date.now() - started} ms at ${tap.url} (log ${tap.logFile})`)
    assert.match(tap.url, /^ws:\/\/127\.0\.0\.1:\d+$/)

    const client = onClose(await TapClient.open(tap), (c) => c.close())
    await tap.addRepos([alice.did])

    // backfill: one identity event, then the repo's records with live:false, all at the same rev
    const b1 = await client.waitRecord('backfilled p1', (r) => r.rkey === p1.rkey)
    const b2 = await client.waitRecord('backfilled p2', (r) => r.rkey === p2.rkey)
    for (const b of [b1, b2]) {
      assert.deepEqual(Object.keys(b.evt), ['id', 'type', 'record'])
      assert.deepEqual(Object.keys(b.evt.record), [
        'live',
        'did',
        'rev',
        'collection',
        'rkey',
        'action',
        'record',
        'cid',
      ])
      assert.equal(b.evt.record.live, false)
      assert.equal(b.evt.record.action, 'create')
      assert.equal(b.evt.record.collection, 'app.bsky.feed.post')
      assert.equal(b.evt.record.did, alice.did)
    }
    assert.equal(b1.evt.record.rev, b2.evt.record.rev)
    assert.equal(b1.evt.record.cid, p1.cid)
    assert.equal(b1.evt.record.record?.text, 'backfilled one')
    assert.equal(b1.evt.record.record?.$type, 'app.bsky.feed.post')

    const [ident] = client.identities()
    assert.ok(ident, 'an identity event arrives with the backfill')
    assert.ok(ident.evt.id < b1.evt.id, 'the identity event comes first')
    assert.deepEqual(JSON.parse(ident.raw), {
      id: ident.evt.id,
      type: 'identity',
      identity: { did: alice.did, handle: 'tapalice.test', is_active: true, status: 'active' },
    })

    // live: create, update, delete
    const p3 = await createPost(alice, 'live three')
    const c3 = await client.waitRecord('live create', (r) => r.rkey === p3.rkey)
    assert.equal(c3.evt.record.live, true)
    assert.equal(c3.evt.record.action, 'create')
    assert.equal(c3.evt.record.cid, p3.cid)
    assert.ok(c3.evt.id > b2.evt.id)

    const u3ref = await putRecord(alice, 'app.bsky.feed.post', p3.rkey, {
      text: 'live three, edited',
      createdAt: new Date().toISOString(),
    })
    const u3 = await client.waitRecord(
      'live update',
      (r) => r.rkey === p3.rkey && r.action === 'update',
    )
    assert.equal(u3.evt.record.live, true)
    assert.equal(u3.evt.record.cid, u3ref.cid)
    assert.equal(u3.evt.record.record?.text, 'live three, edited')

    await deleteRecord(alice, 'app.bsky.feed.post', p3.rkey)
    const d3 = await client.waitRecord(
      'live delete',
      (r) => r.rkey === p3.rkey && r.action === 'delete',
    )
    // no cid and no record on deletes
    assert.deepEqual(JSON.parse(d3.raw), {
      id: d3.evt.id,
      type: 'record',
      record: {
        live: true,
        did: alice.did,
        rev: d3.evt.record.rev,
        collection: 'app.bsky.feed.post',
        rkey: p3.rkey,
        action: 'delete',
      },
    })

    // a handle change gives an identity event with the new handle (needs resolveHandlesVia)
    await updateHandle(alice, 'tapalice2')
    const renamed = await waitFor('identity event for the new handle', () =>
      client.identities().find((i) => i.evt.identity.handle === 'tapalice2.test'),
    )
    assert.equal(renamed.evt.identity.is_active, true)

    // account status changes are identity events too
    await alice.agent.com.atproto.server.deactivateAccount({})
    const deact = await waitFor('identity event for deactivation', () =>
      client.identities().find((i) => i.evt.identity.status === 'deactivated'),
    )
    assert.deepEqual(deact.evt.identity, {
      did: alice.did,
      handle: 'tapalice2.test',
      is_active: false,
      status: 'deactivated',
    })
    await alice.agent.com.atproto.server.activateAccount()
    await waitFor('identity event for reactivation', () =>
      client.identities().find((i) => i.evt.id > deact.evt.id && i.evt.identity.is_active),
    )

    // every event was acked and arrived once
    const ids = client.received.map((r) => r.evt.id)
    assert.equal(new Set(ids).size, ids.length, 'no redeliveries when everything is acked')
    const info = (await (await tap.request(`/info/${alice.did}`)).json()) as Record<string, unknown>
    assert.equal(info.state, 'active')
  },
)

void test(
  'Tap: unacked events are redelivered after the retry timeout; an unacked live event blocks its repo',
  { timeout: 300_000 },
  async (t) => {
    const onClose = closer(t)
    const pds = onClose(await startPds(), (p) => p.close())
    const alice = await createAccount(pds.pdsUrl)
    const bob = await createAccount(pds.pdsUrl)
    const tap = onClose(
      await startTap({ relayUrl: pds.pdsUrl, plcUrl: pds.plcUrl, retryTimeout: '2s' }),
      (tp) => tp.close(),
    )
    const client = onClose(await TapClient.open(tap), (c) => c.close())
    await tap.addRepos([alice.did, bob.did])
    await waitFor('both backfills', () => (client.identities().length === 2 ? true : undefined))

    // without handle resolution every local handle is "handle.invalid"
    for (const i of client.identities()) assert.equal(i.evt.identity.handle, 'handle.invalid')

    // leave the first delivery of the 'held' post unacked, ack everything else
    let heldOnce = false
    client.hold = (evt) => {
      if (evt.type === 'record' && evt.record.record?.text === 'held' && !heldOnce) {
        heldOnce = true
        return true
      }
      return false
    }
    const held = await createPost(alice, 'held')
    const first = await client.waitRecord('held event', (r) => r.rkey === held.rkey)
    // a later live event of the same repo waits; another repo's event does not
    const next = await createPost(alice, 'after held')
    const other = await createPost(bob, 'other repo')
    const otherEvt = await client.waitRecord('other repo event', (r) => r.rkey === other.rkey)

    const again = await waitFor(
      'redelivery',
      () => client.records().filter((r) => r.evt.record.rkey === held.rkey)[1],
      10_000,
    )
    const delay = again.at - first.at
    t.diagnostic(`redelivered after ${delay} ms with TAP_RETRY_TIMEOUT=2s`)
    assert.equal(again.evt.id, first.evt.id, 'same id')
    assert.equal(again.raw, first.raw, 'byte-identical payload')
    // Tap checks every retryTimeout and resends what has been in flight longer than that:
    // between 1x and 2x (then again every retryTimeout until acked); slack for a loaded machine
    assert.ok(delay >= 1500 && delay <= 5500, `redelivery delay ${delay} ms`)

    // the other repo was not blocked; the held repo's next live event only came after the
    // redelivered event was acked
    assert.ok(otherEvt.at < again.at)
    const after = await client.waitRecord('the blocked event', (r) => r.rkey === next.rkey)
    assert.ok(after.at >= again.at, 'blocked until the held live event was acked')
    assert.ok(after.evt.id > first.evt.id)
  },
)

void test(
  'Tap: restart redelivers the outbox (acked events too, until their delete batch); ids restart at 1 when it is empty',
  { timeout: 300_000 },
  async (t) => {
    const onClose = closer(t)
    const pds = onClose(await startPds(), (p) => p.close())
    const alice = await createAccount(pds.pdsUrl)
    await createPost(alice, 'r1')
    const tap = onClose(
      await startTap({ relayUrl: pds.pdsUrl, plcUrl: pds.plcUrl, retryTimeout: '60s' }),
      (tp) => tp.close(),
    )
    let client = await TapClient.open(tap)
    await tap.addRepos([alice.did])
    await client.waitRecord('backfill', (r) => r.record?.text === 'r1')
    // leave a live event unacked
    client.hold = (evt) => evt.type === 'record' && evt.record.record?.text === 'r2'
    const r2 = await createPost(alice, 'r2')
    const held = await client.waitRecord('r2', (r) => r.rkey === r2.rkey)
    const before = client.received.map((r) => r.evt.id)
    assert.deepEqual(before, [1, 2, 3])

    // reconnecting alone does not redeliver (the event stays in flight until the retry timeout)
    await client.close()
    client = await TapClient.open(tap)
    await sleep(1500)
    assert.equal(client.received.length, 0, 'nothing redelivered on reconnect')
    await client.close()

    // SIGTERM + start on the same port and database: the whole outbox comes again, acked events
    // included (acks are deleted in batches every 10 s), with the same ids
    await tap.restart()
    client = await TapClient.open(tap)
    await waitFor('outbox redelivery', () => (client.received.length >= 3 ? true : undefined))
    assert.deepEqual(
      client.received.map((r) => r.evt.id),
      [1, 2, 3],
    )
    assert.equal(client.received[2].raw, held.raw)
    // the next new event skips one id (next id = max id in outbox + 2)
    const r3 = await createPost(alice, 'r3')
    const e3 = await client.waitRecord('r3', (r) => r.rkey === r3.rkey)
    assert.equal(e3.evt.id, 5)

    // after the delete batch (every 10 s) the outbox is empty; a restart then reuses ids from 1
    let outboxEmpty = false
    const deadline = Date.now() + 25_000
    while (!outboxEmpty && Date.now() < deadline) {
      const res = (await (await tap.request('/stats/outbox-buffer')).json()) as {
        outbox_buffer: number
      }
      outboxEmpty = res.outbox_buffer === 0
      if (!outboxEmpty) await sleep(500)
    }
    assert.ok(outboxEmpty, 'acked events are deleted within ~10 s')
    await client.close()
    await tap.restart()
    client = onClose(await TapClient.open(tap), (c) => c.close())
    const r4 = await createPost(alice, 'r4')
    const e4 = await client.waitRecord('r4', (r) => r.rkey === r4.rkey)
    assert.equal(e4.evt.id, 1, 'ids are not unique across restarts')
    assert.equal(client.received.length, 1)
  },
)

void test(
  'Tap: admin password, frame handling, several connections',
  { timeout: 300_000 },
  async (t) => {
    const onClose = closer(t)
    const pds = onClose(await startPds(), (p) => p.close())
    const alice = await createAccount(pds.pdsUrl)
    const tap = onClose(
      await startTap({ relayUrl: pds.pdsUrl, plcUrl: pds.plcUrl, adminPassword: 's3cret' }),
      (tp) => tp.close(),
    )
    const basic = (user: string, pw: string) =>
      'Basic ' + Buffer.from(`${user}:${pw}`).toString('base64')

    // every route needs Basic admin:<pw>, /channel and /health included
    assert.equal(await upgradeStatus(`${tap.url}/channel`), 401)
    assert.equal(
      await upgradeStatus(`${tap.url}/channel`, { authorization: basic('admin', 'wrong') }),
      401,
    )
    assert.equal(
      await upgradeStatus(`${tap.url}/channel`, { authorization: basic('user', 's3cret') }),
      401,
    )
    assert.equal(
      await upgradeStatus(`${tap.url}/channel`, { authorization: basic('admin', 's3cret') }),
      101,
    )
    const unauth = await fetch(`${tap.httpUrl}/health`)
    assert.equal(unauth.status, 401)
    assert.deepEqual(await unauth.json(), {
      error: 'Unauthorized',
      message: 'atproto admin auth required, but missing or incorrect password',
    })
    const health = await tap.request('/health')
    assert.deepEqual(await health.json(), { status: 'ok' })

    // frames Tap cannot decode as {type: string, id: uint} close the connection; other JSON
    // (unknown type, unknown id, extra keys, "ACK") is ignored
    const frameOutcome = async (frame: string) => {
      const c = await TapClient.open(tap)
      c.ws.send(frame)
      await sleep(300)
      const closed = c.closed !== undefined
      await c.close()
      return closed ? 'closed' : 'open'
    }
    assert.equal(await frameOutcome('not json'), 'closed')
    assert.equal(await frameOutcome('{"type":"ack","id":"1"}'), 'closed')
    assert.equal(await frameOutcome('{"type":"ack","id":-1}'), 'closed')
    assert.equal(await frameOutcome('{"type":"nope"}'), 'open')
    assert.equal(await frameOutcome('{"type":"ack","id":424242}'), 'open')
    assert.equal(await frameOutcome('{"type":"ACK","id":1}'), 'open')

    // several connections share one queue: each event goes to exactly one of them
    const a = onClose(await TapClient.open(tap), (c) => c.close())
    const b = onClose(await TapClient.open(tap), (c) => c.close())
    await tap.addRepos([alice.did])
    await waitFor('backfill identity', () =>
      [...a.identities(), ...b.identities()].length > 0 ? true : undefined,
    )
    const posts = []
    for (let i = 0; i < 6; i++) posts.push(await createPost(alice, `shared ${i}`))
    await waitFor('all posts', () =>
      a.records().length + b.records().length >= posts.length ? true : undefined,
    )
    await sleep(300)
    const ids = [...a.received, ...b.received].map((r) => r.evt.id).sort((x, y) => x - y)
    assert.equal(new Set(ids).size, ids.length, 'no event delivered twice')
    assert.equal(a.records().length + b.records().length, posts.length)
    t.diagnostic(`split: ${a.received.length} / ${b.received.length}`)
  },
)

void test(
  'full network: Ozone events through the PDS proxy, AppView profile',
  { timeout: 300_000 },
  async (t) => {
    const onClose = closer(t)
    const started = Date.now()
    const net = onClose(await startFullNetwork(), (n) => n.close())
    t.diagnostic(`PostgreSQL + PLC + PDS + AppView + Ozone started in ${Date.now() - started} ms`)
    assert.match(net.dbPostgresUrl, /^postgresql:\/\/[^@]+@127\.0\.0\.1:\d+\/\w+$/)
    assert.match(net.ozoneDid, /^did:plc:/)

    const alice = await createAccount(net.pdsUrl, 'netalice')
    const bob = await createAccount(net.pdsUrl, 'netbob')
    await createProfile(alice, 'Alice')
    await follow(bob, alice.did)
    // let the AppView index the accounts (Ozone takes subjectHandle/creatorHandle from it)
    await net.network.processAll()

    const session = new CredentialSession(new URL(net.pdsUrl))
    await session.login({ identifier: OZONE_ADMIN_HANDLE, password: OZONE_ADMIN_PASSWORD })
    assert.equal(session.did, net.ozoneDid, 'mod-authority.test is the Ozone service account')
    const ozone = new Agent(session).withProxy('atproto_labeler', net.ozoneDid)

    const emitted = await ozone.tools.ozone.moderation.emitEvent({
      event: { $type: 'tools.ozone.moderation.defs#modEventComment', comment: 'from peers.test' },
      subject: { $type: 'com.atproto.admin.defs#repoRef', did: alice.did },
      createdBy: net.ozoneDid,
    })
    await ozone.tools.ozone.moderation.emitEvent({
      event: { $type: 'tools.ozone.moderation.defs#modEventAcknowledge' },
      subject: { $type: 'com.atproto.admin.defs#repoRef', did: alice.did },
      createdBy: net.ozoneDid,
    })
    const res = await ozone.tools.ozone.moderation.queryEvents({ sortDirection: 'asc', limit: 100 })
    const types = res.data.events.map((e) => e.event.$type)
    assert.ok(types.includes('tools.ozone.moderation.defs#modEventComment'), types.join())
    assert.ok(types.includes('tools.ozone.moderation.defs#modEventAcknowledge'), types.join())
    const comment = res.data.events.find((e) => e.id === emitted.data.id)
    assert.ok(comment)
    assert.equal(comment.createdBy, net.ozoneDid)
    assert.equal('did' in comment.subject ? comment.subject.did : undefined, alice.did)
    assert.equal(comment.creatorHandle, OZONE_ADMIN_HANDLE)
    assert.equal(comment.subjectHandle, 'netalice.test')
    assert.match(res.data.cursor ?? '', /^\d+::\d+$/)
    // ids ascend with sortDirection asc
    const ids = res.data.events.map((e) => e.id)
    assert.deepEqual(
      ids,
      [...ids].sort((a, b) => a - b),
    )

    await net.network.processAll()
    const appview = new AtpAgent({ service: net.appviewUrl })
    const profile = await appview.app.bsky.actor.getProfile({ actor: alice.did })
    assert.equal(profile.data.handle, 'netalice.test')
    assert.equal(profile.data.displayName, 'Alice')
    assert.equal(profile.data.followersCount, 1)
  },
)

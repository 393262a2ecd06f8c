// A slow or dead PLC/AppView never stalls other accounts and never loses events: atkafka as a
// real process on a real PDS firehose, its PLC reached through a proxy that can hold requests.
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { type IncomingMessage, type ServerResponse, createServer } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import type { AtKafkaEvent } from '../src/events.ts'
import { consumeAll } from './harness/kafka.ts'
import {
  type PdsHandle,
  type TestAccount,
  createAccount,
  createPost,
  startPds,
} from './harness/pds.ts'
import {
  type AtkafkaProcess,
  eventually,
  httpGet,
  metricValue,
  spawnAtkafka,
  metadataFlag,
} from './support/atkafka.ts'
import { validateEvent } from './support/schema.ts'

const bootstrap = process.env.KAFKA_BOOTSTRAP_SERVERS

/**
 * An HTTP proxy in front of a real PLC. Requests for DIDs in `held` (or all, in black-hole
 * mode) get no answer until `release()`; the rest are forwarded.
 */
async function startPlcProxy(target: string) {
  const held = new Set<string>()
  let blackHole = false
  let waiting: Array<() => void> = []
  const sockets = new Set<Socket>()
  let forwarded = 0
  const forward = async (req: IncomingMessage, res: ServerResponse) => {
    forwarded++
    try {
      const upstream = await fetch(target + req.url)
      res.writeHead(upstream.status, {
        'content-type': upstream.headers.get('content-type') ?? 'application/json',
      })
      res.end(Buffer.from(await upstream.arrayBuffer()))
    } catch {
      res.destroy()
    }
  }
  const server = createServer((req, res) => {
    const did = decodeURIComponent((req.url ?? '/').split('/')[1] ?? '')
    if (blackHole) return
    if (held.has(did)) {
      waiting.push(() => void forward(req, res))
      return
    }
    void forward(req, res)
  })
  server.on('connection', (s) => {
    sockets.add(s)
    s.on('close', () => sockets.delete(s))
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    held,
    get waiting() {
      return waiting.length
    },
    get forwarded() {
      return forwarded
    },
    setBlackHole(on: boolean) {
      blackHole = on
    },
    release() {
      held.clear()
      const w = waiting
      waiting = []
      for (const f of w) f()
    },
    async close() {
      for (const s of sockets) s.destroy()
      await new Promise((r) => server.close(r))
    },
  }
}

describe('metadata lookups when the PLC or AppView is slow or down', () => {
  let pds: PdsHandle
  let dir: string
  let slow: TestAccount
  let fast: TestAccount[]
  const posts = new Map<string, string[]>()
  const running: AtkafkaProcess[] = []

  async function metrics(p: AtkafkaProcess): Promise<string> {
    return (await httpGet(p.metricsPort, '/metrics')).body
  }

  async function start(topic: string, extra: string[]): Promise<AtkafkaProcess> {
    const p = await spawnAtkafka([
      'firehose',
      'relay',
      ...metadataFlag(extra),
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
      join(dir, `${topic}.json`),
      '--skip-handle-verification',
      ...extra,
    ])
    running.push(p)
    await p.waitFor(/metrics server listening/)
    return p
  }

  async function readTopic(topic: string): Promise<AtKafkaEvent[]> {
    const got = await consumeAll(bootstrap!, topic, { idleMs: 300, timeoutMs: 10000 })
    return got.map((m) => JSON.parse(m.value) as AtKafkaEvent)
  }

  const uriOf = (e: AtKafkaEvent) => ('operation' in e ? e.operation.uri : undefined)

  before(async () => {
    assert.ok(bootstrap, 'KAFKA_BOOTSTRAP_SERVERS must point at the test broker (npm test sets it)')
    dir = await mkdtemp(join(tmpdir(), 'atkafka-outage-'))
    pds = await startPds()
    // The slow account comes first: its frames are the oldest of the stream.
    slow = await createAccount(pds.pdsUrl)
    fast = [await createAccount(pds.pdsUrl), await createAccount(pds.pdsUrl)]
    for (let i = 0; i < 3; i++) {
      for (const a of [slow, ...fast]) {
        const ref = await createPost(a, `post ${i}`)
        posts.set(a.did, [...(posts.get(a.did) ?? []), ref.uri])
      }
    }
  })

  after(async () => {
    for (const p of running) p.child.kill('SIGKILL')
    await pds?.close()
    await rm(dir, { recursive: true, force: true })
  })

  it("one account's hanging lookups hold back only that account; the cursor waits for it", async () => {
    const proxy = await startPlcProxy(pds.plcUrl)
    proxy.held.add(slow.did)
    const topic = 'enrich-held'
    const p = await start(topic, ['--plc-host', proxy.url, '--lookup-timeout', '120s'])
    try {
      const started = Date.now()
      let events: AtKafkaEvent[] = []
      const fastUris = fast.flatMap((a) => posts.get(a.did)!)
      await eventually(
        async () => {
          events = await readTopic(topic)
          return fastUris.every((u) => events.some((e) => uriOf(e) === u))
        },
        30000,
        'the other accounts’ posts',
      )
      const fastMs = Date.now() - started
      for (const e of events) {
        assert.notEqual(e.did, slow.did, 'nothing of the held account yet')
        validateEvent(e)
        if (e.did !== '') assert.ok((e.eventMetadata as { handle?: string }).handle)
      }
      assert.ok(proxy.waiting >= 1, 'its lookups are still hanging')
      // The throttled cursor save runs every second: give it the chance to (wrongly) move.
      await new Promise((r) => setTimeout(r, 1500))
      const cursorWhileHeld = metricValue(await metrics(p), 'atkafka_cursor_seq')
      assert.equal(cursorWhileHeld, 0, 'the cursor stays before the held account’s frames')
      console.log(
        `held: other accounts' ${events.length} events in Kafka after ${fastMs} ms; ${proxy.waiting} lookups hanging; cursor ${cursorWhileHeld}`,
      )

      proxy.release()
      const last = await pds.network.pds.ctx.sequencer.curr()
      await eventually(
        async () => metricValue(await metrics(p), 'atkafka_cursor_seq') === last,
        30000,
        'cursor at the last event after the release',
      )
      events = await readTopic(topic)
      const slowPosts = events
        .filter((e) => e.did === slow.did)
        .map(uriOf)
        .filter(Boolean)
      assert.deepEqual(slowPosts, posts.get(slow.did), 'in order, once each')
      for (const e of events.filter((x) => x.did === slow.did)) {
        assert.equal((e.eventMetadata as { handle?: string }).handle, slow.handle)
      }
      const text = await metrics(p)
      assert.equal(metricValue(text, 'atkafka_metadata_incomplete_events'), 0)
      p.child.kill('SIGTERM')
      assert.equal(await p.exited, 0)
    } finally {
      await proxy.close()
    }
  })

  it('PLC and AppView answering nothing: every event produced at once without metadata, counted', async () => {
    const proxy = await startPlcProxy(pds.plcUrl)
    proxy.setBlackHole(true)
    const topic = 'enrich-dead'
    const last = await pds.network.pds.ctx.sequencer.curr()
    const started = Date.now()
    const p = await start(topic, [
      '--plc-host',
      proxy.url,
      '--api-host',
      proxy.url,
      '--lookup-timeout',
      '500ms',
    ])
    try {
      await eventually(
        async () => metricValue(await metrics(p), 'atkafka_cursor_seq') === last,
        30000,
        'cursor at the last event',
      )
      const elapsed = Date.now() - started
      const text = await metrics(p)
      p.child.kill('SIGTERM')
      assert.equal(await p.exited, 0)
      const events = await readTopic(topic)
      const withDid = events.filter((e) => e.did !== '')
      for (const [did, uris] of posts) {
        assert.deepEqual(
          events
            .filter((e) => e.did === did)
            .map(uriOf)
            .filter(Boolean),
          uris,
          'every post, in order',
        )
      }
      for (const e of withDid) {
        validateEvent(e)
        assert.deepEqual(e.eventMetadata, {})
      }
      const plc = (status: string) => metricValue(text, 'atkafka_plc_requests', { status })
      const api = (status: string) => metricValue(text, 'atkafka_api_requests', { status })
      console.log(
        `dead PLC/AppView: ${withDid.length} events, cursor at the end ${elapsed} ms after start; plc timeout ${plc('timeout')}, unavailable ${plc('unavailable')}; api timeout ${api('timeout')}, unavailable ${api('unavailable')}`,
      )
      assert.ok(plc('timeout') >= 1)
      assert.ok(plc('unavailable') >= 1, 'the breaker stopped waiting for a dead PLC')
      assert.ok(api('timeout') >= 1)
      assert.equal(plc('ok') + api('ok'), 0)
      for (const missing of ['identity', 'audit_log', 'profile']) {
        assert.equal(
          metricValue(text, 'atkafka_metadata_incomplete_events', { missing }),
          withDid.length,
          missing,
        )
      }
    } finally {
      await proxy.close()
    }
  })
})

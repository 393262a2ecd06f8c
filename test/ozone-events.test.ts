// Ozone mode against a real Ozone (@atproto/dev-env TestNetwork: PLC, PDS, AppView, Ozone on a
// throwaway PostgreSQL) and a real Kafka broker: moderation activity is created through Ozone's
// API, atkafka polls it through the PDS, and the test reads the topic back.
import { AtpAgent } from '@atproto/api'
import assert from 'node:assert/strict'
import { createHmac } from 'node:crypto'
import type { Server } from 'node:http'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { pino } from 'pino'
import { Registry } from 'prom-client'
import { Values } from '../src/config/config.ts'
import { resolveOptions } from '../src/config/resolve.ts'
import { REDACT_PATHS } from '../src/logger.ts'
import { OzoneClient } from '../src/ozone/client.ts'
import { ozoneConfig } from '../src/ozone/config.ts'
import { createOzoneMetrics } from '../src/ozone/metrics.ts'
import { type ModEventView, subjectDidOf } from '../src/ozone/page.ts'
import { runOzone } from '../src/ozone/run.ts'
import { consumeAll } from './harness/kafka.ts'
import {
  type FullNetworkHandle,
  OZONE_ADMIN_HANDLE,
  OZONE_ADMIN_PASSWORD,
  startFullNetwork,
} from './harness/network.ts'
import { type TestAccount, createAccount, createPost } from './harness/pds.ts'
import { eventually, metricValue, spawnAtkafka } from './support/atkafka.ts'
import { validateHeaders } from './support/schema.ts'

const bootstrap = process.env.KAFKA_BOOTSTRAP_SERVERS
const DEFS = 'tools.ozone.moderation.defs'

type View = Record<string, unknown> & { id: number; createdAt: string }

let net: FullNetworkHandle
let admin: AtpAgent
let adminDid: string
let dir: string
const users: TestAccount[] = []
let fakeDids = 0

/** Every event Ozone holds, oldest first, as raw JSON (what atkafka must produce). */
async function allEvents(): Promise<View[]> {
  const out: View[] = []
  let cursor: string | undefined
  for (;;) {
    const q = new URLSearchParams({ sortDirection: 'asc', limit: '100' })
    if (cursor) q.set('cursor', cursor)
    const res = await fetch(`${net.pdsUrl}/xrpc/tools.ozone.moderation.queryEvents?${q}`, {
      headers: {
        authorization: `Bearer ${admin.session!.accessJwt}`,
        'atproto-proxy': `${net.ozoneDid}#atproto_labeler`,
      },
    })
    assert.equal(res.status, 200, await res.clone().text())
    const body = (await res.json()) as { events: View[]; cursor?: string }
    out.push(...body.events)
    if (body.events.length < 100) return out
    cursor = body.cursor
  }
}

function ozoneApi() {
  return admin.withProxy('atproto_labeler', net.ozoneDid as `did:${string}:${string}`)
}

/** `n` moderation actions logged by scheduleAction in one request: 2 events per subject, all with one createdAt. */
async function scheduleTakedowns(n: number): Promise<void> {
  const subjects = Array.from(
    { length: n },
    () => `did:plc:atkafkatest${(fakeDids++).toString(36)}`,
  )
  const res = await ozoneApi().tools.ozone.moderation.scheduleAction({
    action: { $type: 'tools.ozone.moderation.scheduleAction#takedown', comment: 'scheduled' },
    subjects,
    createdBy: adminDid,
    scheduling: { executeAt: new Date(Date.now() + 365 * 86400_000).toISOString() },
  })
  assert.equal(res.data.succeeded.length, n, JSON.stringify(res.data.failed.slice(0, 3)))
}

/** Reports from users (through their PDS) and moderator actions of several kinds. */
async function moderate(): Promise<void> {
  const oz = ozoneApi().tools.ozone.moderation
  for (const [i, user] of users.entries()) {
    const target = users[(i + 1) % users.length]!
    const post = await createPost(target, `post by ${target.handle}`)
    const reporter = user.agent.withProxy(
      'atproto_labeler',
      net.ozoneDid as `did:${string}:${string}`,
    )
    await reporter.com.atproto.moderation.createReport({
      reasonType: 'com.atproto.moderation.defs#reasonSpam',
      reason: 'spam account',
      subject: { $type: 'com.atproto.admin.defs#repoRef', did: target.did },
    })
    await reporter.com.atproto.moderation.createReport({
      reasonType: 'com.atproto.moderation.defs#reasonRude',
      subject: { $type: 'com.atproto.repo.strongRef', uri: post.uri, cid: post.cid },
    })
    const repo = { $type: 'com.atproto.admin.defs#repoRef', did: target.did }
    const record = { $type: 'com.atproto.repo.strongRef', uri: post.uri, cid: post.cid }
    const events: Array<[Record<string, unknown>, Record<string, unknown>]> = [
      [{ $type: `${DEFS}#modEventComment`, comment: 'looking into it' }, repo],
      [{ $type: `${DEFS}#modEventLabel`, createLabelVals: ['spam'], negateLabelVals: [] }, record],
      [{ $type: `${DEFS}#modEventAcknowledge`, comment: 'seen' }, record],
      [{ $type: `${DEFS}#modEventEscalate`, comment: 'second opinion' }, repo],
      [{ $type: `${DEFS}#modEventTag`, add: ['atkafka-test'], remove: [] }, repo],
      // Record takedowns only: an account takedown would stop that user from reporting.
      [{ $type: `${DEFS}#modEventTakedown`, comment: 'taken down' }, record],
      [{ $type: `${DEFS}#modEventReverseTakedown`, comment: 'restored' }, record],
    ]
    for (const [event, subject] of events) {
      await oz.emitEvent({
        event: event as { $type: string },
        subject: subject as { $type: string },
        createdBy: adminDid,
      })
    }
  }
}

interface Running {
  controller: AbortController
  registry: Registry
  logs: string[]
  done: Promise<void>
  stop(): Promise<void>
  produced(): Promise<number>
}

function ozoneEnv(topic: string, cursorFile: string, extra: Record<string, string> = {}) {
  return {
    ATKAFKA_OZONE_PDS_HOST: net.pdsUrl,
    ATKAFKA_OZONE_IDENTIFIER: OZONE_ADMIN_HANDLE,
    ATKAFKA_OZONE_PASSWORD: OZONE_ADMIN_PASSWORD,
    ATKAFKA_OZONE_LABELER_DID: net.ozoneDid,
    ATKAFKA_BOOTSTRAP_SERVERS: bootstrap!,
    ATKAFKA_OUTPUT_TOPIC: topic,
    ATKAFKA_CURSOR_FILE: cursorFile,
    ATKAFKA_OZONE_POLL_INTERVAL: '200ms',
    METRICS_LISTEN_ADDRESS: '127.0.0.1:0',
    ...extra,
  }
}

/** `runOzone` in this process, configured through the same option table as the CLI. */
function startOzone(
  env: Record<string, string>,
  opts: { fetch?: typeof globalThis.fetch; controller?: AbortController } = {},
): Running {
  const controller = opts.controller ?? new AbortController()
  const registry = new Registry()
  const logs: string[] = []
  const logger = pino(
    { level: 'debug', redact: { paths: REDACT_PATHS, censor: '[redacted]' } },
    { write: (line: string) => void logs.push(line) },
  )
  const config = ozoneConfig(new Values(resolveOptions('ozone', {}, env)))
  const done = runOzone(config, {
    logger,
    signal: controller.signal,
    stdout: process.stdout,
    registry,
    fetch: opts.fetch,
  })
  return {
    controller,
    registry,
    logs,
    done,
    async stop() {
      controller.abort()
      await done
    },
    async produced() {
      return metricValue(await registry.metrics(), 'atkafka_produced_events', { status: 'ok' })
    },
  }
}

async function readCursor(path: string) {
  return JSON.parse(await readFile(path, 'utf8')) as {
    labelerDid: string
    createdAfter: string
    produced: Record<string, number[]>
  }
}

/** Keys of the topic, asserting each message is keyed by the id of the view it carries. */
async function consumeIds(topic: string, expected?: number): Promise<number[]> {
  const messages = await consumeAll(bootstrap!, topic, { expected, timeoutMs: 60000 })
  return messages.map((m) => {
    const view = JSON.parse(m.value) as View
    assert.equal(m.key, String(view.id))
    return view.id
  })
}

function duplicatesOf(ids: number[]): number[] {
  const seen = new Set<number>()
  return ids.filter((id) => (seen.has(id) ? true : (seen.add(id), false)))
}

/** An access token of `did` that expired 100 s ago, signed with the PDS's JWT key. */
function expiredAccessToken(did: string): string {
  const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url')
  const now = Math.floor(Date.now() / 1000)
  const head = b64({ typ: 'at+jwt', alg: 'HS256' })
  const body = b64({
    scope: 'com.atproto.access',
    aud: net.network.pds.ctx.cfg.service.did,
    sub: did,
    iat: now - 7300,
    exp: now - 100,
  })
  const sig = createHmac('sha256', net.network.pds.jwtSecretKey())
    .update(`${head}.${body}`)
    .digest('base64url')
  return `${head}.${body}.${sig}`
}

/** Stop and restart a server's listener on its port (a real outage, not a mock). */
function outage(server: Server): { restore(): Promise<void> } {
  const { port } = server.address() as { port: number }
  server.close()
  server.closeAllConnections()
  return {
    restore: () =>
      new Promise<void>((resolve, reject) => {
        server.once('error', reject)
        server.listen(port, () => {
          server.off('error', reject)
          resolve()
        })
      }),
  }
}

describe('ozone-events against a real Ozone and Kafka', () => {
  before(async () => {
    assert.ok(bootstrap, 'KAFKA_BOOTSTRAP_SERVERS must point at the test broker (npm test sets it)')
    dir = await mkdtemp(join(tmpdir(), 'atkafka-ozone-'))
    net = await startFullNetwork()
    admin = new AtpAgent({ service: net.pdsUrl })
    await admin.login({ identifier: OZONE_ADMIN_HANDLE, password: OZONE_ADMIN_PASSWORD })
    adminDid = admin.session!.did
    assert.equal(adminDid, net.ozoneDid)
    for (let i = 0; i < 3; i++) users.push(await createAccount(net.pdsUrl))
    await moderate()
    // 10 × 200 events sharing one millisecond each: page boundaries fall inside them.
    for (let i = 0; i < 10; i++) await scheduleTakedowns(100)
    await moderate()
  })

  after(async () => {
    await net?.close()
    if (dir) await rm(dir, { recursive: true, force: true })
  })

  it('produces every event exactly once, as Ozone serves it, catching up at full speed; --kafka-headers', async () => {
    const truth = await allEvents()
    const byCreatedAt = new Map<string, View[]>()
    for (const e of truth)
      byCreatedAt.set(e.createdAt, [...(byCreatedAt.get(e.createdAt) ?? []), e])
    const shared = [...byCreatedAt.values()].filter((g) => g.length > 1)
    console.log(
      `ozone: ${truth.length} events; ${shared.reduce((n, g) => n + g.length, 0)} share a millisecond ` +
        `with another (${shared.length} groups, largest ${Math.max(...shared.map((g) => g.length))})`,
    )
    assert.ok(truth.length > 2000, `only ${truth.length} events`)
    assert.ok(shared.some((g) => g.length >= 200))

    const topic = 'ozone-exact'
    const cursorFile = join(dir, 'exact.json')
    const run = startOzone(ozoneEnv(topic, cursorFile, { ATKAFKA_KAFKA_HEADERS: 'true' }))
    let first = 0
    let last = 0
    try {
      await eventually(
        async () => {
          const n = await run.produced()
          if (n > 0 && first === 0) first = performance.now()
          if (n >= truth.length) last = performance.now()
          return n >= truth.length
        },
        60000,
        'the backlog in Kafka',
      )
      const seconds = (last - first) / 1000
      console.log(
        `ozone: caught up ${truth.length} events in ${seconds.toFixed(2)} s ` +
          `(${Math.round(truth.length / seconds)} events/s, first to last acknowledged)`,
      )

      // Live: new events after the backlog, several in one millisecond.
      await scheduleTakedowns(3)
      await ozoneApi().tools.ozone.moderation.emitEvent({
        event: { $type: `${DEFS}#modEventComment`, comment: 'live' },
        subject: { $type: 'com.atproto.admin.defs#repoRef', did: users[0]!.did },
        createdBy: adminDid,
      })
      await eventually(async () => (await run.produced()) >= truth.length + 7, 20000, 'live')
      await new Promise((r) => setTimeout(r, 1000))
    } finally {
      await run.stop()
    }

    const now = await allEvents()
    const ids = await consumeIds(topic)
    assert.deepEqual(duplicatesOf(ids), [])
    assert.deepEqual(
      [...ids].sort((a, b) => a - b),
      now.map((e) => e.id).sort((a, b) => a - b),
    )
    // Values are the views exactly as Ozone serves them; 4 partitions by default.
    const messages = await consumeAll(bootstrap!, topic, { expected: now.length })
    const byId = new Map(now.map((e) => [String(e.id), e]))
    for (const m of messages) {
      const view = byId.get(m.key!)!
      assert.deepEqual(JSON.parse(m.value), view)
      validateHeaders(m.headers)
      assert.equal(m.headers?.['atkafka-kind'], 'ozone')
      assert.equal(m.headers?.['atkafka-cursor'], m.key, 'the event id')
      assert.equal(m.headers?.['atkafka-time'], view.createdAt)
      assert.equal(m.headers?.['atkafka-did'], subjectDidOf(view as ModEventView) || undefined)
    }
    assert.deepEqual(
      [...new Set(messages.map((m) => m.partition))].sort(),
      [0, 1, 2, 3],
      'keys spread over the 4 partitions',
    )

    // The cursor: newest createdAt minus the lookback, with the ids produced since.
    const cursor = await readCursor(cursorFile)
    assert.equal(cursor.labelerDid, net.ozoneDid)
    const newest = now.at(-1)!
    assert.ok(cursor.produced[newest.createdAt]?.includes(newest.id))
    assert.equal(cursor.createdAfter, new Date(Date.parse(newest.createdAt) - 5000).toISOString())

    const metrics = await run.registry.metrics()
    assert.equal(metricValue(metrics, 'atkafka_produced_events', { status: 'ok' }), now.length)
    assert.equal(
      metricValue(metrics, 'atkafka_handled_events', { action_name: 'ozone' }),
      now.length,
    )
    assert.ok(
      metricValue(metrics, 'atkafka_handled_events', { collection: 'scheduleTakedownEvent' }) >=
        2000 / 2,
    )
    assert.ok(metricValue(metrics, 'atkafka_handled_events', { collection: 'modEventReport' }) > 0)
    assert.ok(metricValue(metrics, 'atkafka_ozone_pages', { kind: 'backlog' }) >= 20)
    assert.equal(metricValue(metrics, 'atkafka_ozone_logins', { status: 'ok' }), 1)
    assert.ok(metricValue(metrics, 'atkafka_ozone_request_duration_seconds_count') > 20)
    for (const text of [metrics, run.logs.join('')]) {
      assert.ok(!text.includes(OZONE_ADMIN_PASSWORD), 'the password appears in logs or metrics')
    }
  })

  it('restarts inside a same-millisecond group without loss or duplicates (lookback 0)', async () => {
    const truth = await allEvents()
    const topic = 'ozone-restart'
    const cursorFile = join(dir, 'restart.json')
    const env = ozoneEnv(topic, cursorFile, { ATKAFKA_OZONE_LOOKBACK: '0' })

    // Stop when the 6th page is requested: 5 pages were handed to Kafka, and a graceful stop
    // waits for their acknowledgements before saving the cursor.
    const controller = new AbortController()
    let pages = 0
    const first = startOzone(env, {
      controller,
      fetch: (input, init) => {
        const url = input instanceof Request ? input.url : String(input)
        if (url.includes('queryEvents') && url.includes('limit=100') && ++pages === 6) {
          controller.abort()
        }
        return globalThis.fetch(input, init)
      },
    })
    await first.done
    const saved = await readCursor(cursorFile)
    const savedIds = saved.produced[saved.createdAfter] ?? []
    const group = truth.filter((e) => e.createdAt === saved.createdAfter)
    console.log(
      `ozone: stopped after ${await first.produced()} events; cursor ${saved.createdAfter} ` +
        `with ${savedIds.length} of the ${group.length} events of that millisecond`,
    )
    assert.equal(await first.produced(), 500)
    assert.ok(savedIds.length > 0 && savedIds.length < group.length, 'stopped inside a group')

    const second = startOzone(env)
    try {
      await eventually(
        async () => (await second.produced()) >= truth.length - 500,
        60000,
        'the rest of the backlog',
      )
      await new Promise((r) => setTimeout(r, 1000))
    } finally {
      await second.stop()
    }
    const ids = await consumeIds(topic)
    assert.deepEqual(duplicatesOf(ids), [])
    assert.deepEqual(
      [...ids].sort((a, b) => a - b),
      truth.map((e) => e.id).sort((a, b) => a - b),
    )
    const metrics = await second.registry.metrics()
    assert.ok(metricValue(metrics, 'atkafka_ozone_duplicates_dropped') >= savedIds.length)
  })

  it('killed with SIGKILL mid-backlog, the CLI loses nothing on restart', async () => {
    const truth = await allEvents()
    const topic = 'ozone-kill'
    const cursorFile = join(dir, 'kill.json')
    // One page in flight at a time, so the kill lands mid-backlog.
    const env = ozoneEnv(topic, cursorFile, { ATKAFKA_MAX_IN_FLIGHT: '100' })
    const first = await spawnAtkafka(['ozone-events'], { env, metricsPort: 0 })
    await first.waitFor(/"msg":"Ozone answered; polling"/, 60000)
    await eventually(
      async () => {
        try {
          return Object.keys((await readCursor(cursorFile)).produced).length > 0
        } catch {
          return false
        }
      },
      60000,
      'a saved cursor',
    )
    first.child.kill('SIGKILL')
    await first.exited
    const atKill = await readCursor(cursorFile)
    assert.ok(
      !Object.values(atKill.produced).some((l) => l.includes(truth.at(-1)!.id)),
      'killed after the backlog was done',
    )
    console.log(`ozone: killed with the cursor at ${atKill.createdAfter}`)
    const second = await spawnAtkafka(['ozone-events'], { env, metricsPort: 0 })
    try {
      await eventually(
        async () => {
          const c = await readCursor(cursorFile)
          return Object.values(c.produced).some((l) => l.includes(truth.at(-1)!.id))
        },
        60000,
        'the newest event in the cursor',
      )
    } finally {
      second.child.kill('SIGTERM')
    }
    assert.equal(await second.exited, 0, second.stderr())
    const ids = await consumeIds(topic)
    const dups = duplicatesOf(ids)
    console.log(`ozone: after SIGKILL, ${dups.length} events were produced twice`)
    assert.deepEqual(
      [...new Set(ids)].sort((a, b) => a - b),
      truth.map((e) => e.id).sort((a, b) => a - b),
      'no event lost',
    )
  })

  it("resumes from at-kafka's cursor file (last createdAt + 1 ms)", async () => {
    const truth = await allEvents()
    // at-kafka stopped after event k: its file holds k's createdAt + 1 ms in Go's RFC3339Nano.
    const k = truth[Math.floor(truth.length / 3)]!
    const next = new Date(Date.parse(k.createdAt) + 1).toISOString().replace(/\.?0+Z$/, 'Z')
    const cursorFile = join(dir, 'ozone-cursor.txt')
    await writeFile(cursorFile, next)
    const expected = truth.filter((e) => Date.parse(e.createdAt) >= Date.parse(next))
    assert.ok(expected.length > 0 && expected.length < truth.length)

    const topic = 'ozone-switch'
    const run = startOzone(ozoneEnv(topic, cursorFile))
    try {
      await eventually(async () => (await run.produced()) >= expected.length, 60000, 'switch')
      await new Promise((r) => setTimeout(r, 1000))
    } finally {
      await run.stop()
    }
    assert.ok(run.logs.some((l) => l.includes("resuming from at-kafka's cursor file")))
    const ids = await consumeIds(topic)
    assert.deepEqual(
      ids.sort((a, b) => a - b),
      expected.map((e) => e.id).sort((a, b) => a - b),
    )
    assert.equal((await readCursor(cursorFile)).labelerDid, net.ozoneDid, 'now in JSON')
  })

  it('rides out Ozone and the PDS going away: retries, keeps the cursor, does not crash', async () => {
    const topic = 'ozone-outage'
    const cursorFile = join(dir, 'outage.json')
    const run = startOzone(ozoneEnv(topic, cursorFile))
    let settled = false
    void run.done.finally(() => (settled = true))
    const metric = async (name: string, labels: Record<string, string> = {}) =>
      metricValue(await run.registry.metrics(), name, labels)
    try {
      const before = (await allEvents()).length
      await eventually(async () => (await run.produced()) >= before, 60000, 'caught up')
      await new Promise((r) => setTimeout(r, 500))

      for (const [name, server] of [
        ['ozone', net.network.ozone.server.server],
        ['pds', net.network.pds.server.server],
      ] as const) {
        const cursor = await readFile(cursorFile, 'utf8')
        const failures = await metric('atkafka_ozone_requests', { status: 'unavailable' })
        const down = outage(server as Server)
        await eventually(
          async () =>
            (await metric('atkafka_ozone_requests', { status: 'unavailable' })) >= failures + 2,
          30000,
          `failed polls while ${name} is down`,
        )
        assert.equal(settled, false, `runOzone ended while ${name} was down`)
        assert.equal(await readFile(cursorFile, 'utf8'), cursor, 'cursor kept')
        await down.restore()
        await scheduleTakedowns(2)
        const total = (await allEvents()).length
        await eventually(async () => (await run.produced()) >= total, 60000, `after ${name}`)
      }
    } finally {
      await run.stop()
    }
    const failures = new Set(
      run.logs
        .map((l) => JSON.parse(l) as { msg: string; err?: string })
        .filter((l) => l.msg === 'Ozone request failed; retrying from the same position')
        .map((l) => l.err!.replace(/localhost:\d+/g, 'localhost:<port>')),
    )
    console.log(`ozone: failures retried during the outages: ${[...failures].join(' | ')}`)
    const truth = await allEvents()
    const ids = await consumeIds(topic)
    assert.deepEqual(duplicatesOf(ids), [])
    assert.equal(new Set(ids).size, truth.length)
    assert.ok(!run.logs.join('').includes(OZONE_ADMIN_PASSWORD))
  })

  it('refreshes an expired session and logs in again when the refresh token is revoked', async () => {
    const registry = new Registry()
    const client = new OzoneClient({
      pdsHost: net.pdsUrl,
      identifier: OZONE_ADMIN_HANDLE,
      password: OZONE_ADMIN_PASSWORD,
      labelerDid: net.ozoneDid,
      logger: pino({ level: 'silent' }),
      metrics: createOzoneMetrics(registry),
      signal: new AbortController().signal,
    })
    const count = async (name: string, status: string) =>
      metricValue(await registry.metrics(), name, { status })
    const session = () => client.session.session!
    await client.queryEvents({ limit: 1 })
    assert.equal(await count('atkafka_ozone_logins', 'ok'), 1)

    // An access token past its expiry (signed by the PDS): the PDS answers ExpiredToken and
    // @atproto/api refreshes and retries.
    session().accessJwt = expiredAccessToken(session().did)
    assert.equal((await client.queryEvents({ limit: 1 })).events.length, 1)
    assert.equal(await count('atkafka_ozone_session_refreshes', 'ok'), 1)

    // A token the PDS cannot verify at all (InvalidToken): the client refreshes on its own.
    session().accessJwt = 'not-a-token'
    assert.equal((await client.queryEvents({ limit: 1 })).events.length, 1)
    assert.equal(await count('atkafka_ozone_session_refreshes', 'ok'), 2)
    assert.equal(await count('atkafka_ozone_logins', 'ok'), 1)

    // The refresh token revoked too: the refresh is refused, the session dropped, and the
    // client logs in again.
    const res = await fetch(`${net.pdsUrl}/xrpc/com.atproto.server.deleteSession`, {
      method: 'POST',
      headers: { authorization: `Bearer ${session().refreshJwt}` },
    })
    assert.equal(res.status, 200)
    session().accessJwt = expiredAccessToken(session().did)
    assert.equal((await client.queryEvents({ limit: 1 })).events.length, 1)
    assert.equal(await count('atkafka_ozone_session_refreshes', 'expired'), 1)
    assert.equal(await count('atkafka_ozone_logins', 'ok'), 2)
  })

  describe('refuses to start with one clear line on stderr and exit code 1', () => {
    const cli = async (env: Record<string, string>, args: string[] = []) => {
      const p = await spawnAtkafka(['ozone-events', ...args], { env, metricsPort: 0 })
      const code = await p.exited
      return { code, stdout: p.stdout(), stderr: p.stderr() }
    }
    const base = () => ozoneEnv('ozone-refused', join(dir, 'refused.json'))

    it('wrong password (given as a flag), never shown', async () => {
      const password = 'wrong-Secret-4711'
      const env: Record<string, string> = base()
      delete env.ATKAFKA_OZONE_PASSWORD
      const r = await cli(env, ['--password', password])
      assert.equal(r.code, 1)
      assert.match(
        r.stderr,
        new RegExp(
          `^atkafka: OzoneAuthError: cannot log in to ${net.pdsUrl} as ${OZONE_ADMIN_HANDLE}: Invalid identifier or password \\(AuthenticationRequired\\)\\n$`,
        ),
      )
      assert.ok(!(r.stdout + r.stderr).includes(password), 'password shown')
    })

    it('wrong labeler DID (an account without a labeler service)', async () => {
      const r = await cli({ ...base(), ATKAFKA_OZONE_LABELER_DID: users[0]!.did })
      assert.equal(r.code, 1)
      assert.match(
        r.stderr,
        /^atkafka: OzoneLabelerError: .* cannot reach an Ozone at did:plc:\w+#atproto_labeler: could not resolve proxy did service url .*check --labeler-did\n$/,
      )
      assert.ok(!(r.stdout + r.stderr).includes(OZONE_ADMIN_PASSWORD))
    })

    it('unknown labeler DID', async () => {
      const r = await cli({
        ...base(),
        ATKAFKA_OZONE_LABELER_DID: 'did:plc:aaaaaaaaaaaaaaaaaaaaaaaa',
      })
      assert.equal(r.code, 1)
      assert.match(r.stderr, /^atkafka: OzoneLabelerError: .*could not resolve proxy did\b.*\n$/)
    })

    it('an account that is not a moderator of the Ozone', async () => {
      const user = users[1]!
      const r = await cli({
        ...base(),
        ATKAFKA_OZONE_IDENTIFIER: user.handle,
        ATKAFKA_OZONE_PASSWORD: user.password,
      })
      assert.equal(r.code, 1)
      assert.match(r.stderr, /^atkafka: OzoneAuthError: Ozone did:plc:\w+ refused .*\n$/)
      assert.ok(!(r.stdout + r.stderr).includes(user.password))
    })
  })
})

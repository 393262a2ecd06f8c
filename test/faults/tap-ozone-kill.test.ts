// Fault 7: tap mode killed with SIGKILL before it acked what it produced (three times, while
// new records keep coming): Tap redelivers and every record is in Kafka; ozone-events killed
// three times mid-backlog (while new moderation events keep coming): nothing is lost.
// (test/tap-mode.test.ts and test/ozone-events.test.ts each kill once; this goes further.)
import { AtpAgent } from '@atproto/api'
import assert from 'node:assert/strict'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { consumeAll } from '../harness/kafka.ts'
import {
  type FullNetworkHandle,
  OZONE_ADMIN_HANDLE,
  OZONE_ADMIN_PASSWORD,
  startFullNetwork,
} from '../harness/network.ts'
import { type TestAccount, createAccount, createPost } from '../harness/pds.ts'
import { type TapHandle, startTap } from '../harness/tap.ts'
import {
  type AtkafkaProcess,
  eventually,
  httpGet,
  metricValue,
  spawnAtkafka,
} from '../support/atkafka.ts'
import { report, sleep, tally } from '../support/faults.ts'

const bootstrap = process.env.KAFKA_BOOTSTRAP_SERVERS
const KILLS = 3

let net: FullNetworkHandle
let dir: string

async function produced(p: AtkafkaProcess): Promise<number> {
  const m = await httpGet(p.metricsPort, '/metrics').catch(() => undefined)
  return m === undefined ? 0 : metricValue(m.body, 'atkafka_produced_events', { status: 'ok' })
}

/** Kill with SIGKILL once this run produced `atLeast` messages, plus a random moment. */
async function killMidway(p: AtkafkaProcess, atLeast: number, what: string): Promise<number> {
  await eventually(async () => (await produced(p)) >= atLeast, 90000, what)
  await sleep(Math.random() * 300)
  const n = await produced(p)
  p.child.kill('SIGKILL')
  assert.equal(await p.exited, 'SIGKILL')
  return n
}

before(async () => {
  assert.ok(bootstrap, 'KAFKA_BOOTSTRAP_SERVERS must point at the test broker (npm test sets it)')
  dir = await mkdtemp(join(tmpdir(), 'atkafka-fault-tap-ozone-'))
  net = await startFullNetwork()
})
after(async () => {
  await net?.close()
  if (dir) await rm(dir, { recursive: true, force: true })
})

describe('fault: tap mode killed before acking', () => {
  let tap: TapHandle
  const procs: AtkafkaProcess[] = []
  before(async () => {
    tap = await startTap({ relayUrl: net.pdsUrl, plcUrl: net.plcUrl, retryTimeout: '2s' })
  })
  after(async () => {
    for (const p of procs) p.child.kill('SIGKILL')
    await tap?.close()
  })

  /** `n` posts in one repo (applyWrites, 100 per commit); their URIs. */
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

  it(`${KILLS} SIGKILLs during backfill and live writes: Tap redelivers, every record present`, async () => {
    const accounts = [
      await createAccount(net.pdsUrl),
      await createAccount(net.pdsUrl),
      await createAccount(net.pdsUrl),
    ]
    const uris: string[] = []
    for (const a of accounts) uris.push(...(await posts(a, 200)))
    const topic = 'faults-tap-kill'
    const start = async (extra: string[] = []) => {
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
      await p.waitFor(/connected to Tap/, 60000)
      return p
    }
    // A few events in flight at a time: the backfill is slow enough to be killed inside.
    let p = await start(['--max-in-flight', '2'])
    await tap.addRepos(accounts.map((a) => a.did))
    const kills: number[] = []
    for (let k = 0; k < KILLS; k++) {
      kills.push(await killMidway(p, 30, `tap run ${k} producing`))
      // Written while atkafka is down: Tap takes them live and holds them for the next run.
      for (let i = 0; i < 5; i++) uris.push((await createPost(accounts[k]!, `live ${k}/${i}`)).uri)
      p = await start(k < KILLS - 1 ? ['--max-in-flight', '2'] : [])
    }
    let ids: string[] = []
    await eventually(
      async () => {
        const got = await consumeAll(bootstrap!, topic, { idleMs: 500, timeoutMs: 30000 })
        ids = got.flatMap((m) => {
          const e = JSON.parse(m.value) as { operation?: { uri: string } }
          return e.operation ? [e.operation.uri] : []
        })
        const have = new Set(ids)
        return uris.every((u) => have.has(u))
      },
      120000,
      'every record in Kafka',
    )
    await eventually(
      async () => {
        const res = await tap.request('/stats/outbox-buffer')
        return ((await res.json()) as { outbox_buffer: number }).outbox_buffer === 0
      },
      30000,
      "Tap's outbox empty: everything acked",
    )
    p.child.kill('SIGTERM')
    assert.equal(await p.exited, 0, p.stderr())
    const t = tally(uris, ids)
    report('tap-sigkill', t, `${KILLS} kills after ${kills.join(', ')} messages of their run`)
    assert.equal(t.lost, 0)
  })
})

describe('fault: ozone-events killed mid-backlog', () => {
  let admin: AtpAgent
  let fakeDids = 0
  const ozone = () => admin.withProxy('atproto_labeler', net.ozoneDid as `did:${string}:${string}`)

  before(async () => {
    admin = new AtpAgent({ service: net.pdsUrl })
    await admin.login({ identifier: OZONE_ADMIN_HANDLE, password: OZONE_ADMIN_PASSWORD })
  })

  /** 2 × `n` events: scheduleAction logs two events per subject, all in one millisecond. */
  async function backlog(n: number): Promise<void> {
    const subjects = Array.from(
      { length: n },
      () => `did:plc:faultsozone${(fakeDids++).toString(36)}`,
    )
    const res = await ozone().tools.ozone.moderation.scheduleAction({
      action: { $type: 'tools.ozone.moderation.scheduleAction#takedown', comment: 'scheduled' },
      subjects,
      createdBy: net.ozoneDid,
      scheduling: { executeAt: new Date(Date.now() + 365 * 86400_000).toISOString() },
    })
    assert.equal(res.data.succeeded.length, n)
  }

  /** Ids of every event Ozone holds. */
  async function allIds(): Promise<string[]> {
    const ids: string[] = []
    let cursor: string | undefined
    for (;;) {
      const res = await ozone().tools.ozone.moderation.queryEvents({
        sortDirection: 'asc',
        limit: 100,
        cursor,
      })
      ids.push(...res.data.events.map((e) => String(e.id)))
      if (res.data.events.length < 100 || !res.data.cursor) return ids
      cursor = res.data.cursor
    }
  }

  it(`${KILLS} SIGKILLs mid-backlog while events keep coming: nothing lost`, async () => {
    for (let i = 0; i < 5; i++) await backlog(100)
    const topic = 'faults-ozone-kill'
    const cursorFile = join(dir, 'ozone.json')
    const start = () =>
      spawnAtkafka(['ozone-events'], {
        env: {
          ATKAFKA_OZONE_PDS_HOST: net.pdsUrl,
          ATKAFKA_OZONE_IDENTIFIER: OZONE_ADMIN_HANDLE,
          ATKAFKA_OZONE_PASSWORD: OZONE_ADMIN_PASSWORD,
          ATKAFKA_OZONE_LABELER_DID: net.ozoneDid,
          ATKAFKA_BOOTSTRAP_SERVERS: bootstrap!,
          ATKAFKA_OUTPUT_TOPIC: topic,
          ATKAFKA_CURSOR_FILE: cursorFile,
          ATKAFKA_OZONE_POLL_INTERVAL: '200ms',
          // One page in flight at a time: the kills land mid-backlog.
          ATKAFKA_MAX_IN_FLIGHT: '100',
        },
      })
    const kills: number[] = []
    for (let k = 0; k < KILLS; k++) {
      const p = await start()
      try {
        kills.push(await killMidway(p, 100, `ozone run ${k} producing`))
      } finally {
        p.child.kill('SIGKILL')
      }
      // New events while atkafka is down.
      await backlog(50)
    }
    const truth = await allIds()
    const last = await start()
    try {
      await eventually(
        async () => {
          try {
            const c = JSON.parse(await readFile(cursorFile, 'utf8')) as {
              produced: Record<string, number[]>
            }
            return Object.values(c.produced).some((ids) => ids.map(String).includes(truth.at(-1)!))
          } catch {
            return false
          }
        },
        120000,
        'the newest event in the cursor',
      )
      last.child.kill('SIGTERM')
      assert.equal(await last.exited, 0, last.stderr())
    } finally {
      last.child.kill('SIGKILL')
    }
    const got = await consumeAll(bootstrap!, topic, { idleMs: 1000, timeoutMs: 60000 })
    const t = tally(
      truth,
      got.map((m) => m.key ?? ''),
    )
    report('ozone-sigkill', t, `${KILLS} kills after ${kills.join(', ')} events of their run`)
    assert.equal(t.lost, 0, `lost: ${t.missing.slice(0, 5).join(', ')}`)
  })
})

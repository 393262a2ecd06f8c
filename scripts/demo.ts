// `npm run demo [-- --seconds N]`: atkafka end to end on this machine, offline, without Docker.
//
// Starts a single-node Kafka broker (test/harness/kafka.ts) and a PLC + PDS
// (@atproto/dev-env, test/harness/pds.ts) whose accounts post, like, follow and edit their
// profiles; runs `atkafka firehose relay` from source against the PDS into a Kafka topic, and
// reads the topic back, printing the events as they arrive under a live progress line.
// Ctrl-C (or --seconds) stops everything: the activity, atkafka (gracefully, cursor saved),
// the consumer, the PDS and the broker; then it checks Kafka holds every event it showed.
// The first run downloads the Kafka jars from Maven Central (scripts/kafka/fetch.sh).

import { type ChildProcess, spawn } from 'node:child_process'
import { openSync, closeSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { Kafka, logLevel } from 'kafkajs'
import { type KafkaBroker, consumeAll, startKafka } from '../test/harness/kafka.ts'
import {
  type PdsHandle,
  type RecordRef,
  type TestAccount,
  createAccount,
  createPost,
  createProfile,
  createRecord,
  deleteRecord,
  follow,
  startPds,
} from '../test/harness/pds.ts'
import { freePort, metricValue } from '../test/support/atkafka.ts'

const repoRoot = resolve(import.meta.dirname, '..')
const TOPIC = 'atkafka-demo'

// KafkaJS 2.2.4 calls setTimeout with a negative delay, which Node 24 reports once per
// process as a TimeoutNegativeWarning; it is harmless (Node uses 1 ms).
process.removeAllListeners('warning')
process.on('warning', (w) => {
  if (w.name !== 'TimeoutNegativeWarning')
    console.error(`(node:${process.pid}) ${w.name}: ${w.message}`)
})

const { values } = parseArgs({
  options: { seconds: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
})
if (values.help) {
  console.log('Usage: npm run demo [-- --seconds <n>]   (Ctrl-C stops it)')
  process.exit(0)
}
const seconds = values.seconds === undefined ? undefined : Number(values.seconds)
if (seconds !== undefined && !(seconds > 0)) {
  console.error(`invalid --seconds: ${values.seconds}`)
  process.exit(2)
}

// ---------------------------------------------------------------------------------------
// Output: event lines scroll above one progress line that is rewritten in place on a terminal.

const tty = process.stdout.isTTY === true
let progressText = ''
let lastPlainProgress = 0

function print(line: string): void {
  if (tty) process.stdout.write(`\r\x1b[K${line}\n${progressText}`)
  else process.stdout.write(`${line}\n`)
}

function progress(text: string): void {
  progressText = text
  if (tty) process.stdout.write(`\r\x1b[K${text}`)
  else if (Date.now() - lastPlainProgress >= 5000) {
    lastPlainProgress = Date.now()
    process.stdout.write(`${text}\n`)
  }
}

function endProgress(): void {
  if (tty && progressText) process.stdout.write('\n')
  progressText = ''
}

const step = (text: string) => print(`• ${text}`)
const secs = (ms: number) => (ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(1)} s`)

// ---------------------------------------------------------------------------------------
// Activity: a few accounts doing what Bluesky users do.

const POSTS = [
  'hello from a local PDS',
  'atkafka turns every record operation into one Kafka message',
  'the cursor only moves past what Kafka acknowledged',
  'testing, testing',
  'good morning',
  'is this thing on?',
  'a post that will be deleted soon',
]

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((done) => {
    const t = setTimeout(done, ms)
    signal.addEventListener('abort', () => (clearTimeout(t), done()), { once: true })
  })

const pick = <T>(xs: readonly T[]): T => xs[Math.floor(Math.random() * xs.length)]!

async function generateActivity(accounts: TestAccount[], signal: AbortSignal): Promise<void> {
  const posts: Array<{ by: TestAccount; ref: RecordRef }> = []
  while (!signal.aborted) {
    const me = pick(accounts)
    const roll = Math.random()
    if (roll < 0.4 || posts.length === 0) {
      posts.push({ by: me, ref: await createPost(me, pick(POSTS)) })
    } else if (roll < 0.65) {
      const { ref } = pick(posts)
      await createRecord(me, 'app.bsky.feed.like', {
        subject: { uri: ref.uri, cid: ref.cid },
        createdAt: new Date().toISOString(),
      })
    } else if (roll < 0.75) {
      const { ref } = pick(posts)
      await createRecord(me, 'app.bsky.feed.repost', {
        subject: { uri: ref.uri, cid: ref.cid },
        createdAt: new Date().toISOString(),
      })
    } else if (roll < 0.85) {
      await follow(me, pick(accounts.filter((a) => a !== me)).did)
    } else if (roll < 0.93) {
      await createProfile(me, `${me.handle.split('.')[0]} (${new Date().toLocaleTimeString()})`)
    } else {
      const i = posts.findIndex((p) => p.by === me)
      if (i >= 0) {
        const [gone] = posts.splice(i, 1)
        await deleteRecord(me, gone!.ref.collection, gone!.ref.rkey)
      }
    }
    await sleep(300 + Math.random() * 900, signal)
  }
}

// ---------------------------------------------------------------------------------------
// Reading the topic back.

interface DemoEvent {
  did?: string
  eventMetadata?: { handle?: string } | null
  operation?: {
    action: string
    collection: string
    record?: { text?: string; displayName?: string }
  }
  identity?: { handle: string }
  account?: { active: boolean; status?: string }
  sync?: unknown
  info?: { name: string }
}

function describeEvent(value: string, handles: Map<string, string>): string {
  const e = JSON.parse(value) as DemoEvent
  const who = (e.eventMetadata?.handle || handles.get(e.did ?? '') || e.did || '').padEnd(14)
  if (e.operation) {
    const { action, collection, record } = e.operation
    const detail = record?.text ?? record?.displayName
    return `${action.padEnd(8)} ${collection.padEnd(24)} ${who}${detail ? ` "${detail}"` : ''}`
  }
  if (e.identity)
    return `${'identity'.padEnd(8)} ${''.padEnd(24)} ${who} handle ${e.identity.handle}`
  if (e.account) return `${'account'.padEnd(8)} ${''.padEnd(24)} ${who} active=${e.account.active}`
  if (e.sync) return `${'sync'.padEnd(8)} ${''.padEnd(24)} ${who}`
  return `${'info'.padEnd(8)} ${e.info?.name ?? ''}`
}

// ---------------------------------------------------------------------------------------
// Main

const workDir = mkdtempSync(join(tmpdir(), 'atkafka-demo-'))
const logFile = join(workDir, 'atkafka.log')
const started = Date.now()
const stop = new AbortController()
let firstInterrupt = 0
let broker: KafkaBroker | undefined
let pds: PdsHandle | undefined
let atkafka: ChildProcess | undefined
let atkafkaExit: Promise<number | string> | undefined

process.on('SIGINT', () => {
  // `npm run` may pass on the terminal's Ctrl-C too: signals within a second count as one.
  if (firstInterrupt === 0) {
    firstInterrupt = Date.now()
    stop.abort()
  } else if (Date.now() - firstInterrupt > 1000) {
    // Second Ctrl-C: no more waiting. The broker harness's exit hook kills the broker.
    endProgress()
    console.error('interrupted again: killing everything')
    atkafka?.kill('SIGKILL')
    process.exit(130)
  }
})
process.on('SIGTERM', () => stop.abort())
process.on('exit', () => atkafka?.kill('SIGKILL'))

let consumed = 0
let shownPost = false
const byCollection = new Map<string, number>()
const handles = new Map<string, string>()
const kafka = (bootstrap: string) =>
  new Kafka({ clientId: 'atkafka-demo', brokers: [bootstrap], logLevel: logLevel.NOTHING })
let consumer: ReturnType<ReturnType<typeof kafka>['consumer']> | undefined
let progressTimer: NodeJS.Timeout | undefined
let activity: Promise<void> | undefined

try {
  print('atkafka demo: a local Kafka broker and PDS, atkafka relay mode, the topic read back.')
  print('Ctrl-C stops everything.\n')

  let t = Date.now()
  broker = await startKafka({ dataDir: join(workDir, 'kafka') })
  step(`Kafka broker ready at ${broker.bootstrap} (${secs(Date.now() - t)})`)
  if (stop.signal.aborted) throw stop.signal.reason

  t = Date.now()
  pds = await startPds()
  step(`PDS ready at ${pds.pdsUrl}, PLC at ${pds.plcUrl} (${secs(Date.now() - t)})`)

  const metricsPort = await freePort()
  const args = [
    '--disable-warning=TimeoutNegativeWarning',
    join(repoRoot, 'src', 'bin.ts'),
    'firehose',
    'relay',
    '--relay-host',
    pds.pdsUrl,
    '--bootstrap-servers',
    broker.bootstrap,
    '--output-topic',
    TOPIC,
    '--topic-partitions',
    '4',
    '--cursor-file',
    join(workDir, 'atkafka-cursor.json'),
    '--metrics-listen-address',
    `127.0.0.1:${metricsPort}`,
    '--plc-host',
    pds.plcUrl,
    '--skip-handle-verification',
  ]
  const log = openSync(logFile, 'a')
  // Its own process group: Ctrl-C reaches it once, from here, after the activity stopped.
  atkafka = spawn(process.execPath, args, {
    cwd: workDir,
    env: { PATH: process.env.PATH ?? '' },
    stdio: ['ignore', log, log],
    detached: true,
  })
  closeSync(log)
  const child = atkafka
  atkafkaExit = new Promise((done) =>
    child.once('exit', (code, signal) => done(code ?? signal ?? '?')),
  )
  step(
    `atkafka firehose relay → topic ${TOPIC} (metrics http://127.0.0.1:${metricsPort}/metrics, log ${logFile})`,
  )

  const metric = async (name: string, labels: Record<string, string> = {}) => {
    try {
      const res = await fetch(`http://127.0.0.1:${metricsPort}/metrics`)
      return metricValue(await res.text(), name, labels)
    } catch {
      return undefined
    }
  }
  // Topic created and source connected: atkafka is ready.
  const deadline = Date.now() + 60_000
  while ((await metric('atkafka_source_connected')) !== 1) {
    if (child.exitCode !== null)
      throw new Error(`atkafka exited (${child.exitCode}); see ${logFile}`)
    if (Date.now() > deadline) throw new Error(`atkafka did not connect in 60 s; see ${logFile}`)
    if (stop.signal.aborted) throw stop.signal.reason
    await new Promise((r) => setTimeout(r, 200))
  }
  step('atkafka connected to the PDS firehose')

  consumer = kafka(broker.bootstrap).consumer({ groupId: 'atkafka-demo', maxWaitTimeInMs: 200 })
  await consumer.connect()
  await consumer.subscribe({ topic: TOPIC, fromBeginning: true })
  await consumer.run({
    eachMessage: async ({ message }) => {
      consumed++
      const value = message.value?.toString() ?? ''
      const e = JSON.parse(value) as DemoEvent
      const kind =
        e.operation?.collection ??
        Object.keys(e).find((k) => k !== 'did' && k !== 'timestamp' && k !== 'eventMetadata') ??
        '?'
      byCollection.set(kind, (byCollection.get(kind) ?? 0) + 1)
      print(`  ${String(consumed).padStart(4)}  ${describeEvent(value, handles)}`)
      if (e.operation?.collection === 'app.bsky.feed.post' && !shownPost) {
        shownPost = true
        // The DID document is long: shown as a placeholder.
        const meta = e.eventMetadata ? { ...e.eventMetadata, didDocument: '{ … }' } : null
        const json = JSON.stringify({ ...e, eventMetadata: meta }, null, 2).split('\n')
        print(`        one Kafka message in full (key ${message.key?.toString()}):`)
        for (const line of json) print(`        ${line}`)
      }
    },
  })
  step('consumer reading the topic from the beginning\n')

  const accounts: TestAccount[] = []
  for (const name of ['alice', 'bob', 'carol']) {
    const a = await createAccount(pds.pdsUrl, name, `${name}-demo-password`)
    handles.set(a.did, a.handle)
    accounts.push(a)
  }
  activity = generateActivity(accounts, stop.signal)

  const refresh = async () => {
    const produced = await metric('atkafka_produced_events', { status: 'ok' })
    const inFlight = await metric('atkafka_in_flight')
    const lag = await metric('atkafka_lag_seconds')
    const elapsed = Math.round((Date.now() - started) / 1000)
    progress(
      `⏵ produced ${produced ?? '?'} · consumed ${consumed} · in flight ${inFlight ?? '?'} · ` +
        `lag ${lag === undefined ? '?' : lag.toFixed(1)} s · ${elapsed} s · Ctrl-C to stop`,
    )
  }
  progressTimer = setInterval(() => void refresh(), 500)
  if (seconds !== undefined) setTimeout(() => stop.abort(), seconds * 1000).unref()
  await new Promise<void>((done) =>
    stop.signal.addEventListener('abort', () => done(), { once: true }),
  )
} catch (err) {
  if (!stop.signal.aborted) {
    endProgress()
    console.error(`demo failed: ${err instanceof Error ? err.message : String(err)}`)
    process.exitCode = 1
  }
} finally {
  clearInterval(progressTimer)
  endProgress()
  if (stop.signal.aborted) console.log('\nStopping ...')
  const shutdown = async (what: string, fn: () => Promise<unknown>) => {
    const t = Date.now()
    try {
      await fn()
      console.log(`• ${what} (${secs(Date.now() - t)})`)
    } catch (err) {
      console.error(`• ${what} failed: ${err instanceof Error ? err.message : String(err)}`)
      process.exitCode = 1
    }
  }
  if (activity) await shutdown('activity stopped', () => activity!)
  if (atkafka && atkafka.exitCode === null) {
    await shutdown('atkafka stopped (Kafka acknowledged everything, cursor saved)', async () => {
      atkafka!.kill('SIGINT')
      const code = await atkafkaExit
      if (code !== 0) throw new Error(`atkafka exited with ${code}; see ${logFile}`)
    })
  }
  let inKafka: number | undefined
  if (consumer && broker) {
    const c = consumer
    const b = broker
    await shutdown('consumer stopped', async () => {
      // Let the consumer catch up with the last events atkafka wrote.
      inKafka = (await consumeAll(b.bootstrap, TOPIC, { idleMs: 500, timeoutMs: 10_000 })).length
      const until = Date.now() + 5000
      while (consumed < inKafka && Date.now() < until) await new Promise((r) => setTimeout(r, 100))
      await c.disconnect()
    })
  }
  if (pds) await shutdown('PDS stopped', () => pds!.close())
  if (broker) await shutdown('Kafka broker stopped', () => broker!.stop())
  if (process.exitCode === undefined || process.exitCode === 0) {
    rmSync(workDir, { recursive: true, force: true })
  } else {
    console.error(`kept ${workDir} (atkafka.log, Kafka data)`)
  }

  if (inKafka !== undefined) {
    const kinds = [...byCollection].sort((a, b) => b[1] - a[1])
    console.log(
      `\n${consumed} events read back in ${secs(Date.now() - started)}; Kafka held ${inKafka}:`,
    )
    for (const [kind, n] of kinds) console.log(`  ${String(n).padStart(5)}  ${kind}`)
    if (consumed !== inKafka) {
      console.error(`the consumer read ${consumed} of the ${inKafka} events in Kafka`)
      process.exitCode = 1
    }
  }
  if (process.exitCode === undefined || process.exitCode === 0) console.log('\nDone.')
}

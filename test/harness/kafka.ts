// A real single-node Apache Kafka broker (KRaft, broker + controller in one JVM) for tests
// and local runs, started from the Maven Central jars that scripts/kafka/fetch.sh copies into
// .cache/kafka/libs. No Docker.
//
//   const broker = await startKafka()
//   // ... use broker.bootstrap ('127.0.0.1:<port>') ...
//   await broker.stop()
//
// The broker runs in its own process group with its output in a log file. It is killed when
// this process exits, and a small watchdog kills it if this process dies without running its
// exit handlers (SIGKILL, crash).

import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { createHash, randomUUID } from 'node:crypto'
import { existsSync, fstatSync, mkdirSync, mkdtempSync, openSync, closeSync } from 'node:fs'
import { readFileSync } from 'node:fs'
import { rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { Kafka, logLevel } from 'kafkajs'
import type { Admin, IHeaders } from 'kafkajs'

const repoRoot = resolve(import.meta.dirname, '..', '..')
const libsDir = join(repoRoot, '.cache', 'kafka', 'libs')
const fetchScript = join(repoRoot, 'scripts', 'kafka', 'fetch.sh')
const pomFile = join(repoRoot, 'scripts', 'kafka', 'pom.xml')

const READY_TIMEOUT_MS = 60_000
const STOP_TIMEOUT_MS = 30_000
const JVM_ARGS = ['-Xms256m', '-Xmx768m', '-XX:+UseG1GC', '-Djava.awt.headless=true']

export interface KafkaBroker {
  /** `127.0.0.1:<port>`, for KafkaJS `brokers` or `KAFKA_BOOTSTRAP_SERVERS`. */
  readonly bootstrap: string
  readonly port: number
  readonly dataDir: string
  /** SIGTERM (clean shutdown), wait for the process to exit. */
  stop(): Promise<void>
  /** SIGKILL, wait for the process to exit. */
  kill(): Promise<void>
  /** (Re)start on the same port and data dir, wait until ready. */
  start(): Promise<void>
  /** Send a signal to the running broker's process group (e.g. SIGSTOP / SIGCONT to freeze it). */
  signal(signal: NodeJS.Signals): void
}

/** A listener besides the harness's own PLAINTEXT one (which readiness checks and helpers use). */
export interface ExtraListener {
  /** Listener name, e.g. `SASL_SSL`; its `listener.name.<name>.*` settings go in extraProperties. */
  name: string
  port: number
  /** Security protocol; default: the name. */
  protocol?: string
}

export interface StartKafkaOptions {
  /** Where the data, server.properties and (by default) the log go. Default: a new temp dir,
   * removed when this process exits. An existing, formatted dir is reused. */
  dataDir?: string
  /** Where the default temp dir is made (default: the system temp dir). */
  tempParent?: string
  /** Broker stdout/stderr (appended). Default: `<dataDir>/kafka.log`. */
  logFile?: string
  /** Added to (or overriding) server.properties. */
  extraProperties?: Record<string, string>
  /** Broker port; default: a free one. The controller port is always a free one. */
  port?: number
  /** More listeners on 127.0.0.1, advertised as such. */
  extraListeners?: ExtraListener[]
  /** Added to `kafka-storage format`, e.g. `['--add-scram', 'SCRAM-SHA-256=[name=u,password=p]']`. */
  formatArgs?: string[]
}

export interface ConsumedMessage {
  key: string | null
  /** A null value (tombstone) reads as ''. */
  value: string
  partition: number
  offset: string
  /** Present only when the message has headers; values decoded as UTF-8. */
  headers?: Record<string, string | string[]>
}

export interface ConsumeAllOptions {
  /** Stop once this many messages were read (then wait ~300 ms for extras). */
  expected?: number
  /** Without `expected`: once every partition is read up to its high-water mark, stop when
   * nothing new arrived for this long. Default 300 ms. */
  idleMs?: number
  /** Give up and return what was read. Default 30 s. */
  timeoutMs?: number
}

// ---------------------------------------------------------------------------------------
// Jars

function pomHash(): string {
  return createHash('sha256').update(readFileSync(pomFile)).digest('hex')
}

function jarsReady(): boolean {
  try {
    return readFileSync(join(libsDir, '.complete'), 'utf8').trim() === pomHash()
  } catch {
    return false
  }
}

/** Make sure .cache/kafka/libs holds the broker jars (runs scripts/kafka/fetch.sh if not). */
export async function ensureKafkaJars(): Promise<string> {
  if (jarsReady()) return libsDir
  const { code, output } = await run('bash', [fetchScript], { cwd: repoRoot })
  if (code !== 0 || !jarsReady()) {
    throw new Error(`scripts/kafka/fetch.sh failed (exit ${code}):\n${output.trim()}`)
  }
  return libsDir
}

// ---------------------------------------------------------------------------------------
// Processes

function run(
  cmd: string,
  args: string[],
  opts: { cwd?: string } = {},
): Promise<{ code: number | null; stdout: string; output: string }> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(cmd, args, { cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let output = ''
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d
      output += d
    })
    child.stderr.setEncoding('utf8').on('data', (d: string) => (output += d))
    child.on('error', (err: NodeJS.ErrnoException) => {
      reject(
        err.code === 'ENOENT'
          ? new Error(`${cmd} not found on PATH (Kafka needs Java 17+ and Maven)`)
          : err,
      )
    })
    child.on('close', (code) => resolvePromise({ code, stdout, output }))
  })
}

function javaArgs(libs: string, logConfig: string, main: string, args: string[]): string[] {
  return [...JVM_ARGS, `-Dlog4j.configuration=file:${logConfig}`, '-cp', `${libs}/*`, main, ...args]
}

/** Brokers (and temp dirs) to clean up when this process exits. */
const live = new Set<ChildProcess>()
const tempDirs = new Set<string>()
let exitHookInstalled = false

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return
  try {
    process.kill(-child.pid, signal)
  } catch {
    try {
      child.kill(signal)
    } catch {
      // already gone
    }
  }
}

function installExitHook(): void {
  if (exitHookInstalled) return
  exitHookInstalled = true
  process.on('exit', () => {
    for (const child of live) killGroup(child, 'SIGKILL')
    for (const dir of tempDirs) {
      try {
        rmSync(dir, { recursive: true, force: true, maxRetries: 3 })
      } catch {
        // best effort
      }
    }
  })
}

/**
 * A detached shell that reads the broker's current pid (a line per start; an empty line once
 * it exited) from a pipe only this process writes to. At EOF, which comes when this process
 * dies in any way (SIGKILL included), it kills that pid's process group and removes the temp
 * data dir, if any.
 */
function spawnWatchdog(tempDir: string | undefined): (pid: number | undefined) => void {
  const script =
    'pid=; while read -r line; do pid=$line; done; ' +
    'if [ -n "$pid" ]; then kill -KILL "-$pid" 2>/dev/null; fi; ' +
    'if [ -n "$1" ]; then sleep 1; rm -rf -- "$1"; fi'
  const dog = spawn('sh', ['-c', script, 'kafka-watchdog', tempDir ?? ''], {
    stdio: ['pipe', 'ignore', 'ignore'],
    detached: true,
  })
  dog.on('error', () => {})
  dog.stdin?.on('error', () => {})
  dog.unref()
  ;(dog.stdin as unknown as { unref?: () => void } | null)?.unref?.()
  return (pid) => {
    dog.stdin?.write(`${pid ?? ''}\n`)
  }
}

function waitExit(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve()
  return new Promise((resolvePromise) => child.once('exit', () => resolvePromise()))
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms))
}

function freePort(): Promise<{ port: number; close: () => Promise<void> }> {
  return new Promise((resolvePromise, reject) => {
    const server = createServer()
    server.unref()
    server.on('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo
      resolvePromise({ port, close: () => new Promise((r) => server.close(() => r())) })
    })
  })
}

/** The ERROR/FATAL lines (the cause, usually) and the last lines of this run's broker log. */
function logTail(file: string, from: number): string {
  let text: string
  try {
    text = readFileSync(file).subarray(from).toString('utf8')
  } catch {
    return '(no broker log)'
  }
  const lines = text.trimEnd().split('\n')
  // Each ERROR/FATAL line with the first lines of its stack trace (the exception message).
  const errors: string[] = []
  for (let i = 0; i < lines.length && errors.length < 30; i++) {
    if (!/ (ERROR|FATAL) /.test(lines[i]!)) continue
    errors.push(lines[i]!)
    for (let j = i + 1; j < Math.min(i + 3, lines.length) && !lines[j]!.startsWith('['); j++) {
      errors.push(lines[j]!)
    }
  }
  const tail = lines.slice(-20)
  const clip = (l: string) => (l.length > 1000 ? `${l.slice(0, 1000)} ...` : l)
  return [...(errors.length > 0 ? ['errors:', ...errors, 'last lines:'] : []), ...tail]
    .map(clip)
    .join('\n')
}

// ---------------------------------------------------------------------------------------
// Broker

function serverProperties(
  port: number,
  controllerPort: number,
  logDir: string,
  extra: Record<string, string>,
  extraListeners: ExtraListener[] = [],
): string {
  const more = (f: (l: ExtraListener) => string) => extraListeners.map((l) => `,${f(l)}`).join('')
  const props: Record<string, string> = {
    'process.roles': 'broker,controller',
    'node.id': '1',
    'controller.quorum.voters': `1@127.0.0.1:${controllerPort}`,
    listeners:
      `PLAINTEXT://127.0.0.1:${port},CONTROLLER://127.0.0.1:${controllerPort}` +
      more((l) => `${l.name}://127.0.0.1:${l.port}`),
    'advertised.listeners':
      `PLAINTEXT://127.0.0.1:${port}` + more((l) => `${l.name}://127.0.0.1:${l.port}`),
    'controller.listener.names': 'CONTROLLER',
    'inter.broker.listener.name': 'PLAINTEXT',
    'listener.security.protocol.map':
      'PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT' + more((l) => `${l.name}:${l.protocol ?? l.name}`),
    'log.dirs': logDir,
    'num.partitions': '1',
    'default.replication.factor': '1',
    'min.insync.replicas': '1',
    'offsets.topic.replication.factor': '1',
    // One partition each: the internal topics are created much faster than with 50.
    'offsets.topic.num.partitions': '1',
    'transaction.state.log.replication.factor': '1',
    'transaction.state.log.min.isr': '1',
    'transaction.state.log.num.partitions': '1',
    'group.initial.rebalance.delay.ms': '0',
    'auto.create.topics.enable': 'false',
    // After a SIGKILL the restarted broker cannot register until the controller expires the
    // old incarnation's session (DUPLICATE_BROKER_REGISTRATION): 9 s by default.
    'broker.session.timeout.ms': '3000',
    'broker.heartbeat.interval.ms': '500',
    'delete.topic.enable': 'true',
    ...extra,
  }
  return (
    Object.entries(props)
      .map(([k, v]) => `${k}=${v.replaceAll('\\', '\\\\')}`)
      .join('\n') + '\n'
  )
}

const LOG4J_PROPERTIES = `log4j.rootLogger=INFO, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.request.logger=WARN
log4j.logger.state.change.logger=WARN
log4j.logger.org.apache.kafka.controller=INFO
log4j.logger.kafka.log.LogCleaner=WARN
`

/** For kafka-storage: warnings only, on stderr (its stdout is the answer). */
const TOOLS_LOG4J_PROPERTIES = `log4j.rootLogger=WARN, stderr
log4j.appender.stderr=org.apache.log4j.ConsoleAppender
log4j.appender.stderr.Target=System.err
log4j.appender.stderr.layout=org.apache.log4j.PatternLayout
log4j.appender.stderr.layout.ConversionPattern=[%d] %p %m (%c)%n
`

/** Wait until the broker answers DescribeCluster, or throw. */
async function waitReady(
  bootstrap: string,
  child: ChildProcess,
  logFile: string,
  logFrom: number,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs
  const kafka = new Kafka({
    clientId: 'kafka-harness-ready',
    brokers: [bootstrap],
    logLevel: logLevel.NOTHING,
    connectionTimeout: 1000,
    requestTimeout: 5000,
    retry: { retries: 0 },
  })
  let lastError: unknown
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(
        `Kafka broker exited during startup (${child.exitCode ?? child.signalCode}); ` +
          `log ${logFile}:\n${logTail(logFile, logFrom)}`,
      )
    }
    const admin = kafka.admin({ retry: { retries: 0 } })
    try {
      await admin.connect()
      const cluster = await admin.describeCluster()
      if (cluster.brokers.length > 0 && cluster.controller !== null) return
    } catch (err) {
      lastError = err
    } finally {
      await admin.disconnect().catch(() => {})
    }
    if (Date.now() > deadline) {
      throw new Error(
        `Kafka broker at ${bootstrap} not ready after ${timeoutMs} ms ` +
          `(${lastError instanceof Error ? lastError.message : String(lastError)}); ` +
          `log ${logFile}:\n${logTail(logFile, logFrom)}`,
      )
    }
    await sleep(200)
  }
}

/** Start a single-node KRaft broker on 127.0.0.1 and wait until it is ready. */
export async function startKafka(opts: StartKafkaOptions = {}): Promise<KafkaBroker> {
  const libs = await ensureKafkaJars()
  installExitHook()

  let dataDir: string
  let ownedTempDir: string | undefined
  if (opts.dataDir !== undefined) {
    dataDir = resolve(opts.dataDir)
    mkdirSync(dataDir, { recursive: true })
  } else {
    dataDir = mkdtempSync(join(opts.tempParent ?? tmpdir(), 'atkafka-kafka-'))
    ownedTempDir = dataDir
    tempDirs.add(dataDir)
  }
  // From here on, dying kills the broker and removes the temp dir (format included).
  const watch = spawnWatchdog(ownedTempDir)
  const logDir = join(dataDir, 'logs')
  const logFile = resolve(opts.logFile ?? join(dataDir, 'kafka.log'))
  const propsFile = join(dataDir, 'server.properties')
  const log4jFile = join(dataDir, 'log4j.properties')
  const toolsLog4jFile = join(dataDir, 'tools-log4j.properties')

  // Both bound at once, so the two differ. (Another process could take one before the broker
  // binds it: unlikely, and startup would then fail with a clear error.)
  const brokerSock = opts.port === undefined ? await freePort() : undefined
  const controllerSock = await freePort()
  const port = opts.port ?? brokerSock!.port
  const controllerPort = controllerSock.port
  await brokerSock?.close()
  await controllerSock.close()

  writeFileSync(
    propsFile,
    serverProperties(port, controllerPort, logDir, opts.extraProperties ?? {}, opts.extraListeners),
  )
  writeFileSync(log4jFile, LOG4J_PROPERTIES)
  writeFileSync(toolsLog4jFile, TOOLS_LOG4J_PROPERTIES)

  if (!existsSync(join(logDir, 'meta.properties'))) {
    const uuid = await run(
      'java',
      javaArgs(libs, toolsLog4jFile, 'kafka.tools.StorageTool', ['random-uuid']),
    )
    const clusterId = uuid.stdout.trim()
    if (uuid.code !== 0 || !/^[\w-]{22}$/.test(clusterId)) {
      throw new Error(`kafka-storage random-uuid failed (exit ${uuid.code}):\n${uuid.output}`)
    }
    const format = await run(
      'java',
      javaArgs(libs, toolsLog4jFile, 'kafka.tools.StorageTool', [
        'format',
        '-t',
        clusterId,
        '-c',
        propsFile,
        ...(opts.formatArgs ?? []),
      ]),
    )
    if (format.code !== 0) {
      throw new Error(`kafka-storage format failed (exit ${format.code}):\n${format.output}`)
    }
  }

  const bootstrap = `127.0.0.1:${port}`
  let child: ChildProcess | undefined

  const cleanup = (c: ChildProcess) => {
    live.delete(c)
    watch(undefined)
  }

  const running = () => child !== undefined && child.exitCode === null && child.signalCode === null

  const halt = async (signal: NodeJS.Signals): Promise<void> => {
    const c = child
    if (c === undefined) return
    c.ref()
    try {
      if (running()) {
        killGroup(c, signal)
        const timer =
          signal === 'SIGKILL'
            ? undefined
            : setTimeout(() => killGroup(c, 'SIGKILL'), STOP_TIMEOUT_MS)
        await waitExit(c)
        if (timer) clearTimeout(timer)
      }
    } finally {
      cleanup(c)
      c.unref()
      if (child === c) child = undefined
    }
  }

  const start = async (): Promise<void> => {
    if (running()) throw new Error(`Kafka broker at ${bootstrap} is already running`)
    const fd = openSync(logFile, 'a')
    const logFrom = fstatSync(fd).size
    let c: ChildProcess
    try {
      c = spawn('java', javaArgs(libs, log4jFile, 'kafka.Kafka', [propsFile]), {
        cwd: dataDir,
        stdio: ['ignore', fd, fd],
        detached: true, // own process group: signals from the terminal don't reach it
      })
    } finally {
      closeSync(fd)
    }
    const spawnError = new Promise<never>((_, reject) =>
      c.once('error', (err: NodeJS.ErrnoException) =>
        reject(
          err.code === 'ENOENT' ? new Error('java not found on PATH (Kafka needs Java 17+)') : err,
        ),
      ),
    )
    spawnError.catch(() => {})
    child = c
    live.add(c)
    c.once('exit', () => cleanup(c))
    watch(c.pid)
    try {
      await Promise.race([waitReady(bootstrap, c, logFile, logFrom, READY_TIMEOUT_MS), spawnError])
    } catch (err) {
      await halt('SIGKILL')
      throw err
    }
    c.unref() // a forgotten broker must not keep this process alive; the exit hook kills it
  }

  await start()

  return {
    bootstrap,
    port,
    dataDir,
    stop: () => halt('SIGTERM'),
    kill: () => halt('SIGKILL'),
    start,
    signal: (signal) => {
      if (child !== undefined && running()) killGroup(child, signal)
    },
  }
}

// ---------------------------------------------------------------------------------------
// Client helpers

function client(bootstrap: string, clientId: string): Kafka {
  return new Kafka({
    clientId,
    brokers: bootstrap.split(',').map((b) => b.trim()),
    logLevel: logLevel.NOTHING,
    retry: { retries: 5, initialRetryTime: 100, maxRetryTime: 1000 },
  })
}

/**
 * Low and high-water marks of every partition, retried until `deadline` while the topic does
 * not exist yet or its partitions have no leader yet.
 */
async function topicOffsets(
  admin: Admin,
  topic: string,
  deadline: number,
): Promise<Array<{ partition: number; low: bigint; high: bigint }>> {
  for (;;) {
    try {
      const offsets = await admin.fetchTopicOffsets(topic)
      return offsets.map((o) => ({
        partition: o.partition,
        low: BigInt(o.low),
        high: BigInt(o.high),
      }))
    } catch (err) {
      if (Date.now() > deadline) {
        const why = err instanceof Error ? err.message : String(err)
        throw new Error(`offsets of topic ${topic}: ${why}`, { cause: err })
      }
      await sleep(50)
    }
  }
}

/** Create a topic (replication factor 1) and wait for its partition leaders. */
export async function createTopic(
  bootstrap: string,
  topic: string,
  partitions: number,
): Promise<void> {
  const admin = client(bootstrap, 'kafka-harness-admin').admin()
  await admin.connect()
  try {
    await admin.createTopics({
      topics: [{ topic, numPartitions: partitions, replicationFactor: 1 }],
      waitForLeaders: true,
    })
    // The metadata names a leader before the broker has become leader of every partition:
    // a produce in that window fails with NOT_LEADER_OR_FOLLOWER, and KafkaJS retries the
    // whole request (duplicating the partitions that succeeded, unless idempotent).
    // ListOffsets is answered by the partition leader only, so wait until it succeeds
    // (KafkaJS does not retry that error here; it took ~1 s for 200 partitions).
    await topicOffsets(admin, topic, Date.now() + 30_000)
  } finally {
    await admin.disconnect()
  }
}

function decodeHeaders(
  headers: IHeaders | undefined,
): Record<string, string | string[]> | undefined {
  if (headers === undefined) return undefined
  const out: Record<string, string | string[]> = {}
  for (const [k, v] of Object.entries(headers)) {
    if (v === undefined) continue
    out[k] = Array.isArray(v) ? v.map((x) => x.toString()) : v.toString()
  }
  return Object.keys(out).length > 0 ? out : undefined
}

/**
 * Read a topic from the beginning (all partitions). Stops when `expected` messages were read
 * (plus ~300 ms for extras), or, without `expected`, when every partition was read up to its
 * high-water mark and nothing new arrived for `idleMs`; returns what was read on `timeoutMs`.
 * The result is sorted by partition, then offset.
 */
export async function consumeAll(
  bootstrap: string,
  topic: string,
  opts: ConsumeAllOptions = {},
): Promise<ConsumedMessage[]> {
  const { expected, idleMs = 300, timeoutMs = 30_000 } = opts
  const deadline = Date.now() + timeoutMs
  const kafka = client(bootstrap, 'kafka-harness-consume-all')
  const admin = kafka.admin()
  await admin.connect()

  const highWaterMarks = async (): Promise<Map<number, bigint>> =>
    new Map((await topicOffsets(admin, topic, deadline)).map((o) => [o.partition, o.high]))

  const groupId = `kafka-harness-${randomUUID()}`
  const consumer = kafka.consumer({
    groupId,
    maxWaitTimeInMs: 100, // short fetch long-polls: an idle consumer stops quickly
    sessionTimeout: 30_000,
    heartbeatInterval: 1000,
    retry: { retries: 5, initialRetryTime: 100, maxRetryTime: 1000 },
  })
  const messages: ConsumedMessage[] = []
  const positions = new Map<number, bigint>() // next offset to read, per partition
  let lastArrival = Date.now()

  try {
    const initial = await topicOffsets(admin, topic, deadline)
    let targets = new Map(initial.map((o) => [o.partition, o.high]))
    for (const o of initial) positions.set(o.partition, o.low)

    const reached = () => {
      for (const [p, high] of targets) if ((positions.get(p) ?? 0n) < high) return false
      return true
    }

    await consumer.connect()
    consumer.on(consumer.events.END_BATCH_PROCESS, (e) => {
      const next = BigInt(e.payload.lastOffset) + 1n
      if (next > (positions.get(e.payload.partition) ?? 0n)) {
        positions.set(e.payload.partition, next)
      }
    })
    let crash: Error | undefined
    consumer.on(consumer.events.CRASH, (e) => {
      if (!e.payload.restart) crash = e.payload.error
    })
    await consumer.subscribe({ topic, fromBeginning: true })
    await consumer.run({
      autoCommit: false,
      partitionsConsumedConcurrently: 4,
      eachBatch: async ({ batch }) => {
        for (const m of batch.messages) {
          const headers = decodeHeaders(m.headers)
          messages.push({
            key: m.key === null ? null : m.key.toString(),
            value: m.value === null ? '' : m.value.toString(),
            partition: batch.partition,
            offset: m.offset,
            ...(headers ? { headers } : {}),
          })
        }
        if (batch.messages.length > 0) lastArrival = Date.now()
      },
    })

    for (;;) {
      if (crash) throw new Error(`consumeAll(${topic}): consumer crashed`, { cause: crash })
      if (Date.now() > deadline) break
      if (expected !== undefined) {
        if (messages.length >= expected) {
          await sleep(Math.min(300, Math.max(0, deadline - Date.now())))
          break
        }
      } else if (reached() && Date.now() - lastArrival >= idleMs) {
        // Catch late writes: stop only if the high-water marks did not move.
        const now = await highWaterMarks()
        const moved = [...now].some(([p, h]) => h !== targets.get(p))
        targets = now
        if (!moved && reached()) break
      }
      await sleep(20)
    }
  } finally {
    await consumer.disconnect().catch(() => {})
    await admin.deleteGroups([groupId]).catch(() => {})
    await admin.disconnect().catch(() => {})
  }

  return messages.sort((a, b) =>
    a.partition !== b.partition
      ? a.partition - b.partition
      : Number(BigInt(a.offset) - BigInt(b.offset)),
  )
}

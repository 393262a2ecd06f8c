// A real Apache Kafka broker (KRaft, broker + controller in one JVM) for tests and local runs,
// started from the Maven Central jars that scripts/kafka/fetch.sh copies into
// .cache/kafka/<version>/libs. No Docker.
//
//   const broker = await startKafka()
//   // ... use broker.bootstrap ('127.0.0.1:<port>') ...
//   await broker.stop()
//
// The version is KAFKA_VERSION (default DEFAULT_KAFKA_VERSION, a Kafka 4.x); any version with a
// scripts/kafka/<version>/pom.xml works (3.9.2 too). What differs between 3.x and 4.x lives
// here: 4.x logs through log4j2 (`-Dlog4j2.configurationFile`, log4j2 properties syntax), 3.x
// through reload4j (`-Dlog4j.configuration`); some tools moved from kafka_2.13 (`kafka.*`) to
// kafka-tools (`org.apache.kafka.tools.*`), see kafkaToolClass(). server.properties keys and
// `kafka-storage format` (SCRAM users included) are the same.
//
// The broker runs in its own process group with its output in a log file. It is killed when
// this process exits, and a small watchdog kills it if this process dies without running its
// exit handlers (SIGKILL, crash).

import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { createHash, randomBytes, randomUUID } from 'node:crypto'
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
const fetchScript = join(repoRoot, 'scripts', 'kafka', 'fetch.sh')

/** The broker `npm test`, `npm run kafka` and the bench run unless KAFKA_VERSION says otherwise.
 * Keep in step with `default_version` in scripts/kafka/fetch.sh. */
export const DEFAULT_KAFKA_VERSION = '4.4.0'

/** The Kafka version to run: KAFKA_VERSION, else DEFAULT_KAFKA_VERSION. */
export function kafkaVersion(): string {
  const v = process.env.KAFKA_VERSION?.trim()
  return v === undefined || v === '' ? DEFAULT_KAFKA_VERSION : v
}

function majorOf(version: string): number {
  return Number(version.split('.')[0])
}

/** Java tools the tests use, by their short name. */
export type KafkaTool = 'StorageTool' | 'ConsoleConsumer' | 'DumpLogSegments' | 'ConfigCommand'

/**
 * The main class of a Kafka tool in a given version: DumpLogSegments and ConfigCommand moved
 * from kafka_2.13 (`kafka.tools` / `kafka.admin`, 3.x) to kafka-tools (`org.apache.kafka.tools`,
 * 4.x); ConsoleConsumer is in kafka-tools in both; StorageTool in kafka_2.13 in both.
 */
export function kafkaToolClass(tool: KafkaTool, version: string = kafkaVersion()): string {
  const v4 = majorOf(version) >= 4
  switch (tool) {
    case 'StorageTool':
      return 'kafka.tools.StorageTool'
    case 'ConsoleConsumer':
      return 'org.apache.kafka.tools.consumer.ConsoleConsumer'
    case 'DumpLogSegments':
      return v4 ? 'org.apache.kafka.tools.DumpLogSegments' : 'kafka.tools.DumpLogSegments'
    case 'ConfigCommand':
      return v4 ? 'org.apache.kafka.tools.ConfigCommand' : 'kafka.admin.ConfigCommand'
  }
}

function libsDirOf(version: string): string {
  return join(repoRoot, '.cache', 'kafka', version, 'libs')
}

function pomFileOf(version: string): string {
  return join(repoRoot, 'scripts', 'kafka', version, 'pom.xml')
}

const READY_TIMEOUT_MS = 60_000
const STOP_TIMEOUT_MS = 30_000
const JVM_ARGS = ['-Xms256m', '-Xmx768m', '-XX:+UseG1GC', '-Djava.awt.headless=true']

export interface KafkaBroker {
  /** The Kafka version it runs, e.g. `4.4.0`. */
  readonly version: string
  /** `node.id` (1 for a single broker). */
  readonly nodeId: number
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
  /** Kafka version (a scripts/kafka/<version>/pom.xml). Default: kafkaVersion(). */
  version?: string
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
  /** JVM options (heap etc.). Default: `-Xms256m -Xmx768m`, G1. */
  jvmArgs?: readonly string[]
  /** One node of a multi-node cluster (see startKafkaCluster): its id, its controller port, the
   * quorum's voters (`1@127.0.0.1:<cport>,2@...`) and the cluster id all nodes are formatted
   * with. Default: a single node, id 1, voting alone. */
  node?: { id: number; controllerPort: number; voters: string; clusterId: string }
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

function jarsReady(version: string): boolean {
  try {
    const hash = createHash('sha256')
      .update(readFileSync(pomFileOf(version)))
      .digest('hex')
    return readFileSync(join(libsDirOf(version), '.complete'), 'utf8').trim() === hash
  } catch {
    return false
  }
}

/** Make sure .cache/kafka/<version>/libs holds the broker jars (runs scripts/kafka/fetch.sh
 * if not); returns that directory. */
export async function ensureKafkaJars(version: string = kafkaVersion()): Promise<string> {
  if (!existsSync(pomFileOf(version))) {
    throw new Error(
      `unknown Kafka version ${version}: no scripts/kafka/${version}/pom.xml ` +
        `(KAFKA_VERSION=${process.env.KAFKA_VERSION ?? ''})`,
    )
  }
  if (jarsReady(version)) return libsDirOf(version)
  const { code, output } = await run('bash', [fetchScript, version], { cwd: repoRoot })
  if (code !== 0 || !jarsReady(version)) {
    throw new Error(`scripts/kafka/fetch.sh ${version} failed (exit ${code}):\n${output.trim()}`)
  }
  return libsDirOf(version)
}

// ---------------------------------------------------------------------------------------
// Processes

interface RunResult {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
  /** stdout and stderr interleaved as they came. */
  output: string
}

function run(
  cmd: string,
  args: string[],
  opts: { cwd?: string; input?: string; timeoutMs?: number } = {},
): Promise<RunResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(cmd, args, { cwd: opts.cwd, stdio: 'pipe' })
    let stdout = ''
    let stderr = ''
    let output = ''
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d
      output += d
    })
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d
      output += d
    })
    child.stdin.on('error', () => {})
    child.stdin.end(opts.input ?? '')
    const timer =
      opts.timeoutMs === undefined
        ? undefined
        : setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs)
    child.on('error', (err: NodeJS.ErrnoException) => {
      if (timer) clearTimeout(timer)
      reject(
        err.code === 'ENOENT'
          ? new Error(`${cmd} not found on PATH (Kafka needs Java 17+ and Maven)`)
          : err,
      )
    })
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer)
      resolvePromise({ code, signal, stdout, stderr, output })
    })
  })
}

function javaArgs(
  version: string,
  libs: string,
  logConfig: string,
  main: string,
  args: string[],
  jvm: readonly string[] = JVM_ARGS,
): string[] {
  const logFlag =
    majorOf(version) >= 4
      ? `-Dlog4j2.configurationFile=${logConfig}`
      : `-Dlog4j.configuration=file:${logConfig}`
  return [...jvm, logFlag, '-cp', `${libs}/*`, main, ...args]
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
  node: { id: number; voters: string } = { id: 1, voters: `1@127.0.0.1:${controllerPort}` },
): string {
  const more = (f: (l: ExtraListener) => string) => extraListeners.map((l) => `,${f(l)}`).join('')
  const props: Record<string, string> = {
    'process.roles': 'broker,controller',
    'node.id': String(node.id),
    'controller.quorum.voters': node.voters,
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

/** Quieter than Kafka's defaults: the request and state-change loggers at WARN. */
const QUIET_LOGGERS: Record<string, string> = {
  'kafka.request.logger': 'WARN',
  'state.change.logger': 'WARN',
  'org.apache.kafka.controller': 'INFO',
  'kafka.log.LogCleaner': 'WARN',
}

/**
 * The broker's (`stream: 'stdout'`, INFO) or a tool's (`'stderr'`, WARN: a tool's stdout is
 * its answer) logging config, in the syntax of the version's backend: log4j2 properties for
 * Kafka 4.x, log4j 1 (reload4j) properties for 3.x.
 */
function logConfig(version: string, stream: 'stdout' | 'stderr'): string {
  const level = stream === 'stdout' ? 'INFO' : 'WARN'
  const loggers = stream === 'stdout' ? Object.entries(QUIET_LOGGERS) : []
  const pattern = '[%d] %p %m (%c)%n'
  if (majorOf(version) >= 4) {
    return [
      'status = warn',
      'appender.out.type = Console',
      'appender.out.name = OUT',
      `appender.out.target = ${stream === 'stdout' ? 'SYSTEM_OUT' : 'SYSTEM_ERR'}`,
      'appender.out.layout.type = PatternLayout',
      `appender.out.layout.pattern = ${pattern}`,
      `rootLogger.level = ${level}`,
      'rootLogger.appenderRef.out.ref = OUT',
      ...loggers.flatMap(([name, lvl], i) => [
        `logger.l${i}.name = ${name}`,
        `logger.l${i}.level = ${lvl}`,
      ]),
      '',
    ].join('\n')
  }
  return [
    `log4j.rootLogger=${level}, out`,
    'log4j.appender.out=org.apache.log4j.ConsoleAppender',
    `log4j.appender.out.Target=${stream === 'stdout' ? 'System.out' : 'System.err'}`,
    'log4j.appender.out.layout=org.apache.log4j.PatternLayout',
    `log4j.appender.out.layout.ConversionPattern=${pattern}`,
    ...loggers.map(([name, lvl]) => `log4j.logger.${name}=${lvl}`),
    '',
  ].join('\n')
}

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

/**
 * A new cluster id, as `kafka-storage random-uuid` makes it (16 random bytes, URL-safe base64
 * without padding, never starting with `-`), without starting a JVM for it.
 */
export function newClusterId(): string {
  for (;;) {
    const id = randomBytes(16).toString('base64url')
    if (!id.startsWith('-') && !/^A{21}[AQgw]$/.test(id)) return id
  }
}

/** Start a single-node KRaft broker on 127.0.0.1 and wait until it is ready. */
export async function startKafka(opts: StartKafkaOptions = {}): Promise<KafkaBroker> {
  const version = opts.version ?? kafkaVersion()
  const libs = await ensureKafkaJars(version)
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
  const controllerSock = opts.node === undefined ? await freePort() : undefined
  const port = opts.port ?? brokerSock!.port
  const controllerPort = opts.node?.controllerPort ?? controllerSock!.port
  await brokerSock?.close()
  await controllerSock?.close()
  const nodeId = opts.node?.id ?? 1

  writeFileSync(
    propsFile,
    serverProperties(
      port,
      controllerPort,
      logDir,
      opts.extraProperties ?? {},
      opts.extraListeners,
      opts.node === undefined ? undefined : { id: nodeId, voters: opts.node.voters },
    ),
  )
  writeFileSync(log4jFile, logConfig(version, 'stdout'))
  writeFileSync(toolsLog4jFile, logConfig(version, 'stderr'))

  if (!existsSync(join(logDir, 'meta.properties'))) {
    const clusterId = opts.node?.clusterId ?? newClusterId()
    const format = await run(
      'java',
      javaArgs(
        version,
        libs,
        toolsLog4jFile,
        kafkaToolClass('StorageTool', version),
        ['format', '-t', clusterId, '-c', propsFile, ...(opts.formatArgs ?? [])],
        TOOL_JVM_ARGS,
      ),
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
      c = spawn(
        'java',
        javaArgs(version, libs, log4jFile, 'kafka.Kafka', [propsFile], opts.jvmArgs),
        {
          cwd: dataDir,
          stdio: ['ignore', fd, fd],
          detached: true, // own process group: signals from the terminal don't reach it
        },
      )
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
    version,
    nodeId,
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
// Java tools

/** Small heap, quick start: a tool runs for a second or two. */
const TOOL_JVM_ARGS = [
  '-Xms64m',
  '-Xmx512m',
  '-XX:+UseSerialGC',
  '-XX:TieredStopAtLevel=1',
  '-Djava.awt.headless=true',
]

export interface RunKafkaToolOptions {
  /** Kafka version whose jars make the classpath. Default: kafkaVersion(). */
  version?: string
  /** Written to the tool's stdin, which is then closed. Default: an empty, closed stdin. */
  input?: string
  /** SIGKILL the tool after this long (the result then has `signal: 'SIGKILL'`). Default 60 s. */
  timeoutMs?: number
  cwd?: string
}

export interface KafkaToolResult {
  /** Exit code; null when killed by a signal. */
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  /** The tool's own messages and its warnings (its log goes to stderr at WARN). */
  stderr: string
}

const toolLogConfigs = new Map<string, string>()

function toolLogConfigFile(version: string): string {
  let file = toolLogConfigs.get(version)
  if (file === undefined) {
    installExitHook()
    const dir = mkdtempSync(join(tmpdir(), 'atkafka-kafka-tool-'))
    tempDirs.add(dir)
    file = join(dir, 'log.properties')
    writeFileSync(file, logConfig(version, 'stderr'))
    toolLogConfigs.set(version, file)
  }
  return file
}

/**
 * Run a Kafka Java tool (any main class on the broker's classpath) and collect its output,
 * e.g. the console consumer (see consoleConsumerArgs) or DumpLogSegments:
 *
 *   await runKafkaTool('ConsoleConsumer', consoleConsumerArgs({ bootstrap, topic,
 *     maxMessages: 3, formatter: { 'print.headers': 'true' } }))
 *   await runKafkaTool('DumpLogSegments', ['--files', segment, '--print-data-log'])
 *
 * `tool` is a KafkaTool short name (mapped by kafkaToolClass for the version) or a fully
 * qualified class name. Never throws for a non-zero exit: look at `code` and `stderr`.
 */
export async function runKafkaTool(
  tool: KafkaTool | (string & {}),
  args: readonly string[],
  opts: RunKafkaToolOptions = {},
): Promise<KafkaToolResult> {
  const version = opts.version ?? kafkaVersion()
  const libs = await ensureKafkaJars(version)
  const main = tool.includes('.') ? tool : kafkaToolClass(tool as KafkaTool, version)
  const { code, signal, stdout, stderr } = await run(
    'java',
    javaArgs(version, libs, toolLogConfigFile(version), main, [...args], TOOL_JVM_ARGS),
    { cwd: opts.cwd, input: opts.input, timeoutMs: opts.timeoutMs ?? 60_000 },
  )
  return { code, signal, stdout, stderr }
}

export interface ConsoleConsumerArgs {
  bootstrap: string
  topic: string
  /** Stop after this many records (`--max-messages`). */
  maxMessages?: number
  /** Stop when no record came for this long (`--timeout-ms`). Default 10 s. */
  timeoutMs?: number
  /** Default `read_committed`. */
  isolationLevel?: 'read_committed' | 'read_uncommitted'
  /** Only this partition (from its beginning). */
  partition?: number
  /** Formatter properties, e.g. `{ 'print.key': 'true', 'print.headers': 'true' }`. */
  formatter?: Record<string, string>
  /** Kafka version of the tool (4.x renamed `--property` to `--formatter-property`).
   * Default: kafkaVersion(). */
  version?: string
}

/** The command line of `kafka-console-consumer` reading a topic from the beginning, for
 * `runKafkaTool('ConsoleConsumer', consoleConsumerArgs({...}))`. */
export function consoleConsumerArgs(o: ConsoleConsumerArgs): string[] {
  const version = o.version ?? kafkaVersion()
  const propertyFlag = majorOf(version) >= 4 ? '--formatter-property' : '--property'
  return [
    '--bootstrap-server',
    o.bootstrap,
    '--topic',
    o.topic,
    ...(o.partition === undefined
      ? ['--from-beginning']
      : ['--partition', String(o.partition), '--offset', 'earliest']),
    '--isolation-level',
    o.isolationLevel ?? 'read_committed',
    '--timeout-ms',
    String(o.timeoutMs ?? 10_000),
    ...(o.maxMessages === undefined ? [] : ['--max-messages', String(o.maxMessages)]),
    ...Object.entries(o.formatter ?? {}).flatMap(([k, v]) => [propertyFlag, `${k}=${v}`]),
  ]
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

/** Names of the cluster's topics. */
export async function listTopics(bootstrap: string): Promise<string[]> {
  const admin = client(bootstrap, 'kafka-harness-admin').admin()
  await admin.connect()
  try {
    return await admin.listTopics()
  } finally {
    await admin.disconnect()
  }
}

/** Create a topic (replication factor 1 unless told) and wait for its partition leaders. */
export async function createTopic(
  bootstrap: string,
  topic: string,
  partitions: number,
  opts: { replicationFactor?: number } = {},
): Promise<void> {
  const admin = client(bootstrap, 'kafka-harness-admin').admin()
  await admin.connect()
  try {
    await admin.createTopics({
      topics: [
        { topic, numPartitions: partitions, replicationFactor: opts.replicationFactor ?? 1 },
      ],
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

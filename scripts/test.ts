// `npm test [-- <test files>]`: run the node:test suites against a real Kafka broker.
//
// Uses the broker in KAFKA_BOOTSTRAP_SERVERS when set; otherwise starts a single-node broker
// (test/harness/kafka.ts, data under .cache/) for the whole run and stops it afterwards: Kafka
// KAFKA_VERSION (default 4.4.0; `KAFKA_VERSION=3.9.2 npm test` runs on 3.9.2). Brokers the tests
// start themselves run the same version.
// The test files get the broker in KAFKA_BOOTSTRAP_SERVERS. Without arguments, every
// test/**/*.test.ts runs, in sorted order, one file at a time.

import { spawn } from 'node:child_process'
import { globSync, rmSync } from 'node:fs'
import { join, relative, resolve } from 'node:path'
import { startKafka } from '../test/harness/kafka.ts'
import type { KafkaBroker } from '../test/harness/kafka.ts'

const repoRoot = resolve(import.meta.dirname, '..')

// KafkaJS 2.2.4 calls setTimeout with a negative delay, which Node 24 reports once per
// process as a TimeoutNegativeWarning; it is harmless (Node uses 1 ms).
const QUIET = '--disable-warning=TimeoutNegativeWarning'
process.removeAllListeners('warning')
process.on('warning', (w) => {
  if (w.name !== 'TimeoutNegativeWarning')
    console.error(`(node:${process.pid}) ${w.name}: ${w.message}`)
})

const args = process.argv.slice(2)
// Paths relative to the repository root, where the test runner runs.
const files =
  args.length > 0
    ? args.map((f) => relative(repoRoot, resolve(f)))
    : globSync('test/**/*.test.ts', { cwd: repoRoot }).sort()
if (files.length === 0) {
  console.error('no test files (test/**/*.test.ts)')
  process.exit(1)
}

let broker: KafkaBroker | undefined
let child: ReturnType<typeof spawn> | undefined
let interrupted: NodeJS.Signals | undefined

const onSignal = (signal: NodeJS.Signals) => {
  if (interrupted) return
  interrupted = signal
  // The test runner usually got the terminal's SIGINT too; forward it in case it did not.
  if (child && child.exitCode === null) child.kill(signal)
  // Still starting the broker: exit now, the harness's exit hook kills it.
  else if (!broker) process.exit(signal === 'SIGINT' ? 130 : 143)
}
process.on('SIGINT', onSignal)
process.on('SIGTERM', onSignal)

let bootstrap = process.env.KAFKA_BOOTSTRAP_SERVERS
let dataDir: string | undefined
try {
  if (bootstrap) {
    console.error(`tests: using the Kafka broker at ${bootstrap} (KAFKA_BOOTSTRAP_SERVERS)`)
  } else {
    const started = Date.now()
    dataDir = join(repoRoot, '.cache', 'kafka', `test-${Date.now()}-${process.pid}`)
    broker = await startKafka({ dataDir })
    bootstrap = broker.bootstrap
    console.error(
      `tests: started a Kafka ${broker.version} broker at ${bootstrap} in ` +
        `${((Date.now() - started) / 1000).toFixed(1)} s ` +
        `(log: ${relative(process.cwd(), join(dataDir, 'kafka.log'))})`,
    )
  }

  const nodeOptions = [process.env.NODE_OPTIONS, QUIET].filter(Boolean).join(' ')
  child = spawn(
    process.execPath,
    ['--test', '--test-concurrency=1', '--test-timeout=300000', '--test-reporter=spec', ...files],
    {
      cwd: repoRoot,
      stdio: 'inherit',
      env: { ...process.env, KAFKA_BOOTSTRAP_SERVERS: bootstrap, NODE_OPTIONS: nodeOptions },
    },
  )
  const c = child
  const code = await new Promise<number>((resolveCode) => {
    c.on('error', (err) => {
      console.error('could not run node --test:', err)
      resolveCode(1)
    })
    c.on('exit', (exitCode, signal) =>
      resolveCode(exitCode ?? (signal === 'SIGINT' ? 130 : signal ? 143 : 1)),
    )
  })
  process.exitCode = interrupted && code === 0 ? 130 : code
} catch (err) {
  console.error(err instanceof Error ? err.message : err)
  process.exitCode = 1
} finally {
  if (broker) {
    await broker.stop().catch((err: unknown) => console.error('stopping the broker:', err))
    if (dataDir && process.exitCode === 0) {
      rmSync(dataDir, { recursive: true, force: true })
    } else if (dataDir) {
      console.error(`tests: broker data and log kept in ${relative(process.cwd(), dataDir)}`)
    }
  }
}

// `npm run kafka [-- --data-dir <dir>] [--port <port>]`: run a local single-node Apache
// Kafka broker (KRaft, from the Maven Central jars) until Ctrl-C. Kafka KAFKA_VERSION
// (default 4.4.0; e.g. `KAFKA_VERSION=3.9.2 npm run kafka`).
//
// Data goes to .cache/kafka/data-<timestamp> unless --data-dir names a directory (an existing
// one is reused, topics included). The broker log is <data dir>/kafka.log.

import { join, relative, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { startKafka } from '../test/harness/kafka.ts'
import type { KafkaBroker } from '../test/harness/kafka.ts'

const repoRoot = resolve(import.meta.dirname, '..')

// KafkaJS 2.2.4 calls setTimeout with a negative delay, which Node 24 reports once per
// process as a TimeoutNegativeWarning; it is harmless (Node uses 1 ms).
process.removeAllListeners('warning')
process.on('warning', (w) => {
  if (w.name !== 'TimeoutNegativeWarning')
    console.error(`(node:${process.pid}) ${w.name}: ${w.message}`)
})

const { values } = parseArgs({
  options: {
    'data-dir': { type: 'string' },
    port: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  },
})

if (values.help) {
  console.log('Usage: npm run kafka -- [--data-dir <dir>] [--port <port>]')
  process.exit(0)
}

let port: number | undefined
if (values.port !== undefined) {
  port = Number(values.port)
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    console.error(`invalid --port: ${values.port}`)
    process.exit(2)
  }
}

const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*$/, '')
const dataDir = values['data-dir'] ?? join(repoRoot, '.cache', 'kafka', `data-${stamp}`)

let broker: KafkaBroker | undefined
let stopping = false

const shutdown = (signal: NodeJS.Signals) => {
  if (stopping) return
  stopping = true
  if (broker === undefined) {
    // Still starting: exit; the exit hook of the harness kills the broker.
    process.exit(signal === 'SIGINT' ? 130 : 143)
  }
  console.error(`${signal}: stopping the Kafka broker ...`)
  broker.stop().then(
    () => {
      console.error('Kafka broker stopped')
      clearInterval(keepAlive)
    },
    (err: unknown) => {
      console.error('failed to stop the Kafka broker:', err)
      process.exit(1)
    },
  )
}
process.on('SIGINT', shutdown)
process.on('SIGTERM', shutdown)
const keepAlive = setInterval(() => {}, 1 << 30)

try {
  const started = Date.now()
  broker = await startKafka({ dataDir, port })
  console.log(`Kafka ${broker.version} broker ready at ${broker.bootstrap}`)
  const shown = relative(process.cwd(), broker.dataDir) || '.'
  console.error(
    `(started in ${((Date.now() - started) / 1000).toFixed(1)} s; data in ${shown}, ` +
      `log in ${join(shown, 'kafka.log')}; Ctrl-C to stop)`,
  )
} catch (err) {
  console.error(err instanceof Error ? err.message : err)
  process.exitCode = 1
  clearInterval(keepAlive)
}

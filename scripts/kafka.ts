// `npm run kafka [-- --data-dir <dir>] [--port <port>] [--brokers <n>]`: run a local Apache
// Kafka broker (KRaft, from the Maven Central jars) until Ctrl-C; with `--brokers 3`, a cluster
// of three broker + controller nodes (replication factor 3, min.insync.replicas 2). Kafka
// KAFKA_VERSION (default 4.4.0; e.g. `KAFKA_VERSION=3.9.2 npm run kafka`).
//
// Data goes to .cache/kafka/data-<timestamp> unless --data-dir names a directory (an existing
// one is reused, topics included). The broker log is <data dir>/kafka.log (a cluster:
// <data dir>/node-<id>/kafka.log).

import { join, relative, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { startKafka } from '../test/harness/kafka.ts'
import { startKafkaCluster } from '../test/harness/kafka-cluster.ts'

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
    brokers: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  },
})

if (values.help) {
  console.log('Usage: npm run kafka -- [--data-dir <dir>] [--port <port>] [--brokers <n>]')
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

let brokers = 1
if (values.brokers !== undefined) {
  brokers = Number(values.brokers)
  if (!Number.isInteger(brokers) || brokers < 1 || brokers > 9) {
    console.error(`invalid --brokers: ${values.brokers} (1 to 9)`)
    process.exit(2)
  }
  if (brokers > 1 && port !== undefined) {
    console.error('--port is for a single broker; a cluster takes free ports')
    process.exit(2)
  }
}

const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*$/, '')
const dataDir = values['data-dir'] ?? join(repoRoot, '.cache', 'kafka', `data-${stamp}`)

let broker: { stop(): Promise<void> } | undefined
let stopping = false

const shutdown = (signal: NodeJS.Signals) => {
  if (stopping) return
  stopping = true
  if (broker === undefined) {
    // Still starting: exit; the exit hook of the harness kills the broker.
    process.exit(signal === 'SIGINT' ? 130 : 143)
  }
  console.error(`${signal}: stopping Kafka ...`)
  broker.stop().then(
    () => {
      console.error('Kafka stopped')
      clearInterval(keepAlive)
    },
    (err: unknown) => {
      console.error('failed to stop Kafka:', err)
      process.exit(1)
    },
  )
}
process.on('SIGINT', shutdown)
process.on('SIGTERM', shutdown)
const keepAlive = setInterval(() => {}, 1 << 30)

try {
  const started = Date.now()
  if (brokers === 1) {
    const single = await startKafka({ dataDir, port })
    broker = single
    console.log(`Kafka ${single.version} broker ready at ${single.bootstrap}`)
    const shown = relative(process.cwd(), single.dataDir) || '.'
    console.error(
      `(started in ${((Date.now() - started) / 1000).toFixed(1)} s; data in ${shown}, ` +
        `log in ${join(shown, 'kafka.log')}; Ctrl-C to stop)`,
    )
  } else {
    const cluster = await startKafkaCluster({ brokers, dataDir })
    broker = cluster
    console.log(
      `Kafka ${cluster.version} cluster of ${brokers} brokers ready at ${cluster.bootstrap}`,
    )
    const shown = relative(process.cwd(), cluster.dataDir) || '.'
    console.error(
      `(started in ${((Date.now() - started) / 1000).toFixed(1)} s; replication factor ` +
        `${Math.min(3, brokers)}, min.insync.replicas ${Math.min(2, brokers)}; data and logs in ` +
        `${join(shown, 'node-<id>')}; Ctrl-C to stop)`,
    )
  }
} catch (err) {
  console.error(err instanceof Error ? err.message : err)
  process.exitCode = 1
  clearInterval(keepAlive)
}

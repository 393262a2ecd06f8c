// A real multi-broker Apache Kafka cluster for tests and local runs: three JVMs (by default) on
// 127.0.0.1, each a combined broker + controller node of one KRaft quorum, replication factor 3
// and min.insync.replicas 2 by default, small heaps. Each node is a KafkaBroker of
// test/harness/kafka.ts (same jars, same version choice, same clean-up), so a node can be
// killed, stopped, frozen and restarted on its own port and data.
//
//   const cluster = await startKafkaCluster()
//   const leader = cluster.node(await cluster.leaderOf(topic, 0))
//   await leader.kill(); ...; await leader.start(); await cluster.waitForFullIsr()
//   await cluster.stop()

import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { mkdtemp } from 'node:fs/promises'
import { createServer } from 'node:net'
import type { AddressInfo, Server } from 'node:net'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { Kafka, logLevel } from 'kafkajs'
import { type KafkaBroker, kafkaVersion, newClusterId, startKafka } from './kafka.ts'

/** Per node: the cluster runs several JVMs on a small machine. */
const NODE_JVM_ARGS = ['-Xms128m', '-Xmx512m', '-XX:+UseG1GC', '-Djava.awt.headless=true']

export interface StartKafkaClusterOptions {
  /** Number of nodes (each broker + controller). Default 3. */
  brokers?: number
  /** Kafka version. Default: kafkaVersion() (KAFKA_VERSION, else the default 4.x). */
  version?: string
  /** Nodes' data go to `<dataDir>/node-<id>` (reused when formatted). Default: a temp dir,
   * removed when this process exits. */
  dataDir?: string
  /** Added to (or overriding) every node's server.properties. */
  extraProperties?: Record<string, string>
  /** JVM options of each node. Default: `-Xms128m -Xmx512m`, G1. */
  jvmArgs?: readonly string[]
}

export interface PartitionState {
  partition: number
  /** Node id of the leader, -1 while there is none. */
  leader: number
  replicas: number[]
  isr: number[]
}

export interface KafkaCluster {
  readonly version: string
  /** Every node's `127.0.0.1:<port>`, comma-separated (a client's bootstrap list). */
  readonly bootstrap: string
  readonly nodes: readonly KafkaBroker[]
  readonly dataDir: string
  /** The node with this `node.id` (1 … brokers). */
  node(id: number): KafkaBroker
  /** Leader, replicas and ISR of every partition of a topic, as the cluster's metadata says. */
  partitions(topic: string): Promise<PartitionState[]>
  /** Node id of a partition's leader (-1 while there is none). */
  leaderOf(topic: string, partition: number): Promise<number>
  /**
   * Wait until every partition of `topics` (default: every topic, internal ones included) has a
   * leader and all its replicas in sync; returns the milliseconds waited. Throws after
   * `timeoutMs` (default 120 s) naming the partitions still short.
   */
  waitForFullIsr(opts?: { topics?: string[]; timeoutMs?: number }): Promise<number>
  /** Stop every node (SIGTERM), in parallel. */
  stop(): Promise<void>
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms))
}

/** `n` distinct free ports, all bound at once so they differ. */
async function freePorts(n: number): Promise<number[]> {
  const servers: Server[] = []
  try {
    for (let i = 0; i < n; i++) {
      const server = createServer()
      servers.push(server)
      await new Promise<void>((ok, fail) => {
        server.once('error', fail)
        server.listen(0, '127.0.0.1', () => ok())
      })
    }
    return servers.map((s) => (s.address() as AddressInfo).port)
  } finally {
    await Promise.all(servers.map((s) => new Promise((r) => s.close(r))))
  }
}

interface Layout {
  brokerPorts: number[]
  controllerPorts: number[]
  clusterId: string
}

/**
 * Ports and cluster id: new ones, or, for a data dir used before, the ones in its cluster.json
 * (the quorum's voters must not change between runs).
 */
async function layout(root: string, n: number, fresh: boolean): Promise<Layout> {
  const file = join(root, 'cluster.json')
  if (!fresh && existsSync(file)) {
    const saved = JSON.parse(readFileSync(file, 'utf8')) as Layout
    if (saved.brokerPorts.length !== n) {
      throw new Error(`${root} holds a cluster of ${saved.brokerPorts.length} nodes, not ${n}`)
    }
    return saved
  }
  const ports = await freePorts(2 * n)
  const made = {
    brokerPorts: ports.slice(0, n),
    controllerPorts: ports.slice(n),
    clusterId: newClusterId(),
  }
  mkdirSync(root, { recursive: true })
  writeFileSync(file, `${JSON.stringify(made)}\n`)
  return made
}

function admin(bootstrap: string) {
  return new Kafka({
    clientId: 'kafka-cluster-harness',
    brokers: bootstrap.split(','),
    logLevel: logLevel.NOTHING,
    connectionTimeout: 1000,
    requestTimeout: 5000,
    retry: { retries: 3, initialRetryTime: 100, maxRetryTime: 1000 },
  }).admin()
}

/** Start a KRaft cluster of `brokers` combined nodes on 127.0.0.1; resolves once every node is
 * registered with the quorum. */
export async function startKafkaCluster(
  opts: StartKafkaClusterOptions = {},
): Promise<KafkaCluster> {
  const n = opts.brokers ?? 3
  if (!Number.isInteger(n) || n < 1 || n > 9) throw new Error(`brokers must be 1 to 9, not ${n}`)
  const version = opts.version ?? kafkaVersion()
  let root: string
  let ownedRoot = false
  if (opts.dataDir !== undefined) {
    root = resolve(opts.dataDir)
  } else {
    root = await mkdtemp(join(tmpdir(), 'atkafka-kafka-cluster-'))
    ownedRoot = true
    process.once('exit', () => rmSync(root, { recursive: true, force: true }))
  }

  const { brokerPorts, controllerPorts, clusterId } = await layout(root, n, ownedRoot)
  const voters = controllerPorts.map((p, i) => `${i + 1}@127.0.0.1:${p}`).join(',')
  const replication = String(Math.min(3, n))
  const minIsr = String(Math.min(2, n))
  const properties: Record<string, string> = {
    'default.replication.factor': replication,
    'min.insync.replicas': minIsr,
    'offsets.topic.replication.factor': replication,
    'transaction.state.log.replication.factor': replication,
    'transaction.state.log.min.isr': minIsr,
    ...opts.extraProperties,
  }

  const started = await Promise.allSettled(
    brokerPorts.map((port, i) =>
      startKafka({
        version,
        port,
        // A temp dir of its own inside the root (removed by the node's own clean-up), or a
        // fixed one under the given data dir.
        ...(ownedRoot ? { tempParent: root } : { dataDir: join(root, `node-${i + 1}`) }),
        extraProperties: properties,
        jvmArgs: opts.jvmArgs ?? NODE_JVM_ARGS,
        node: { id: i + 1, controllerPort: controllerPorts[i]!, voters, clusterId },
      }),
    ),
  )
  const nodes = started.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []))
  const failed = started.find((r) => r.status === 'rejected')
  if (failed !== undefined) {
    await Promise.all(nodes.map((b) => b.kill()))
    throw failed.reason
  }

  const bootstrap = nodes.map((b) => b.bootstrap).join(',')

  const partitions = async (topic: string): Promise<PartitionState[]> => {
    const a = admin(bootstrap)
    await a.connect()
    try {
      const { topics } = await a.fetchTopicMetadata({ topics: [topic] })
      return (topics[0]?.partitions ?? [])
        .map((p) => ({
          partition: p.partitionId,
          leader: p.leader,
          replicas: p.replicas,
          isr: p.isr,
        }))
        .sort((x, y) => x.partition - y.partition)
    } finally {
      await a.disconnect().catch(() => {})
    }
  }

  const waitForFullIsr = async (
    w: { topics?: string[]; timeoutMs?: number } = {},
  ): Promise<number> => {
    const t0 = Date.now()
    const deadline = t0 + (w.timeoutMs ?? 120_000)
    let short: string[] = []
    let lastError = ''
    for (;;) {
      const a = admin(bootstrap)
      try {
        await a.connect()
        const names = w.topics ?? (await a.listTopics())
        const { topics } = await a.fetchTopicMetadata({ topics: names })
        short = topics.flatMap((t) =>
          t.partitions
            .filter((p) => p.leader < 0 || p.isr.length < p.replicas.length)
            .map((p) => `${t.name}/${p.partitionId} (leader ${p.leader}, isr ${p.isr.join(',')})`),
        )
        if (short.length === 0) return Date.now() - t0
      } catch (err) {
        lastError = err instanceof Error ? err.message : String(err)
      } finally {
        await a.disconnect().catch(() => {})
      }
      if (Date.now() > deadline) {
        throw new Error(
          `partitions not fully in sync after ${Date.now() - t0} ms: ` +
            `${short.slice(0, 5).join('; ')}${short.length > 5 ? ` and ${short.length - 5} more` : ''}` +
            (lastError ? ` (last error: ${lastError})` : ''),
        )
      }
      await sleep(250)
    }
  }

  // Every node registered (so new topics get all their replicas).
  const deadline = Date.now() + 60_000
  for (;;) {
    const a = admin(bootstrap)
    try {
      await a.connect()
      if ((await a.describeCluster()).brokers.length === n) break
    } catch {
      // not yet
    } finally {
      await a.disconnect().catch(() => {})
    }
    if (Date.now() > deadline) {
      await Promise.all(nodes.map((b) => b.kill()))
      throw new Error(`the ${n} Kafka nodes did not all register within 60 s`)
    }
    await sleep(200)
  }

  return {
    version,
    bootstrap,
    nodes,
    dataDir: root,
    node(id) {
      const b = nodes.find((x) => x.nodeId === id)
      if (b === undefined) throw new Error(`no Kafka node ${id} (nodes 1 to ${n})`)
      return b
    },
    partitions,
    async leaderOf(topic, partition) {
      return (await partitions(topic)).find((p) => p.partition === partition)?.leader ?? -1
    },
    waitForFullIsr,
    async stop() {
      await Promise.all(nodes.map((b) => b.stop()))
      if (ownedRoot) rmSync(root, { recursive: true, force: true })
    },
  }
}

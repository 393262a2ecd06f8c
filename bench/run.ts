// `npm run bench [-- options]`: measure atkafka on a realistic firehose against a real Kafka
// broker. See the "Benchmark" section of the README.
//
//   --quick                 small corpus and short runs (a smoke run, under a minute once cached)
//   --scenarios a,b         only these scenarios (--list shows them)
//   --repeat N              runs per scenario; the table shows medians (default 3, quick 1)
//   --seed N                corpus seed (default 1)
//   --frames N              synthetic corpus size in frames (default 30000, quick 1000)
//   --bootstrap-servers X   use this broker instead of starting one (or KAFKA_BOOTSTRAP_SERVERS)
//   --broker-dir DIR        where the started broker keeps its data (default /dev/shm when it has
//                           4 GiB free, else the temp dir): in memory, so the disk does not
//                           stall the broker that shares atkafka's cores (see README)
//   --atkafka-arg ARG       extra flag passed to every atkafka run (repeatable)
//   --cpu-prof              write a CPU profile of every atkafka run to bench/results/profiles
//   --node-arg ARG          extra Node flag for every atkafka run (repeatable)
//   --atkafka-env K=V       extra environment variable for every atkafka run (repeatable)
//   --out FILE              results JSON (default bench/results/<time>.json and latest.json)

import { existsSync, mkdirSync, readFileSync, statfsSync, writeFileSync } from 'node:fs'
import { cpus, loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { startKafka, type KafkaBroker } from '../test/harness/kafka.ts'
import { REPO_ROOT, ensureCorpus, loadCorpus, loadRealCapture } from './corpus/store.ts'
import { type TapEventBody, tapEventsOf } from './corpus/tap-events.ts'
import { type JetstreamBody, jetstreamEventsOf } from './jetstream-feed.ts'
import { findPid } from './proc-stats.ts'
import { type BenchContext, type RunResult, SCENARIOS } from './scenarios.ts'

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    scenarios: { type: 'string' },
    repeat: { type: 'string' },
    seed: { type: 'string', default: '1' },
    frames: { type: 'string' },
    'bootstrap-servers': { type: 'string' },
    'broker-dir': { type: 'string' },
    'atkafka-arg': { type: 'string', multiple: true, default: [] },
    'cpu-prof': { type: 'boolean', default: false },
    'node-arg': { type: 'string', multiple: true, default: [] },
    'atkafka-env': { type: 'string', multiple: true, default: [] },
    out: { type: 'string' },
    list: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
})

async function main(): Promise<number> {
  const quick = values.quick
  const seed = Number(values.seed)
  const frames = Number(values.frames ?? (quick ? 1000 : 30_000))
  const repeat = Number(values.repeat ?? (quick ? 1 : 3))
  const wanted = values.scenarios?.split(',').map((s) => s.trim())
  const unknown = wanted?.filter((w) => !SCENARIOS.some((s) => s.name === w)) ?? []
  if (unknown.length > 0) {
    console.error(`unknown scenario(s): ${unknown.join(', ')} (see --list)`)
    return 2
  }
  const scenarios = SCENARIOS.filter((s) => wanted === undefined || wanted.includes(s.name))
  const brokerDir = values['broker-dir'] ?? defaultBrokerDir()
  const log = (line: string) =>
    console.error(`[bench ${new Date().toISOString().slice(11, 19)}] ${line}`)

  log(
    `machine: ${cpus().length} cores, load ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  )
  const dir = await ensureCorpus(seed, frames, (n) => {
    if (n % 5000 === 0 || n === frames) log(`generating corpus: ${n}/${frames} frames`)
  })
  const synthetic = loadCorpus(dir)
  const real = loadRealCapture()
  const meta = synthetic.meta!
  log(
    `corpus ${dir.slice(REPO_ROOT.length + 1)}: ${meta.frames} frames, ${meta.ops} ops, ` +
      `median frame ${meta.medianFrameBytes} B (generated in ${meta.generatedInSeconds} s)`,
  )

  let broker: KafkaBroker | undefined
  let bootstrap = values['bootstrap-servers'] ?? process.env['KAFKA_BOOTSTRAP_SERVERS']
  let tapEvents: TapEventBody[] | undefined
  let jetstreamEvents: JetstreamBody[] | undefined
  const ctx: BenchContext = {
    bootstrap,
    brokerPid: undefined,
    synthetic,
    syntheticDir: dir,
    real,
    quick,
    atkafkaArgs: values['atkafka-arg'],
    nodeArgs: [
      ...values['node-arg'],
      ...(values['cpu-prof']
        ? ['--cpu-prof', '--cpu-prof-dir', join(REPO_ROOT, 'bench', 'results', 'profiles')]
        : []),
    ],
    env: Object.fromEntries(
      values['atkafka-env'].map((kv) => [
        kv.slice(0, kv.indexOf('=')),
        kv.slice(kv.indexOf('=') + 1),
      ]),
    ),
    log,
    tapEvents: async () => (tapEvents ??= await tapEventsOf(synthetic.frames)),
    jetstreamEvents: async () => (jetstreamEvents ??= await jetstreamEventsOf(synthetic.frames)),
  }
  const results: Array<{
    scenario: string
    runs: RunResult[]
    error?: string
    median?: RunResult
  }> = []
  try {
    if (bootstrap === undefined && scenarios.some((s) => s.needsKafka)) {
      log('starting a local Kafka broker')
      broker = await startKafka({
        tempParent: brokerDir,
        // Deleted topics (one per run) free their space at once, not a minute later.
        extraProperties: { 'file.delete.delay.ms': '1000' },
      })
      bootstrap = broker.bootstrap
      ctx.bootstrap = bootstrap
      ctx.brokerPid = findPid(broker.dataDir)
      log(`Kafka broker at ${bootstrap}, data in ${brokerDir}`)
    }
    for (const scenario of scenarios) {
      const entry: (typeof results)[number] = { scenario: scenario.name, runs: [] }
      results.push(entry)
      if (scenario.name === 'tap-kafka' && !existsSync(join(REPO_ROOT, 'src', 'tap', 'run.ts'))) {
        entry.error = 'not run: atkafka has no tap mode in this tree'
        log(`${scenario.name}: ${entry.error}`)
        continue
      }
      for (let i = 0; i < repeat; i++) {
        const load = loadavg()[0]!
        log(`${scenario.name} run ${i + 1}/${repeat} (load ${load.toFixed(2)})`)
        try {
          const r = await scenario.run(ctx)
          if (Number.isNaN(r.loadBefore)) r.loadBefore = load
          if (Number.isNaN(r.loadAfter)) r.loadAfter = loadavg()[0]!
          entry.runs.push(r)
          log(`  ${summary(r)}`)
          if (r.memoryMb) log(`  memory (MB): ${JSON.stringify(r.memoryMb)}`)
          for (const n of r.notes) log(`  note: ${n}`)
        } catch (err) {
          entry.error = err instanceof Error ? err.message : String(err)
          log(`  FAILED: ${entry.error}`)
          break
        }
      }
      if (entry.runs.length > 0) entry.median = median(entry.runs)
    }
  } finally {
    await broker?.stop()
  }

  const report = {
    date: new Date().toISOString(),
    machine: { cores: cpus().length, cpu: cpus()[0]?.model, node: process.version },
    corpus: { dir: dir.slice(REPO_ROOT.length + 1), ...meta },
    realCapture: { frames: real.frames.length, events: real.totalEvents, bytes: real.totalBytes },
    quick,
    repeat,
    atkafkaArgs: ctx.atkafkaArgs,
    brokerDir: broker === undefined ? undefined : brokerDir,
    results,
  }
  const resultsDir = join(REPO_ROOT, 'bench', 'results')
  mkdirSync(resultsDir, { recursive: true })
  const out = values.out ?? join(resultsDir, `${report.date.replace(/[:.]/g, '-')}.json`)
  writeFileSync(out, JSON.stringify(report, null, 2) + '\n')
  writeFileSync(join(resultsDir, 'latest.json'), JSON.stringify(report, null, 2) + '\n')
  console.log(table(results))
  console.log(`\nresults: ${out}`)
  return results.some((r) => r.error !== undefined && !r.error.startsWith('not run')) ? 1 : 0
}

/** /dev/shm when it exists with room for a few runs' topics, else the temp dir. */
function defaultBrokerDir(): string {
  try {
    const fs = statfsSync('/dev/shm')
    if (fs.bavail * fs.bsize >= 4 * 2 ** 30) return '/dev/shm'
  } catch {
    // No /dev/shm here.
  }
  return tmpdir()
}

function summary(r: RunResult): string {
  return (
    `${fmt(r.opsPerSec, 0)} ops/s, ${fmt(r.framesPerSec, 0)} frames/s, ${fmt(r.mbPerSec, 1)} MB/s, ` +
    `p50 ${fmt(r.p50Ms, 1)} ms, p99 ${fmt(r.p99Ms, 1)} ms, RSS ${fmt(r.peakRssMb, 0)} MB, ` +
    `CPU ${fmt(r.cpuPercent, 0)}% (${fmt(r.cpuUsPerEvent, 1)} µs/event), ${fmt(r.seconds, 1)} s; ` +
    `broker ${fmt(r.brokerCpuPercent, 0)}%, feed ${fmt(r.feedCpuPercent, 0)}%, machine ${fmt(r.machineBusyPercent, 0)}%`
  )
}

function fmt(v: number, digits: number): string {
  return Number.isFinite(v) ? v.toFixed(digits) : '-'
}

const NUMERIC: Array<keyof RunResult> = [
  'opsPerSec',
  'framesPerSec',
  'mbPerSec',
  'p50Ms',
  'p99Ms',
  'peakRssMb',
  'cpuPercent',
  'cpuUsPerEvent',
  'machineBusyPercent',
  'brokerCpuPercent',
  'feedCpuPercent',
  'loadBefore',
  'loadAfter',
  'seconds',
]

/** Per-field median over the runs. */
function median(runs: RunResult[]): RunResult {
  const out = { ...runs[0]!, notes: [...new Set(runs.flatMap((r) => r.notes))] }
  for (const key of NUMERIC) {
    const v = runs.map((r) => r[key] as number).sort((a, b) => a - b)
    const mid = v.length >> 1
    ;(out[key] as number) = v.length % 2 === 1 ? v[mid]! : (v[mid - 1]! + v[mid]!) / 2
  }
  return out
}

function table(
  results: Array<{ scenario: string; runs: RunResult[]; error?: string; median?: RunResult }>,
): string {
  const head =
    '| scenario | runs | ops/s | frames/s | MB/s | p50 ms | p99 ms | peak RSS MB | CPU % | CPU µs/event | load |'
  const rows = [head, '|---|---|---|---|---|---|---|---|---|---|---|']
  for (const r of results) {
    const m = r.median
    if (m === undefined) {
      rows.push(`| ${r.scenario} | 0 | ${r.error ?? 'no runs'} | | | | | | | | |`)
      continue
    }
    rows.push(
      `| ${r.scenario} | ${r.runs.length} | ${fmt(m.opsPerSec, 0)} | ${fmt(m.framesPerSec, 0)} | ` +
        `${fmt(m.mbPerSec, 1)} | ${fmt(m.p50Ms, 1)} | ${fmt(m.p99Ms, 1)} | ${fmt(m.peakRssMb, 0)} | ` +
        `${fmt(m.cpuPercent, 0)} | ${fmt(m.cpuUsPerEvent, 1)} | ${fmt(m.loadBefore, 2)} |`,
    )
  }
  return '\n' + rows.join('\n')
}

if (values.help || values.list) {
  if (values.help) {
    const head = readFileSync(import.meta.filename, 'utf8').split('\n\n')[0]!
    console.log(head.replace(/^\/\/ ?/gm, ''))
  }
  console.log('\nScenarios:')
  for (const s of SCENARIOS) console.log(`  ${s.name.padEnd(26)} ${s.description}`)
} else {
  process.exitCode = await main()
}

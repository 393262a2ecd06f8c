import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { Writable } from 'node:stream'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadEnv, main } from '../src/cli.ts'
import { Values, normalizeWsUrl, relayConfig } from '../src/config/config.ts'
import { resolveOptions } from '../src/config/resolve.ts'
import { compileCollectionFilter } from '../src/filter.ts'

function relay(cli: Record<string, unknown>, env: Record<string, string> = {}) {
  return relayConfig(new Values(resolveOptions('relay', cli, env)))
}

function capture() {
  let text = ''
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      text += chunk.toString()
      cb()
    },
  })
  return { stream, text: () => text }
}

async function cli(argv: string[], env: Record<string, string> = {}) {
  const err = capture()
  const out = capture()
  const code = await main({
    argv,
    env,
    deps: { signal: AbortSignal.abort(), stdout: out.stream },
    stderr: err.stream,
    stdoutText: out.stream,
  })
  return { code, stderr: err.text(), stdout: out.text() }
}

describe('config', () => {
  it('reads at-kafka env vars and applies defaults', () => {
    const c = relay(
      {},
      {
        ATKAFKA_BOOTSTRAP_SERVERS: 'k1:9092, k2:9092',
        ATKAFKA_OUTPUT_TOPIC: 'events',
        ATKAFKA_OSPREY_COMPATIBLE: 'true',
        ATKAFKA_WATCHED_COLLECTIONS: 'app.bsky.*',
      },
    )
    assert.equal(c.output.kind, 'kafka')
    if (c.output.kind !== 'kafka') return
    assert.deepEqual(c.output.brokers, ['k1:9092', 'k2:9092'])
    assert.equal(c.output.topic, 'events')
    assert.equal(c.output.partitions, 200)
    assert.equal(c.output.compression, 'none')
    assert.equal(c.format.osprey, true)
    assert.deepEqual(c.watchedCollections, ['app.bsky.*'])
    assert.equal(c.relayHost, 'wss://bsky.network')
    assert.equal(c.cursorFile, 'atkafka-cursor.json')
    assert.deepEqual(c.metricsAddress, { host: '0.0.0.0', port: 6009 })
  })

  it('flags win over env, and "false" in env means false', () => {
    const c = relay(
      { stdout: true, relayHost: 'https://relay.example.com/' },
      { ATKAFKA_OSPREY_COMPATIBLE: 'false', ATKAFKA_RELAY_HOST: 'wss://other' },
    )
    assert.equal(c.output.kind, 'stdout')
    assert.equal(c.format.osprey, false)
    assert.equal(c.relayHost, 'wss://relay.example.com')
  })

  it('normalises relay URLs', () => {
    assert.equal(normalizeWsUrl('http://localhost:2583'), 'ws://localhost:2583')
    assert.equal(
      normalizeWsUrl('wss://bsky.network/xrpc/com.atproto.sync.subscribeRepos'),
      'wss://bsky.network',
    )
  })

  it('refuses bad values with one line naming the flag and accepted values', async () => {
    const cases: Array<[string[], Record<string, string>, RegExp]> = [
      [
        ['firehose', 'relay'],
        {},
        /missing required options: --bootstrap-servers \(ATKAFKA_BOOTSTRAP_SERVERS\), --output-topic \(ATKAFKA_OUTPUT_TOPIC\)/,
      ],
      [['firehose', 'relay', '--bootstrap-servers', 'k:9092'], {}, /--output-topic/],
      [
        ['firehose', 'relay', '--stdout', '--max-in-flight', '0'],
        {},
        /--max-in-flight.*integer from 1/,
      ],
      [
        ['firehose', 'relay'],
        { ATKAFKA_STDOUT: 'maybe' },
        /ATKAFKA_STDOUT.*one of true, 1, t, yes, y, on or false, 0, f, no, n, off/,
      ],
      [
        ['firehose', 'relay', '--stdout', '--kafka-compression', 'brotli'],
        {},
        /one of none, gzip, snappy, lz4, zstd/,
      ],
      [
        ['firehose', 'relay', '--bootstrap-servers', 'k:1', '--output-topic', 't'],
        { ATKAFKA_KAFKA_CLIENT: 'kafkajs', ATKAFKA_KAFKA_COMPRESSION: 'zstd' },
        /--kafka-compression zstd needs --kafka-client platformatic \(KafkaJS compresses only with none or gzip\)/,
      ],
      [['firehose', 'relay', '--stdout', '--relay-host', 'ftp://x'], {}, /--relay-host.*scheme/],
      [['firehose', 'relay', '--stdout', '--metrics-listen-address', 'nope'], {}, /host:port/],
      [
        [
          'firehose',
          'relay',
          '--stdout',
          '--watched-collections',
          'a',
          '--ignored-collections',
          'b',
        ],
        {},
        /cannot be used together/,
      ],
      [
        ['firehose', 'relay', '--bootstrap-servers', 'nohost', '--output-topic', 't'],
        {},
        /host:port/,
      ],
      [
        ['firehose', 'relay', '--bootstrap-servers', 'k:1', '--output-topic', 'bad topic'],
        {},
        /topic name/,
      ],
    ]
    for (const [argv, env, pattern] of cases) {
      const r = await cli(argv, env)
      assert.equal(r.code, 2, argv.join(' '))
      assert.match(r.stderr, pattern)
      assert.equal(r.stderr.trim().split('\n').length, 1, `one line: ${r.stderr}`)
    }
  })

  it('--help documents every option with its env var', async () => {
    const r = await cli(['firehose', 'relay', '--help'])
    assert.equal(r.code, 0)
    for (const env of [
      'ATKAFKA_BOOTSTRAP_SERVERS',
      'ATKAFKA_RELAY_HOST',
      'METRICS_LISTEN_ADDRESS',
      'DEBUG',
    ]) {
      assert.ok(r.stdout.includes(env), env)
    }
  })

  it('reads a .env file in the working directory; the real environment wins', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'atkafka-env-'))
    try {
      await writeFile(
        join(dir, '.env'),
        'ATKAFKA_OUTPUT_TOPIC=from-file\nATKAFKA_BOOTSTRAP_SERVERS=file:9092\n',
      )
      const env = loadEnv(dir, { ATKAFKA_BOOTSTRAP_SERVERS: 'real:9092' })
      const c = relay({}, env as Record<string, string>)
      assert.ok(c.output.kind === 'kafka')
      assert.equal(c.output.topic, 'from-file')
      assert.deepEqual(c.output.brokers, ['real:9092'])
      assert.deepEqual(loadEnv(join(dir, 'none'), { A: '1' }), { A: '1' })
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })

  it('unknown flags are usage errors', async () => {
    const r = await cli(['firehose', 'relay', '--nope'])
    assert.equal(r.code, 2)
  })
})

describe('collection filters', () => {
  it('match exactly or by namespace prefix, as at-kafka', () => {
    const watch = compileCollectionFilter({
      watched: ['app.bsky.*', 'fm.teal.alpha.feed.play'],
      ignored: [],
    })
    assert.equal(watch('app.bsky.feed.post'), true)
    assert.equal(watch('app.bsky'), true)
    assert.equal(watch('app.bskyx.feed'), false)
    assert.equal(watch('fm.teal.alpha.feed.play'), true)
    assert.equal(watch('fm.teal.alpha.feed.playlist'), false)
    const ignore = compileCollectionFilter({ watched: [], ignored: ['fm.teal'] })
    assert.equal(ignore('fm.teal.alpha.actor.status'), false)
    assert.equal(ignore('app.bsky.feed.like'), true)
  })
})

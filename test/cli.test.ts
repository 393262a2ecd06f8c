// at-kafka's command lines through the real CLI entry (main), checked on the effective
// configuration that --print-config shows; and the command line's own errors.
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { describe, it } from 'node:test'
import { main } from '../src/cli.ts'
import { parseDuration } from '../src/config/resolve.ts'

const root = join(import.meta.dirname, '..')
const VERSION = (
  JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string }
).version

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

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- the JSON of every mode's config
type Effective = Record<string, any>

/** The effective configuration of a command line (it must be accepted). */
async function effective(argv: string[], env: Record<string, string> = {}): Promise<Effective> {
  const r = await cli([...argv, '--print-config'], env)
  assert.equal(r.code, 0, `${argv.join(' ')}: ${r.stderr}`)
  return JSON.parse(r.stdout) as Effective
}

const GLOBAL = ['--bootstrap-servers', 'k1:9092', '--output-topic', 'events', '--debug']

describe("at-kafka's command lines", () => {
  it('global flags before firehose, firehose flags before relay, mode flags after', async () => {
    const c = await effective([
      ...GLOBAL,
      '--metrics-listen-address',
      '127.0.0.1:7000',
      'firehose',
      '--relay-host',
      'wss://relay.example.com',
      '--osprey-compatible',
      '--watched-collections',
      'app.bsky.feed.post',
      'relay',
    ])
    assert.deepEqual(c.output.brokers, ['k1:9092'])
    assert.equal(c.output.topic, 'events')
    assert.equal(c.debug, true)
    assert.deepEqual(c.metricsAddress, { host: '127.0.0.1', port: 7000 })
    assert.equal(c.relayHost, 'wss://relay.example.com')
    assert.equal(c.format.osprey, true)
    assert.deepEqual(c.watchedCollections, ['app.bsky.feed.post'])
    // The same flags, all after the command, give the same configuration.
    const after = await effective([
      'firehose',
      'relay',
      ...GLOBAL,
      '--metrics-listen-address',
      '127.0.0.1:7000',
      '--relay-host',
      'wss://relay.example.com',
      '--osprey-compatible',
      '--watched-collections',
      'app.bsky.feed.post',
    ])
    assert.deepEqual(after, c)
  })

  it('tap mode: firehose flags, then tap with its own flags; urfave booleans =true/=false', async () => {
    const c = await effective([
      ...GLOBAL,
      'firehose',
      '--osprey-compatible=true',
      '--plc-host',
      'http://127.0.0.1:2582',
      '--tap-workers',
      '20',
      'tap',
      '--tap-host',
      'ws://127.0.0.1:2480',
      '--disable-acks=false',
    ])
    assert.equal(c.format.osprey, true)
    assert.equal(c.tapHost, 'ws://127.0.0.1:2480')
    assert.equal(c.disableAcks, false)
    assert.equal(c.workers, 20)
    assert.equal(c.enrich.plcHost, 'http://127.0.0.1:2582')
    const off = await effective([
      '--debug=false',
      ...GLOBAL.slice(0, 4),
      'firehose',
      '--osprey-compatible=false',
      'tap',
      '--disable-acks=true',
    ])
    assert.equal(off.debug, false)
    assert.equal(off.format.osprey, false)
    assert.equal(off.disableAcks, true)
  })

  it('ozone-events with global flags in front', async () => {
    const c = await effective([
      ...GLOBAL,
      'ozone-events',
      '--pds-host',
      'https://pds.example.com',
      '--identifier',
      'mod.example.com',
      '--password',
      'hunter2',
      '--labeler-did',
      'did:plc:abc',
    ])
    assert.equal(c.output.topic, 'events')
    assert.equal(c.pdsHost, 'https://pds.example.com')
    assert.equal(c.labelerDid, 'did:plc:abc')
    assert.equal(c.password, '(hidden)', 'secrets are not printed')
  })

  it('repeated list flags accumulate, with commas, at any level (collections, services, brokers)', async () => {
    const c = await effective([
      '--bootstrap-servers',
      'k1:9092',
      '--bootstrap-servers',
      'k2:9092,k3:9092',
      '--output-topic',
      't',
      'firehose',
      '--watched-collections',
      'app.bsky.feed.post',
      '--watched-collections',
      'app.bsky.feed.like',
      'relay',
      '--watched-collections',
      'app.bsky.graph.*,app.bsky.actor',
      '--ignored-services',
      'blacksky.app',
      '--ignored-services',
      '*.example.com',
    ])
    assert.deepEqual(c.output.brokers, ['k1:9092', 'k2:9092', 'k3:9092'])
    assert.deepEqual(c.watchedCollections, [
      'app.bsky.feed.post',
      'app.bsky.feed.like',
      'app.bsky.graph.*',
      'app.bsky.actor',
    ])
    assert.deepEqual(c.enrich.ignoredServices, ['blacksky.app', 'example.com'])
  })

  it('a flag at two levels: the same value is fine, different values are an error naming both', async () => {
    const same = await effective([...GLOBAL, 'firehose', 'relay', '--output-topic', 'events'])
    assert.equal(same.output.topic, 'events')
    const r = await cli([...GLOBAL, 'firehose', 'relay', '--output-topic', 'other'])
    assert.equal(r.code, 2)
    assert.match(
      r.stderr,
      /^atkafka: error: --output-topic given twice with different values: "events" after 'atkafka' and "other" after 'relay'\n$/,
    )
    const bool = await cli([...GLOBAL, 'firehose', 'relay', '--debug=false'])
    assert.match(bool.stderr, /--debug given twice with different values: true .* "false"/)
    // At one level the last wins, as Go's flag package.
    const last = await effective([...GLOBAL, '--output-topic', 'later', 'firehose', 'relay'])
    assert.equal(last.output.topic, 'later')
  })

  it('flag > env > .env > default, the same at every level', async () => {
    const env = { ATKAFKA_OUTPUT_TOPIC: 'from-env', ATKAFKA_OSPREY_COMPATIBLE: 'true' }
    const before = await effective(
      ['--output-topic', 'flag', 'firehose', '--osprey-compatible=false', 'relay', '--stdout'],
      env,
    )
    assert.equal(before.format.osprey, false)
    const fromEnv = await effective(['firehose', 'relay', ...GLOBAL.slice(0, 2)], env)
    assert.equal(fromEnv.output.topic, 'from-env')
    assert.equal(fromEnv.format.osprey, true)
  })

  it('single-dash Go-style flags are the same as double-dash', async () => {
    const c = await effective([
      '-stdout',
      'firehose',
      '-relay-host',
      'wss://r.example',
      '-osprey-compatible=true',
      'relay',
      '-cursor=5',
    ])
    assert.equal(c.output.kind, 'stdout')
    assert.equal(c.relayHost, 'wss://r.example')
    assert.equal(c.format.osprey, true)
    assert.equal(c.cursor, 5)
  })
})

describe('event metadata by default', () => {
  it("relay and tap add eventMetadata from at-kafka's PLC unless told otherwise", async () => {
    for (const mode of ['relay', 'tap']) {
      const c = await effective(['firehose', mode, '--stdout'])
      assert.equal(c.enrich.plcHost, 'https://plc.directory', mode)
      assert.equal(c.enrich.verifyHandles, true)
      assert.equal(c.enrich.apiHost, undefined)
      assert.equal(
        (await effective(['firehose', mode, '--stdout', '--no-event-metadata'])).enrich,
        undefined,
      )
      assert.equal(
        (await effective(['firehose', mode, '--stdout'], { ATKAFKA_EVENT_METADATA: 'false' }))
          .enrich,
        undefined,
      )
      assert.equal(
        (await effective(['firehose', mode, '--stdout', '--event-metadata=false'])).enrich,
        undefined,
      )
    }
    const env = await effective(['firehose', 'relay', '--stdout'], {
      ATKAFKA_PLC_HOST: 'http://127.0.0.1:2582',
    })
    assert.equal(env.enrich.plcHost, 'http://127.0.0.1:2582')
  })
})

describe('command-line errors a newcomer meets', () => {
  it('--version and -V print the version; -h and --help the usage', async () => {
    for (const argv of [['--version'], ['-V'], ['firehose', 'relay', '--version']]) {
      const r = await cli(argv)
      assert.equal(r.code, 0)
      assert.equal(r.stdout, `atkafka ${VERSION}\n`)
    }
    const h = await cli(['firehose', 'relay', '-h'])
    assert.equal(h.code, 0)
    assert.match(h.stdout, /^Usage: atkafka \[options\] firehose \[options\] relay \[options\]/)
    assert.match(h.stdout, /--no-event-metadata/)
    assert.match(h.stdout, /--lookup-timeout <duration>\n[^-]*a bare number is seconds/)
    assert.match(h.stdout, /\* alone means every collection/)
    const top = await cli(['--help'])
    assert.match(top.stdout, /firehose[\s\S]*relay[\s\S]*tap[\s\S]*ozone-events[\s\S]*labels/)
  })

  it('an unknown option or command points at the help of the command', async () => {
    const cases: Array<[string[], RegExp]> = [
      [
        ['firehose', 'relay', '--nope'],
        /unknown option '--nope'; see atkafka firehose relay --help/,
      ],
      [['--nope', 'firehose', 'relay'], /unknown option '--nope'; see atkafka --help/],
      [['firehose', 'relays'], /unknown command 'relays'; see atkafka firehose --help/],
      [
        ['firehose', 'relay', 'extra'],
        /unexpected argument 'extra'; see atkafka firehose relay --help/,
      ],
      [
        ['firehose', 'relay', '--tap-host', 'ws://x'],
        /'--tap-host' does not apply to atkafka firehose relay; see atkafka firehose relay --help/,
      ],
      [['firehose', 'relay', '--output-topic'], /'--output-topic' needs a value/],
      [['firehose'], /missing command \(one of relay, tap\); see atkafka firehose --help/],
    ]
    for (const [argv, pattern] of cases) {
      const r = await cli(argv)
      assert.equal(r.code, 2, argv.join(' '))
      assert.match(r.stderr, pattern)
      assert.equal(r.stderr.split('\n').length, 2, `one line: ${r.stderr}`)
    }
  })

  it('a bad boolean is a bad value of that flag, listing the words the README lists', async () => {
    const r = await cli(['firehose', 'relay', '--stdout', '--osprey-compatible=maybe'])
    assert.equal(r.code, 2)
    const words = 'true, 1, t, yes, y, on or false, 0, f, no, n, off'
    assert.equal(
      r.stderr,
      `atkafka: error: invalid value "maybe" for --osprey-compatible (ATKAFKA_OSPREY_COMPATIBLE): expected one of ${words}\n`,
    )
    const readme = readFileSync(join(root, 'README.md'), 'utf8')
    assert.ok(readme.includes(words), 'the README lists the same words')
  })

  it('all missing required options in one error', async () => {
    const r = await cli(['ozone-events'])
    assert.equal(r.code, 2)
    assert.equal(
      r.stderr,
      'atkafka: error: missing required options: --bootstrap-servers (ATKAFKA_BOOTSTRAP_SERVERS), --output-topic (ATKAFKA_OUTPUT_TOPIC), --pds-host (ATKAFKA_OZONE_PDS_HOST), --identifier (ATKAFKA_OZONE_IDENTIFIER), --password (ATKAFKA_OZONE_PASSWORD), --labeler-did (ATKAFKA_OZONE_LABELER_DID) (--bootstrap-servers and --output-topic are not needed with --stdout)\n',
    )
  })

  it('collection and service patterns: malformed ones refused with the accepted forms', async () => {
    for (const [flag, bad] of [
      ['--watched-collections', 'app.bsky*'],
      ['--watched-collections', '*.'],
      ['--ignored-collections', 'a,,b'],
      ['--ignored-collections', 'app..bsky'],
      ['--watched-services', 'bsky*'],
      ['--watched-services', '*.'],
      ['--ignored-services', 'a,,b'],
    ] as const) {
      const r = await cli(['firehose', 'relay', '--stdout', flag, bad])
      assert.equal(r.code, 2, `${flag} ${bad}`)
      assert.match(
        r.stderr,
        new RegExp(`invalid value "${bad.replace(/[.*]/g, '\\$&')}" for ${flag}`),
      )
      assert.match(r.stderr, /expected/)
    }
    const all = await effective(['firehose', 'relay', '--stdout', '--watched-collections', '*'])
    assert.deepEqual(all.watchedCollections, ['*'])
  })

  it('Go durations, and bare numbers as seconds', async () => {
    assert.equal(parseDuration('1h30m'), 5400000)
    assert.equal(parseDuration('2m30.5s'), 150500)
    assert.equal(parseDuration('750ms'), 750)
    assert.equal(parseDuration('1500us'), 2)
    assert.equal(parseDuration('90'), 90000)
    assert.equal(parseDuration('1h-30m'), undefined)
    assert.equal(parseDuration('soon'), undefined)
    const c = await effective(['firehose', 'relay', '--stdout', '--lookup-timeout', '1h30m'])
    assert.equal(c.enrich.timeoutMs, 5400000)
  })

  it('the real binary runs the at-kafka layout too', () => {
    const r = spawnSync(
      process.execPath,
      [
        join(root, 'src', 'bin.ts'),
        '--bootstrap-servers',
        'k:9092',
        '--output-topic',
        't',
        'firehose',
        '--watched-collections',
        'app.bsky.feed.post',
        'relay',
        '--watched-collections',
        'app.bsky.feed.like',
        '--print-config',
      ],
      { encoding: 'utf8', env: { PATH: process.env.PATH ?? '' } },
    )
    assert.equal(r.status, 0, r.stderr)
    const c = JSON.parse(r.stdout) as { watchedCollections: string[] }
    assert.deepEqual(c.watchedCollections, ['app.bsky.feed.post', 'app.bsky.feed.like'])
  })
})

// Security: Kafka over SASL_SSL against a real broker (CA and broker certificate made here with
// openssl, SCRAM users added at `kafka-storage format` time), secrets that never show up in
// anything atkafka prints, and a metrics server that binds only where it is told.
import { AtpAgent } from '@atproto/api'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { connect } from 'node:net'
import { networkInterfaces, tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { consumeAll } from './harness/kafka.ts'
import {
  type FullNetworkHandle,
  OZONE_ADMIN_HANDLE,
  OZONE_ADMIN_PASSWORD,
  startFullNetwork,
} from './harness/network.ts'
import { createAccount, createPost } from './harness/pds.ts'
import { type TapHandle, startTap } from './harness/tap.ts'
import {
  type AtkafkaProcess,
  eventually,
  freePort,
  httpGet,
  metricValue,
  spawnAtkafka,
} from './support/atkafka.ts'
import { cursorSeq, syntheticStream } from './support/faults.ts'
import { loadFrames } from './support/fixtures.ts'
import { reseqFrame } from './support/frames.ts'
import { type ReplayFrame, startReplayRelay } from './support/replay-relay.ts'
import { type SaslUser, type SecureKafka, startSecureKafka } from './support/secure-kafka.ts'

const secret = (what: string) => `${what}-${randomBytes(9).toString('base64url')}`
const alice: SaslUser = { mechanism: 'SCRAM-SHA-256', name: 'alice', password: secret('alice') }
const bob: SaslUser = { mechanism: 'SCRAM-SHA-512', name: 'bob', password: secret('bob') }
const carol: SaslUser = { mechanism: 'PLAIN', name: 'carol', password: secret('carol') }
const dave: SaslUser = { mechanism: 'SCRAM-SHA-256', name: 'dave', password: secret('dave') }

let kafka: SecureKafka
let dir: string

/** The real capture under seqs of its own, and its last seq. */
function realStream(): { frames: ReplayFrame[]; lastSeq: number; events: number } {
  const frames = loadFrames().map((f, i) => ({ seq: 100 + i, bytes: reseqFrame(f, 100 + i) }))
  return { frames, lastSeq: 100 + frames.length - 1, events: 152 }
}

function saslArgs(user: SaslUser, password = user.password): string[] {
  return [
    '--bootstrap-servers',
    kafka.secure,
    '--kafka-sasl-mechanism',
    user.mechanism.toLowerCase(),
    '--kafka-sasl-username',
    user.name,
    '--kafka-sasl-password',
    password,
    '--kafka-ssl-ca',
    kafka.caFile,
  ]
}

function saslEnv(user: SaslUser, password = user.password): Record<string, string> {
  return {
    ATKAFKA_BOOTSTRAP_SERVERS: kafka.secure,
    ATKAFKA_KAFKA_SASL_MECHANISM: user.mechanism.toLowerCase(),
    ATKAFKA_KAFKA_SASL_USERNAME: user.name,
    ATKAFKA_KAFKA_SASL_PASSWORD: password,
    ATKAFKA_KAFKA_SSL: 'true',
    ATKAFKA_KAFKA_SSL_CA: kafka.caFile,
  }
}

/** Exit code, or a failure with the output if it takes longer than `ms`. */
async function exitWithin(p: AtkafkaProcess, ms: number): Promise<number | string> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      p.child.kill('SIGKILL')
      reject(new Error(`atkafka still running after ${ms} ms:\n${p.stdout().slice(-3000)}`))
    }, ms)
  })
  try {
    return await Promise.race([p.exited, late])
  } finally {
    clearTimeout(timer)
  }
}

before(async () => {
  kafka = await startSecureKafka([alice, bob, carol, dave])
  dir = await mkdtemp(join(tmpdir(), 'atkafka-security-'))
})
after(async () => {
  await kafka?.stop()
  if (dir) await rm(dir, { recursive: true, force: true })
})

describe('Kafka over SASL_SSL (real broker, CA made with openssl, SCRAM users from format)', () => {
  const SASL_FAILED =
    /^atkafka: KafkaFatalError: Kafka rejected the SASL credentials \(check --kafka-sasl-mechanism, --kafka-sasl-username and --kafka-sasl-password\): SASL .*(authentication failed|Invalid username or password).*\n$/

  for (const [user, how] of [
    [alice, 'flags'],
    [bob, 'ATKAFKA_* env vars'],
    [carol, 'ATKAFKA_* env vars'],
  ] as const) {
    it(`${user.mechanism} over TLS with the CA (${how}): produces the stream`, async () => {
      const stream = realStream()
      const relay = await startReplayRelay({ frames: stream.frames })
      const topic = `secure-${user.mechanism.toLowerCase()}`
      const cursorFile = join(dir, `${topic}.json`)
      const base = [
        'firehose',
        'relay',
        '--no-event-metadata',
        '--relay-host',
        relay.url,
        '--output-topic',
        topic,
      ]
      const p =
        how === 'flags'
          ? await spawnAtkafka([...base, '--cursor-file', cursorFile, ...saslArgs(user)])
          : await spawnAtkafka(base, {
              env: { ...saslEnv(user), ATKAFKA_CURSOR_FILE: cursorFile },
            })
      try {
        await eventually(
          async () => (await cursorSeq(cursorFile)) === stream.lastSeq,
          60000,
          'the stream acknowledged',
        )
        assert.match(p.stdout(), /"output":\{[^}]*"sasl":"[a-z0-9-]+","ssl":true\}/)
        p.child.kill('SIGTERM')
        assert.equal(await p.exited, 0, p.stderr())
      } finally {
        p.child.kill('SIGKILL')
        await relay.close()
      }
      const got = await consumeAll(kafka.plaintext, topic, { expected: stream.events })
      assert.equal(got.length, stream.events)
      assert.ok(!(p.stdout() + p.stderr()).includes(user.password), 'the password was printed')
    })
  }

  for (const [what, user, password] of [
    ['a wrong password', alice, secret('wrong')],
    ['an unknown SCRAM-SHA-512 user', { ...bob, name: 'mallory' }, bob.password],
    ['a PLAIN user that does not exist', { ...carol, name: 'alice' }, alice.password],
  ] as const) {
    it(`${what} fails fast: exit code 1, one clear line, the password nowhere`, async () => {
      const relay = await startReplayRelay({ frames: realStream().frames })
      const started = Date.now()
      const p = await spawnAtkafka([
        'firehose',
        'relay',
        '--no-event-metadata',
        '--relay-host',
        relay.url,
        '--output-topic',
        'secure-refused',
        '--cursor-file',
        join(dir, 'refused.json'),
        ...saslArgs(user, password),
      ])
      try {
        assert.equal(await exitWithin(p, 20000), 1, p.stdout())
      } finally {
        await relay.close()
      }
      const seconds = (Date.now() - started) / 1000
      console.log(`SASL, ${what}: exit 1 after ${seconds.toFixed(1)} s: ${p.stderr().trim()}`)
      assert.match(p.stderr(), SASL_FAILED)
      assert.equal(relay.connections, 0, 'never read from the relay')
      assert.ok(seconds < 15, `took ${seconds} s`)
      assert.ok(!(p.stdout() + p.stderr()).includes(password), 'the password was printed')
    })
  }

  it('a CA that did not sign the broker certificate: nothing produced, /ready 503, reason logged', async () => {
    const relay = await startReplayRelay({ frames: realStream().frames })
    const p = await spawnAtkafka([
      'firehose',
      'relay',
      '--no-event-metadata',
      '--relay-host',
      relay.url,
      '--output-topic',
      'secure-wrong-ca',
      '--cursor-file',
      join(dir, 'wrong-ca.json'),
      ...saslArgs(alice).slice(0, -1),
      kafka.otherCaFile,
    ])
    try {
      await p.waitFor(/self-signed certificate in certificate chain/, 30000)
      assert.equal((await httpGet(p.metricsPort, '/ready')).status, 503)
      assert.equal(
        metricValue((await httpGet(p.metricsPort, '/metrics')).body, 'atkafka_produced_events'),
        0,
      )
      p.child.kill('SIGTERM')
      assert.equal(await exitWithin(p, 30000), 0)
    } finally {
      p.child.kill('SIGKILL')
      await relay.close()
    }
  })

  it('credentials that stop working while running (password changed, broker restarted): exit 1, one clear line', async () => {
    const stream = syntheticStream({ commits: 20000, tag: 'rot' })
    const relay = await startReplayRelay({
      frames: stream.frames,
      pace: { burst: 2, intervalMs: 20 },
    })
    const p = await spawnAtkafka([
      'firehose',
      'relay',
      '--no-event-metadata',
      '--relay-host',
      relay.url,
      '--output-topic',
      'secure-rotated',
      '--topic-partitions',
      '4',
      '--cursor-file',
      join(dir, 'rotated.json'),
      ...saslArgs(dave),
    ])
    try {
      await eventually(
        async () =>
          metricValue(
            (await httpGet(p.metricsPort, '/metrics').catch(() => ({ body: '' }))).body,
            'atkafka_produced_events',
          ) > 0,
        60000,
        'producing as dave',
      )
      await kafka.setScramPassword(dave.mechanism, dave.name, secret('rotated'))
      await kafka.broker.kill()
      await kafka.broker.start()
      assert.equal(await exitWithin(p, 60000), 1, p.stdout().slice(-3000))
    } finally {
      p.child.kill('SIGKILL')
      await relay.close()
    }
    console.log(`SASL, password changed while running: ${p.stderr().trim()}`)
    assert.match(p.stderr(), SASL_FAILED)
    assert.ok(!(p.stdout() + p.stderr()).includes(dave.password), 'the password was printed')
  })
})

describe('no secret ever printed (every mode, its logs at debug level, errors, --help, /metrics)', () => {
  const TAP_PASSWORD = secret('tap-admin')
  const WRONG_OZONE_PASSWORD = secret('wrong-ozone')
  const WRONG_KAFKA_PASSWORD = secret('wrong-kafka')
  const WRONG_TAP_PASSWORD = secret('wrong-tap')
  let net: FullNetworkHandle
  let tap: TapHandle
  /** Everything atkafka printed or served, by where it came from. */
  const printed: Array<[string, string]> = []

  before(async () => {
    net = await startFullNetwork()
    tap = await startTap({ relayUrl: net.pdsUrl, plcUrl: net.plcUrl, adminPassword: TAP_PASSWORD })
  })
  after(async () => {
    await tap?.close()
    await net?.close()
  })

  const ozoneArgs = (password: string) => [
    '--pds-host',
    net.pdsUrl,
    '--identifier',
    OZONE_ADMIN_HANDLE,
    '--password',
    password,
    '--labeler-did',
    net.ozoneDid,
    '--poll-interval',
    '200ms',
  ]

  async function ozoneAdmin(): Promise<AtpAgent> {
    const admin = new AtpAgent({ service: net.pdsUrl })
    await admin.login({ identifier: OZONE_ADMIN_HANDLE, password: OZONE_ADMIN_PASSWORD })
    return admin
  }

  /** Run until one message was produced, keep its output and /metrics, stop it. */
  async function runUntilProduced(
    name: string,
    args: string[],
    env: Record<string, string>,
    connected: RegExp,
    trigger: () => Promise<void>,
  ): Promise<void> {
    const p = await spawnAtkafka([...args, '--debug'], { env })
    try {
      await p.waitFor(connected, 60000)
      await trigger()
      await eventually(
        async () =>
          metricValue((await httpGet(p.metricsPort, '/metrics')).body, 'atkafka_produced_events') >
          0,
        90000,
        `${name} producing`,
      )
      printed.push([`${name} /metrics`, (await httpGet(p.metricsPort, '/metrics')).body])
      p.child.kill('SIGTERM')
      assert.equal(await exitWithin(p, 60000), 0, p.stderr())
    } finally {
      p.child.kill('SIGKILL')
      printed.push([`${name} output`, p.stdout() + p.stderr()])
    }
  }

  /** Run a configuration that must fail; keep its output. */
  async function runFailing(
    name: string,
    args: string[],
    env: Record<string, string>,
    code: number,
  ): Promise<string> {
    const p = await spawnAtkafka([...args, '--debug'], { env })
    try {
      assert.equal(await exitWithin(p, 60000), code, p.stdout().slice(-2000))
    } finally {
      printed.push([`${name} output`, p.stdout() + p.stderr()])
    }
    return p.stderr()
  }

  it('relay mode (the PDS firehose), with SASL password and debug logs', async () => {
    const account = await createAccount(net.pdsUrl)
    await runUntilProduced(
      'relay',
      [
        'firehose',
        'relay',
        '--no-event-metadata',
        '--relay-host',
        net.pdsUrl,
        '--output-topic',
        'secrets-relay',
        '--cursor-file',
        join(dir, 'secrets-relay.json'),
      ],
      saslEnv(alice),
      /"msg":"connected to relay"/,
      async () => void (await createPost(account, 'hello')),
    )
  })

  it('tap mode, with SASL and Tap admin passwords', async () => {
    const account = await createAccount(net.pdsUrl)
    await createPost(account, 'for tap')
    await runUntilProduced(
      'tap',
      [
        'firehose',
        'tap',
        '--no-event-metadata',
        '--tap-host',
        tap.url,
        '--tap-admin-password',
        TAP_PASSWORD,
        '--output-topic',
        'secrets-tap',
        ...saslArgs(bob),
      ],
      {},
      /connected to Tap/,
      () => tap.addRepos([account.did]),
    )
  })

  it('ozone-events, with SASL and Ozone passwords', async () => {
    const admin = await ozoneAdmin()
    const target = await createAccount(net.pdsUrl)
    await runUntilProduced(
      'ozone',
      [
        'ozone-events',
        ...ozoneArgs(OZONE_ADMIN_PASSWORD),
        '--output-topic',
        'secrets-ozone',
        '--cursor-file',
        join(dir, 'secrets-ozone.json'),
        ...saslArgs(carol),
      ],
      {},
      /"msg":"Ozone answered; polling"/,
      async () => {
        await admin
          .withProxy('atproto_labeler', net.ozoneDid as `did:${string}:${string}`)
          .tools.ozone.moderation.emitEvent({
            event: { $type: 'tools.ozone.moderation.defs#modEventComment', comment: 'hi' },
            subject: { $type: 'com.atproto.admin.defs#repoRef', did: target.did },
            createdBy: net.ozoneDid,
          })
      },
    )
  })

  it('labels mode, with SASL password', async () => {
    const admin = await ozoneAdmin()
    const target = await createAccount(net.pdsUrl)
    await admin
      .withProxy('atproto_labeler', net.ozoneDid as `did:${string}:${string}`)
      .tools.ozone.moderation.emitEvent({
        event: {
          $type: 'tools.ozone.moderation.defs#modEventLabel',
          createLabelVals: ['spam'],
          negateLabelVals: [],
        },
        subject: { $type: 'com.atproto.admin.defs#repoRef', did: target.did },
        createdBy: net.ozoneDid,
      })
    await runUntilProduced(
      'labels',
      [
        'labels',
        '--labeler-host',
        net.ozoneUrl,
        '--cursor',
        '0',
        '--output-topic',
        'secrets-labels',
        '--cursor-file',
        join(dir, 'secrets-labels.json'),
      ],
      saslEnv(alice),
      /"msg":"connected to relay"/,
      async () => {},
    )
  })

  it('wrong Kafka, Ozone and Tap passwords: exit code 1 with one line, no secret in it', async () => {
    const kafkaRefused = await runFailing(
      'relay, wrong Kafka password',
      [
        'firehose',
        'relay',
        '--no-event-metadata',
        '--relay-host',
        net.pdsUrl,
        '--output-topic',
        'secrets-x',
        '--cursor-file',
        join(dir, 'x.json'),
      ],
      saslEnv(alice, WRONG_KAFKA_PASSWORD),
      1,
    )
    assert.match(kafkaRefused, /^atkafka: KafkaFatalError: Kafka rejected the SASL credentials/)
    const ozoneRefused = await runFailing(
      'ozone, wrong Ozone password',
      [
        'ozone-events',
        ...ozoneArgs(WRONG_OZONE_PASSWORD),
        '--output-topic',
        'secrets-x',
        '--cursor-file',
        join(dir, 'y.json'),
      ],
      saslEnv(carol),
      1,
    )
    assert.match(ozoneRefused, /^atkafka: OzoneAuthError: cannot log in/)
    const tapRefused = await runFailing(
      'tap, wrong Tap admin password',
      [
        'firehose',
        'tap',
        '--no-event-metadata',
        '--tap-host',
        tap.url,
        '--output-topic',
        'secrets-x',
      ],
      { ...saslEnv(bob), ATKAFKA_TAP_ADMIN_PASSWORD: WRONG_TAP_PASSWORD },
      1,
    )
    assert.match(tapRefused, /^atkafka: TapAuthError: Tap refused the connection with HTTP 401/)
    for (const text of [kafkaRefused, ozoneRefused, tapRefused]) {
      assert.equal(text.trim().split('\n').length, 1, text)
    }
  })

  it('configuration errors and --help of every command, with all secrets in the environment', async () => {
    const env = {
      ...saslEnv(alice),
      ATKAFKA_OZONE_PASSWORD: OZONE_ADMIN_PASSWORD,
      ATKAFKA_TAP_ADMIN_PASSWORD: TAP_PASSWORD,
    }
    for (const command of [
      ['--help'],
      ['firehose', 'relay', '--help'],
      ['firehose', 'tap', '--help'],
      ['ozone-events', '--help'],
      ['labels', '--help'],
    ]) {
      const p = await spawnAtkafka(command, { env })
      assert.equal(await exitWithin(p, 30000), 0)
      printed.push([`${command.join(' ')}`, p.stdout() + p.stderr()])
    }
    const usage = [
      // A password without a mechanism, an empty password, a bad value next to a password.
      [
        [
          'firehose',
          'relay',
          '--no-event-metadata',
          '--bootstrap-servers',
          '127.0.0.1:9',
          '--output-topic',
          't',
          '--kafka-sasl-password',
          alice.password,
        ],
        {},
      ],
      [['firehose', 'relay', '--output-topic', 't', '--kafka-sasl-password', ''], env],
      [['firehose', 'tap', '--tap-admin-password', TAP_PASSWORD, '--max-in-flight', 'x'], env],
      [['ozone-events', '--password', OZONE_ADMIN_PASSWORD, '--output-topic', 't'], env],
    ] as const
    for (const [args, e] of usage) {
      const p = await spawnAtkafka([...args], { env: { ...e } })
      assert.equal(await exitWithin(p, 30000), 2, p.stderr())
      assert.match(p.stderr(), /^atkafka: error: /)
      printed.push([`${args.join(' ')}`, p.stdout() + p.stderr()])
    }
  })

  it('none of the secrets appears in anything printed or served', () => {
    const secrets = [
      alice.password,
      bob.password,
      carol.password,
      TAP_PASSWORD,
      OZONE_ADMIN_PASSWORD,
      WRONG_OZONE_PASSWORD,
      WRONG_KAFKA_PASSWORD,
      WRONG_TAP_PASSWORD,
    ]
    // Tap's Basic authorization header, as it would be logged.
    const encoded = [TAP_PASSWORD, WRONG_TAP_PASSWORD].map((pw) =>
      Buffer.from(`admin:${pw}`).toString('base64'),
    )
    assert.ok(printed.length >= 15, `${printed.length} outputs collected`)
    let bytes = 0
    for (const [where, text] of printed) {
      bytes += text.length
      for (const s of [...secrets, ...encoded]) {
        assert.ok(!text.includes(s), `${where} contains a secret`)
      }
    }
    console.log(
      `secrets: ${printed.length} outputs (${bytes} bytes) searched for ${secrets.length} secrets`,
    )
  })
})

describe('the metrics server binds only where --metrics-listen-address says', () => {
  /** Whether something accepts TCP connections on host:port. */
  const accepts = (host: string, port: number) =>
    new Promise<boolean>((resolve) => {
      const s = connect({ host, port })
      s.once('connect', () => {
        s.destroy()
        resolve(true)
      })
      s.once('error', () => resolve(false))
    })

  for (const host of ['127.0.0.1', '127.0.0.2']) {
    it(`${host}: served there, refused on every other address`, async () => {
      const relay = await startReplayRelay({ frames: realStream().frames })
      const port = await freePort()
      const p = await spawnAtkafka(
        [
          'firehose',
          'relay',
          '--no-event-metadata',
          '--stdout',
          '--relay-host',
          relay.url,
          '--cursor-file',
          join(dir, `bind-${host}.json`),
          '--metrics-listen-address',
          `${host}:${port}`,
        ],
        { metricsPort: port },
      )
      try {
        await p.waitFor(/"msg":"metrics server listening"/)
        assert.match(p.stderr(), new RegExp(`"address":\\{"host":"${host}","port":${port}\\}`))
        assert.equal(await accepts(host, port), true)
        const others = ['127.0.0.1', '127.0.0.2', '::1']
          .concat(
            Object.values(networkInterfaces())
              .flat()
              .map((i) => i!.address),
          )
          .filter((a) => a !== host)
        for (const other of new Set(others)) {
          assert.equal(await accepts(other, port), false, `${other}:${port} accepts connections`)
        }
        p.child.kill('SIGTERM')
        assert.equal(await exitWithin(p, 30000), 0)
      } finally {
        p.child.kill('SIGKILL')
        await relay.close()
      }
    })
  }
})

// Labels mode's pure core on hand-made subscribeLabels frames: frame decoding, one event per
// label with the exact JSON written to Kafka, dropped labels, and the command's configuration.
import assert from 'node:assert/strict'
import { Writable } from 'node:stream'
import { describe, it } from 'node:test'
import { Values } from '../src/config/config.ts'
import { resolveOptions } from '../src/config/resolve.ts'
import { type AtKafkaEvent, actionNameOf, keyOf } from '../src/events.ts'
import { FrameError } from '../src/firehose/frame.ts'
import { ospreyFormatter, plainFormatter } from '../src/format.ts'
import { main } from '../src/cli.ts'
import { SUBSCRIBE_LABELS_PATH, labelsConfig, normalizeLabelerHost } from '../src/labels/config.ts'
import { infoEvent, labelEvents, subjectDid } from '../src/labels/event.ts'
import { type LabelsMessage, decodeLabelFrame } from '../src/labels/frame.ts'
import { subscribeUrl } from '../src/source/websocket.ts'
import { Snowflake } from '../src/snowflake.ts'
import { encodeFrame } from './support/frames.ts'
import { validateEvent, validateOspreyEvent } from './support/schema.ts'

const SRC = 'did:plc:labeler'
const ALICE = 'did:plc:alice'
const POST = `at://${ALICE}/app.bsky.feed.post/3kpost`
const SIG = Uint8Array.from({ length: 64 }, (_, i) => i)
const SIG_B64 = Buffer.from(SIG).toString('base64').replace(/=+$/, '')

function labelsFrame(seq: number, labels: unknown[]): Uint8Array {
  return encodeFrame({ op: 1, t: '#labels' }, { seq, labels })
}

function decodeLabels(frame: Uint8Array): LabelsMessage {
  const decoded = decodeLabelFrame(frame)
  assert.equal(decoded.type, '#labels')
  return decoded
}

function reason(fn: () => unknown): string {
  try {
    fn()
  } catch (err) {
    assert.ok(err instanceof FrameError, String(err))
    return `${err.reason}: ${err.message}`
  }
  assert.fail('no error')
}

describe('labels mode: frames to events', () => {
  it('writes one event per label, keyed by the subject DID, with the exact JSON', () => {
    const frame = labelsFrame(42, [
      {
        ver: 1,
        src: SRC,
        uri: POST,
        cid: 'bafyreipost',
        val: 'porn',
        cts: '2026-11-02T10:00:00.000Z',
        exp: '2026-11-03T10:00:00.000Z',
        sig: SIG,
      },
      { src: SRC, uri: ALICE, val: 'spam', neg: true, cts: '2026-11-02T10:00:01.000Z' },
    ])
    const { events, dropped } = labelEvents(decodeLabels(frame))
    assert.deepEqual(dropped, [])
    const format = plainFormatter()
    assert.deepEqual(
      events.map((e) => format(e)),
      [
        `{"did":"${ALICE}","timestamp":"2026-11-02T10:00:00.000Z","eventMetadata":null,"label":{"ver":1,"src":"${SRC}","uri":"${POST}","cid":"bafyreipost","val":"porn","cts":"2026-11-02T10:00:00.000Z","exp":"2026-11-03T10:00:00.000Z","sig":{"$bytes":"${SIG_B64}"},"seq":42}}`,
        `{"did":"${ALICE}","timestamp":"2026-11-02T10:00:01.000Z","eventMetadata":null,"label":{"src":"${SRC}","uri":"${ALICE}","val":"spam","neg":true,"cts":"2026-11-02T10:00:01.000Z","seq":42}}`,
      ],
    )
    for (const e of events) {
      validateEvent(JSON.parse(format(e)))
      assert.equal(keyOf(e), ALICE)
      assert.equal(actionNameOf(e), 'label')
    }
  })

  it('wraps label events in the Osprey envelope with action name "label"', () => {
    const [event] = labelEvents(
      decodeLabels(
        labelsFrame(7, [{ src: SRC, uri: ALICE, val: '!hide', cts: '2026-11-02T10:00:00Z' }]),
      ),
    ).events
    const text = ospreyFormatter(new Snowflake(3))(event!)
    const parsed = JSON.parse(text) as { data: { action_name: string; timestamp: string } }
    validateOspreyEvent(parsed)
    assert.equal(parsed.data.action_name, 'label')
    assert.equal(parsed.data.timestamp, '2026-11-02T10:00:00Z')
  })

  it('takes the DID out of the subject: a DID, an at:// URI, or nothing', () => {
    assert.equal(subjectDid('did:plc:abc'), 'did:plc:abc')
    assert.equal(subjectDid('did:web:example.com'), 'did:web:example.com')
    assert.equal(subjectDid('at://did:plc:abc/app.bsky.feed.post/3k'), 'did:plc:abc')
    assert.equal(subjectDid('at://did:plc:abc'), 'did:plc:abc')
    assert.equal(subjectDid('at://alice.test/app.bsky.feed.post/3k'), '')
    assert.equal(subjectDid('https://example.com/x'), '')
    const [event] = labelEvents(
      decodeLabels(
        labelsFrame(1, [{ src: SRC, uri: 'https://example.com/x', val: 'x', cts: 'c' }]),
      ),
    ).events
    assert.equal(event!.did, '')
    assert.equal(keyOf(event!), '<unknown>')
  })

  it('drops only the labels that do not match the lexicon, saying why', () => {
    const good = { src: SRC, uri: ALICE, val: 'ok', cts: '2026-11-02T10:00:00Z' }
    const msg = decodeLabels(
      labelsFrame(9, [
        { ...good, val: 'first' },
        { src: SRC, uri: ALICE, cts: '2026-11-02T10:00:00Z' },
        { ...good, sig: 'not bytes' },
        { ...good, neg: 'yes' },
        { ...good, ver: 1.5 },
        { ...good, uri: '' },
        'a string',
        { ...good, val: 'last', exp: null },
      ]),
    )
    const { events, dropped } = labelEvents(msg)
    assert.deepEqual(
      events.map((e) => ('label' in e ? e.label.val : '')),
      ['first', 'last'],
    )
    assert.deepEqual(dropped, [
      { reason: 'invalid-label', seq: 9, index: 1, detail: '"val" is not a non-empty string' },
      { reason: 'invalid-label', seq: 9, index: 2, detail: '"sig" is not bytes' },
      { reason: 'invalid-label', seq: 9, index: 3, detail: '"neg" is not a boolean' },
      { reason: 'invalid-label', seq: 9, index: 4, detail: '"ver" is not an integer' },
      { reason: 'invalid-label', seq: 9, index: 5, detail: '"uri" is not a non-empty string' },
      { reason: 'invalid-label', seq: 9, index: 6, detail: 'not a map' },
    ])
    assert.deepEqual(labelEvents(decodeLabels(labelsFrame(10, []))), { events: [], dropped: [] })
  })

  it('decodes #info, error and unknown frames', () => {
    const info = decodeLabelFrame(
      encodeFrame({ op: 1, t: '#info' }, { name: 'OutdatedCursor', message: 'too old' }),
    )
    assert.deepEqual(info, { type: '#info', name: 'OutdatedCursor', message: 'too old' })
    assert.ok(info.type === '#info')
    const event: AtKafkaEvent = infoEvent(info)
    assert.equal(
      plainFormatter()(event),
      '{"did":"","timestamp":"","eventMetadata":null,"info":{"name":"OutdatedCursor","message":"too old"}}',
    )
    assert.equal(keyOf(event), '<unknown>')
    validateEvent(event)
    assert.deepEqual(
      decodeLabelFrame(
        encodeFrame({ op: -1 }, { error: 'FutureCursor', message: 'Cursor in the future.' }),
      ),
      { type: 'error', error: 'FutureCursor', message: 'Cursor in the future.' },
    )
    assert.deepEqual(decodeLabelFrame(encodeFrame({ op: 1, t: '#future' }, { seq: 5 })), {
      type: 'unknown',
      t: '#future',
      seq: 5,
    })
  })

  it('rejects malformed frames with the reason of the decode-error metric', () => {
    assert.equal(
      reason(() => decodeLabelFrame(new Uint8Array())),
      'empty-frame: empty frame',
    )
    assert.match(
      reason(() => decodeLabelFrame(Uint8Array.of(0xff))),
      /^invalid-header: /,
    )
    assert.equal(
      reason(() => decodeLabelFrame(encodeFrame({ op: 1, t: '#labels' }, { labels: [] }))),
      'invalid-body: field "seq" is not a non-negative integer',
    )
    assert.equal(
      reason(() => decodeLabelFrame(encodeFrame({ op: 1, t: '#labels' }, { seq: 1, labels: {} }))),
      'invalid-body: field "labels" is not an array',
    )
    assert.equal(
      reason(() => decodeLabelFrame(encodeFrame({ op: 2, t: '#labels' }, { seq: 1 }))),
      'unknown-op: unknown frame op 2',
    )
    const frame = labelsFrame(1, [])
    assert.match(
      reason(() => decodeLabelFrame(frame.subarray(0, frame.length - 1))),
      /^invalid-body: /,
    )
  })
})

describe('labels mode: configuration', () => {
  const base = { ATKAFKA_BOOTSTRAP_SERVERS: '127.0.0.1:9092', ATKAFKA_OUTPUT_TOPIC: 'labels' }
  const config = (env: Record<string, string>, cli: Record<string, unknown> = {}) =>
    labelsConfig(new Values(resolveOptions('labels', cli, env)))

  it('subscribes on the labeler host given by flag or ATKAFKA_LABELER_HOST', () => {
    const c = config({ ...base, ATKAFKA_LABELER_HOST: 'https://mod.example.com/' })
    assert.equal(c.labelerHost, 'wss://mod.example.com')
    assert.equal(
      subscribeUrl(c.labelerHost, 12, SUBSCRIBE_LABELS_PATH),
      'wss://mod.example.com/xrpc/com.atproto.label.subscribeLabels?cursor=12',
    )
    assert.equal(c.cursorFile, 'atkafka-labels-cursor.json')
    assert.equal(c.cursor, undefined)
    assert.equal(c.format.osprey, false)
    assert.equal(c.output.kind === 'kafka' && c.output.partitions, 4)
    const d = config(base, {
      labelerHost: 'ws://localhost:2585/xrpc/com.atproto.label.subscribeLabels?cursor=3',
      cursor: '0',
      ospreyCompatible: true,
      ospreyWorkerId: '9',
      cursorFile: '/tmp/x.json',
    })
    assert.equal(d.labelerHost, 'ws://localhost:2585')
    assert.equal(d.cursor, 0)
    assert.deepEqual(d.format, { osprey: true, workerId: 9 })
    assert.equal(d.cursorFile, '/tmp/x.json')
    assert.equal(normalizeLabelerHost('http://h:1/prefix/'), 'ws://h:1/prefix')
  })

  it('requires --labeler-host and rejects other schemes', () => {
    assert.throws(() => config(base), {
      name: 'ConfigError',
      message: '--labeler-host (ATKAFKA_LABELER_HOST) is required for labels',
    })
    assert.throws(() => config({ ...base, ATKAFKA_LABELER_HOST: 'ftp://x' }), {
      name: 'ConfigError',
      message:
        'invalid value "ftp://x" for ATKAFKA_LABELER_HOST (--labeler-host): expected a URL with scheme ws, wss, http, https',
    })
  })

  it('is a top-level CLI command with the shared options and none of the firehose filters', async () => {
    let out = ''
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        out += chunk.toString()
        cb()
      },
    })
    const code = await main({
      argv: ['labels', '--help'],
      env: {},
      deps: { signal: AbortSignal.abort(), stdout: sink },
      stderr: sink,
      stdoutText: sink,
    })
    assert.equal(code, 0)
    for (const flag of [
      '--labeler-host',
      '--bootstrap-servers',
      '--output-topic',
      '--cursor-file',
      '--cursor ',
      '--max-in-flight',
      '--stdout',
      '--osprey-compatible',
      '--osprey-worker-id',
      '--metrics-listen-address',
      '--kafka-sasl-mechanism',
    ]) {
      assert.ok(out.includes(flag), flag)
    }
    for (const flag of ['--watched-collections', '--plc-host', '--relay-host']) {
      assert.ok(!out.includes(flag), flag)
    }
    assert.match(out, /\[env: ATKAFKA_LABELER_HOST\]/)
    assert.match(out, /\[default:\s+atkafka-labels-cursor\.json\]/)
  })
})

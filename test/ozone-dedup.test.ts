// The Ozone mode's pure parts: page/boundary logic, the cursor file formats (atkafka's JSON and
// at-kafka's plain timestamp), page validation and config. Ozone itself is exercised in
// test/ozone-events.test.ts.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { CursorFileError } from '../src/cursor/file-store.ts'
import { Values } from '../src/config/config.ts'
import { resolveOptions } from '../src/config/resolve.ts'
import { ConfigError } from '../src/errors.ts'
import { ozoneConfig } from '../src/ozone/config.ts'
import { formatOzoneCursor, parseOzoneCursor } from '../src/ozone/cursor.ts'
import { type OzonePosition, START, acceptPage, newestOf } from '../src/ozone/dedup.ts'
import { OzoneResponseError } from '../src/ozone/errors.ts'
import { type ModEventView, eventTypeLabel, parsePage, toMessage } from '../src/ozone/page.ts'

const T0 = Date.parse('2026-11-22T18:28:59.198Z')
const at = (ms: number) => new Date(T0 + ms).toISOString()

function view(id: number, createdAtMs: number, type = 'modEventComment'): ModEventView {
  return {
    id,
    event: { $type: `tools.ozone.moderation.defs#${type}`, comment: `event ${id}` },
    subject: { $type: 'com.atproto.admin.defs#repoRef', did: 'did:plc:subject' },
    subjectBlobCids: [],
    createdBy: 'did:plc:moderator',
    createdAt: at(createdAtMs),
  }
}

/** Ozone's order: createdAt (as text), then id. */
function ozoneOrder(events: ModEventView[]): ModEventView[] {
  return [...events].sort((a, b) =>
    a.createdAt < b.createdAt ? -1 : a.createdAt > b.createdAt ? 1 : a.id - b.id,
  )
}

/**
 * What queryEvents returns over `visible` for one poll (createdAfter inclusive, asc, pages of
 * `limit`, following its `<createdAt>::<id>` cursor), as the list of pages.
 */
function pollPages(
  visible: ModEventView[],
  createdAfter: string | undefined,
  limit: number,
): ModEventView[][] {
  const matching = ozoneOrder(visible).filter(
    (e) => createdAfter === undefined || e.createdAt >= createdAfter,
  )
  const pages: ModEventView[][] = []
  for (let i = 0; ; i += limit) {
    const page = matching.slice(i, i + limit)
    pages.push(page)
    if (page.length < limit) return pages
  }
}

function ids(pos: OzonePosition): number[] {
  return [...pos.produced.keys()].sort((a, b) => a - b)
}

describe('acceptPage', () => {
  it('keeps only the ids at the newest timestamp when lookback is 0', () => {
    const page = [view(1, 0), view(2, 1), view(3, 1)]
    const r = acceptPage(START, page, 0)
    assert.deepEqual(
      r.fresh.map((e) => e.id),
      [1, 2, 3],
    )
    assert.equal(r.duplicates, 0)
    assert.equal(r.next.createdAfter, at(1))
    assert.deepEqual(ids(r.next), [2, 3])
    assert.equal(newestOf(r.next), at(1))
  })

  it('drops events produced already and never moves createdAfter backwards', () => {
    const first = acceptPage(START, [view(1, 5), view(2, 5)], 0).next
    const r = acceptPage(first, [view(1, 5), view(2, 5), view(3, 5)], 0)
    assert.deepEqual(
      r.fresh.map((e) => e.id),
      [3],
    )
    assert.equal(r.duplicates, 2)
    assert.equal(r.next.createdAfter, at(5))
    // A late event older than createdAfter is produced (never skipped) and forgotten at once.
    const late = acceptPage(r.next, [view(9, 2)], 0)
    assert.deepEqual(
      late.fresh.map((e) => e.id),
      [9],
    )
    assert.equal(late.next.createdAfter, at(5))
    assert.deepEqual(ids(late.next), [1, 2, 3])
  })

  it('does not mutate the position it is given', () => {
    const first = acceptPage(START, [view(1, 0)], 0).next
    acceptPage(first, [view(2, 0)], 0)
    assert.deepEqual(ids(first), [1])
  })

  it('with a lookback, keeps the ids of the window and moves createdAfter to newest - lookback', () => {
    const page = [view(1, 0), view(2, 400), view(3, 900), view(4, 1500)]
    const r = acceptPage(START, page, 1000)
    assert.equal(r.next.createdAfter, at(500))
    assert.deepEqual(ids(r.next), [3, 4])
  })

  it('every event exactly once when 250 events share one millisecond across pages of 100', () => {
    const events = [
      view(1, 0),
      ...Array.from({ length: 250 }, (_, i) => view(2 + i, 1)),
      view(252, 2),
    ]
    for (const lookback of [0, 5000]) {
      let pos = START
      const out: number[] = []
      // Several polls, as the poller does: each starts at createdAfter and follows the cursor.
      for (let poll = 0; poll < 3; poll++) {
        for (const page of pollPages(events, pos.createdAfter, 100)) {
          const r = acceptPage(pos, page, lookback)
          out.push(...r.fresh.map((e) => e.id))
          pos = r.next
        }
      }
      assert.deepEqual(
        out,
        events.map((e) => e.id),
      )
    }
  })

  it('a restart from any page boundary produces the rest exactly once', () => {
    const events = [
      ...Array.from({ length: 130 }, (_, i) => view(1 + i, 0)),
      ...Array.from({ length: 170 }, (_, i) => view(131 + i, 7)),
    ]
    for (let stopAfter = 1; stopAfter <= 3; stopAfter++) {
      let pos = START
      const out: number[] = []
      pollPages(events, undefined, 100)
        .slice(0, stopAfter)
        .forEach((page) => {
          const r = acceptPage(pos, page, 0)
          out.push(...r.fresh.map((e) => e.id))
          pos = r.next
        })
      // Restart: the saved position goes through the cursor file.
      pos = parseOzoneCursor(formatOzoneCursor('did:plc:ozone', pos, new Date()), 'f').position
      for (const page of pollPages(events, pos.createdAfter, 100)) {
        const r = acceptPage(pos, page, 0)
        out.push(...r.fresh.map((e) => e.id))
        pos = r.next
      }
      assert.deepEqual(
        out,
        events.map((e) => e.id),
        `stopped after page ${stopAfter}`,
      )
    }
  })

  it('a lookback catches an event whose transaction committed after a newer one was read', () => {
    // Event 1 got createdAt T+0 but was committed after event 2 (T+100 ms) had been polled.
    const e1 = view(1, 0)
    const e2 = view(2, 100)
    const run = (lookback: number) => {
      let pos = START
      const out: number[] = []
      for (const visible of [[e2], [e1, e2]]) {
        for (const page of pollPages(visible, pos.createdAfter, 100)) {
          const r = acceptPage(pos, page, lookback)
          out.push(...r.fresh.map((e) => e.id))
          pos = r.next
        }
      }
      return out.sort()
    }
    assert.deepEqual(run(0), [2], 'without a lookback the late event is missed')
    assert.deepEqual(run(5000), [1, 2])
  })
})

describe('Ozone cursor file', () => {
  it("reads at-kafka's plain timestamp (last createdAt + 1 ms) as createdAfter", () => {
    const cases: Array<[string, string]> = [
      ['2026-11-22T18:28:59.199Z', '2026-11-22T18:28:59.199Z'],
      // Go's RFC3339Nano trims trailing zeros.
      ['2026-11-22T18:28:59.1Z\n', '2026-11-22T18:28:59.100Z'],
      ['2026-11-22T18:28:59Z', '2026-11-22T18:28:59.000Z'],
      ['2026-11-22T19:28:59.25+01:00', '2026-11-22T18:28:59.250Z'],
    ]
    for (const [text, createdAfter] of cases) {
      const c = parseOzoneCursor(text, 'ozone-cursor.txt')
      assert.equal(c.format, 'at-kafka')
      assert.equal(c.labelerDid, undefined)
      assert.equal(c.position.createdAfter, createdAfter, text)
      assert.equal(c.position.produced.size, 0)
    }
    assert.throws(
      () => parseOzoneCursor('  \n', 'f'),
      /^CursorFileError: cursor file f is empty; to start fresh, delete it$/,
    )
  })

  it('round-trips its own JSON format, ids grouped by createdAt', () => {
    const pos: OzonePosition = {
      createdAfter: at(0),
      produced: new Map([
        [12, at(0)],
        [10, at(0)],
        [11, at(3)],
      ]),
    }
    const text = formatOzoneCursor('did:plc:ozone', pos, new Date(T0))
    const json = JSON.parse(text) as Record<string, unknown>
    assert.deepEqual(json, {
      labelerDid: 'did:plc:ozone',
      createdAfter: at(0),
      produced: { [at(0)]: [10, 12], [at(3)]: [11] },
      savedAt: at(0),
    })
    const back = parseOzoneCursor(text, 'f')
    assert.equal(back.format, 'atkafka')
    assert.equal(back.labelerDid, 'did:plc:ozone')
    assert.equal(back.position.createdAfter, at(0))
    assert.deepEqual([...back.position.produced].sort(), [...pos.produced].sort())
  })

  it('refuses files that are neither format, with a clear error', () => {
    for (const text of [
      'not a timestamp',
      '12345',
      '{"host":"wss://bsky.network","seq":5}',
      '{"createdAfter":"2026-11-22T18:28:59.198Z","produced":{"x":["a"]}}',
      '{"createdAfter":',
    ]) {
      assert.throws(
        () => parseOzoneCursor(text, 'ozone-cursor.txt'),
        (err: Error) => err instanceof CursorFileError && /ozone-cursor\.txt/.test(err.message),
        text,
      )
    }
  })
})

describe('queryEvents pages', () => {
  it('validates id and createdAt and passes everything else through', () => {
    const raw = { cursor: '1795372139198::2', events: [view(1, 0), view(2, 0)] }
    const page = parsePage(JSON.parse(JSON.stringify(raw)))
    assert.equal(page.cursor, '1795372139198::2')
    assert.deepEqual(page.events, raw.events)
    assert.deepEqual(toMessage(page.events[0]!), {
      key: '1',
      value: JSON.stringify(raw.events[0]),
      // What --kafka-headers puts on the message: the subject's DID, the event id as the cursor.
      meta: { kind: 'ozone', did: 'did:plc:subject', cursor: '1', time: at(0) },
    })
    assert.deepEqual(parsePage({ events: [] }), { events: [], cursor: undefined })
    for (const bad of [
      {},
      { events: [{ id: '1', createdAt: at(0) }] },
      { events: [{ id: 1.5, createdAt: at(0) }] },
      { events: [{ id: 1, createdAt: 'yesterday' }] },
    ]) {
      assert.throws(() => parsePage(bad), OzoneResponseError)
    }
  })

  it('labels events by the short name of their Ozone event type', () => {
    assert.equal(eventTypeLabel(view(1, 0, 'modEventTakedown')), 'modEventTakedown')
    assert.equal(eventTypeLabel({ ...view(1, 0), event: { $type: 'com.example#x' } }), 'other')
    assert.equal(eventTypeLabel({ ...view(1, 0), event: null }), 'other')
  })
})

describe('ozone-events config', () => {
  const env = {
    ATKAFKA_OZONE_PDS_HOST: 'https://pds.example.com/',
    ATKAFKA_OZONE_IDENTIFIER: 'mod.example.com',
    ATKAFKA_OZONE_PASSWORD: 'secret-pw-123',
    ATKAFKA_OZONE_LABELER_DID: 'did:plc:ar7c4by46qjdydhdevvrndac',
    ATKAFKA_BOOTSTRAP_SERVERS: 'localhost:9092',
    ATKAFKA_OUTPUT_TOPIC: 'ozone-events',
  }
  const config = (e: Record<string, string | undefined>, cli: Record<string, unknown> = {}) =>
    ozoneConfig(new Values(resolveOptions('ozone', cli, e)))

  it('takes at-kafka env vars and applies the defaults', () => {
    const c = config(env)
    assert.equal(c.pdsHost, 'https://pds.example.com')
    assert.equal(c.identifier, 'mod.example.com')
    assert.equal(c.password, 'secret-pw-123')
    assert.equal(c.labelerDid, 'did:plc:ar7c4by46qjdydhdevvrndac')
    assert.equal(c.pollIntervalMs, 1000)
    assert.equal(c.lookbackMs, 5000)
    assert.equal(c.cursorFile, 'ozone-cursor.txt')
    assert.equal(c.output.kind === 'kafka' && c.output.partitions, 4)
    const flags = config(env, { pollInterval: '250ms', lookback: '0', cursorFile: '/x/c.json' })
    assert.equal(flags.pollIntervalMs, 250)
    assert.equal(flags.lookbackMs, 0)
    assert.equal(flags.cursorFile, '/x/c.json')
  })

  it('requires the four Ozone settings and a DID, naming flag and env var', () => {
    for (const [key, flag] of [
      ['ATKAFKA_OZONE_PDS_HOST', '--pds-host'],
      ['ATKAFKA_OZONE_IDENTIFIER', '--identifier'],
      ['ATKAFKA_OZONE_PASSWORD', '--password'],
      ['ATKAFKA_OZONE_LABELER_DID', '--labeler-did'],
    ] as const) {
      assert.throws(
        () => config({ ...env, [key]: undefined }),
        (err: Error) =>
          err instanceof ConfigError && err.message.includes(flag) && err.message.includes(key),
        key,
      )
    }
    assert.throws(() => config({ ...env, ATKAFKA_OZONE_LABELER_DID: 'ozone.example.com' }), {
      name: 'ConfigError',
      message: /--labeler-did/,
    })
    assert.throws(() => config({ ...env, ATKAFKA_OZONE_PDS_HOST: 'ftp://x' }), ConfigError)
  })

  it('never echoes the password in a config error', () => {
    assert.throws(() => config({ ...env, ATKAFKA_OZONE_PASSWORD: '   ' }), {
      name: 'ConfigError',
      message: 'invalid value for ATKAFKA_OZONE_PASSWORD (--password): expected a non-empty value',
    })
  })
})

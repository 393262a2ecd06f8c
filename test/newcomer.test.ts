// What a newcomer meets in the first hour: an old Node, cursor files, the progress line while no
// connection is up, the cursor metric right after start, a closed stdout pipe, a busy metrics port.
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { once } from 'node:events'
import { createServer, type AddressInfo } from 'node:net'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { freePort, httpGet, metricValue, spawnAtkafka } from './support/atkafka.ts'
import { loadFrames } from './support/fixtures.ts'
import { reseqFrame } from './support/frames.ts'
import { startReplayRelay } from './support/replay-relay.ts'

const root = join(import.meta.dirname, '..')

/** Run bin/atkafka on a Node that reports `version` (the real Node, told to say otherwise). */
function binOn(version: string, args: string[]) {
  const fake = `Object.defineProperty(process,"versions",{value:{...process.versions,node:"${version}"}});Object.defineProperty(process,"version",{value:"v${version}"})`
  return spawnSync(
    process.execPath,
    [
      '--import',
      `data:text/javascript,${encodeURIComponent(fake)}`,
      join(root, 'bin', 'atkafka'),
      ...args,
    ],
    { encoding: 'utf8' },
  )
}

describe('Node.js version', () => {
  it('on a Node older than "engines", bin/atkafka prints one line naming the Node needed', () => {
    for (const version of ['20.11.1', '22.21.0']) {
      const r = binOn(version, ['firehose', 'relay', '--stdout'])
      assert.equal(r.status, 1)
      assert.equal(r.stdout, '')
      assert.match(
        r.stderr,
        new RegExp(
          `^atkafka: Node.js 22.22 or newer is needed; this is v${version.replace(/\./g, '\\.')} .*\n$`,
        ),
      )
    }
  })

  it('engines, scripts/node.sh and the README name the same minimum', async () => {
    const pkg = JSON.parse(await readFile(join(root, 'package.json'), 'utf8')) as {
      engines: { node: string }
    }
    assert.equal(pkg.engines.node, '>=22.22')
    const bin = readFileSync(join(root, 'bin', 'atkafka'), 'utf8')
    assert.match(bin, /var need = \[22, 22\]/)
    const nodeSh = readFileSync(join(root, 'scripts', 'node.sh'), 'utf8')
    assert.match(nodeSh, /Node\.js >= 22\.22/)
    assert.match(nodeSh, /"\$major" -eq 22 \] && \[ "\$minor" -ge 22 \]/)
    const readme = readFileSync(join(root, 'README.md'), 'utf8')
    assert.match(readme, /You need Node\.js ≥ 22\.22/)
    // The quickstart's first command puts a recent enough Node first in PATH.
    assert.match(
      readme,
      /## Quickstart[\s\S]*?```bash\nexport PATH="\$\(bash scripts\/node\.sh\):\$PATH"/,
    )
  })
})

describe('cursor files and start-up state (relay mode, --stdout)', () => {
  let dir: string
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'atkafka-newcomer-'))
  })
  after(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  const relayArgs = (host: string, cursorFile: string) => [
    'firehose',
    'relay',
    '--stdout',
    '--no-event-metadata',
    '--relay-host',
    host,
    '--cursor-file',
    cursorFile,
  ]

  it('an empty or blank cursor file: exit 1, one line saying how to start fresh', async () => {
    const port = await freePort()
    for (const text of ['', ' \n']) {
      const file = join(dir, 'empty.json')
      await writeFile(file, text)
      const p = await spawnAtkafka(relayArgs(`ws://127.0.0.1:${port}`, file))
      assert.equal(await p.exited, 1)
      assert.equal(
        p
          .stderr()
          .split('\n')
          .filter((l) => l.startsWith('atkafka:'))
          .join('\n'),
        `atkafka: CursorFileError: cursor file ${file} is empty; to start fresh, delete it (or give --cursor <seq> to choose where)`,
      )
      assert.equal(await readFile(file, 'utf8'), text, 'the file is left as it was')
    }
  })

  it('a negative or fractional seq, in the file or --cursor, is refused', async () => {
    const port = await freePort()
    const file = join(dir, 'negative.json')
    await writeFile(file, JSON.stringify({ host: `ws://127.0.0.1:${port}`, seq: -3 }))
    const p = await spawnAtkafka(relayArgs(`ws://127.0.0.1:${port}`, file))
    assert.equal(await p.exited, 1)
    assert.match(p.stderr(), /negative "seq" \(-3\)/)
    for (const bad of ['-5', '1.5', 'x']) {
      const q = await spawnAtkafka([...relayArgs(`ws://127.0.0.1:${port}`, file), '--cursor', bad])
      assert.equal(await q.exited, 2)
      assert.match(
        q.stderr(),
        new RegExp(
          `invalid value "${bad.replace('.', '\\.')}" for --cursor \\(ATKAFKA_CURSOR\\): expected an integer from 0`,
        ),
      )
    }
  })

  it('a cursor file in a missing directory: the directory is created', async () => {
    const port = await freePort()
    const file = join(dir, 'new', 'sub', 'c.json')
    const p = await spawnAtkafka(relayArgs(`ws://127.0.0.1:${port}`, file))
    try {
      await p.waitFor(/metrics server listening/)
      p.child.kill('SIGTERM')
      assert.equal(await p.exited, 0, p.stderr())
    } finally {
      p.child.kill('SIGKILL')
    }
    const blocker = join(dir, 'blocker')
    await writeFile(blocker, 'a file, not a directory')
    const q = await spawnAtkafka(relayArgs(`ws://127.0.0.1:${port}`, join(blocker, 'c.json')))
    assert.equal(await q.exited, 1)
    assert.match(q.stderr(), /atkafka: CursorFileError: cursor file .* is not writable/)
  })

  it('no relay up: atkafka_cursor_seq is the loaded cursor at once; the progress line says connecting, with the error', async () => {
    const port = await freePort()
    const host = `ws://127.0.0.1:${port}`
    const file = join(dir, 'loaded.json')
    await writeFile(file, JSON.stringify({ host, seq: 12345 }))
    const p = await spawnAtkafka(relayArgs(host, file))
    try {
      await p.waitFor(/metrics server listening/)
      const metrics = (await httpGet(p.metricsPort, '/metrics')).body
      assert.equal(metricValue(metrics, 'atkafka_cursor_seq'), 12345)
      await p.waitFor(/"msg":"progress"/, 20000)
      const line = p
        .stderr()
        .split('\n')
        .find((l) => l.includes('"msg":"progress"'))!
      const progress = JSON.parse(line) as Record<string, unknown>
      assert.equal(progress.state, 'connecting')
      assert.match(String(progress.lastError), /ECONNREFUSED/)
      assert.equal(progress.lagSeconds, undefined)
      assert.equal(progress.cursor, 12345)
    } finally {
      p.child.kill('SIGKILL')
    }
  })
})

describe('a closed stdout pipe (atkafka firehose relay --stdout | head -3)', () => {
  it('stops quietly: exit 0, no stack trace, the cursor only over what was written', async (t) => {
    const frames = loadFrames().map((f, i) => ({ seq: i + 1, bytes: reseqFrame(f, i + 1) }))
    const relay = await startReplayRelay({ frames, pace: { burst: 10, intervalMs: 20 } })
    t.after(() => relay.close())
    const dir = await mkdtemp(join(tmpdir(), 'atkafka-epipe-'))
    t.after(() => rm(dir, { recursive: true, force: true }))
    const file = join(dir, 'c.json')
    const p = await spawnAtkafka([
      'firehose',
      'relay',
      '--stdout',
      '--no-event-metadata',
      '--relay-host',
      relay.url,
      '--cursor-file',
      file,
    ])
    // As `head -3` does: read three lines, then close the pipe.
    const out = p.child.stdout!
    out.on('data', () => {
      if (p.stdout().split('\n').length > 3) out.destroy()
    })
    assert.equal(await p.exited, 0, p.stderr())
    assert.doesNotMatch(p.stderr(), /EPIPE|Error|^\s+at /m)
    assert.match(p.stderr(), /stdout was closed by its reader; stopping/)
    const { seq } = JSON.parse(await readFile(file, 'utf8')) as { seq: number }
    assert.ok(seq >= 1 && seq < frames.length, `cursor ${seq} of ${frames.length} frames`)
  })
})

describe('a busy metrics port', () => {
  it('exit 1 with one line naming the address and --metrics-listen-address', async (t) => {
    const busy = createServer()
    busy.listen(0, '127.0.0.1')
    await once(busy, 'listening')
    t.after(() => busy.close())
    const { port } = busy.address() as AddressInfo
    const p = await spawnAtkafka(
      ['firehose', 'relay', '--stdout', '--no-event-metadata', '--relay-host', 'ws://127.0.0.1:9'],
      { metricsPort: port },
    )
    assert.equal(await p.exited, 1)
    const lines = p
      .stderr()
      .split('\n')
      .filter((l) => l.startsWith('atkafka:'))
    assert.deepEqual(lines, [
      `atkafka: MetricsListenError: the metrics server cannot listen: 127.0.0.1:${port} is already in use by another process (choose another with --metrics-listen-address or METRICS_LISTEN_ADDRESS)`,
    ])
  })
})

describe('ozone-events with an unreachable PDS', () => {
  it('the retried failure names ECONNREFUSED and the address', async () => {
    const port = await freePort()
    const pds = `http://127.0.0.1:${port}`
    const p = await spawnAtkafka([
      'ozone-events',
      '--stdout',
      '--pds-host',
      pds,
      '--identifier',
      'mod.test',
      '--password',
      'not-shown',
      '--labeler-did',
      'did:plc:ozone',
    ])
    try {
      await p.waitFor(/Ozone request failed; retrying/)
      const warning = p
        .stderr()
        .split('\n')
        .find((l) => l.includes('Ozone request failed; retrying'))!
      assert.equal(
        (JSON.parse(warning) as { err: string }).err,
        `cannot log in to ${pds}: cannot connect: ECONNREFUSED 127.0.0.1:${port}`,
      )
    } finally {
      p.child.kill('SIGKILL')
    }
  })
})

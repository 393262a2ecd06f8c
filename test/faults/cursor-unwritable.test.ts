// Fault 6: the cursor file cannot be written (a read-only directory, a full disk, a directory
// that turns read-only while running): atkafka says so in one clear line and stops with exit
// code 1 rather than carry on without durability; what it produced is in Kafka and a restart
// with a writable directory loses nothing.
//
// The read-only and full file systems are tmpfs mounts inside a user and mount namespace of
// the atkafka process only (unshare): no privileges on the host are needed, and root, which
// ignores permission bits, is refused too.
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { consumeAll } from '../harness/kafka.ts'
import { eventually, spawnAtkafka, relayToKafka } from '../support/atkafka.ts'
import {
  type NamespacedAtkafka,
  cursorSeq,
  idsOf,
  report,
  spawnAtkafkaInNamespace,
  syntheticStream,
  tally,
} from '../support/faults.ts'
import { startReplayRelay } from '../support/replay-relay.ts'

const bootstrap = process.env.KAFKA_BOOTSTRAP_SERVERS

/** Exit code, or a failure with the output if it takes longer than `ms`. */
async function exitWithin(p: NamespacedAtkafka, ms: number): Promise<number | string> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      p.child.kill('SIGKILL')
      reject(new Error(`atkafka still running after ${ms} ms:\n${p.output().slice(-3000)}`))
    }, ms)
  })
  try {
    return await Promise.race([p.exited, late])
  } finally {
    clearTimeout(timer)
  }
}

describe('fault: the cursor file cannot be written', () => {
  let dir: string
  before(async () => {
    assert.ok(bootstrap, 'KAFKA_BOOTSTRAP_SERVERS must point at the test broker (npm test sets it)')
    dir = await mkdtemp(join(tmpdir(), 'atkafka-fault-cursor-'))
  })
  after(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  const relayArgs = (url: string, topic: string, cursorFile: string) => [
    ...relayToKafka(url, bootstrap!, topic),
    '--topic-partitions',
    '4',
    '--cursor-file',
    cursorFile,
  ]

  it('read-only directory at start: one clear line, exit 1, nothing read', async () => {
    const stream = syntheticStream({ commits: 10, tag: 'ro' })
    const relay = await startReplayRelay({ frames: stream.frames })
    const mount = await mkdtemp(join(dir, 'ro-'))
    try {
      const p = await spawnAtkafkaInNamespace(
        'mount -t tmpfs -o ro,size=64k atkafka-ro "$1"',
        mount,
        relayArgs(relay.url, 'faults-cursor-ro', join(mount, 'cursor.json')),
      )
      assert.equal(await exitWithin(p, 30000), 1, p.output())
      const lines = p.stderr().trim().split('\n')
      assert.equal(lines.length, 1, p.stderr())
      assert.match(
        lines[0]!,
        /^atkafka: CursorFileError: cursor file .*cursor\.json is not writable: .*EROFS: read-only file system/,
      )
      assert.equal(relay.connections, 0, 'never connected to the relay')
      console.log(`cursor read-only at start: ${lines[0]}`)
    } finally {
      await relay.close()
    }
  })

  for (const variant of [
    {
      name: 'a full disk',
      // One page, filled: the writability probe (an empty file) passes, the first save fails.
      setup:
        'mount -t tmpfs -o size=4k atkafka-full "$1"\n' +
        'dd if=/dev/zero of="$1/filler" bs=4096 count=1 2>/dev/null || true',
      error: /ENOSPC: no space left on device/,
      afterMs: 0,
    },
    {
      name: 'the directory turning read-only',
      setup:
        'mount -t tmpfs -o size=64k atkafka-rw "$1"\n' +
        '(sleep 4; mount -o remount,ro "$1") </dev/null >/dev/null 2>&1 &',
      error: /EROFS: read-only file system/,
      afterMs: 4000,
    },
  ]) {
    it(`${variant.name} while streaming: one clear line, exit 1; a restart loses nothing`, async () => {
      const stream = syntheticStream({ commits: 2000, tag: `cf${variant.afterMs}` })
      // About 1,000 ops/s: still streaming when the save fails.
      const relay = await startReplayRelay({
        frames: stream.frames,
        pace: { burst: 2, intervalMs: 20 },
      })
      const topic = `faults-cursor-${variant.afterMs === 0 ? 'full' : 'readonly'}`
      const mount = await mkdtemp(join(dir, 'ns-'))
      const started = Date.now()
      let stoppedAfter = 0
      try {
        const p = await spawnAtkafkaInNamespace(
          variant.setup,
          mount,
          relayArgs(relay.url, topic, join(mount, 'cursor.json')),
        )
        assert.equal(await exitWithin(p, 60000), 1, p.output())
        stoppedAfter = Date.now() - started
        const lines = p.stderr().trim().split('\n')
        assert.equal(lines.length, 1, p.stderr())
        assert.match(
          lines[0]!,
          /^atkafka: CursorFileError: cannot write cursor file .*cursor\.json: /,
        )
        assert.match(lines[0]!, variant.error)
        assert.match(p.output(), /"msg":"fatal error, shutting down"/)
        console.log(`cursor on ${variant.name}: stopped after ${stoppedAfter} ms: ${lines[0]}`)
        assert.ok(relay.sent < stream.frames.length, 'it stopped before the end of the stream')
        if (variant.afterMs > 0) {
          assert.ok(stoppedAfter >= variant.afterMs, 'it streamed until the directory turned')
        }
      } finally {
        await relay.close()
      }

      // Restart with a writable cursor file: no cursor was kept, so it starts again (the
      // replay relay serves everything without a cursor) and nothing is missing.
      const again = await startReplayRelay({ frames: stream.frames })
      const cursorFile = join(dir, `${topic}.json`)
      const q = await spawnAtkafka(relayArgs(again.url, topic, cursorFile))
      try {
        await eventually(
          async () => (await cursorSeq(cursorFile)) === stream.lastSeq,
          60000,
          'the cursor at the end',
        )
        q.child.kill('SIGTERM')
        assert.equal(await q.exited, 0, q.stderr())
      } finally {
        q.child.kill('SIGKILL')
        await again.close()
      }
      const got = await consumeAll(bootstrap!, topic, {
        expected: stream.uris.length,
        idleMs: 1000,
        timeoutMs: 60000,
      })
      const t = tally(
        stream.uris.map((u) => `${u}#create`),
        idsOf(got),
      )
      report(
        `cursor-${variant.afterMs === 0 ? 'disk-full' : 'turns-read-only'}`,
        t,
        `stopped with exit code 1 ${stoppedAfter} ms after the start; restarted with a writable file`,
      )
      assert.equal(t.lost, 0)
    })
  }
})

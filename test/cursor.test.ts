import assert from 'node:assert/strict'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { CursorFileError, RelayCursorFile, ThrottledSaver } from '../src/cursor/file-store.ts'
import { ConsecutiveTracker } from '../src/cursor/tracker.ts'

describe('ConsecutiveTracker', () => {
  it('advances only over the contiguous run of completed units', () => {
    const t = new ConsecutiveTracker<number>(5)
    const a = t.add(10)
    const info = t.add(undefined)
    const b = t.add(11)
    const c = t.add(12)
    c()
    assert.equal(t.committed, 5)
    a()
    assert.equal(t.committed, 10)
    b()
    assert.equal(t.committed, 10, 'blocked by the info unit')
    info()
    assert.equal(t.committed, 12)
    assert.equal(t.outstanding, 0)
  })
})

describe('RelayCursorFile', () => {
  it('round-trips atomically and rejects a corrupt file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'atkafka-cursor-'))
    try {
      const file = new RelayCursorFile(join(dir, 'c.json'))
      assert.equal(await file.load(), undefined)
      await file.save({ host: 'wss://relay', seq: 42 })
      assert.deepEqual(await file.load(), { host: 'wss://relay', seq: 42 })
      await writeFile(join(dir, 'c.json'), '{nope')
      await assert.rejects(file.load(), CursorFileError)
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })

  it('reports an unwritable path (a file where the directory should be)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'atkafka-cursor-'))
    try {
      await writeFile(join(dir, 'blocker'), 'x')
      const file = new RelayCursorFile(join(dir, 'blocker', 'c.json'))
      await assert.rejects(file.checkWritable(), /not writable/)
      const errors: Error[] = []
      const saver = new ThrottledSaver({
        store: file,
        intervalMs: 10,
        onError: (e) => errors.push(e),
      })
      saver.update({ host: 'h', seq: 1 })
      await saver.flush()
      assert.equal(errors.length, 1)
      assert.ok(errors[0] instanceof CursorFileError)
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })

  it('throttles saves and flushes the latest value', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'atkafka-cursor-'))
    try {
      const path = join(dir, 'c.json')
      const saved: number[] = []
      const saver = new ThrottledSaver({
        store: new RelayCursorFile(path),
        intervalMs: 60000,
        onError: (e) => assert.fail(e),
        onSaved: (c) => saved.push(c.seq),
      })
      for (let i = 1; i <= 100; i++) saver.update({ host: 'h', seq: i })
      assert.deepEqual(saved, [])
      await saver.flush()
      assert.deepEqual(saved, [100])
      assert.equal((JSON.parse(await readFile(path, 'utf8')) as { seq: number }).seq, 100)
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})

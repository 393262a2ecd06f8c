import assert from 'node:assert/strict'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { CursorFileError, RelayCursorFile, ThrottledSaver } from '../src/cursor/file-store.ts'
import { ReplayBound } from '../src/cursor/replay-bound.ts'
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

  it('refuses an empty or blank file and a negative or fractional seq; creates a missing directory', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'atkafka-cursor-'))
    try {
      const path = join(dir, 'c.json')
      const file = new RelayCursorFile(path)
      for (const text of ['', '  \n\t']) {
        await writeFile(path, text)
        await assert.rejects(
          file.load(),
          new RegExp(
            `^CursorFileError: cursor file ${path} is empty; to start fresh, delete it \\(or give --cursor <seq> to choose where\\)$`,
          ),
        )
      }
      await writeFile(path, JSON.stringify({ host: 'h', seq: -1 }))
      await assert.rejects(file.load(), /negative "seq" \(-1\)/)
      await writeFile(path, JSON.stringify({ host: 'h', seq: 1.5 }))
      await assert.rejects(file.load(), /no valid "host" and "seq"/)
      const nested = new RelayCursorFile(join(dir, 'a', 'b', 'c.json'))
      await nested.checkWritable()
      await nested.save({ host: 'h', seq: 3 })
      assert.deepEqual(await nested.load(), { host: 'h', seq: 3 })
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

  it('saveNow writes at once; saves asked for during a write join one, never pile up', async () => {
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
      saver.update({ host: 'h', seq: 1 })
      saver.saveNow()
      await new Promise((r) => setImmediate(r))
      // The first write is under way: these all join one more.
      for (let i = 2; i <= 1000; i++) {
        saver.update({ host: 'h', seq: i })
        saver.saveNow()
      }
      await saver.flush()
      assert.deepEqual(saved, [1, 1000])
      assert.equal((JSON.parse(await readFile(path, 'utf8')) as { seq: number }).seq, 1000)
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})

describe('ReplayBound', () => {
  it('pauses while in flight plus unsaved reach the maximum; a save resumes', () => {
    const calls: string[] = []
    const bound = new ReplayBound({
      max: 100,
      saveNow: () => calls.push('save'),
      setPaused: (p) => calls.push(p ? 'pause' : 'resume'),
    })
    bound.read(60)
    assert.deepEqual(calls, [])
    bound.acknowledged(30, 30) // 30 in flight + 30 unsaved
    bound.read(70) // 70 + 30
    assert.deepEqual(calls, ['pause', 'save'])
    bound.acknowledged(70, 0) // 100 acknowledged, none saved: still paused; an early save
    assert.deepEqual(calls, ['pause', 'save', 'save'])
    assert.equal(bound.unsaved, 100)
    bound.saved(40, 0) // 60 unsaved: still above half
    assert.equal(bound.paused, true)
    bound.saved(100, 0)
    assert.deepEqual(calls, ['pause', 'save', 'save', 'resume'])
    assert.equal(bound.unsaved, 0)
  })

  it('saves early once half the maximum was acknowledged since the last early save', () => {
    let saves = 0
    const bound = new ReplayBound({ max: 1000, saveNow: () => saves++, setPaused: () => {} })
    for (let i = 0; i < 100; i++) {
      bound.acknowledged(10, 0)
      bound.saved(bound.acked, 0)
    }
    assert.equal(saves, 2)
  })
})

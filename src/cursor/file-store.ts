import { mkdir, open, readFile, rename, unlink } from 'node:fs/promises'
import { dirname, basename, join } from 'node:path'
import { AtKafkaError, FatalError } from '../errors.ts'

export class CursorFileError extends FatalError {
  override name = 'CursorFileError'
}

/** Load and save one small text file atomically: write a temp file, fsync, rename. */
export class AtomicFile {
  readonly path: string
  constructor(path: string) {
    this.path = path
  }

  async read(): Promise<string | undefined> {
    try {
      return await readFile(this.path, 'utf8')
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
      throw new CursorFileError(`cannot read cursor file ${this.path}: ${String(err)}`, {
        cause: err,
      })
    }
  }

  /** Fail now, with a clear error, if the file could not be written later. */
  async checkWritable(): Promise<void> {
    const probe = join(dirname(this.path), `.${basename(this.path)}.${process.pid}.probe`)
    try {
      await mkdir(dirname(this.path), { recursive: true })
      const fh = await open(probe, 'w')
      await fh.close()
      await unlink(probe)
    } catch (err) {
      throw new CursorFileError(`cursor file ${this.path} is not writable: ${String(err)}`, {
        cause: err,
      })
    }
  }

  async write(text: string): Promise<void> {
    const tmp = join(dirname(this.path), `.${basename(this.path)}.${process.pid}.tmp`)
    try {
      await mkdir(dirname(this.path), { recursive: true })
      const fh = await open(tmp, 'w')
      try {
        await fh.writeFile(text, 'utf8')
        await fh.sync()
      } finally {
        await fh.close()
      }
      await rename(tmp, this.path)
    } catch (err) {
      await unlink(tmp).catch(() => {})
      throw new CursorFileError(`cannot write cursor file ${this.path}: ${String(err)}`, {
        cause: err,
      })
    }
  }
}

/**
 * An empty cursor file is an error, never a start from the live stream: a file cut short (a full
 * disk, a crash of the machine) would otherwise silently skip every event since the last save.
 */
export function emptyCursorFile(path: string, cursorFlag = true): CursorFileError {
  return new CursorFileError(
    `cursor file ${path} is empty; to start fresh, delete it${cursorFlag ? ' (or give --cursor <seq> to choose where)' : ''}`,
  )
}

/** The relay cursor file: which relay, which seq. */
export interface RelayCursor {
  host: string
  seq: number
}

export interface CursorStore<T> {
  load(): Promise<T | undefined>
  save(value: T): Promise<void>
  /** Throws a clear error when saving cannot work (read-only directory, …). */
  checkWritable(): Promise<void>
}

/** JSON cursor file `{"host": …, "seq": …, "savedAt": …}`. */
export class RelayCursorFile implements CursorStore<RelayCursor> {
  readonly #file: AtomicFile
  constructor(path: string) {
    this.#file = new AtomicFile(path)
  }

  get path(): string {
    return this.#file.path
  }

  checkWritable(): Promise<void> {
    return this.#file.checkWritable()
  }

  async load(): Promise<RelayCursor | undefined> {
    const text = await this.#file.read()
    if (text === undefined) return undefined
    if (text.trim() === '') throw emptyCursorFile(this.path)
    let parsed: unknown
    try {
      parsed = JSON.parse(text)
    } catch (err) {
      throw new CursorFileError(`cursor file ${this.path} is not valid JSON`, { cause: err })
    }
    const { host, seq } = (parsed ?? {}) as { host?: unknown; seq?: unknown }
    if (typeof host !== 'string' || typeof seq !== 'number' || !Number.isSafeInteger(seq)) {
      throw new CursorFileError(`cursor file ${this.path} has no valid "host" and "seq"`)
    }
    if (seq < 0) {
      throw new CursorFileError(
        `cursor file ${this.path} has a negative "seq" (${seq}): sequence numbers start at 0`,
      )
    }
    return { host, seq }
  }

  async save(value: RelayCursor): Promise<void> {
    await this.#file.write(
      JSON.stringify({ host: value.host, seq: value.seq, savedAt: new Date().toISOString() }) +
        '\n',
    )
  }
}

/**
 * Saves the latest value at most once per `intervalMs`, and on {@link saveNow} and
 * {@link flush}. Writes never overlap and never pile up: a save asked for while one waits to
 * start joins it, and that one writes the value latest when it starts. A failed save is fatal:
 * the caller must stop rather than carry on without durability.
 */
export class ThrottledSaver<T> {
  readonly #store: Pick<CursorStore<T>, 'save'>
  readonly #intervalMs: number
  readonly #onError: (err: AtKafkaError) => void
  readonly #onSaved: (value: T) => void
  #latest: T | undefined
  #saved: T | undefined
  #timer: NodeJS.Timeout | undefined
  #writing: Promise<void> = Promise.resolve()
  /** A save is queued behind the current write and has not started yet. */
  #queued = false

  constructor(opts: {
    store: Pick<CursorStore<T>, 'save'>
    intervalMs: number
    onError: (err: AtKafkaError) => void
    onSaved?: (value: T) => void
  }) {
    this.#store = opts.store
    this.#intervalMs = opts.intervalMs
    this.#onError = opts.onError
    this.#onSaved = opts.onSaved ?? (() => {})
  }

  update(value: T): void {
    this.#latest = value
    if (this.#timer === undefined) {
      this.#timer = setTimeout(() => {
        this.#timer = undefined
        void this.#save()
      }, this.#intervalMs)
      this.#timer.unref()
    }
  }

  /** Save the latest value without waiting for the interval (after the write in progress). */
  saveNow(): void {
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer)
      this.#timer = undefined
    }
    void this.#save()
  }

  #save(): Promise<void> {
    if (this.#queued) return this.#writing
    this.#queued = true
    this.#writing = this.#writing.then(async () => {
      this.#queued = false
      const value = this.#latest
      if (value === undefined || value === this.#saved) return
      try {
        await this.#store.save(value)
        this.#saved = value
        this.#onSaved(value)
      } catch (err) {
        this.#onError(
          err instanceof AtKafkaError ? err : new CursorFileError(String(err), { cause: err }),
        )
      }
    })
    return this.#writing
  }

  /** Write the latest value now (on shutdown). */
  async flush(): Promise<void> {
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer)
      this.#timer = undefined
    }
    await this.#save()
  }
}

import {
  AtomicFile,
  type CursorStore,
  CursorFileError,
  emptyCursorFile,
} from '../cursor/file-store.ts'

/** What the Jetstream cursor file holds: the instance, and the `time_us` Kafka acknowledged. */
export interface JetstreamCursor {
  host: string
  timeUs: number
}

/** Smallest `time_us` Jetstream reads as a time (below it, a cursor is a v2 sequence number). */
export const MIN_TIME_US = 1e15

/** JSON cursor file `{"host", "time_us", "savedAt"}`, written atomically. */
export class JetstreamCursorFile implements CursorStore<JetstreamCursor> {
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

  async load(): Promise<JetstreamCursor | undefined> {
    const text = await this.#file.read()
    if (text === undefined) return undefined
    if (text.trim() === '') throw emptyCursorFile(this.path, false)
    let parsed: unknown
    try {
      parsed = JSON.parse(text)
    } catch (err) {
      throw new CursorFileError(`cursor file ${this.path} is not valid JSON`, { cause: err })
    }
    const { host, time_us: timeUs } = (parsed ?? {}) as { host?: unknown; time_us?: unknown }
    if (
      typeof host !== 'string' ||
      typeof timeUs !== 'number' ||
      !Number.isSafeInteger(timeUs) ||
      timeUs < MIN_TIME_US
    ) {
      throw new CursorFileError(
        `cursor file ${this.path} has no valid "host" and "time_us" (a Jetstream cursor file)`,
      )
    }
    return { host, timeUs }
  }

  async save(value: JetstreamCursor): Promise<void> {
    await this.#file.write(
      JSON.stringify({
        host: value.host,
        time_us: value.timeUs,
        savedAt: new Date().toISOString(),
      }) + '\n',
    )
  }
}

import {
  AtomicFile,
  type CursorStore,
  CursorFileError,
  emptyCursorFile,
} from '../cursor/file-store.ts'
import type { OzonePosition } from './dedup.ts'

/** What the Ozone cursor file holds. */
export interface OzoneCursor {
  /** The Ozone the position belongs to; absent in at-kafka's file. */
  labelerDid: string | undefined
  position: OzonePosition
  /** `at-kafka` when read from at-kafka's plain-text file. */
  format: 'atkafka' | 'at-kafka'
}

/**
 * Parse the cursor file. Two formats:
 * - atkafka's JSON: `{"labelerDid", "createdAfter", "produced": {"<createdAt>": [id, …]}, "savedAt"}`
 *   — every event created before `createdAfter` was produced, and so were the listed ids.
 * - at-kafka's plain text: one RFC 3339 timestamp, the last produced `createdAt` + 1 ms
 *   (`ozone-cursor.txt`). Read as "every event created before it was produced".
 * An empty file is an error (see {@link emptyCursorFile}).
 */
export function parseOzoneCursor(text: string, path: string): OzoneCursor {
  const trimmed = text.trim()
  if (trimmed === '') throw emptyCursorFile(path, false)
  if (!trimmed.startsWith('{')) {
    const ms = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/i.test(trimmed)
      ? Date.parse(trimmed)
      : NaN
    if (Number.isNaN(ms)) {
      throw new CursorFileError(
        `cursor file ${path} is neither atkafka's JSON nor an at-kafka timestamp`,
      )
    }
    return {
      labelerDid: undefined,
      position: { createdAfter: new Date(ms).toISOString(), produced: new Map() },
      format: 'at-kafka',
    }
  }
  let parsed: unknown
  try {
    parsed = JSON.parse(trimmed)
  } catch (err) {
    throw new CursorFileError(`cursor file ${path} is not valid JSON`, { cause: err })
  }
  const { labelerDid, createdAfter, produced } = parsed as Record<string, unknown>
  const invalid = (what: string) =>
    new CursorFileError(`cursor file ${path} is not an Ozone cursor: ${what}`)
  if (labelerDid !== undefined && typeof labelerDid !== 'string') {
    throw invalid('"labelerDid" is not a string')
  }
  if (typeof createdAfter !== 'string' || Number.isNaN(Date.parse(createdAfter))) {
    throw invalid('no valid "createdAfter"')
  }
  const ids = new Map<number, string>()
  if (produced !== undefined) {
    if (typeof produced !== 'object' || produced === null || Array.isArray(produced)) {
      throw invalid('"produced" is not an object')
    }
    for (const [createdAt, list] of Object.entries(produced)) {
      if (!Array.isArray(list) || !list.every((id) => Number.isSafeInteger(id))) {
        throw invalid(`"produced" of ${createdAt} is not a list of integer ids`)
      }
      for (const id of list as number[]) ids.set(id, createdAt)
    }
  }
  return { labelerDid, position: { createdAfter, produced: ids }, format: 'atkafka' }
}

/** Serialise a position (ids grouped by `createdAt`), one line of JSON. */
export function formatOzoneCursor(labelerDid: string, pos: OzonePosition, now: Date): string {
  const produced: Record<string, number[]> = {}
  for (const [id, createdAt] of pos.produced) (produced[createdAt] ??= []).push(id)
  for (const list of Object.values(produced)) list.sort((a, b) => a - b)
  return (
    JSON.stringify({
      labelerDid,
      createdAfter: pos.createdAfter,
      produced,
      savedAt: now.toISOString(),
    }) + '\n'
  )
}

/** The Ozone cursor file, written atomically; reads at-kafka's format too. */
export class OzoneCursorFile implements CursorStore<OzonePosition> {
  readonly #file: AtomicFile
  readonly #labelerDid: string
  constructor(path: string, labelerDid: string) {
    this.#file = new AtomicFile(path)
    this.#labelerDid = labelerDid
  }

  get path(): string {
    return this.#file.path
  }

  checkWritable(): Promise<void> {
    return this.#file.checkWritable()
  }

  /** The position only; use {@link read} to see which labeler and format it came from. */
  async load(): Promise<OzonePosition | undefined> {
    return (await this.read())?.position
  }

  async read(): Promise<OzoneCursor | undefined> {
    const text = await this.#file.read()
    return text === undefined ? undefined : parseOzoneCursor(text, this.path)
  }

  /** Saving a position without `createdAfter` (nothing produced yet) is a no-op. */
  async save(pos: OzonePosition): Promise<void> {
    if (pos.createdAfter === undefined) return
    await this.#file.write(formatOzoneCursor(this.#labelerDid, pos, new Date()))
  }
}

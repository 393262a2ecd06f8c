import type { ModEventView } from './page.ts'

/**
 * Where the Ozone stream stands. Ozone filters and sorts on `createdAt` as stored (an ISO
 * string compared as text) and then on `id`, so `createdAt` values are compared as strings
 * here too: an id is kept exactly as long as a query from `createdAfter` can return it again.
 */
export interface OzonePosition {
  /**
   * Inclusive lower bound of the next query (`createdAfter`): every event created before it
   * has been produced. `undefined` before the first event: start at Ozone's oldest event.
   */
  readonly createdAfter: string | undefined
  /** Events already produced with `createdAt >= createdAfter`: id → createdAt. */
  readonly produced: ReadonlyMap<number, string>
}

export const START: OzonePosition = { createdAfter: undefined, produced: new Map() }

export interface PageResult {
  /** Events of the page not produced before, in page order. */
  fresh: ModEventView[]
  /** Events of the page dropped because they were produced already. */
  duplicates: number
  /** The position once `fresh` is produced. A new object: positions are never mutated. */
  next: OzonePosition
}

/** The newest `createdAt` the position knows: the largest produced one, else `createdAfter`. */
export function newestOf(pos: OzonePosition): string | undefined {
  let newest = pos.createdAfter
  for (const c of pos.produced.values()) if (newest === undefined || c > newest) newest = c
  return newest
}

/** `iso` moved `ms` milliseconds back, in `toISOString` form. */
function earlier(iso: string, ms: number): string {
  return new Date(Date.parse(iso) - ms).toISOString()
}

/**
 * Accept one page (oldest first): drop the events already produced, and move `createdAfter` to
 * `newest - lookbackMs` (never backwards), forgetting the ids created before it. With
 * `lookbackMs` 0 this keeps only the ids at the newest timestamp — enough when Ozone commits
 * events in `createdAt` order; a lookback also catches an event whose transaction commits after
 * a newer event was already read.
 */
export function acceptPage(
  pos: OzonePosition,
  events: readonly ModEventView[],
  lookbackMs: number,
): PageResult {
  const produced = new Map(pos.produced)
  const fresh: ModEventView[] = []
  let duplicates = 0
  let newest = newestOf(pos)
  for (const e of events) {
    if (produced.has(e.id)) {
      duplicates++
      continue
    }
    produced.set(e.id, e.createdAt)
    fresh.push(e)
    if (newest === undefined || e.createdAt > newest) newest = e.createdAt
  }
  let createdAfter = pos.createdAfter
  if (newest !== undefined) {
    const floor = lookbackMs > 0 ? earlier(newest, lookbackMs) : newest
    if (createdAfter === undefined || floor > createdAfter) createdAfter = floor
  }
  if (createdAfter !== undefined) {
    for (const [id, c] of produced) if (c < createdAfter) produced.delete(id)
  }
  return { fresh, duplicates, next: { createdAfter, produced } }
}

/**
 * Collection filters, compiled once. A pattern matches a collection exactly or as a namespace
 * prefix: `app.bsky` and `app.bsky.*` both match `app.bsky.feed.post` (as at-kafka); `*` alone
 * matches every collection.
 */
export type CollectionFilter = (collection: string) => boolean

export function normalizeCollectionPattern(pattern: string): string {
  let p = pattern.trim()
  if (p.endsWith('.*')) p = p.slice(0, -2)
  if (p.endsWith('.')) p = p.slice(0, -1)
  return p
}

const SEGMENT = '[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?'
const COLLECTION_PATTERN = new RegExp(`^${SEGMENT}(?:\\.${SEGMENT})*(?:\\.\\*)?$`)

/** What a collection pattern may look like, for error messages. */
export const COLLECTION_PATTERN_FORMS =
  'an NSID (app.bsky.feed.post), a namespace (app.bsky or app.bsky.*), or * alone for every collection'

/** Whether `pattern` is `*`, an NSID, or a namespace with or without a trailing `.*`. */
export function isCollectionPattern(pattern: string): boolean {
  const p = pattern.trim()
  return p === '*' || COLLECTION_PATTERN.test(p)
}

function compileMatcher(patterns: readonly string[]): CollectionFilter {
  const set = new Set(patterns.map(normalizeCollectionPattern).filter((p) => p !== ''))
  if (set.has('*')) return () => true
  return (collection) => {
    if (set.has(collection)) return true
    for (let i = collection.indexOf('.'); i !== -1; i = collection.indexOf('.', i + 1)) {
      if (set.has(collection.slice(0, i))) return true
    }
    return false
  }
}

/** Returns a predicate that is true for collections to keep. */
export function compileCollectionFilter(opts: {
  watched: readonly string[]
  ignored: readonly string[]
}): CollectionFilter {
  if (opts.watched.length > 0 && opts.ignored.length > 0) {
    throw new Error('watched and ignored collections are mutually exclusive')
  }
  if (opts.watched.length > 0) return compileMatcher(opts.watched)
  if (opts.ignored.length > 0) {
    const ignored = compileMatcher(opts.ignored)
    return (collection) => !ignored(collection)
  }
  return () => true
}

/**
 * Collection filters, compiled once. A pattern matches a collection exactly or as a namespace
 * prefix: `app.bsky` and `app.bsky.*` both match `app.bsky.feed.post` (as at-kafka).
 */
export type CollectionFilter = (collection: string) => boolean

export function normalizeCollectionPattern(pattern: string): string {
  let p = pattern.trim()
  if (p.endsWith('.*')) p = p.slice(0, -2)
  if (p.endsWith('.')) p = p.slice(0, -1)
  return p
}

function compileMatcher(patterns: readonly string[]): CollectionFilter {
  const set = new Set(patterns.map(normalizeCollectionPattern).filter((p) => p !== ''))
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

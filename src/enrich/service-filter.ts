/**
 * Service filters, compiled once. A pattern names a PDS host and everything under it, as
 * at-kafka: `*.bsky.network`, `.bsky.network` and `bsky.network` all match `bsky.network` and
 * `morel.us-east.host.bsky.network`, never `notbsky.network`.
 */
export type ServiceFilter = (pdsHostname: string) => boolean

/**
 * `*.bsky.network` → `bsky.network`. Also accepts a URL or `host:port` (the scheme, port and
 * path are dropped: only the host name is compared) and is case-insensitive.
 */
export function normalizeServicePattern(pattern: string): string {
  let p = pattern.trim().toLowerCase()
  const scheme = p.indexOf('://')
  if (scheme !== -1) p = p.slice(scheme + 3)
  p = p.replace(/[/?#].*$/, '')
  if (!p.startsWith('[')) p = p.replace(/:\d*$/, '')
  if (p.startsWith('*.')) p = p.slice(2)
  while (p.startsWith('.')) p = p.slice(1)
  while (p.endsWith('.')) p = p.slice(0, -1)
  return p
}

const HOST_NAME =
  /^(?:[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?)(?:\.[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?)*$/

/** Whether a normalised pattern is `*` (every host), a host name, or a bracketed IPv6 address. */
export function isServicePattern(pattern: string): boolean {
  return pattern === '*' || HOST_NAME.test(pattern) || /^\[[0-9a-f:.]+\]$/.test(pattern)
}

/** Whether `hostname` is one of `patterns` or below one of them; `*` matches every host. */
function compileMatcher(patterns: readonly string[]): ServiceFilter {
  const set = new Set(patterns.map(normalizeServicePattern).filter((p) => p !== ''))
  if (set.has('*')) return () => true
  return (hostname) => {
    const host = hostname.toLowerCase()
    if (set.has(host)) return true
    for (let i = host.indexOf('.'); i !== -1; i = host.indexOf('.', i + 1)) {
      if (set.has(host.slice(i + 1))) return true
    }
    return false
  }
}

/**
 * A predicate that is true for PDS host names whose events are kept, or `undefined` when no
 * service filter is configured. An empty host name (no PDS in the DID document) is always kept.
 */
export function compileServiceFilter(opts: {
  watched: readonly string[]
  ignored: readonly string[]
}): ServiceFilter | undefined {
  if (opts.watched.length > 0 && opts.ignored.length > 0) {
    throw new Error('watched and ignored services are mutually exclusive')
  }
  if (opts.watched.length > 0) {
    const watched = compileMatcher(opts.watched)
    return (host) => host === '' || watched(host)
  }
  if (opts.ignored.length > 0) {
    const ignored = compileMatcher(opts.ignored)
    return (host) => host === '' || !ignored(host)
  }
  return undefined
}

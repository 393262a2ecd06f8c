import { LRUCache } from 'lru-cache'
import type { Logger } from '../logger.ts'
import type { CacheConfig } from './config.ts'
import type { EnrichMetrics } from './metrics.ts'
import type { Upstream } from './upstream.ts'

/**
 * `createdAt` of the first entry of a PLC audit log (`GET <plc>/<did>/log/audit` →
 * `[{did, operation, cid, nullified, createdAt}]`): when the DID was created. `undefined` when
 * the answer has no such entry or its time does not parse.
 */
export function creationTimeOf(body: unknown): string | undefined {
  if (!Array.isArray(body) || body.length === 0) return undefined
  const first: unknown = body[0]
  if (typeof first !== 'object' || first === null) return undefined
  const createdAt = (first as { createdAt?: unknown }).createdAt
  if (typeof createdAt !== 'string' || Number.isNaN(Date.parse(createdAt))) return undefined
  return createdAt
}

/** Account age in whole seconds at `now` (never negative, whatever the clocks say). */
export function accountAgeSeconds(createdAt: string, now: number): number {
  return Math.max(0, Math.floor((now - Date.parse(createdAt)) / 1000))
}

/** When did:plc DIDs were created, from the PLC audit log, with an LRU cache. Never throws. */
export class AuditLog {
  readonly #plc: Upstream
  readonly #cache: LRUCache<string, string>
  readonly #metrics: EnrichMetrics
  readonly #log: Logger

  constructor(opts: { plc: Upstream; cache: CacheConfig; metrics: EnrichMetrics; logger: Logger }) {
    this.#plc = opts.plc
    this.#metrics = opts.metrics
    this.#log = opts.logger
    this.#cache = new LRUCache<string, string>({
      max: opts.cache.max,
      ttl: opts.cache.ttlMs,
      dispose: () => this.#updateSize(),
    })
  }

  #updateSize(): void {
    this.#metrics.cacheSize.set({ kind: 'audit_log' }, this.#cache.size)
  }

  /** The DID's creation time (RFC 3339), or `undefined` when unknown or not a did:plc. */
  async createdAt(did: string, signal: AbortSignal): Promise<string | undefined> {
    if (!did.startsWith('did:plc:')) return undefined
    const cached = this.#cache.get(did)
    if (cached !== undefined) {
      this.#metrics.plcRequests.inc({ kind: 'audit_log', status: 'ok', cached: 'true' })
      return cached
    }
    const got = await this.#plc.getJson(`/${encodeURIComponent(did)}/log/audit`, signal)
    const createdAt = got.status === 'ok' ? creationTimeOf(got.body) : undefined
    const status = got.status === 'ok' && createdAt === undefined ? 'error' : got.status
    this.#metrics.plcRequests.inc({ kind: 'audit_log', status, cached: 'false' })
    if (createdAt === undefined) {
      if (status !== 'not_found') {
        this.#log.debug(
          { did, status, err: got.status === 'ok' ? 'no createdAt' : got.error?.message },
          'audit log lookup failed',
        )
      }
      return undefined
    }
    this.#cache.set(did, createdAt)
    this.#updateSize()
    return createdAt
  }
}

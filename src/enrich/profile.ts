import { LRUCache } from 'lru-cache'
import type { JsonObject } from '../events.ts'
import type { Logger } from '../logger.ts'
import type { CacheConfig } from './config.ts'
import type { EnrichMetrics } from './metrics.ts'
import type { Upstream } from './upstream.ts'

/** Collection whose records change what getProfile answers. */
export const PROFILE_COLLECTION = 'app.bsky.actor.profile'
/**
 * After a profile record changes, the AppView may still answer with the old profile for a
 * moment (it indexes the same firehose): profiles fetched in this window are not cached.
 */
const SETTLE_MS = 60 * 1000

/**
 * at-kafka caches only profiles of established accounts (more than 10 followers and more than 10
 * posts); newer accounts change fast and are the ones rules care about.
 */
export function isEstablished(profile: JsonObject): boolean {
  const followers = profile.followersCount
  const posts = profile.postsCount
  return typeof followers === 'number' && followers > 10 && typeof posts === 'number' && posts > 10
}

/** `app.bsky.actor.getProfile` on the AppView, with at-kafka's cache rules. Never throws. */
export class ProfileClient {
  readonly #api: Upstream
  readonly #cache: LRUCache<string, JsonObject>
  readonly #changed: LRUCache<string, true>
  readonly #metrics: EnrichMetrics
  readonly #log: Logger

  constructor(opts: { api: Upstream; cache: CacheConfig; metrics: EnrichMetrics; logger: Logger }) {
    this.#api = opts.api
    this.#metrics = opts.metrics
    this.#log = opts.logger
    this.#cache = new LRUCache<string, JsonObject>({
      max: opts.cache.max,
      ttl: opts.cache.ttlMs,
      dispose: () => this.#updateSize(),
    })
    this.#changed = new LRUCache<string, true>({ max: 10000, ttl: SETTLE_MS })
  }

  #updateSize(): void {
    this.#metrics.cacheSize.set({ kind: 'profile' }, this.#cache.size)
  }

  /** The account's profile record changed: drop its cached profile. */
  bust(did: string): void {
    this.#cache.delete(did)
    this.#changed.set(did, true)
    this.#updateSize()
  }

  async get(did: string, signal: AbortSignal): Promise<JsonObject | undefined> {
    const cached = this.#cache.get(did)
    if (cached !== undefined) {
      this.#metrics.apiRequests.inc({ kind: 'profile', status: 'ok', cached: 'true' })
      return cached
    }
    // 400 is how the AppView says "no such actor" (InvalidRequest, AccountTakedown, …).
    const got = await this.#api.getJson(
      `/xrpc/app.bsky.actor.getProfile?actor=${encodeURIComponent(did)}`,
      signal,
      [400, 404],
    )
    const profile =
      got.status === 'ok' &&
      typeof got.body === 'object' &&
      got.body !== null &&
      !Array.isArray(got.body)
        ? (got.body as JsonObject)
        : undefined
    const status = got.status === 'ok' && profile === undefined ? 'error' : got.status
    this.#metrics.apiRequests.inc({ kind: 'profile', status, cached: 'false' })
    if (profile === undefined) {
      if (status !== 'not_found') {
        this.#log.debug(
          { did, status, err: got.status === 'ok' ? 'not an object' : got.error?.message },
          'profile lookup failed',
        )
      }
      return undefined
    }
    if (isEstablished(profile) && !this.#changed.has(did)) {
      this.#cache.set(did, profile)
      this.#updateSize()
    }
    return profile
  }
}

import { DidWebResolver, HandleResolver } from '@atproto/identity'
import { LRUCache } from 'lru-cache'
import type { JsonObject } from '../events.ts'
import type { Logger } from '../logger.ts'
import type { CacheConfig } from './config.ts'
import type { EnrichMetrics } from './metrics.ts'
import type { Upstream } from './upstream.ts'

export const INVALID_HANDLE = 'handle.invalid'
/** A handle that did not verify is checked again sooner (at-kafka: 15 minutes). */
const INVALID_HANDLE_TTL_MS = 15 * 60 * 1000

export interface Identity {
  /** The DID document as resolved. */
  document: JsonObject
  /** The `#atproto_pds` service endpoint URL (at-kafka's `pdsHost`). */
  pdsEndpoint?: string
  /** Host name of that endpoint, lower case; `''` when there is none. Service filters use it. */
  pdsHostname: string
  /** See {@link handleOf}. */
  handle?: string
}

function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

/** The first `at://` entry of `alsoKnownAs`, lower case: the handle the account claims. */
export function declaredHandle(doc: JsonObject): string | undefined {
  const aka = doc.alsoKnownAs
  if (!Array.isArray(aka)) return undefined
  for (const u of aka) {
    if (typeof u === 'string' && u.startsWith('at://') && u.length > 5)
      return u.slice(5).toLowerCase()
  }
  return undefined
}

const HANDLE_RE = /^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]([a-z0-9-]{0,61}[a-z0-9])?$/

/**
 * Parse a resolved DID document: `undefined` unless it is an object whose `id` is `did`. The PDS
 * is the service whose id ends in `#atproto_pds` (as indigo, which at-kafka uses).
 */
export function parseDidDocument(did: string, body: unknown): Identity | undefined {
  if (!isObject(body) || body.id !== did) return undefined
  let pdsEndpoint: string | undefined
  let pdsHostname = ''
  if (Array.isArray(body.service)) {
    for (const s of body.service) {
      if (!isObject(s) || typeof s.id !== 'string' || typeof s.serviceEndpoint !== 'string') {
        continue
      }
      if (s.id !== '#atproto_pds' && s.id !== `${did}#atproto_pds`) continue
      try {
        pdsHostname = new URL(s.serviceEndpoint).hostname.toLowerCase()
        pdsEndpoint = s.serviceEndpoint
      } catch {
        // Not a URL: no PDS, as indigo.
      }
      break
    }
  }
  return { document: body, pdsEndpoint, pdsHostname }
}

/**
 * Resolves DIDs to their documents (did:plc on the configured PLC directory, did:web over
 * https) and checks that the claimed handle resolves back to the DID, with an LRU cache.
 * Lookups never throw: a failure is `undefined`, counted in `atkafka_plc_requests`.
 */
export class IdentityResolver {
  readonly #plc: Upstream
  readonly #web: DidWebResolver
  readonly #handles: HandleResolver | undefined
  readonly #cache: LRUCache<string, Identity>
  readonly #metrics: EnrichMetrics
  readonly #log: Logger
  readonly #timeoutMs: number

  constructor(opts: {
    plc: Upstream
    cache: CacheConfig
    verifyHandles: boolean
    timeoutMs: number
    metrics: EnrichMetrics
    logger: Logger
  }) {
    this.#plc = opts.plc
    this.#timeoutMs = opts.timeoutMs
    // The library's own fetch refuses http, private addresses and custom ports: did:web hosts
    // and handle domains are chosen by whoever owns the account.
    this.#web = new DidWebResolver(opts.timeoutMs)
    this.#handles = opts.verifyHandles ? new HandleResolver({ timeout: opts.timeoutMs }) : undefined
    this.#metrics = opts.metrics
    this.#log = opts.logger
    this.#cache = new LRUCache<string, Identity>({
      max: opts.cache.max,
      ttl: opts.cache.ttlMs,
      dispose: () => this.#updateSize(),
    })
  }

  #updateSize(): void {
    this.#metrics.cacheSize.set({ kind: 'identity' }, this.#cache.size)
  }

  /** Forget `did` (its next lookup asks the directory again). */
  invalidate(did: string): void {
    this.#cache.delete(did)
    this.#updateSize()
  }

  async resolve(did: string, signal: AbortSignal): Promise<Identity | undefined> {
    const method = did.startsWith('did:plc:')
      ? 'did_doc'
      : did.startsWith('did:web:')
        ? 'did_web'
        : undefined
    if (method === undefined) return undefined
    const cached = this.#cache.get(did)
    if (cached !== undefined) {
      this.#metrics.plcRequests.inc({ kind: method, status: 'ok', cached: 'true' })
      return cached
    }
    const identity =
      method === 'did_doc' ? await this.#resolvePlc(did, signal) : await this.#resolveWeb(did)
    if (identity === undefined) return undefined
    identity.handle = await this.#handleOf(did, identity.document, signal)
    this.#cache.set(did, identity, {
      ttl:
        identity.handle === INVALID_HANDLE
          ? Math.min(INVALID_HANDLE_TTL_MS, this.#cache.ttl)
          : undefined,
    })
    this.#updateSize()
    return identity
  }

  async #resolvePlc(did: string, signal: AbortSignal): Promise<Identity | undefined> {
    const got = await this.#plc.getJson(`/${encodeURIComponent(did)}`, signal)
    if (got.status !== 'ok') {
      this.#metrics.plcRequests.inc({ kind: 'did_doc', status: got.status, cached: 'false' })
      if (got.status !== 'not_found') {
        this.#log.debug(
          { did, status: got.status, err: got.error?.message },
          'DID document lookup failed',
        )
      }
      return undefined
    }
    const identity = parseDidDocument(did, got.body)
    this.#metrics.plcRequests.inc({
      kind: 'did_doc',
      status: identity === undefined ? 'error' : 'ok',
      cached: 'false',
    })
    if (identity === undefined) this.#log.debug({ did }, 'PLC returned an invalid DID document')
    return identity
  }

  async #resolveWeb(did: string): Promise<Identity | undefined> {
    let status: string
    let identity: Identity | undefined
    try {
      const doc = await this.#web.resolve(did)
      identity = doc === null ? undefined : parseDidDocument(did, doc)
      status = doc === null ? 'not_found' : identity === undefined ? 'error' : 'ok'
    } catch (err) {
      status = err instanceof Error && err.name === 'TimeoutError' ? 'timeout' : 'error'
      this.#log.debug({ did, err: String(err) }, 'did:web resolution failed')
    }
    this.#metrics.plcRequests.inc({ kind: 'did_web', status, cached: 'false' })
    return identity
  }

  /**
   * The handle as at-kafka writes it: the claimed handle when it resolves back to the DID
   * (DNS `_atproto` TXT or `https://<handle>/.well-known/atproto-did`), else `handle.invalid`.
   * Without verification: the claimed handle, unchecked.
   */
  async #handleOf(did: string, doc: JsonObject, signal: AbortSignal): Promise<string | undefined> {
    const claimed = declaredHandle(doc)
    if (this.#handles === undefined) return claimed
    if (claimed === undefined || !HANDLE_RE.test(claimed)) return INVALID_HANDLE
    const resolved = await withTimeout(this.#handles.resolve(claimed), this.#timeoutMs, signal)
    const status =
      resolved === 'timeout'
        ? 'timeout'
        : resolved === undefined
          ? 'not_found'
          : resolved === did
            ? 'ok'
            : 'mismatch'
    this.#metrics.plcRequests.inc({ kind: 'handle', status, cached: 'false' })
    return status === 'ok' ? claimed : INVALID_HANDLE
  }
}

/** `promise`'s value, or `'timeout'` after `ms` or when `signal` aborts (it keeps running). */
function withTimeout<T>(
  promise: Promise<T>,
  ms: number,
  signal: AbortSignal,
): Promise<T | 'timeout'> {
  return new Promise((resolve, reject) => {
    const finish = () => {
      clearTimeout(timer)
      signal.removeEventListener('abort', onAbort)
    }
    const onAbort = () => {
      finish()
      resolve('timeout')
    }
    const timer = setTimeout(onAbort, ms)
    signal.addEventListener('abort', onAbort, { once: true })
    promise.then(
      (v) => {
        finish()
        resolve(v)
      },
      (err: unknown) => {
        finish()
        reject(err instanceof Error ? err : new Error(String(err)))
      },
    )
  })
}

import type { Registry } from 'prom-client'
import type { AtKafkaEvent, JsonObject } from '../events.ts'
import { errorMessage } from '../errors.ts'
import type { Logger } from '../logger.ts'
import { AuditLog, accountAgeSeconds } from './audit.ts'
import type { EnrichConfig } from './config.ts'
import { type Identity, IdentityResolver } from './identity.ts'
import { KeyedQueue } from './keyed-queue.ts'
import { type EnrichMetrics, createEnrichMetrics } from './metrics.ts'
import { PROFILE_COLLECTION, ProfileClient } from './profile.ts'
import { type ServiceFilter, compileServiceFilter } from './service-filter.ts'
import { Upstream } from './upstream.ts'

/** What became of one unit: the events to produce, in order, and how many a service filter removed. */
export interface EnrichResult {
  events: AtKafkaEvent[]
  filtered: number
}

/** Units of one DID enriched with one set of lookups. */
const MAX_BATCH = 100

interface Unit {
  events: readonly AtKafkaEvent[]
  then: (result: EnrichResult) => void
}

/** What the lookups found for one DID; each part is absent when unknown. */
export interface Lookup {
  identity?: Identity
  createdAt?: string
  profile?: JsonObject
}

/**
 * `eventMetadata` in at-kafka's key order — didDocument, pdsHost, handle, didCreatedAt,
 * accountAge, profile — with every unknown part left out (at-kafka writes `accountAge: -1` and
 * `profile: null` instead).
 */
export function buildMetadata(found: Lookup, now: number): JsonObject {
  const m: JsonObject = {}
  if (found.identity !== undefined) {
    m.didDocument = found.identity.document
    if (found.identity.pdsEndpoint !== undefined) m.pdsHost = found.identity.pdsEndpoint
    if (found.identity.handle !== undefined) m.handle = found.identity.handle
  }
  if (found.createdAt !== undefined) {
    m.didCreatedAt = found.createdAt
    m.accountAge = accountAgeSeconds(found.createdAt, now)
  }
  if (found.profile !== undefined) m.profile = found.profile
  return m
}

function hasIdentityEvent(unit: Unit): boolean {
  return unit.events.some((e) => 'identity' in e)
}

function touchesProfile(unit: Unit): boolean {
  return unit.events.some((e) => 'operation' in e && e.operation.collection === PROFILE_COLLECTION)
}

/**
 * The enrichment stage: sets `eventMetadata` on every event that has a DID and drops those a
 * service filter rejects. Units of one DID complete strictly in order; different DIDs are looked
 * up concurrently (`concurrency` at once). A failed or slow lookup never holds an event back
 * for longer than the lookup timeout, and never drops it: the event goes out with the parts
 * that are known (an empty object when nothing is), counted in
 * `atkafka_metadata_incomplete_events`. Events without a DID (`#info`) get no metadata.
 */
export class Enricher {
  readonly #identities: IdentityResolver
  readonly #audit: AuditLog
  readonly #profiles: ProfileClient | undefined
  readonly #filter: ServiceFilter | undefined
  readonly #metrics: EnrichMetrics
  readonly #queue: KeyedQueue<Unit>
  readonly #stop = new AbortController()
  readonly #log: Logger
  /** Units scheduled and not yet handed back or abandoned. */
  #pending = 0

  constructor(opts: {
    config: EnrichConfig
    logger: Logger
    registry: Registry
    signal?: AbortSignal
  }) {
    const { config } = opts
    this.#log = opts.logger
    this.#metrics = createEnrichMetrics(opts.registry)
    const plc = new Upstream({
      base: config.plcHost,
      timeoutMs: config.timeoutMs,
      ratePerSec: config.plcRatePerSec,
    })
    const deps = { metrics: this.#metrics, logger: this.#log }
    this.#identities = new IdentityResolver({
      plc,
      cache: config.identityCache,
      verifyHandles: config.verifyHandles,
      timeoutMs: config.timeoutMs,
      ...deps,
    })
    this.#audit = new AuditLog({ plc, cache: config.auditCache, ...deps })
    this.#profiles =
      config.apiHost === undefined
        ? undefined
        : new ProfileClient({
            api: new Upstream({
              base: config.apiHost,
              timeoutMs: config.timeoutMs,
              ratePerSec: config.apiRatePerSec,
            }),
            cache: config.profileCache,
            ...deps,
          })
    this.#filter = compileServiceFilter({
      watched: config.watchedServices,
      ignored: config.ignoredServices,
    })
    this.#queue = new KeyedQueue<Unit>({
      concurrency: config.concurrency,
      maxBatch: MAX_BATCH,
      startsBatch: hasIdentityEvent,
      run: (did, units) => this.#runBatch(did, units),
      onError: (err) => this.#log.error({ err: errorMessage(err) }, 'enrichment batch failed'),
    })
    if (opts.signal !== undefined) {
      if (opts.signal.aborted) this.#stop.abort()
      else opts.signal.addEventListener('abort', () => this.#stop.abort(), { once: true })
    }
    this.#stop.signal.addEventListener('abort', () => this.#settled(this.#queue.clear()), {
      once: true,
    })
  }

  /**
   * Enrich one unit (a relay frame, a Tap event). `then` runs once with the result, after the
   * `then` of every earlier unit of the same DID and before any later one: whatever it does
   * synchronously (handing the events to the sink) keeps that order. After `close()` (or the
   * signal) units still waiting are abandoned: `then` never runs for them.
   */
  schedule(events: readonly AtKafkaEvent[], then: (result: EnrichResult) => void): void {
    if (this.#stop.signal.aborted) return
    const did = events.find((e) => e.did !== '')?.did ?? ''
    this.#queue.push(did, { events, then })
    this.#pending++
    this.#metrics.pending.set(this.#pending)
  }

  /** Abandon waiting units, abort lookups in progress and wait for them to end. */
  async close(): Promise<void> {
    this.#stop.abort()
    await this.#queue.idle()
  }

  async #runBatch(did: string, units: Unit[]): Promise<void> {
    const signal = this.#stop.signal
    let found: Lookup | undefined
    if (did !== '') {
      if (hasIdentityEvent(units[0]!)) this.#identities.invalidate(did)
      if (this.#profiles !== undefined && units.some(touchesProfile)) this.#profiles.bust(did)
      try {
        found = await this.lookup(did, signal)
      } catch (err) {
        if (!signal.aborted) {
          this.#log.error({ did, err: errorMessage(err) }, 'metadata lookup failed unexpectedly')
          found = {}
        }
      }
    }
    this.#settled(units.length)
    if (signal.aborted) return
    const metadata = found === undefined ? undefined : buildMetadata(found, Date.now())
    if (found !== undefined) this.#countMissing(did, found, units)
    const keep =
      found?.identity !== undefined && this.#filter !== undefined
        ? this.#filter(found.identity.pdsHostname)
        : true
    for (const unit of units) {
      const out: AtKafkaEvent[] = []
      let filtered = 0
      for (const event of unit.events) {
        if (event.did === '') {
          out.push(event)
        } else if (event.did !== did) {
          // Not expected (a unit is one DID's); such an event goes out without metadata.
          out.push(event)
        } else if (keep) {
          event.eventMetadata = metadata ?? null
          out.push(event)
        } else {
          filtered++
        }
      }
      try {
        unit.then({ events: out, filtered })
      } catch (err) {
        this.#log.error({ did, err: errorMessage(err) }, 'handing enriched events on failed')
      }
    }
  }

  /** Look up everything known about `did`, the three lookups at once. */
  async lookup(did: string, signal: AbortSignal): Promise<Lookup> {
    const [identity, createdAt, profile] = await Promise.all([
      this.#identities.resolve(did, signal),
      this.#audit.createdAt(did, signal),
      this.#profiles?.get(did, signal),
    ])
    return { identity, createdAt, profile }
  }

  #settled(units: number): void {
    this.#pending -= units
    this.#metrics.pending.set(this.#pending)
  }

  #countMissing(did: string, found: Lookup, units: Unit[]): void {
    let n = 0
    for (const u of units) n += u.events.length
    if (found.identity === undefined) this.#metrics.incompleteEvents.inc({ missing: 'identity' }, n)
    if (found.createdAt === undefined && did.startsWith('did:plc:')) {
      this.#metrics.incompleteEvents.inc({ missing: 'audit_log' }, n)
    }
    if (this.#profiles !== undefined && found.profile === undefined) {
      this.#metrics.incompleteEvents.inc({ missing: 'profile' }, n)
    }
  }
}

/** What a mode gives its enrichment stage. */
export interface EnricherService {
  logger: Logger
  registry: Registry
  stop: AbortController
}

/** The enrichment stage of a mode (relay, Tap); see `loadEnricher` in load.ts. */
export function createEnricher(config: EnrichConfig, service: EnricherService): Enricher {
  return new Enricher({
    config,
    logger: service.logger.child({ component: 'enrich' }),
    registry: service.registry,
    signal: service.stop.signal,
  })
}

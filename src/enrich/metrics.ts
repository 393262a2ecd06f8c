import { Counter, Gauge, type Registry } from 'prom-client'

/**
 * Metrics of the metadata lookups, against an injected registry. `atkafka_plc_requests`,
 * `atkafka_api_requests` and `atkafka_cache_size` keep at-kafka's names and labels.
 */
export function createEnrichMetrics(registry: Registry) {
  const registers = [registry]
  return {
    plcRequests: new Counter({
      name: 'atkafka_plc_requests',
      help: 'Identity lookups by kind (did_doc, did_web, handle, audit_log), status and whether the cache answered',
      labelNames: ['kind', 'status', 'cached'] as const,
      registers,
    }),
    apiRequests: new Counter({
      name: 'atkafka_api_requests',
      help: 'AppView lookups by kind (profile), status and whether the cache answered',
      labelNames: ['kind', 'status', 'cached'] as const,
      registers,
    }),
    cacheSize: new Gauge({
      name: 'atkafka_cache_size',
      help: 'Entries in the lookup caches, by kind (identity, audit_log, profile)',
      labelNames: ['kind'] as const,
      registers,
    }),
    incompleteEvents: new Counter({
      name: 'atkafka_metadata_incomplete_events',
      help: 'Events produced without part of their eventMetadata because a lookup failed, by missing part',
      labelNames: ['missing'] as const,
      registers,
    }),
    pending: new Gauge({
      name: 'atkafka_enrich_pending_units',
      help: 'Units of events (frames, Tap events) waiting for or in metadata lookups',
      registers,
    }),
  }
}

export type EnrichMetrics = ReturnType<typeof createEnrichMetrics>

export type CacheKind = 'identity' | 'audit_log' | 'profile'

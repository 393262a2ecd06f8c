import { Counter, Gauge, Histogram, type Registry } from 'prom-client'

/** Metrics of the Ozone mode, beside the shared ones of src/metrics.ts. */
export function createOzoneMetrics(registry: Registry) {
  const registers = [registry]
  return {
    requestDuration: new Histogram({
      name: 'atkafka_ozone_request_duration_seconds',
      help: 'Latency of tools.ozone.moderation.queryEvents through the PDS, by status',
      labelNames: ['status'] as const,
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    }),
    requests: new Counter({
      name: 'atkafka_ozone_requests',
      help: 'queryEvents requests, by status (ok, unavailable, auth, labeler, request, response)',
      labelNames: ['status'] as const,
      registers,
    }),
    pages: new Counter({
      name: 'atkafka_ozone_pages',
      help: 'Pages of events fetched: poll = first page of a poll, backlog = pages fetched by following the cursor',
      labelNames: ['kind'] as const,
      registers,
    }),
    duplicates: new Counter({
      name: 'atkafka_ozone_duplicates_dropped',
      help: 'Events Ozone returned again that were produced already, dropped',
      registers,
    }),
    logins: new Counter({
      name: 'atkafka_ozone_logins',
      help: 'Session logins (createSession) to the PDS, by status',
      labelNames: ['status'] as const,
      registers,
    }),
    refreshes: new Counter({
      name: 'atkafka_ozone_session_refreshes',
      help: 'Session refreshes (refreshSession), by status (ok, expired = refresh token refused, error)',
      labelNames: ['status'] as const,
      registers,
    }),
    cursorTime: new Gauge({
      name: 'atkafka_ozone_cursor_timestamp_seconds',
      help: 'createdAfter of the saved cursor (Unix seconds): every event created before it is in Kafka',
      registers,
    }),
  }
}

export type OzoneMetrics = ReturnType<typeof createOzoneMetrics>

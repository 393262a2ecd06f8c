import { Counter, Gauge, Histogram, type Registry } from 'prom-client'

/**
 * Every metric of the shared pipeline, created against an injected registry. Names and labels
 * of at-kafka's metrics are unchanged (`atkafka_handled_events`, `atkafka_produced_events`).
 */
export function createMetrics(registry: Registry) {
  const registers = [registry]
  return {
    handledEvents: new Counter({
      name: 'atkafka_handled_events',
      help: 'Events received from the source and handled, by action and collection',
      labelNames: ['action_name', 'collection'] as const,
      registers,
    }),
    producedEvents: new Counter({
      name: 'atkafka_produced_events',
      help: 'Messages written to the output (Kafka or stdout), by status',
      labelNames: ['status'] as const,
      registers,
    }),
    produceRetries: new Counter({
      name: 'atkafka_produce_retries',
      help: 'Kafka produce requests that failed and were retried',
      registers,
    }),
    produceLatency: new Histogram({
      name: 'atkafka_produce_latency_seconds',
      help: 'Time from handing a batch to the producer until Kafka acknowledged it',
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
    decodeErrors: new Counter({
      name: 'atkafka_decode_errors',
      help: 'Frames or messages that could not be decoded, by reason',
      labelNames: ['reason'] as const,
      registers,
    }),
    droppedEvents: new Counter({
      name: 'atkafka_dropped_events',
      help: 'Operations or messages that could not be turned into an event, by reason',
      labelNames: ['reason'] as const,
      registers,
    }),
    filteredEvents: new Counter({
      name: 'atkafka_filtered_events',
      help: 'Events skipped on purpose by a filter, by filter',
      labelNames: ['filter'] as const,
      registers,
    }),
    skippedMessages: new Counter({
      name: 'atkafka_skipped_messages',
      help: 'Source messages of a type this version does not handle, by type',
      labelNames: ['type'] as const,
      registers,
    }),
    relayErrors: new Counter({
      name: 'atkafka_relay_errors',
      help: 'Error frames sent by the relay, by error name',
      labelNames: ['error'] as const,
      registers,
    }),
    reconnects: new Counter({
      name: 'atkafka_reconnects',
      help: 'Connections to the source that were lost and retried, by reason',
      labelNames: ['reason'] as const,
      registers,
    }),
    connected: new Gauge({
      name: 'atkafka_source_connected',
      help: '1 while connected to the event source',
      registers,
    }),
    inFlight: new Gauge({
      name: 'atkafka_in_flight',
      help: 'Messages handed to the output and not yet acknowledged',
      registers,
    }),
    cursor: new Gauge({
      name: 'atkafka_cursor_seq',
      help: 'Last sequence number acknowledged by the output (the saved cursor)',
      registers,
    }),
    lag: new Gauge({
      name: 'atkafka_lag_seconds',
      help: "Seconds between now and the newest handled event's time",
      registers,
    }),
    cursorSaves: new Counter({
      name: 'atkafka_cursor_saves',
      help: 'Cursor file writes, by status',
      labelNames: ['status'] as const,
      registers,
    }),
  }
}

export type Metrics = ReturnType<typeof createMetrics>

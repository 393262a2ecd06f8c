import { Counter, Gauge, type Registry } from 'prom-client'

/** Tap mode's own metrics (at-kafka's names), created against the service's registry. */
export function createTapMetrics(registry: Registry) {
  const registers = [registry]
  return {
    acksSent: new Counter({
      name: 'atkafka_acks_sent',
      help: 'Acks for Tap events, by status: ok (written), error (write failed), dropped (the connection the event came on had closed; Tap sends the event again)',
      labelNames: ['status'] as const,
      registers,
    }),
    eventBuffer: new Gauge({
      name: 'atkafka_tap_event_buffer_size',
      help: 'Tap events received and not yet acknowledged by the output',
      registers,
    }),
    ackBuffer: new Gauge({
      name: 'atkafka_tap_ack_event_buffer_size',
      help: 'Acks due and not yet written to the Tap connection',
      registers,
    }),
  }
}

export type TapMetrics = ReturnType<typeof createTapMetrics>

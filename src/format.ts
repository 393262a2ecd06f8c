import { type AtKafkaEvent, actionNameOf } from './events.ts'
import type { Snowflake } from './snowflake.ts'

/** Serialises an event into the Kafka message value. */
export type Formatter = (event: AtKafkaEvent) => string

export function plainFormatter(): Formatter {
  return (event) => JSON.stringify(event)
}

/**
 * Osprey's envelope: `{data: {action_name, action_id, data, timestamp, secret_data, encoding},
 * send_time}`. `action_id` is written as an exact JSON integer (it can exceed 2^53);
 * `send_time` is RFC 3339 UTC with `Z`.
 */
export function ospreyFormatter(ids: Snowflake, now: () => Date = () => new Date()): Formatter {
  return (event) => {
    const sendTime = now().toISOString()
    const timestamp = event.timestamp === '' ? sendTime : event.timestamp
    return (
      `{"data":{"action_name":${JSON.stringify(actionNameOf(event))}` +
      `,"action_id":${ids.next().toString()}` +
      `,"data":${JSON.stringify(event)}` +
      `,"timestamp":${JSON.stringify(timestamp)}` +
      `,"secret_data":{},"encoding":"UTF8"},"send_time":${JSON.stringify(sendTime)}}`
    )
  }
}

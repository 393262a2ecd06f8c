import type { AtKafkaEvent } from '../events.ts'
import type { RoutedInput } from '../output.ts'

/**
 * One unit a source hands to the runner: its events are produced together, and the unit is
 * done once the output acknowledged every one of them.
 */
export interface SourceItem<P> {
  /**
   * Where the source stands once this unit and every earlier one is done (a relay seq, a
   * Jetstream `time_us`, an Ozone position). Undefined moves nothing (a relay's `#info`).
   */
  position?: P
  /** Events to enrich and format (empty: the unit only moves the position). */
  events?: readonly AtKafkaEvent[]
  /** Messages already formatted, instead of `events`. */
  messages?: readonly RoutedInput[]
  /**
   * The source position the events came from, as the `atkafka-cursor` header (relay and labels
   * seq, Tap id, Jetstream time_us); messages carry their own.
   */
  cursor?: string
  /** Event time (ms) of the newest event, for the lag gauge. */
  time?: number
  /** Runs once the unit is done (Tap acks its event here). */
  done?: () => void
}

/** Whether a source is connected to its peer and, while not, why the last connection failed. */
export interface SourceStatus {
  state: 'connected' | 'connecting' | 'reconnecting'
  lastError?: string
}

/** What a source is given by the runner while it runs. */
export interface SourceContext<P> {
  /** The position the run started from: the saved cursor, or one given on the command line. */
  readonly start: P | undefined
  /** Hand one unit to the pipeline, in the source's order. */
  emit(item: SourceItem<P>): void
  /** The newest event time (ms) seen without a unit to emit, for the lag gauge. */
  observe(time: number): void
}

/**
 * The port every mode's adapter implements: it knows its peer's wire format and its position
 * type; the runner ({@link runSource}) owns the cursor, the in-flight bound, the pipeline,
 * metrics and shutdown.
 */
export interface Source<P> {
  /** Connected to the peer (part of `/ready`). */
  readonly connected: boolean
  /** The connection's state for the progress line (sources with a connection). */
  readonly status?: SourceStatus
  /** Before the output starts (e.g. check credentials); false ends the run. */
  prepare?(signal: AbortSignal): Promise<boolean>
  /** Read from the peer and {@link SourceContext.emit} units until `signal` aborts. */
  run(signal: AbortSignal, context: SourceContext<P>): Promise<void>
  /** Stop handing units until {@link resume} (the output is full). */
  pause(): void
  resume(): void
  /** On shutdown, before the output drains: stop reading (the peer connection may stay open). */
  stopReading?(): void
  /** On shutdown, after the output drained and the cursor was saved. */
  close?(): Promise<void>
  /** The source's own fields of the progress line, with the unit and event counts since the last. */
  progress?(): Record<string, unknown>
  /** The source's own fields of the final log line, given the last committed position. */
  stopped?(committed: P | undefined): Record<string, unknown>
}

/** Cursor storage of a source whose position can be saved (all but Tap, whose position is its ack). */
export interface SourceCursor<P> {
  /** Load the position to start from (logging where it came from); throws on a bad file. */
  start(): Promise<P | undefined>
  /** Make sure saving can work; throws a clear error now rather than later. */
  checkWritable(): Promise<void>
  save(position: P): Promise<void>
  /** Least time between two saves (ms); positions in between are only kept in memory. */
  intervalMs: number
  /**
   * Bound what a crash makes the peer send again (the events read beyond the saved cursor) to
   * the in-flight limit, saving early when needed. For streams; a poller that reads nothing
   * while paused needs none.
   */
  replayBound: boolean
  /** When the run started without a position: save the first one at once. */
  saveFirstAtOnce: boolean
  /** After each save (cursor gauges). */
  onSaved?(position: P): void
  /** The position as shown in the progress and final log lines. */
  show(position: P | undefined): unknown
}

import { setTimeout as sleep } from 'node:timers/promises'
import { backoffDelay } from '../backoff.ts'
import { errorMessage } from '../errors.ts'
import type { Logger } from '../logger.ts'

/** One message for the output: Kafka key and value, and where routing decided it goes. */
export interface OutMessage {
  key: string
  value: string
  /** The Kafka topic (default: the sink's one topic). */
  topic?: string
  /** Kafka headers, values as UTF-8 strings (`--kafka-headers`). */
  headers?: Readonly<Record<string, string>>
}

/**
 * Where formatted events go. `write` never fails: the sink retries until the messages are
 * acknowledged, then calls `done` once for the whole group (so a firehose frame or a Tap event
 * completes as a unit). A sink that can never succeed reports through its `onFatal` handler.
 */
export interface Sink {
  start(signal: AbortSignal): Promise<void>
  write(messages: readonly OutMessage[], done: () => void): void
  /** Messages written and not yet acknowledged. */
  readonly pending: number
  isReady(): boolean
  /** Resolves when every message written so far is acknowledged, or when `signal` aborts. */
  flush(signal?: AbortSignal): Promise<void>
  close(): Promise<void>
}

/** Calls `done` after `n` acknowledgements; at once when `n` is 0. */
export class Group {
  remaining: number
  readonly done: () => void
  constructor(n: number, done: () => void) {
    this.remaining = n
    this.done = done
    if (n === 0) done()
  }
  ack(): void {
    if (--this.remaining === 0) this.done()
  }
}

/** How many things were handed on and are not yet done, and waiters for that to reach zero. */
export class Outstanding {
  #count = 0
  #waiters: Array<() => void> = []

  get count(): number {
    return this.#count
  }

  add(n: number): void {
    this.#count += n
  }

  /** `n` are done; at zero every waiter resumes. */
  done(n: number): void {
    this.#count -= n
    if (this.#count !== 0) return
    const waiters = this.#waiters
    this.#waiters = []
    for (const w of waiters) w()
  }

  /** Resolves when the count is zero (at once if it is), or when any of `signals` aborts. */
  zero(...signals: Array<AbortSignal | undefined>): Promise<void> {
    const given = signals.filter((s) => s !== undefined)
    const signal = given.length > 1 ? AbortSignal.any(given) : given[0]
    if (this.#count === 0 || signal?.aborted) return Promise.resolve()
    return new Promise((resolve) => {
      const onAbort = () => resolve()
      signal?.addEventListener('abort', onAbort, { once: true })
      this.#waiters.push(() => {
        signal?.removeEventListener('abort', onAbort)
        resolve()
      })
    })
  }
}

/**
 * A sink's `start`: run `connect` until it succeeds, with backoff (0.5 s growing to 15 s) and a
 * warning per failure. Rethrows when `signal` aborts; `fatal` turns an error no retry can fix
 * into the error to throw at once.
 */
export async function connectWithRetry(
  connect: () => Promise<void>,
  opts: { signal: AbortSignal; logger: Logger; fatal?: (err: unknown) => Error | undefined },
): Promise<void> {
  const { signal, logger } = opts
  for (let attempt = 0; ; attempt++) {
    try {
      await connect()
      return
    } catch (err) {
      const fatal = opts.fatal?.(err)
      if (fatal !== undefined) throw fatal
      if (signal.aborted) throw err
      const delay = backoffDelay(attempt, 500, 15000)
      logger.warn({ err: errorMessage(err), retryInMs: delay }, 'cannot reach Kafka, retrying')
      await sleep(delay, undefined, { signal }).catch(() => {})
      if (signal.aborted) throw err
    }
  }
}

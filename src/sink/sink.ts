/** One message for the output: Kafka key and value. */
export interface OutMessage {
  key: string
  value: string
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

/** Waiters for "pending reached zero". */
export class DrainWaiters {
  #waiters: Array<() => void> = []
  wait(signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      if (signal?.aborted) return resolve()
      const onAbort = () => resolve()
      signal?.addEventListener('abort', onAbort, { once: true })
      this.#waiters.push(() => {
        signal?.removeEventListener('abort', onAbort)
        resolve()
      })
    })
  }
  release(): void {
    const w = this.#waiters
    this.#waiters = []
    for (const f of w) f()
  }
}

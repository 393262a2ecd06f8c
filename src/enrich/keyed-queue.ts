/**
 * Runs work per key: items of one key strictly in order, one batch at a time; different keys
 * concurrently, at most `concurrency` batches at once. A batch is the run of items queued for a
 * key when its turn comes (at most `maxBatch`, and an item for which `startsBatch` is true only
 * ever comes first). Keys take turns in the order they became ready, so a busy key cannot
 * starve the others.
 */
export class KeyedQueue<T> {
  readonly #concurrency: number
  readonly #maxBatch: number
  readonly #startsBatch: (item: T) => boolean
  readonly #run: (key: string, items: T[]) => Promise<void>
  readonly #onError: (err: unknown) => void
  /** Queued items per key, for keys that have some or are running. */
  readonly #queues = new Map<string, T[]>()
  /** Keys with a batch running. */
  readonly #active = new Set<string>()
  /** Keys with queued items and no batch running, in the order they became ready. */
  #ready: string[] = []
  #readyHead = 0
  #running = 0
  #queued = 0
  #idle: Array<() => void> = []

  constructor(opts: {
    concurrency: number
    maxBatch: number
    startsBatch?: (item: T) => boolean
    /** Runs one batch; should not throw (a throw goes to `onError` and the key goes on). */
    run: (key: string, items: T[]) => Promise<void>
    onError: (err: unknown) => void
  }) {
    this.#concurrency = opts.concurrency
    this.#maxBatch = opts.maxBatch
    this.#startsBatch = opts.startsBatch ?? (() => false)
    this.#run = opts.run
    this.#onError = opts.onError
  }

  /** Items queued and not yet taken into a batch. */
  get queued(): number {
    return this.#queued
  }

  /** Batches running. */
  get running(): number {
    return this.#running
  }

  push(key: string, item: T): void {
    let q = this.#queues.get(key)
    if (q === undefined) {
      q = []
      this.#queues.set(key, q)
    }
    q.push(item)
    this.#queued++
    if (q.length === 1 && !this.#active.has(key)) this.#ready.push(key)
    this.#pump()
  }

  /** Drop every queued item (running batches finish); returns how many were dropped. */
  clear(): number {
    const dropped = this.#queued
    for (const [key, q] of this.#queues) {
      q.length = 0
      if (!this.#active.has(key)) this.#queues.delete(key)
    }
    this.#ready = []
    this.#readyHead = 0
    this.#queued = 0
    this.#settle()
    return dropped
  }

  /** Resolves once nothing is queued or running. */
  idle(): Promise<void> {
    if (this.#running === 0 && this.#queued === 0) return Promise.resolve()
    return new Promise((resolve) => this.#idle.push(resolve))
  }

  #pump(): void {
    while (this.#running < this.#concurrency && this.#readyHead < this.#ready.length) {
      const key = this.#ready[this.#readyHead++]!
      const q = this.#queues.get(key)!
      let n = 1
      while (n < q.length && n < this.#maxBatch && !this.#startsBatch(q[n]!)) n++
      const items = q.splice(0, n)
      this.#queued -= n
      this.#active.add(key)
      this.#running++
      void this.#runBatch(key, items)
    }
    if (this.#readyHead > 1024 && this.#readyHead * 2 > this.#ready.length) {
      this.#ready = this.#ready.slice(this.#readyHead)
      this.#readyHead = 0
    }
  }

  async #runBatch(key: string, items: T[]): Promise<void> {
    try {
      await this.#run(key, items)
    } catch (err) {
      this.#onError(err)
    } finally {
      this.#running--
      this.#active.delete(key)
      const q = this.#queues.get(key)
      if (q !== undefined && q.length > 0) this.#ready.push(key)
      else this.#queues.delete(key)
      this.#pump()
      this.#settle()
    }
  }

  #settle(): void {
    if (this.#running === 0 && this.#queued === 0 && this.#idle.length > 0) {
      const waiters = this.#idle
      this.#idle = []
      for (const w of waiters) w()
    }
  }
}

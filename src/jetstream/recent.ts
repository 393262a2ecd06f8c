/**
 * The events seen in the last `windowUs` of Jetstream time, by key: after a reconnect that
 * resumed a few seconds early, the events seen before are recognised and dropped.
 */
export class RecentEvents {
  readonly #windowUs: number
  /** key → time_us, in arrival order (close to time order). */
  #seen = new Map<string, number>()
  #newest = 0

  constructor(windowUs: number) {
    this.#windowUs = windowUs
  }

  get size(): number {
    return this.#seen.size
  }

  /** Whether `key` was seen; remembers it when not. */
  check(key: string, timeUs: number): boolean {
    if (this.#seen.has(key)) return true
    this.#seen.set(key, timeUs)
    if (timeUs > this.#newest) {
      this.#newest = timeUs
      this.#prune()
    }
    return false
  }

  /** Forget keys older than the window (in arrival order: stop at the first one inside). */
  #prune(): void {
    const floor = this.#newest - this.#windowUs
    for (const [key, t] of this.#seen) {
      if (t >= floor) break
      this.#seen.delete(key)
    }
  }
}

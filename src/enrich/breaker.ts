/**
 * A circuit breaker per upstream: after `threshold` failures in a row it opens for
 * `cooldownMs` (requests fail at once instead of each waiting for its timeout), then lets one
 * probe through; the probe's outcome closes it or opens it again.
 */
export class Breaker {
  readonly #threshold: number
  readonly #cooldownMs: number
  readonly #now: () => number
  #failures = 0
  #openUntil = 0
  #probing = false

  constructor(opts: { threshold: number; cooldownMs: number; now?: () => number }) {
    this.#threshold = opts.threshold
    this.#cooldownMs = opts.cooldownMs
    this.#now = opts.now ?? Date.now
  }

  /** Whether a request may go out now. */
  allow(): boolean {
    if (this.#failures < this.#threshold) return true
    if (this.#probing || this.#now() < this.#openUntil) return false
    this.#probing = true
    return true
  }

  get open(): boolean {
    return this.#failures >= this.#threshold
  }

  success(): void {
    this.#failures = 0
    this.#probing = false
  }

  /** An allowed request ended without telling anything about the upstream (e.g. shutdown). */
  cancel(): void {
    this.#probing = false
  }

  failure(): void {
    this.#failures++
    if (this.#failures >= this.#threshold) {
      this.#openUntil = this.#now() + this.#cooldownMs
      this.#probing = false
    }
  }
}

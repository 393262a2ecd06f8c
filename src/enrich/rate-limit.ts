/**
 * A token bucket like Go's `rate.Limiter`: `ratePerSec` tokens a second, at most `burst` saved
 * up. Callers reserve a token and wait the returned delay; a reservation that would wait longer
 * than the caller can afford is refused and takes nothing.
 */
export class TokenBucket {
  readonly #ratePerMs: number
  readonly #burst: number
  readonly #now: () => number
  #tokens: number
  #last: number

  constructor(opts: { ratePerSec: number; burst: number; now?: () => number }) {
    if (!(opts.ratePerSec > 0) || !(opts.burst >= 1)) {
      throw new RangeError('rate must be > 0 and burst >= 1')
    }
    this.#ratePerMs = opts.ratePerSec / 1000
    this.#burst = opts.burst
    this.#now = opts.now ?? Date.now
    this.#tokens = opts.burst
    this.#last = this.#now()
  }

  /**
   * Take one token. Returns how many milliseconds to wait before using it (0: at once), or
   * `undefined` when that would be more than `maxWaitMs` (nothing is taken then).
   */
  reserve(maxWaitMs: number): number | undefined {
    const now = this.#now()
    this.#tokens = Math.min(this.#burst, this.#tokens + (now - this.#last) * this.#ratePerMs)
    this.#last = now
    const wait = this.#tokens >= 1 ? 0 : (1 - this.#tokens) / this.#ratePerMs
    if (wait > maxWaitMs) return undefined
    this.#tokens -= 1
    return Math.ceil(wait)
  }
}

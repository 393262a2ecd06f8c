/**
 * Calls `onIdle` once nothing was {@link touch}ed for `ms` while watching. A busy stream touches
 * it for every frame, so a touch only records the time; the one timer, when it fires early,
 * sleeps again for the rest of the period.
 */
export class IdleWatch {
  readonly #ms: number
  readonly #onIdle: () => void
  #last = 0
  #timer: NodeJS.Timeout | undefined

  constructor(ms: number, onIdle: () => void) {
    this.#ms = ms
    this.#onIdle = onIdle
  }

  /** Activity: restart the idle period, and start watching if not already. */
  touch(): void {
    this.#last = performance.now()
    if (this.#timer === undefined) this.#timer = setTimeout(() => this.#check(), this.#ms)
  }

  /** Stop watching (paused reading or a closed connection) until the next {@link touch}. */
  stop(): void {
    clearTimeout(this.#timer)
    this.#timer = undefined
  }

  #check(): void {
    const quiet = performance.now() - this.#last
    if (quiet >= this.#ms) {
      this.#timer = undefined
      this.#onIdle()
    } else {
      this.#timer = setTimeout(() => this.#check(), this.#ms - quiet)
    }
  }
}

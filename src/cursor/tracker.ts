/**
 * Tracks units of work (frames, polled pages) in arrival order and tells which sequence number
 * the cursor may advance to: the last one of the contiguous run of completed units at the front.
 * A unit without a sequence number (an `#info` frame) completes in order but moves nothing.
 */
export class ConsecutiveTracker<T = number> {
  #units: Array<{ value: T | undefined; done: boolean }> = []
  #head = 0
  #committed: T | undefined

  constructor(initial?: T) {
    this.#committed = initial
  }

  /** Register the next unit; returns a function that marks it complete. */
  add(value: T | undefined): () => void {
    const unit = { value, done: false }
    this.#units.push(unit)
    return () => {
      unit.done = true
      this.#advance()
    }
  }

  #advance(): void {
    const units = this.#units
    let head = this.#head
    while (head < units.length && units[head]!.done) {
      const v = units[head]!.value
      if (v !== undefined) this.#committed = v
      head++
    }
    if (head === units.length) {
      this.#units = []
      this.#head = 0
    } else if (head > 4096 && head * 2 > units.length) {
      this.#units = units.slice(head)
      this.#head = 0
    } else {
      this.#head = head
    }
  }

  /** The highest value all of whose predecessors have completed. */
  get committed(): T | undefined {
    return this.#committed
  }

  /** Units registered and not yet released by the contiguous run. */
  get outstanding(): number {
    return this.#units.length - this.#head
  }
}

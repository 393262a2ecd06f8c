/**
 * Bounds what a crash makes the peer send again: the events read beyond the saved cursor, that
 * is the events in flight plus the acknowledged ones whose position is not saved yet. Reading
 * pauses while those reach `max` and resumes once a save brings them down to `max / 2`; the
 * cursor is saved early once `max / 2` events were acknowledged since the last early save
 * (at normal rates the once-a-second save comes first).
 */
export class ReplayBound {
  readonly #max: number
  readonly #saveNow: () => void
  readonly #setPaused: (paused: boolean) => void
  #acked = 0
  #savedAcked = 0
  #lastEarlySave = 0
  #paused = false

  constructor(opts: {
    max: number
    /** Save the cursor now. */
    saveNow: () => void
    /** Pause (true) or resume (false) reading. */
    setPaused: (paused: boolean) => void
  }) {
    this.#max = opts.max
    this.#saveNow = opts.saveNow
    this.#setPaused = opts.setPaused
  }

  /** Events acknowledged so far: remember it with each cursor value, for {@link saved}. */
  get acked(): number {
    return this.#acked
  }

  /** Acknowledged events the saved cursor does not cover yet. */
  get unsaved(): number {
    return this.#acked - this.#savedAcked
  }

  get paused(): boolean {
    return this.#paused
  }

  /** Events were read; `inFlight` are read and not yet acknowledged. */
  read(inFlight: number): void {
    this.#check(inFlight)
  }

  /** `n` more events were acknowledged. */
  acknowledged(n: number, inFlight: number): void {
    this.#acked += n
    if (this.#acked - this.#lastEarlySave >= Math.max(1, this.#max / 2)) {
      this.#lastEarlySave = this.#acked
      this.#saveNow()
    }
    this.#check(inFlight)
  }

  /** A cursor value saved when `ackedAtValue` events were acknowledged is now on disk. */
  saved(ackedAtValue: number, inFlight: number): void {
    this.#savedAcked = Math.max(this.#savedAcked, ackedAtValue)
    this.#check(inFlight)
  }

  #check(inFlight: number): void {
    const held = inFlight + this.unsaved
    if (!this.#paused && held >= this.#max) {
      this.#paused = true
      this.#setPaused(true)
      this.#saveNow()
    } else if (this.#paused && held <= this.#max / 2) {
      this.#paused = false
      this.#setPaused(false)
    }
  }
}

/**
 * 63-bit snowflake ids for Osprey's `action_id`: 41 bits of milliseconds since 2024-01-01T00:00Z,
 * 10 bits of worker id, 12 bits of sequence. Unique across restarts (time moves on) and across
 * instances with distinct worker ids. Never passes through a JS number.
 */
export const SNOWFLAKE_EPOCH_MS = Date.UTC(2024, 0, 1)
export const MAX_WORKER_ID = 1023
const MAX_SEQUENCE = 4095

export class Snowflake {
  readonly #worker: bigint
  readonly #now: () => number
  #lastMs = -1
  #sequence = 0

  constructor(workerId: number, now: () => number = Date.now) {
    if (!Number.isInteger(workerId) || workerId < 0 || workerId > MAX_WORKER_ID) {
      throw new RangeError(`worker id must be an integer from 0 to ${MAX_WORKER_ID}`)
    }
    this.#worker = BigInt(workerId)
    this.#now = now
  }

  next(): bigint {
    const now = this.#now() - SNOWFLAKE_EPOCH_MS
    if (now > this.#lastMs) {
      this.#lastMs = now
      this.#sequence = 0
    } else if (this.#sequence < MAX_SEQUENCE) {
      // Same millisecond, or the clock went back: keep counting on the last one.
      this.#sequence++
    } else {
      // Sequence exhausted: borrow the next millisecond rather than wait.
      this.#lastMs++
      this.#sequence = 0
    }
    return (BigInt(this.#lastMs) << 22n) | (this.#worker << 12n) | BigInt(this.#sequence)
  }
}

/** Default worker id: a stable hash of the host name, so replicas on different hosts differ. */
export function workerIdFromHostname(hostname: string): number {
  let h = 2166136261
  for (let i = 0; i < hostname.length; i++) {
    h ^= hostname.charCodeAt(i)
    h = Math.imul(h, 16777619)
  }
  return (h >>> 0) % (MAX_WORKER_ID + 1)
}

import { setTimeout as sleep } from 'node:timers/promises'
import { AtKafkaError } from '../errors.ts'
import { Breaker } from './breaker.ts'
import { TokenBucket } from './rate-limit.ts'

/** How a lookup ended; the `status` label of `atkafka_plc_requests` / `atkafka_api_requests`. */
export type LookupStatus = 'ok' | 'not_found' | 'error' | 'timeout' | 'limited' | 'unavailable'

export type Fetched =
  { status: 'ok'; body: unknown } | { status: Exclude<LookupStatus, 'ok'>; error?: LookupError }

/** A metadata lookup failed; the event goes out without that part of its metadata. */
export class LookupError extends AtKafkaError {
  override name = 'LookupError'
}

const MAX_BODY_BYTES = 4 * 1024 * 1024
const BREAKER_THRESHOLD = 5
const BREAKER_COOLDOWN_MS = 10000

/**
 * One configured HTTP service (the PLC directory or the AppView): JSON GETs with a time limit,
 * a shared rate limit and a circuit breaker, so a slow or dead service costs each lookup at
 * most `timeoutMs` and, once it is known to be down, nothing.
 */
export class Upstream {
  readonly #base: string
  readonly #timeoutMs: number
  readonly #limiter: TokenBucket
  readonly #breaker: Breaker

  constructor(opts: { base: string; timeoutMs: number; ratePerSec: number }) {
    this.#base = opts.base
    this.#timeoutMs = opts.timeoutMs
    this.#limiter = new TokenBucket({
      ratePerSec: opts.ratePerSec,
      burst: Math.max(1, Math.floor(opts.ratePerSec / 2)),
    })
    this.#breaker = new Breaker({ threshold: BREAKER_THRESHOLD, cooldownMs: BREAKER_COOLDOWN_MS })
  }

  /**
   * GET `<base><path>` as JSON. 404 (and, for XRPC, 400: unknown or taken-down actor) is
   * `not_found`; a thrown error only means `signal` aborted.
   */
  async getJson(
    path: string,
    signal: AbortSignal,
    notFound: readonly number[] = [404],
  ): Promise<Fetched> {
    const url = this.#base + path
    const wait = this.#limiter.reserve(this.#timeoutMs / 2)
    if (wait === undefined) return { status: 'limited' }
    if (!this.#breaker.allow()) return { status: 'unavailable' }
    const timeout = AbortSignal.timeout(this.#timeoutMs)
    const both = AbortSignal.any([signal, timeout])
    try {
      if (wait > 0) await sleep(wait, undefined, { signal: both })
      const res = await fetch(url, {
        signal: both,
        redirect: 'follow',
        headers: { accept: 'application/json', 'user-agent': 'atkafka' },
      })
      if (notFound.includes(res.status)) {
        await res.body?.cancel()
        this.#breaker.success()
        return { status: 'not_found' }
      }
      if (!res.ok) {
        await res.body?.cancel()
        if (res.status >= 500 || res.status === 429) this.#breaker.failure()
        else this.#breaker.success()
        return {
          status: 'error',
          error: new LookupError(`GET ${url}: HTTP ${res.status}`, {
            retryable: res.status >= 500 || res.status === 429,
          }),
        }
      }
      let body: unknown
      try {
        body = await readJson(res)
      } catch (err) {
        if (signal.aborted || timeout.aborted) throw err
        this.#breaker.success()
        return {
          status: 'error',
          error: new LookupError(`GET ${url}: unreadable answer`, { cause: err }),
        }
      }
      this.#breaker.success()
      return { status: 'ok', body }
    } catch (err) {
      if (signal.aborted) {
        this.#breaker.cancel()
        throw err
      }
      const timedOut = timeout.aborted
      this.#breaker.failure()
      return {
        status: timedOut ? 'timeout' : 'error',
        error: new LookupError(
          timedOut ? `GET ${url}: no answer in ${this.#timeoutMs} ms` : `GET ${url} failed`,
          { cause: err, retryable: true },
        ),
      }
    }
  }
}

async function readJson(res: Response): Promise<unknown> {
  const length = Number(res.headers.get('content-length') ?? '0')
  if (length > MAX_BODY_BYTES) {
    await res.body?.cancel()
    throw new LookupError(`response of ${length} bytes is larger than ${MAX_BODY_BYTES}`)
  }
  const text = await res.text()
  if (text.length > MAX_BODY_BYTES) {
    throw new LookupError(`response is larger than ${MAX_BODY_BYTES} bytes`)
  }
  return JSON.parse(text) as unknown
}

import { setTimeout as sleep } from 'node:timers/promises'
import { IdleWatch } from '../stream/idle.ts'
import WebSocket from 'ws'
import { backoffDelay } from '../backoff.ts'
import { errorMessage } from '../errors.ts'
import type { Logger } from '../logger.ts'
import type { Metrics } from '../metrics.ts'

export const SUBSCRIBE_REPOS_PATH = '/xrpc/com.atproto.sync.subscribeRepos'
/** Largest frame accepted; the protocol allows 5 MB, this leaves headroom. */
export const MAX_FRAME_BYTES = 8 * 1024 * 1024

export function subscribeUrl(
  base: string,
  cursor: number | undefined,
  path: string = SUBSCRIBE_REPOS_PATH,
): string {
  const url = new URL(base + path)
  if (cursor !== undefined) url.searchParams.set('cursor', String(cursor))
  return url.toString()
}

/** WebSocket close codes counted under their own `close-<code>` reason; others are `close-other`. */
const KNOWN_CLOSE_CODES = new Set([
  1000, 1001, 1002, 1003, 1005, 1006, 1007, 1008, 1009, 1010, 1011,
])

/** The `reason` label of a closed connection: bounded, whatever code the peer sent. */
export function closeReason(code: number): string {
  return KNOWN_CLOSE_CODES.has(code) ? `close-${code}` : 'close-other'
}

export interface SourceHandlers {
  /** The cursor to resume from on (re)connect. */
  cursor(): number | undefined
  frame(data: Buffer): void
}

/**
 * Owns the WebSocket to a relay: connects, reconnects with exponential backoff and jitter, and
 * pauses reading on request (backpressure). Runs until `signal` aborts.
 */
export class RelaySource {
  readonly #base: string
  readonly #path: string
  readonly #log: Logger
  readonly #metrics: Metrics
  readonly #handlers: SourceHandlers
  readonly #idleTimeoutMs: number
  #ws: WebSocket | undefined
  #paused = false
  #connected = false
  #everConnected = false
  #lastError: string | undefined
  /** Idle timer of the current connection: stopped while paused (silence is ours then). */
  #idle: { arm(): void; disarm(): void } | undefined

  constructor(opts: {
    base: string
    /** XRPC subscription path; default subscribeRepos. */
    path?: string
    logger: Logger
    metrics: Metrics
    handlers: SourceHandlers
    idleTimeoutMs?: number
  }) {
    this.#base = opts.base
    this.#path = opts.path ?? SUBSCRIBE_REPOS_PATH
    this.#log = opts.logger
    this.#metrics = opts.metrics
    this.#handlers = opts.handlers
    this.#idleTimeoutMs = opts.idleTimeoutMs ?? 60000
  }

  get connected(): boolean {
    return this.#connected
  }

  /** For the progress line: the connection's state and, while down, why the last one failed. */
  get status(): { state: 'connected' | 'connecting' | 'reconnecting'; lastError?: string } {
    if (this.#connected) return { state: 'connected' }
    return {
      state: this.#everConnected ? 'reconnecting' : 'connecting',
      ...(this.#lastError === undefined ? {} : { lastError: this.#lastError }),
    }
  }

  pause(): void {
    this.#paused = true
    this.#ws?.pause()
    this.#idle?.disarm()
  }

  resume(): void {
    this.#paused = false
    this.#ws?.resume()
    this.#idle?.arm()
  }

  async run(signal: AbortSignal): Promise<void> {
    let failures = 0
    while (!signal.aborted) {
      const { received, reason } = await this.#connectOnce(signal)
      if (signal.aborted) break
      failures = received ? 0 : failures + 1
      this.#metrics.reconnects.inc({ reason })
      const delay = backoffDelay(failures, 500, 30000)
      this.#log.warn({ reason, retryInMs: delay }, 'relay connection ended, reconnecting')
      await sleep(delay, undefined, { signal }).catch(() => {})
    }
  }

  /** One connection; resolves when it ends, telling whether any frame arrived and why it ended. */
  #connectOnce(signal: AbortSignal): Promise<{ received: boolean; reason: string }> {
    const url = subscribeUrl(this.#base, this.#handlers.cursor(), this.#path)
    this.#log.info({ url }, 'connecting to relay')
    return new Promise((resolve) => {
      let received = false
      let reason = 'closed'
      let pinger: NodeJS.Timeout | undefined
      const ws = new WebSocket(url, {
        maxPayload: MAX_FRAME_BYTES,
        handshakeTimeout: 15000,
        headers: { 'user-agent': 'atkafka' },
      })
      this.#ws = ws
      const idle = new IdleWatch(this.#idleTimeoutMs, () => {
        reason = 'idle-timeout'
        this.#log.warn({ idleMs: this.#idleTimeoutMs }, 'no frames from relay, reconnecting')
        ws.terminate()
      })
      const armIdle = () => {
        if (!this.#paused) idle.touch()
      }
      // Close politely, but do not wait for a relay whose close frame sits behind paused data.
      const onAbort = () => {
        ws.close(1000)
        setTimeout(() => ws.terminate(), 2000).unref()
      }
      signal.addEventListener('abort', onAbort, { once: true })
      ws.on('open', () => {
        this.#idle = { arm: armIdle, disarm: () => idle.stop() }
        this.#connected = true
        this.#everConnected = true
        this.#lastError = undefined
        this.#metrics.connected.set(1)
        this.#log.info('connected to relay')
        if (this.#paused) ws.pause()
        armIdle()
        // A quiet relay is not a dead one: ping so only a dead connection hits the idle timeout.
        pinger = setInterval(() => ws.ping(), Math.max(1000, this.#idleTimeoutMs / 3))
      })
      ws.on('message', (data: Buffer, isBinary: boolean) => {
        armIdle()
        received = true
        if (!isBinary) {
          this.#metrics.decodeErrors.inc({ reason: 'text-frame' })
          this.#log.warn('relay sent a text frame; skipped')
          return
        }
        this.#handlers.frame(data)
      })
      ws.on('ping', () => armIdle())
      ws.on('pong', () => armIdle())
      ws.on('error', (err) => {
        reason =
          (err as { code?: string }).code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH'
            ? 'frame-too-large'
            : 'error'
        this.#lastError = errorMessage(err)
        this.#log.warn({ err: errorMessage(err) }, 'relay connection error')
      })
      ws.on('close', (code, why) => {
        idle.stop()
        clearInterval(pinger)
        signal.removeEventListener('abort', onAbort)
        this.#connected = false
        this.#metrics.connected.set(0)
        this.#ws = undefined
        this.#idle = undefined
        if (reason === 'closed') reason = closeReason(code)
        if (reason !== 'error') this.#lastError = `connection closed (${reason})`
        this.#log.info({ code, reason: why.toString() }, 'relay connection closed')
        resolve({ received, reason })
      })
    })
  }
}

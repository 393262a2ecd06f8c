import { setTimeout as sleep } from 'node:timers/promises'
import { IdleWatch } from '../stream/idle.ts'
import WebSocket from 'ws'
import { backoffDelay } from '../backoff.ts'
import { AtKafkaError, errorMessage } from '../errors.ts'
import type { Logger } from '../logger.ts'
import type { Metrics } from '../metrics.ts'
import { closeReason } from '../relay/source.ts'

export const CHANNEL_PATH = '/channel'
/** Largest frame accepted: a record is at most 2 MB as JSON, this leaves headroom. */
export const MAX_FRAME_BYTES = 8 * 1024 * 1024
/** A connection that lasted this long resets the reconnect backoff. */
const STABLE_MS = 10000
const CLOSE_TIMEOUT_MS = 5000

/** Tap refused the credentials: retrying cannot help. */
export class TapAuthError extends AtKafkaError {
  override name = 'TapAuthError'
}

/**
 * One WebSocket connection to Tap. Acks are only valid on the connection the event came on:
 * after a Tap restart the same ids name other events.
 */
export interface TapConnection {
  readonly id: number
  readonly open: boolean
  /** Send text frames in order; `cb` runs once, when the last one is written or failed. */
  sendAll(texts: readonly string[], cb: (err?: Error) => void): void
}

export function channelUrl(base: string): string {
  return base + CHANNEL_PATH
}

export function basicAuth(password: string): string {
  return 'Basic ' + Buffer.from(`admin:${password}`).toString('base64')
}

/**
 * Owns the WebSocket to Tap's `/channel`: connects (with HTTP Basic auth when a password is
 * set), reconnects with exponential backoff and jitter, and pauses reading on request. When
 * `run`'s signal aborts, reading stops but the socket stays open so acks still due can be sent;
 * {@link close} then closes it.
 */
export class TapSource {
  readonly #url: string
  readonly #auth: string | undefined
  readonly #log: Logger
  readonly #metrics: Metrics
  readonly #onMessage: (text: string, conn: TapConnection) => void
  readonly #idleTimeoutMs: number
  #ws: WebSocket | undefined
  #closed: Promise<void> = Promise.resolve()
  #paused = false
  /** Frames the socket had already read when reading paused: held so the bound is exact. */
  #backlog: Array<[string, TapConnection]> = []
  #stopped = false
  #connected = false
  #connections = 0
  #idle: IdleWatch | undefined

  constructor(opts: {
    base: string
    adminPassword?: string
    logger: Logger
    metrics: Metrics
    onMessage: (text: string, conn: TapConnection) => void
    idleTimeoutMs?: number
  }) {
    this.#url = channelUrl(opts.base)
    this.#auth = opts.adminPassword === undefined ? undefined : basicAuth(opts.adminPassword)
    this.#log = opts.logger
    this.#metrics = opts.metrics
    this.#onMessage = opts.onMessage
    this.#idleTimeoutMs = opts.idleTimeoutMs ?? 60000
  }

  get connected(): boolean {
    return this.#connected
  }

  pause(): void {
    this.#paused = true
    if (this.#ws?.readyState === WebSocket.OPEN) this.#ws.pause()
    // A paused socket reads no pongs either: the idle timeout only runs while reading.
    this.#idle?.stop()
  }

  resume(): void {
    if (this.#stopped) return
    this.#paused = false
    // Frames read before the pause come first; handling them may pause again.
    while (!this.#paused && this.#backlog.length > 0) {
      const [text, conn] = this.#backlog.shift()!
      this.#onMessage(text, conn)
    }
    if (this.#paused || this.#ws?.readyState !== WebSocket.OPEN) return
    this.#ws.resume()
    this.#idle?.touch()
  }

  /**
   * Connect and reconnect until `signal` aborts; then stop reading and resolve, leaving the
   * socket open. Rejects with {@link TapAuthError} when Tap refuses the credentials.
   */
  async run(signal: AbortSignal): Promise<void> {
    let failures = 0
    while (!signal.aborted) {
      const result = await this.#connectOnce(signal)
      if (signal.aborted) break
      if (result.status === 401 || result.status === 403) {
        throw new TapAuthError(
          `Tap refused the connection with HTTP ${result.status}: ` +
            (this.#auth === undefined
              ? 'it needs its admin password (--tap-admin-password)'
              : 'check --tap-admin-password'),
        )
      }
      failures = result.stable ? 0 : failures + 1
      this.#metrics.reconnects.inc({ reason: result.reason })
      const delay = backoffDelay(failures, 500, 30000)
      this.#log.warn(
        { reason: result.reason, retryInMs: delay },
        'Tap connection ended, reconnecting',
      )
      await sleep(delay, undefined, { signal }).catch(() => {})
    }
    this.stopReading()
  }

  /** Stop reading for good (shutdown); the socket stays open until {@link close}. */
  stopReading(): void {
    this.#stopped = true
    this.pause()
  }

  /** Close the socket (after the last acks were handed to it) and wait until it is closed. */
  async close(): Promise<void> {
    const ws = this.#ws
    if (ws === undefined) return
    // Read again so Tap's close frame arrives; frames still coming are held, never handled.
    this.#stopped = true
    this.#paused = true
    if (ws.readyState === WebSocket.OPEN) ws.resume()
    ws.close(1000)
    const timer = setTimeout(() => ws.terminate(), CLOSE_TIMEOUT_MS)
    await this.#closed
    clearTimeout(timer)
  }

  /**
   * One connection. Resolves once it is closed, or as soon as `signal` aborts (the socket then
   * stays open for {@link close}).
   */
  #connectOnce(signal: AbortSignal): Promise<{ stable: boolean; reason: string; status?: number }> {
    this.#log.info({ url: this.#url, auth: this.#auth !== undefined }, 'connecting to Tap')
    const headers: Record<string, string> = { 'user-agent': 'atkafka' }
    if (this.#auth !== undefined) headers['authorization'] = this.#auth
    const ws = new WebSocket(this.#url, {
      maxPayload: MAX_FRAME_BYTES,
      handshakeTimeout: 15000,
      headers,
    })
    this.#ws = ws
    const conn = {
      id: ++this.#connections,
      open: false,
      sendAll(texts: readonly string[], cb: (err?: Error) => void): void {
        if (texts.length === 0) return cb()
        for (let i = 0; i < texts.length - 1; i++) ws.send(texts[i]!)
        ws.send(texts[texts.length - 1]!, cb)
      },
    }
    let openedAt = 0
    let received = false
    let reason = 'closed'
    let status: number | undefined
    let pinger: NodeJS.Timeout | undefined
    const idle = new IdleWatch(this.#idleTimeoutMs, () => {
      reason = 'idle-timeout'
      this.#log.warn({ idleMs: this.#idleTimeoutMs }, 'Tap stopped answering pings, reconnecting')
      ws.terminate()
    })
    this.#idle = idle
    const armIdle = () => {
      if (!this.#paused) idle.touch()
    }
    let onClosed: () => void = () => {}
    this.#closed = new Promise<void>((resolve) => (onClosed = resolve))

    return new Promise((resolve) => {
      const onAbort = () => resolve({ stable: true, reason: 'stopped' })
      signal.addEventListener('abort', onAbort, { once: true })
      ws.on('unexpected-response', (_req, res) => {
        status = res.statusCode
        reason = `http-${status}`
        res.resume()
        ws.terminate()
      })
      ws.on('open', () => {
        openedAt = Date.now()
        conn.open = true
        this.#connected = true
        this.#metrics.connected.set(1)
        this.#log.info({ connection: conn.id }, 'connected to Tap')
        if (this.#paused) ws.pause()
        armIdle()
        // Tap sends nothing while it has no events: ping so that only a dead peer times out.
        pinger = setInterval(() => ws.ping(), Math.max(1000, this.#idleTimeoutMs / 3))
      })
      ws.on('message', (data: Buffer) => {
        armIdle()
        received = true
        const text = data.toString('utf8')
        if (this.#paused) this.#backlog.push([text, conn])
        else this.#onMessage(text, conn)
      })
      ws.on('pong', () => armIdle())
      ws.on('ping', () => armIdle())
      ws.on('error', (err) => {
        if (status === undefined) {
          reason =
            (err as { code?: string }).code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH'
              ? 'frame-too-large'
              : 'error'
        }
        this.#log.warn({ err: errorMessage(err), status }, 'Tap connection error')
      })
      ws.on('close', (code, why) => {
        idle.stop()
        clearInterval(pinger)
        signal.removeEventListener('abort', onAbort)
        conn.open = false
        // Unhandled frames of a closed connection cannot be acked; Tap sends them again.
        this.#backlog = []
        this.#connected = false
        this.#metrics.connected.set(0)
        if (this.#ws === ws) this.#ws = undefined
        if (reason === 'closed') reason = closeReason(code)
        this.#log.info(
          { connection: conn.id, code, reason: why.toString() },
          'Tap connection closed',
        )
        onClosed()
        const stable = received || (openedAt > 0 && Date.now() - openedAt >= STABLE_MS)
        resolve({ stable, reason, status })
      })
    })
  }
}

import { setTimeout as sleep } from 'node:timers/promises'
import WebSocket from 'ws'
import { backoffDelay } from '../backoff.ts'
import { errorMessage } from '../errors.ts'
import type { Logger } from '../logger.ts'
import type { Metrics } from '../metrics.ts'
import { IdleWatch } from './idle.ts'
import type { SourceStatus } from './port.ts'

/** Largest frame accepted: the firehose allows 5 MB, a JSON record 2 MB; this leaves headroom. */
export const MAX_FRAME_BYTES = 8 * 1024 * 1024
const CLOSE_TIMEOUT_MS = 5000

/** `base + path`, with `?cursor=` when there is one. */
export function subscribeUrl(base: string, cursor: number | undefined, path: string): string {
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

/**
 * One connection of a {@link WebSocketSource}. What a message acknowledges on the peer (a Tap
 * ack) is only valid on the connection it came on.
 */
export interface WsConnection {
  readonly id: number
  readonly open: boolean
  /** Send text frames in order; `cb` runs once, when the last one is written or failed. */
  sendAll(texts: readonly string[], cb: (err?: Error) => void): void
}

export interface WebSocketSourceOptions {
  /** Names the peer in log lines (`relay`, `Tap`, `Jetstream`). */
  peer: string
  /** The URL of the next connection (a resumed cursor goes in its query). */
  url: () => string
  headers?: Record<string, string>
  logger: Logger
  metrics: Metrics
  onMessage: (data: Buffer, isBinary: boolean, conn: WsConnection) => void
  /** A connection opened (e.g. to send the subscription's options). */
  onOpen?: (conn: WsConnection) => void
  /** No frame, ping or pong for this long ends the connection. Default 60 s. */
  idleTimeoutMs?: number
  /**
   * A connection counts as stable (the next reconnect waits only the first backoff step) once a
   * frame arrived, or once it stayed open this long when set.
   */
  stableAfterMs?: number
  /**
   * Given an HTTP status refusing the upgrade: the error to throw when retrying cannot fix it.
   * When set, refusals are counted as `http-<status>`.
   */
  refused?: (status: number) => Error | undefined
  /**
   * When `run`'s signal aborts: close at once (false), or stop reading and keep the socket open
   * until {@link WebSocketSource.close} (true: acks still due can be sent on it).
   */
  keepOpenOnStop?: boolean
}

/**
 * Owns the WebSocket to a source: connects, reconnects with exponential backoff and jitter,
 * ends a connection that stays silent past the idle timeout (pinging so a quiet peer is not a
 * dead one), and pauses reading on request. Frames the socket had already read when reading
 * paused are held and handled on resume, so a pause stops handling at once; frames of a
 * connection that closed before they were handled are dropped (the source sends them again).
 */
export class WebSocketSource {
  readonly #opts: WebSocketSourceOptions
  readonly #log: Logger
  readonly #metrics: Metrics
  readonly #idleTimeoutMs: number
  #ws: WebSocket | undefined
  #closed: Promise<void> = Promise.resolve()
  #paused = false
  #stopped = false
  #connected = false
  #everConnected = false
  #lastError: string | undefined
  #connections = 0
  #backlog: Array<[Buffer, boolean, WsConnection]> = []
  #idle: IdleWatch | undefined

  constructor(opts: WebSocketSourceOptions) {
    this.#opts = opts
    this.#log = opts.logger
    this.#metrics = opts.metrics
    this.#idleTimeoutMs = opts.idleTimeoutMs ?? 60000
  }

  get connected(): boolean {
    return this.#connected
  }

  /** For the progress line: the connection's state and, while down, why the last one failed. */
  get status(): SourceStatus {
    if (this.#connected) return { state: 'connected' }
    return {
      state: this.#everConnected ? 'reconnecting' : 'connecting',
      ...(this.#lastError === undefined ? {} : { lastError: this.#lastError }),
    }
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
      const [data, isBinary, conn] = this.#backlog.shift()!
      this.#opts.onMessage(data, isBinary, conn)
    }
    if (this.#paused || this.#ws?.readyState !== WebSocket.OPEN) return
    this.#ws.resume()
    this.#idle?.touch()
  }

  /**
   * Connect and reconnect until `signal` aborts. Rejects with the error `refused` gave for an
   * HTTP status.
   */
  async run(signal: AbortSignal): Promise<void> {
    const { peer } = this.#opts
    let failures = 0
    while (!signal.aborted) {
      const result = await this.#connectOnce(signal)
      if (signal.aborted) break
      const fatal = result.status === undefined ? undefined : this.#opts.refused?.(result.status)
      if (fatal !== undefined) throw fatal
      failures = result.stable ? 0 : failures + 1
      this.#metrics.reconnects.inc({ reason: result.reason })
      const delay = backoffDelay(failures, 500, 30000)
      this.#log.warn(
        { reason: result.reason, retryInMs: delay },
        `${peer} connection ended, reconnecting`,
      )
      await sleep(delay, undefined, { signal }).catch(() => {})
    }
    this.stopReading()
  }

  /** Stop reading for good (shutdown); with `keepOpenOnStop` the socket stays open until {@link close}. */
  stopReading(): void {
    this.#stopped = true
    this.pause()
  }

  /** Close the socket and wait until it is closed (bounded). */
  async close(): Promise<void> {
    this.#stopped = true
    const ws = this.#ws
    if (ws === undefined) return
    // Read again so the peer's close frame arrives; frames still coming are never handled.
    this.#paused = true
    if (ws.readyState === WebSocket.OPEN) ws.resume()
    ws.close(1000)
    const timer = setTimeout(() => ws.terminate(), CLOSE_TIMEOUT_MS)
    await this.#closed
    clearTimeout(timer)
  }

  /**
   * One connection. Resolves once it is closed; with `keepOpenOnStop`, as soon as `signal`
   * aborts (the socket then stays open for {@link close}).
   */
  #connectOnce(signal: AbortSignal): Promise<{ stable: boolean; reason: string; status?: number }> {
    const { peer, stableAfterMs } = this.#opts
    const url = this.#opts.url()
    this.#log.info({ url }, `connecting to ${peer}`)
    const ws = new WebSocket(url, {
      maxPayload: MAX_FRAME_BYTES,
      handshakeTimeout: 15000,
      headers: { 'user-agent': 'atkafka', ...this.#opts.headers },
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
      this.#log.warn({ idleMs: this.#idleTimeoutMs }, `no frames from ${peer}, reconnecting`)
      ws.terminate()
    })
    this.#idle = idle
    const armIdle = () => {
      if (!this.#paused) idle.touch()
    }
    let onClosed: () => void = () => {}
    this.#closed = new Promise<void>((resolve) => (onClosed = resolve))

    return new Promise((resolve) => {
      const onAbort = () => {
        if (this.#opts.keepOpenOnStop) {
          this.stopReading()
          resolve({ stable: true, reason: 'stopped' })
          return
        }
        // Stop handling frames, but read on so the peer's close frame arrives; close politely,
        // and do not wait for a peer whose close frame sits behind paused data.
        this.#stopped = true
        if (ws.readyState === WebSocket.OPEN) ws.resume()
        ws.close(1000)
        setTimeout(() => ws.terminate(), 2000).unref()
      }
      signal.addEventListener('abort', onAbort, { once: true })
      // With `refused`, a refused upgrade is counted by its status (else as an `error`).
      if (this.#opts.refused !== undefined) {
        ws.on('unexpected-response', (_req, res) => {
          status = res.statusCode
          reason = `http-${status}`
          res.resume()
          ws.terminate()
        })
      }
      ws.on('open', () => {
        openedAt = Date.now()
        conn.open = true
        this.#connected = true
        this.#everConnected = true
        this.#lastError = undefined
        this.#metrics.connected.set(1)
        this.#log.info({ connection: conn.id }, `connected to ${peer}`)
        this.#opts.onOpen?.(conn)
        if (this.#paused) ws.pause()
        armIdle()
        // A quiet peer is not a dead one: ping so only a dead connection hits the idle timeout.
        pinger = setInterval(() => ws.ping(), Math.max(1000, this.#idleTimeoutMs / 3))
      })
      ws.on('message', (data: Buffer, isBinary: boolean) => {
        armIdle()
        received = true
        if (this.#stopped) return
        if (this.#paused) this.#backlog.push([data, isBinary, conn])
        else this.#opts.onMessage(data, isBinary, conn)
      })
      ws.on('ping', () => armIdle())
      ws.on('pong', () => armIdle())
      ws.on('error', (err) => {
        if (status === undefined) {
          reason =
            (err as { code?: string }).code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH'
              ? 'frame-too-large'
              : 'error'
        }
        this.#lastError = errorMessage(err)
        this.#log.warn({ err: errorMessage(err), status }, `${peer} connection error`)
      })
      ws.on('close', (code, why) => {
        idle.stop()
        clearInterval(pinger)
        signal.removeEventListener('abort', onAbort)
        conn.open = false
        // Frames of a closed connection that were not handled: the source sends them again.
        this.#backlog = []
        this.#connected = false
        this.#metrics.connected.set(0)
        if (this.#ws === ws) this.#ws = undefined
        if (this.#idle === idle) this.#idle = undefined
        if (reason === 'closed') reason = closeReason(code)
        if (reason !== 'error') this.#lastError = `connection closed (${reason})`
        this.#log.info(
          { connection: conn.id, code, reason: why.toString() },
          `${peer} connection closed`,
        )
        onClosed()
        const stable =
          received ||
          (stableAfterMs !== undefined && openedAt > 0 && Date.now() - openedAt >= stableAfterMs)
        resolve({ stable, reason, status })
      })
    })
  }
}

import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import { WebSocketServer, type WebSocket } from 'ws'
import type { TapEventBody } from './corpus/tap-events.ts'
import { wallMs } from './relay-feed.ts'

export interface ReplayTapOptions {
  events: readonly TapEventBody[]
  /** Events to send in all (the list repeated as often as needed); ids run from 1. */
  total: number
  /** Unacknowledged events Tap keeps out at most (its TAP_OUTBOX_CAPACITY, default 100000). */
  capacity?: number
  /** Called when the first event goes out. */
  onFirstSend?: () => void
}

const HIGH_WATER = 512 * 1024

/**
 * A stand-in for Tap's `/channel` that speaks its protocol: one JSON text frame per event with
 * ids from 1, and `{"type":"ack","id":N}` back from the client; any other frame from the client
 * closes the connection, as Tap does. Events go out as fast as the socket takes them while fewer
 * than `capacity` are unacknowledged (backfill events carry no per-repo ordering in Tap). Keeps
 * send and ack times of every id for the latency measurement.
 */
export class ReplayTap {
  readonly sendTimes: Float64Array
  readonly ackTimes: Float64Array
  readonly #opts: ReplayTapOptions
  readonly #capacity: number
  #wss: WebSocketServer | undefined
  #next = 1
  #unacked = 0
  acked = 0
  duplicateAcks = 0
  badFrames = 0
  sentBytes = 0
  firstSendAt = 0
  lastAckAt = 0
  connections = 0
  #whenDone: Array<() => void> = []

  constructor(opts: ReplayTapOptions) {
    this.#opts = opts
    this.#capacity = opts.capacity ?? 100_000
    this.sendTimes = new Float64Array(opts.total + 1)
    this.ackTimes = new Float64Array(opts.total + 1)
  }

  async start(): Promise<string> {
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 })
    this.#wss = wss
    await once(wss, 'listening')
    wss.on('connection', (ws, req) => {
      if (new URL(req.url ?? '/', 'http://x').pathname !== '/channel') {
        ws.close(1008, 'wrong path')
        return
      }
      this.connections++
      this.#serve(ws)
    })
    return `ws://127.0.0.1:${(wss.address() as AddressInfo).port}`
  }

  /** Resolves once every event was acknowledged. */
  done(): Promise<void> {
    if (this.acked >= this.#opts.total) return Promise.resolve()
    return new Promise((resolve) => this.#whenDone.push(resolve))
  }

  async close(): Promise<void> {
    const wss = this.#wss
    if (wss === undefined) return
    for (const c of wss.clients) c.terminate()
    await new Promise<void>((resolve) => wss.close(() => resolve()))
  }

  #serve(ws: WebSocket): void {
    const { events, total } = this.#opts
    let buffered = 0
    let waiting = false
    const pump = () => {
      waiting = false
      while (ws.readyState === ws.OPEN && this.#next <= total) {
        if (buffered >= HIGH_WATER || this.#unacked >= this.#capacity) {
          waiting = true
          return
        }
        const id = this.#next++
        const text = `{"id":${id},${events[(id - 1) % events.length]!.body}`
        const now = wallMs()
        if (this.firstSendAt === 0) {
          this.firstSendAt = now
          this.#opts.onFirstSend?.()
        }
        this.sendTimes[id] = now
        this.#unacked++
        this.sentBytes += text.length
        buffered += text.length
        ws.send(text, () => {
          buffered -= text.length
          if (waiting && buffered < HIGH_WATER / 2) pump()
        })
      }
    }
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      const id = isBinary ? undefined : ackId(data.toString())
      if (id === undefined || id < 1 || id >= this.#next) {
        this.badFrames++
        ws.close(1008, 'bad frame')
        return
      }
      if (this.ackTimes[id] !== 0) {
        this.duplicateAcks++
        return
      }
      const now = wallMs()
      this.ackTimes[id] = now
      this.lastAckAt = now
      this.acked++
      this.#unacked--
      if (this.acked >= total) for (const f of this.#whenDone.splice(0)) f()
      else if (waiting && this.#unacked < this.#capacity) pump()
    })
    setImmediate(pump)
  }
}

function ackId(text: string): number | undefined {
  try {
    const msg = JSON.parse(text) as { type?: unknown; id?: unknown }
    const keys = Object.keys(msg)
    if (msg.type !== 'ack' || typeof msg.id !== 'number' || keys.length !== 2) return undefined
    return msg.id
  } catch {
    return undefined
  }
}

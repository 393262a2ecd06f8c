import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import { WebSocketServer, type WebSocket } from 'ws'
import { JetstreamConverter } from '../test/support/jetstream.ts'
import { wallMs } from './relay-feed.ts'

/** One Jetstream event of the corpus: its DID and its JSON after `"time_us":N,`. */
export interface JetstreamBody {
  did: string
  rest: string
}

/** The corpus's frames as Jetstream events, converted by Jetstream's rules (test/support). */
export async function jetstreamEventsOf(frames: readonly Uint8Array[]): Promise<JetstreamBody[]> {
  const converter = new JetstreamConverter()
  const out: JetstreamBody[] = []
  for (const frame of frames) {
    for (const e of await converter.convert(frame)) {
      const { did, kind, commit, identity, account } = e
      out.push({ did, rest: JSON.stringify({ kind, commit, identity, account }).slice(1) })
    }
  }
  return out
}

const HIGH_WATER = 512 * 1024

/**
 * A stand-in for Jetstream's `/subscribe` serving `total` events, the corpus repeated as often
 * as needed (each repeat under other DIDs, so no event is a replay of another), stamped with
 * the wall-clock `time_us` of sending, as fast as the client reads (the socket's buffer is kept
 * under 512 KB).
 */
export class JetstreamFeed {
  readonly #events: readonly JetstreamBody[]
  readonly #total: number
  readonly #onFirstSend: (() => void) | undefined
  #wss: WebSocketServer | undefined
  #next = 0
  #lastTimeUs = 0
  connections = 0
  sentBytes = 0
  firstSendAt = 0

  constructor(opts: { events: readonly JetstreamBody[]; total: number; onFirstSend?: () => void }) {
    this.#events = opts.events
    this.#total = opts.total
    this.#onFirstSend = opts.onFirstSend
  }

  async start(): Promise<string> {
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 })
    this.#wss = wss
    await once(wss, 'listening')
    wss.on('connection', (ws, req) => {
      if (new URL(req.url ?? '/', 'http://x').pathname !== '/subscribe') {
        ws.close(1008, 'wrong path')
        return
      }
      this.connections++
      this.#serve(ws)
    })
    return `ws://127.0.0.1:${(wss.address() as AddressInfo).port}`
  }

  async close(): Promise<void> {
    const wss = this.#wss
    if (wss === undefined) return
    for (const c of wss.clients) c.terminate()
    await new Promise<void>((resolve) => wss.close(() => resolve()))
  }

  #serve(ws: WebSocket): void {
    const n = this.#events.length
    let buffered = 0
    let waiting = false
    const pump = () => {
      while (ws.readyState === ws.OPEN && this.#next < this.#total) {
        if (buffered >= HIGH_WATER) {
          waiting = true
          return
        }
        const g = this.#next++
        const loop = Math.floor(g / n)
        const e = this.#events[g % n]!
        const now = wallMs()
        if (this.firstSendAt === 0) {
          this.firstSendAt = now
          this.#onFirstSend?.()
        }
        this.#lastTimeUs = Math.max(this.#lastTimeUs + 1, Math.floor(now * 1000))
        const text = `{"did":"${e.did}${loop === 0 ? '' : `x${loop}`}","time_us":${this.#lastTimeUs},${e.rest}`
        this.sentBytes += text.length
        buffered += text.length
        ws.send(text, () => {
          buffered -= text.length
          if (waiting && buffered < HIGH_WATER / 2) {
            waiting = false
            pump()
          }
        })
      }
    }
    setImmediate(pump)
  }
}

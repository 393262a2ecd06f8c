import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import { WebSocketServer, type WebSocket } from 'ws'

/** A frame to serve with its seq (undefined for frames without one, e.g. `#info`). */
export interface ReplayFrame {
  seq: number | undefined
  bytes: Uint8Array
}

export interface ReplayRelayOptions {
  frames: readonly ReplayFrame[]
  /**
   * Called for each connection before frames are sent; may send extra frames, close the socket
   * or return a number of frames after which to drop the connection abruptly.
   */
  onConnection?: (ctx: { ws: WebSocket; cursor: number | undefined; index: number }) => void
  /** Stop after this many frames per connection and close abruptly (TCP reset). */
  dropAfter?: number
  /** Keep the connection open after the last frame (as a live relay does). Default true. */
  stayOpen?: boolean
  /** Send at most `burst` frames every `intervalMs` (a live-like rate) instead of flat out. */
  pace?: { burst: number; intervalMs: number }
}

export interface ReplayRelay {
  /** ws://127.0.0.1:port — pass as --relay-host. */
  readonly url: string
  /** The `cursor` query parameter of every connection, in order (undefined when absent). */
  readonly cursors: Array<number | undefined>
  readonly connections: number
  /** Frames sent so far over all connections. */
  readonly sent: number
  close(): Promise<void>
}

/**
 * An in-process relay serving fixed frames on `/xrpc/com.atproto.sync.subscribeRepos`, honouring
 * `?cursor=` (frames with a greater seq are sent), as fast as the client reads (it waits for the
 * socket to drain, so a paused client applies backpressure).
 */
export async function startReplayRelay(opts: ReplayRelayOptions): Promise<ReplayRelay> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 })
  await once(wss, 'listening')
  const cursors: Array<number | undefined> = []
  let sent = 0
  wss.on('connection', (ws, req) => {
    const url = new URL(req.url ?? '/', 'http://x')
    if (url.pathname !== '/xrpc/com.atproto.sync.subscribeRepos') {
      ws.close(1008, 'wrong path')
      return
    }
    const raw = url.searchParams.get('cursor')
    const cursor = raw === null ? undefined : Number(raw)
    cursors.push(cursor)
    opts.onConnection?.({ ws, cursor, index: cursors.length - 1 })
    let i = 0
    if (cursor !== undefined) {
      while (i < opts.frames.length) {
        const seq = opts.frames[i]!.seq
        if (seq !== undefined && seq > cursor) break
        i++
      }
    }
    let count = 0
    const pump = () => {
      let burst = 0
      while (ws.readyState === ws.OPEN && i < opts.frames.length) {
        if (opts.pace && burst >= opts.pace.burst) {
          setTimeout(pump, opts.pace.intervalMs)
          return
        }
        burst++
        if (opts.dropAfter !== undefined && count >= opts.dropAfter) {
          ws.terminate()
          return
        }
        ws.send(opts.frames[i]!.bytes, { binary: true })
        i++
        count++
        sent++
        if (ws.bufferedAmount > 1 << 20) {
          // Wait for the client to read before sending more.
          setTimeout(pump, 5)
          return
        }
      }
      if (i >= opts.frames.length && opts.stayOpen === false) ws.close(1000)
    }
    setImmediate(pump)
  })
  const port = (wss.address() as AddressInfo).port
  return {
    url: `ws://127.0.0.1:${port}`,
    cursors,
    get connections() {
      return cursors.length
    },
    get sent() {
      return sent
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const c of wss.clients) c.terminate()
        wss.close(() => resolve())
      }),
  }
}

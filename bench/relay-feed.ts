import type { WebSocket } from 'ws'
import { startReplayRelay, type ReplayRelay } from '../test/support/replay-relay.ts'
import { FramePatcher, seqOfFrame } from './corpus/patch.ts'
import type { Corpus } from './corpus/store.ts'

export interface RelayFeedOptions {
  corpus: Corpus
  /** Frames to serve in all: the corpus repeated (with unique seq and time) as often as needed. */
  totalFrames: number
  /** Events per second to pace at; undefined: as fast as the client reads. */
  eventsPerSecond?: number
  /** Called when the first frame goes out. */
  onFirstSend?: () => void
}

/** Wall-clock milliseconds with sub-millisecond resolution, comparable with Kafka timestamps. */
export function wallMs(): number {
  return performance.timeOrigin + performance.now()
}

const HIGH_WATER = 512 * 1024

/**
 * A replay relay (test/support/replay-relay.ts) fed from a corpus: frames go out as fast as the
 * client reads them (the socket's buffer is kept under 512 KB) or paced at a steady event
 * rate, and the send time of every frame is kept for the latency measurement. Honours
 * `?cursor=` and stays open after the last frame, as a live relay does.
 */
export class RelayFeed {
  readonly sendTimes: Float64Array
  readonly #opts: RelayFeedOptions
  readonly #patcher: FramePatcher
  #relay: ReplayRelay | undefined
  #timer: NodeJS.Timeout | undefined
  sentFrames = 0
  sentBytes = 0
  sentEvents = 0
  firstSendAt = 0
  lastSendAt = 0

  constructor(opts: RelayFeedOptions) {
    this.#opts = opts
    this.#patcher = new FramePatcher(opts.corpus.frames)
    this.sendTimes = new Float64Array(opts.totalFrames).fill(Number.NaN)
  }

  /** Events the whole feed carries. */
  get totalEvents(): number {
    const { corpus, totalFrames } = this.#opts
    const n = corpus.frames.length
    const loops = Math.floor(totalFrames / n)
    let events = loops * corpus.totalEvents
    for (let i = 0; i < totalFrames % n; i++) events += corpus.events[i]!
    return events
  }

  get connections(): number {
    return this.#relay?.connections ?? 0
  }

  async start(): Promise<string> {
    this.#relay = await startReplayRelay({
      frames: [],
      onConnection: ({ ws, cursor }) => this.#serve(ws, cursor),
    })
    return this.#relay.url
  }

  async close(): Promise<void> {
    clearTimeout(this.#timer)
    await this.#relay?.close()
  }

  #serve(ws: WebSocket, cursor: number | undefined): void {
    const { totalFrames, corpus, eventsPerSecond } = this.#opts
    let g = cursor === undefined ? 0 : Math.max(0, cursor - seqOfFrame(0) + 1)
    let buffered = 0
    let waiting = false
    const n = corpus.frames.length
    const sendOne = () => {
      const bytes = this.#patcher.frame(g)
      const now = wallMs()
      if (this.firstSendAt === 0) {
        this.firstSendAt = now
        this.#opts.onFirstSend?.()
      }
      this.lastSendAt = now
      this.sendTimes[g] = now
      this.sentFrames++
      this.sentBytes += bytes.length
      this.sentEvents += corpus.events[g % n]!
      buffered += bytes.length
      ws.send(bytes, { binary: true }, () => {
        buffered -= bytes.length
        if (waiting && buffered < HIGH_WATER / 2) {
          waiting = false
          pump()
        }
      })
      g++
    }
    const pump = () => {
      while (ws.readyState === ws.OPEN && g < totalFrames) {
        if (buffered >= HIGH_WATER) {
          waiting = true
          return
        }
        sendOne()
      }
    }
    if (eventsPerSecond === undefined) {
      setImmediate(pump)
      return
    }
    // Paced: every 2 ms, send the frames whose turn has come.
    const start = wallMs()
    let due = 0
    const tick = () => {
      if (ws.readyState !== ws.OPEN || g >= totalFrames) return
      const allowed = ((wallMs() - start) / 1000) * eventsPerSecond
      while (g < totalFrames && due <= allowed) {
        due += Math.max(1, corpus.events[g % n]!)
        sendOne()
      }
      this.#timer = setTimeout(tick, 2)
    }
    tick()
  }
}

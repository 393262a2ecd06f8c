// Jetstream for tests: a converter that turns a PDS's real firehose frames into Jetstream (v1)
// events by Jetstream's own rules, and an in-process server speaking Jetstream's `/subscribe`
// protocol (time_us cursor, wantedCollections / wantedDids, requireHello + options_update).
//
// Jetstream's rules, from its source (bluesky-social/jetstream, `/subscribe` = the v1 wire):
// one `commit` event per op (`{rev, operation, collection, rkey, record?, cid?}`, deletes
// without record and cid), `identity` `{did, handle?, seq, time}`, `account` `{did, active,
// status?, seq, time}`; `#sync` and `#info` are not sent. `time_us` is when Jetstream saw the
// event: here the relay's `time` in microseconds, kept strictly increasing. A cursor replays
// the events with `time_us >= cursor`; a cursor past the newest event gets the live stream.
// Identity and account events pass any wantedCollections; wantedDids applies to all kinds.
// Decoded with @atproto/repo and @atproto/lex-json, not with atkafka's own decoder.

import { once } from 'node:events'
import type { IncomingMessage } from 'node:http'
import type { AddressInfo } from 'node:net'
import { decodeAll } from '@atproto/lex-cbor'
import type { Cid } from '@atproto/lex-data'
import { lexToJson } from '@atproto/lex-json'
import { cborToLexRecord, readCar } from '@atproto/repo'
import WebSocket, { WebSocketServer } from 'ws'

type Obj = Record<string, unknown>

/** A Jetstream v1 event as sent on the wire. */
export interface JetstreamWireEvent {
  did: string
  time_us: number
  kind: string
  commit?: Obj
  identity?: Obj
  account?: Obj
}

/** Turns firehose frames into Jetstream events, stamping strictly increasing `time_us`. */
export class JetstreamConverter {
  #lastTimeUs = 0

  async convert(frame: Uint8Array): Promise<JetstreamWireEvent[]> {
    const [header, body] = [...decodeAll(frame)] as [Obj, Obj]
    const t = header['t']
    if (header['op'] !== 1 || typeof body['time'] !== 'string') return []
    const timeUs = () => {
      this.#lastTimeUs = Math.max(this.#lastTimeUs + 1, Date.parse(body['time'] as string) * 1000)
      return this.#lastTimeUs
    }
    if (t === '#commit') {
      const did = body['repo'] as string
      const car = await readCar(body['blocks'] as Uint8Array)
      const out: JetstreamWireEvent[] = []
      for (const op of body['ops'] as Obj[]) {
        const path = op['path'] as string
        const slash = path.indexOf('/')
        const operation = op['action'] as string
        const commit: Obj = {
          rev: body['rev'],
          operation,
          collection: path.slice(0, slash),
          rkey: path.slice(slash + 1),
        }
        if (operation !== 'delete') {
          const cid = op['cid'] as Cid
          const bytes = car.blocks.get(cid)
          if (bytes === undefined) continue
          commit['record'] = lexToJson(cborToLexRecord(bytes))
          commit['cid'] = cid.toString()
        }
        out.push({ did, time_us: timeUs(), kind: 'commit', commit })
      }
      return out
    }
    if (t === '#identity') {
      const did = body['did'] as string
      const identity: Obj = { did }
      if (typeof body['handle'] === 'string') identity['handle'] = body['handle']
      identity['seq'] = body['seq']
      identity['time'] = body['time']
      return [{ did, time_us: timeUs(), kind: 'identity', identity }]
    }
    if (t === '#account') {
      const did = body['did'] as string
      const account: Obj = { did, active: body['active'] }
      if (typeof body['status'] === 'string' && body['status'] !== '') {
        account['status'] = body['status']
      }
      account['seq'] = body['seq']
      account['time'] = body['time']
      return [{ did, time_us: timeUs(), kind: 'account', account }]
    }
    return []
  }
}

/** Every frame of a PDS firehose from `cursor` (default 0) until it stays quiet for `idleMs`. */
export async function collectFrames(
  firehoseUrl: string,
  opts: { cursor?: number; idleMs?: number } = {},
): Promise<Uint8Array[]> {
  const ws = new WebSocket(`${firehoseUrl}?cursor=${opts.cursor ?? 0}`)
  const frames: Uint8Array[] = []
  await new Promise<void>((resolve, reject) => {
    let timer = setTimeout(() => ws.close(), opts.idleMs ?? 1500)
    ws.on('message', (data: Buffer) => {
      frames.push(new Uint8Array(data))
      clearTimeout(timer)
      timer = setTimeout(() => ws.close(), opts.idleMs ?? 1500)
    })
    ws.on('error', reject)
    ws.on('close', () => {
      clearTimeout(timer)
      resolve()
    })
  })
  return frames
}

export interface SubscribeRequest {
  cursor: number | undefined
  wantedCollections: string[]
  wantedDids: string[]
  requireHello: boolean
}

interface Subscriber {
  ws: WebSocket
  filter: { collections: string[]; dids: Set<string> } | undefined
  /** Waiting for the options_update of requireHello. */
  held: boolean
  live: boolean
}

export interface FakeJetstream {
  /** ws://127.0.0.1:<port> (pass as --jetstream-host). */
  readonly url: string
  /** Every subscription, in order. */
  readonly requests: SubscribeRequest[]
  /** options_update payloads received. */
  readonly hellos: Obj[]
  /** Every event published, in order. */
  readonly events: JetstreamWireEvent[]
  readonly connected: number
  /** Store an event and send it to the live subscribers that want it. */
  publish(event: JetstreamWireEvent): void
  /** Send a text frame as is to every live subscriber (malformed events). */
  sendRaw(text: string | Buffer): void
  /** Drop every connection without a close frame. */
  dropAll(): void
  close(): Promise<void>
}

function wants(filter: Subscriber['filter'], e: JetstreamWireEvent): boolean {
  if (filter === undefined) return true
  if (filter.dids.size > 0 && !filter.dids.has(e.did)) return false
  if (filter.collections.length === 0 || e.kind !== 'commit') return true
  const c = String(e.commit?.['collection'] ?? '')
  return filter.collections.some((w) => (w.endsWith('.*') ? c.startsWith(w.slice(0, -1)) : c === w))
}

function parseRequest(req: IncomingMessage): SubscribeRequest {
  const url = new URL(req.url ?? '/', 'http://x')
  const raw = url.searchParams.get('cursor')
  return {
    cursor: raw === null ? undefined : Number(raw),
    wantedCollections: url.searchParams.getAll('wantedCollections'),
    wantedDids: url.searchParams.getAll('wantedDids'),
    requireHello: url.searchParams.get('requireHello') === 'true',
  }
}

/** An in-process Jetstream: `/subscribe` with Jetstream's cursor and filter rules. */
export async function startFakeJetstream(): Promise<FakeJetstream> {
  const events: JetstreamWireEvent[] = []
  const texts: string[] = []
  const requests: SubscribeRequest[] = []
  const hellos: Obj[] = []
  const subscribers = new Set<Subscriber>()
  const wss = new WebSocketServer({
    host: '127.0.0.1',
    port: 0,
    verifyClient: (info, cb) => {
      const url = new URL(info.req.url ?? '/', 'http://x')
      if (url.pathname !== '/subscribe') return cb(false, 404, 'Not Found')
      const r = parseRequest(info.req)
      if (r.wantedCollections.length > 100 || r.wantedDids.length > 10000) {
        return cb(false, 400, 'invalid options: too many wanted collections or DIDs')
      }
      cb(true)
    },
  })
  await once(wss, 'listening')

  const start = (sub: Subscriber, cursor: number | undefined) => {
    const newest = events.at(-1)?.time_us ?? 0
    // A cursor in the future gets the live stream, as Jetstream does.
    if (cursor !== undefined && cursor <= newest) {
      for (let i = 0; i < events.length; i++) {
        if (events[i]!.time_us >= cursor && wants(sub.filter, events[i]!)) sub.ws.send(texts[i]!)
      }
    }
    sub.live = true
  }

  wss.on('connection', (ws, req) => {
    const r = parseRequest(req)
    requests.push(r)
    const sub: Subscriber = {
      ws,
      filter: { collections: r.wantedCollections, dids: new Set(r.wantedDids) },
      held: r.requireHello,
      live: false,
    }
    subscribers.add(sub)
    ws.on('close', () => subscribers.delete(sub))
    ws.on('message', (data: Buffer) => {
      const msg = JSON.parse(data.toString()) as { type?: string; payload?: Obj }
      if (msg.type !== 'options_update' || msg.payload === undefined) return
      hellos.push(msg.payload)
      sub.filter = {
        collections: (msg.payload['wantedCollections'] as string[] | undefined) ?? [],
        dids: new Set((msg.payload['wantedDids'] as string[] | undefined) ?? []),
      }
      if (sub.held) {
        sub.held = false
        start(sub, r.cursor)
      }
    })
    if (!sub.held) start(sub, r.cursor)
  })

  const port = (wss.address() as AddressInfo).port
  return {
    url: `ws://127.0.0.1:${port}`,
    requests,
    hellos,
    events,
    get connected() {
      return subscribers.size
    },
    publish(event) {
      const text = JSON.stringify(event)
      events.push(event)
      texts.push(text)
      for (const sub of subscribers) {
        if (sub.live && sub.ws.readyState === WebSocket.OPEN && wants(sub.filter, event)) {
          sub.ws.send(text)
        }
      }
    },
    sendRaw(text) {
      for (const sub of subscribers) {
        if (sub.live && sub.ws.readyState === WebSocket.OPEN) sub.ws.send(text)
      }
    },
    dropAll() {
      for (const sub of subscribers) sub.ws.terminate()
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const c of wss.clients) c.terminate()
        wss.close(() => resolve())
      }),
  }
}

/**
 * Follow a PDS firehose live and publish each frame's events on `server` (a Jetstream fed by
 * that PDS). Returns a function that stops following.
 */
export function followFirehose(
  firehoseUrl: string,
  server: FakeJetstream,
  converter = new JetstreamConverter(),
  cursor?: number,
): { stop(): void; readonly frames: number } {
  const ws = new WebSocket(cursor === undefined ? firehoseUrl : `${firehoseUrl}?cursor=${cursor}`)
  let frames = 0
  // Frames convert asynchronously (readCar): keep their order.
  let chain = Promise.resolve()
  ws.on('message', (data: Buffer) => {
    frames++
    const frame = new Uint8Array(data)
    chain = chain.then(async () => {
      for (const e of await converter.convert(frame)) server.publish(e)
    })
  })
  ws.on('error', () => {})
  return {
    stop: () => ws.terminate(),
    get frames() {
      return frames
    },
  }
}

// A relay that misbehaves on purpose: a WebSocket server written on a raw TCP socket (no ws
// library on this side), so a test can send anything a broken or hostile relay could: frames
// one byte at a time, truncated WebSocket frames, garbage instead of framing, close frames
// with odd or invalid codes, a reset connection, a refused handshake.
import { createHash } from 'node:crypto'
import { once } from 'node:events'
import { type IncomingMessage, createServer } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import type { ReplayFrame } from './replay-relay.ts'

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11'

/** One server-to-client WebSocket frame (unmasked). */
export function wsFrame(opcode: number, payload: Uint8Array = new Uint8Array(0), fin = true) {
  const len = payload.length
  let head: Buffer
  if (len < 126) {
    head = Buffer.from([(fin ? 0x80 : 0) | opcode, len])
  } else if (len < 65536) {
    head = Buffer.alloc(4)
    head[0] = (fin ? 0x80 : 0) | opcode
    head[1] = 126
    head.writeUInt16BE(len, 2)
  } else {
    head = Buffer.alloc(10)
    head[0] = (fin ? 0x80 : 0) | opcode
    head[1] = 127
    head.writeBigUInt64BE(BigInt(len), 2)
  }
  return Buffer.concat([head, payload])
}

/** The payload of a close frame: a 2-byte code and a reason. */
export function closePayload(code: number, reason = ''): Buffer {
  const b = Buffer.alloc(2)
  b.writeUInt16BE(code, 0)
  return Buffer.concat([b, Buffer.from(reason)])
}

export interface RawConnection {
  readonly socket: Socket
  readonly cursor: number | undefined
  /** Index of this connection (0 for the first). */
  readonly index: number
  /** Send the next `n` frames of the stream (after the cursor); resolves once written. */
  sendFrames(n: number, opts?: { byteByByte?: boolean }): Promise<void>
  /** Write raw bytes on the socket. */
  write(bytes: Uint8Array): Promise<void>
  /** A binary WebSocket message. */
  binary(payload: Uint8Array): Promise<void>
  /** Seq of the last stream frame sent (for extra frames between two stream frames). */
  readonly lastSeq: number | undefined
  /** A close frame with this payload, then end the TCP connection. */
  close(payload: Uint8Array): Promise<void>
  /** Abrupt end: TCP reset. */
  reset(): void
  /** Send the rest of the stream and stay open (a well-behaved relay). */
  serve(): Promise<void>
}

/** What the relay does on one connection: refuse the handshake, or run a script. */
export type Behaviour = { refuse: number } | ((conn: RawConnection) => Promise<void>)

export interface RawRelay {
  /** ws://127.0.0.1:port — pass as --relay-host. */
  readonly url: string
  /** Time (ms since epoch) and `cursor` of every handshake, in order. */
  readonly connections: Array<{ at: number; cursor: number | undefined }>
  /** Errors thrown by behaviours (a test should assert it is empty). */
  readonly errors: unknown[]
  close(): Promise<void>
}

/**
 * Serve `frames` (honouring `?cursor=`) with connection `i` following `behaviours[i]`; the
 * connections after the last behaviour are served normally.
 */
export async function startRawRelay(opts: {
  frames: readonly ReplayFrame[]
  behaviours: readonly Behaviour[]
}): Promise<RawRelay> {
  const connections: Array<{ at: number; cursor: number | undefined }> = []
  const errors: unknown[] = []
  const sockets = new Set<Socket>()
  const server = createServer((_req, res) => res.writeHead(426).end())
  server.on('connection', (s: Socket) => {
    sockets.add(s)
    s.once('close', () => sockets.delete(s))
  })
  server.on('upgrade', (req: IncomingMessage, socket: Socket) => {
    const url = new URL(req.url ?? '/', 'http://x')
    const raw = url.searchParams.get('cursor')
    const cursor = raw === null ? undefined : Number(raw)
    const index = connections.length
    connections.push({ at: Date.now(), cursor })
    const behaviour = opts.behaviours[index]
    if (behaviour !== undefined && 'refuse' in behaviour) {
      socket.end(`HTTP/1.1 ${behaviour.refuse} Refused\r\nContent-Length: 0\r\n\r\n`)
      return
    }
    const key = req.headers['sec-websocket-key'] ?? ''
    const accept = createHash('sha1')
      .update(key + GUID)
      .digest('base64')
    socket.setNoDelay(true)
    socket.write(
      'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
        `Sec-WebSocket-Accept: ${accept}\r\n\r\n`,
    )
    const conn = connection(socket, cursor, index, opts.frames)
    const run = behaviour ?? ((c: RawConnection) => c.serve())
    run(conn).catch((err: unknown) => {
      if (!socket.destroyed) errors.push(err)
    })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as AddressInfo
  return {
    url: `ws://127.0.0.1:${port}`,
    connections,
    errors,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy()
        server.close(() => resolve())
      }),
  }
}

function connection(
  socket: Socket,
  cursor: number | undefined,
  index: number,
  frames: readonly ReplayFrame[],
): RawConnection {
  let pos = 0
  if (cursor !== undefined) {
    while (pos < frames.length && (frames[pos]!.seq ?? -Infinity) <= cursor) pos++
  }
  let lastSeq: number | undefined = cursor
  const write = (bytes: Uint8Array) =>
    new Promise<void>((resolve, reject) => {
      if (socket.destroyed) return reject(new Error('socket closed'))
      socket.write(bytes, (err) => (err ? reject(err) : resolve()))
    })
  // Answer the client's pings and its close frame; everything else it sends is ignored.
  let inbox = Buffer.alloc(0)
  socket.on('data', (d: Buffer) => {
    inbox = Buffer.concat([inbox, d])
    for (;;) {
      if (inbox.length < 2) return
      const opcode = inbox[0]! & 0x0f
      let len = inbox[1]! & 0x7f
      let off = 2
      if (len === 126) {
        if (inbox.length < 4) return
        len = inbox.readUInt16BE(2)
        off = 4
      } else if (len === 127) {
        if (inbox.length < 10) return
        len = Number(inbox.readBigUInt64BE(2))
        off = 10
      }
      const masked = (inbox[1]! & 0x80) !== 0
      const end = off + (masked ? 4 : 0) + len
      if (inbox.length < end) return
      const mask = masked ? inbox.subarray(off, off + 4) : undefined
      const payload = Buffer.from(inbox.subarray(end - len, end))
      if (mask) for (let i = 0; i < payload.length; i++) payload[i]! ^= mask[i & 3]!
      inbox = inbox.subarray(end)
      if (opcode === 0x9 && !socket.destroyed) socket.write(wsFrame(0xa, payload))
      if (opcode === 0x8 && !socket.destroyed) socket.end(wsFrame(0x8, payload))
    }
  })
  socket.on('error', () => {})
  const conn: RawConnection = {
    socket,
    cursor,
    index,
    get lastSeq() {
      return lastSeq
    },
    write,
    binary: (payload) => write(wsFrame(0x2, payload)),
    async sendFrames(n, o = {}) {
      for (let i = 0; i < n && pos < frames.length; i++) {
        const frame = frames[pos++]!
        const bytes = wsFrame(0x2, frame.bytes)
        if (o.byteByByte) {
          for (const b of bytes) {
            await write(Uint8Array.of(b))
            await new Promise((r) => setImmediate(r))
          }
        } else {
          await write(bytes)
        }
        if (frame.seq !== undefined) lastSeq = frame.seq
      }
    },
    async close(payload) {
      await write(wsFrame(0x8, payload))
      socket.end()
    },
    reset() {
      socket.resetAndDestroy()
    },
    async serve() {
      while (pos < frames.length && !socket.destroyed) {
        await conn.sendFrames(1)
        if (socket.writableLength > 1 << 20) await once(socket, 'drain')
      }
    },
  }
  return conn
}

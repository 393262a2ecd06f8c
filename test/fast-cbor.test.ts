import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { isDeepStrictEqual } from 'node:util'
import { cborItemLength, decodeDagCbor } from '../src/firehose/cbor.ts'
import { fastDecodeFirst, fastDecodeRecordJson } from '../src/firehose/fast-cbor.ts'
import { ipldToJson } from '../src/firehose/ipld-json.ts'
import { loadFrames } from './support/fixtures.ts'

// The single-pass decoder may decline anything, but whatever it accepts must decode exactly as
// the reference path (@ipld/dag-cbor, then ipldToJson for records) does.

type Outcome = { ok: unknown } | { err: true }

/** A comparable form: byte strings and CIDs by content, own keys in order, prototypes noted. */
function norm(x: unknown): unknown {
  if (x instanceof Uint8Array) return { bytes: Buffer.from(x).toString('hex') }
  if (typeof x === 'bigint') return { bigint: String(x) }
  if (Array.isArray(x)) return x.map(norm)
  if (x !== null && typeof x === 'object') {
    const o = x as Record<string, unknown> & { bytes?: unknown }
    if (o['/'] !== undefined && o['/'] === o.bytes) {
      return { cid: String(x), bytes: Buffer.from(o.bytes as Uint8Array).toString('hex') }
    }
    const keys = Object.getOwnPropertyNames(o)
    const entries = keys.map((k) => [k, norm(o[k])])
    return { keys, entries, plain: Object.getPrototypeOf(o) === Object.prototype }
  }
  return Object.is(x, -0) ? '-0' : x
}

function outcome(f: () => unknown): Outcome {
  try {
    return { ok: norm(f()) }
  } catch {
    return { err: true }
  }
}

function random(seed: number) {
  let s = seed
  const next = () => {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0
    return s / 4294967296
  }
  return { next, int: (n: number) => Math.floor(next() * n) }
}

/** Random CBOR items, mostly DAG-CBOR, with every kind of flaw now and then. */
function item(r: ReturnType<typeof random>, depth: number, out: number[]): void {
  const head = (major: number, v: bigint) => {
    const loose = r.next() < 0.03 // not minimally encoded
    if (v < 24n && !loose) return void out.push((major << 5) | Number(v))
    if (v < 256n && !(loose && r.next() < 0.5)) return void out.push((major << 5) | 24, Number(v))
    const [info, bytes] = v < 65536n ? [25, 2] : v < 4294967296n ? [26, 4] : [27, 8]
    out.push((major << 5) | info)
    for (let i = bytes - 1; i >= 0; i--) out.push(Number((v >> BigInt(8 * i)) & 255n))
  }
  const text = (s: string) => {
    const b = Buffer.from(s)
    head(3, BigInt(b.length))
    out.push(...b)
  }
  const keys = ['a', 'b', '$type', 'text', 'createdAt', '__proto__', 'ü', '1', '10', '/', 'bytes']
  const roll = r.next()
  if (depth > 3 || roll < 0.35) {
    switch (r.int(12)) {
      case 0:
        return head(0, r.next() < 0.3 ? BigInt(Math.floor(r.next() * 2 ** 60)) : BigInt(r.int(1e5)))
      case 1:
        return head(1, r.next() < 0.3 ? BigInt(Math.floor(r.next() * 2 ** 60)) : BigInt(r.int(1e5)))
      case 2: {
        const n = r.int(10)
        head(2, BigInt(n))
        for (let i = 0; i < n; i++) out.push(r.int(256))
        return
      }
      case 3:
        return text(
          r.next() < 0.8 ? 'héllo wörld'.slice(0, r.int(12)) + 'x'.repeat(r.int(40)) : '\ufeffbom',
        )
      case 4:
        return void out.push(0xf4 + r.int(4))
      case 5:
        return void out.push(0xf9, r.int(256), r.int(256))
      case 6: {
        const b = Buffer.alloc(8)
        b.writeDoubleBE(r.next() < 0.1 ? Infinity : (r.next() - 0.5) * 1e9)
        return void out.push(0xfb, ...b)
      }
      case 7: {
        head(6, r.next() < 0.9 ? 42n : BigInt(r.int(100)))
        const cid =
          r.next() < 0.7
            ? [1, 0x71, 0x12, 0x20, ...Array.from({ length: 32 }, () => r.int(256))]
            : r.next() < 0.5
              ? [0x12, 0x20, ...Array.from({ length: 32 }, () => r.int(256))]
              : Array.from({ length: r.int(40) }, () => r.int(256))
        head(2, BigInt(cid.length + 1))
        return void out.push(r.next() < 0.95 ? 0 : 1, ...cid)
      }
      case 8:
        return void out.push(0xe0 + r.int(32))
      case 9:
        return void out.push(0x5f + 0x20 * r.int(4))
      default:
        return text('k')
    }
  }
  const n = r.int(5)
  if (roll < 0.65) {
    head(4, BigInt(n))
    for (let i = 0; i < n; i++) item(r, depth + 1, out)
    return
  }
  head(5, BigInt(n))
  for (let i = 0; i < n; i++) {
    if (r.next() < 0.05) item(r, 5, out)
    else text(keys[r.int(keys.length)]!)
    item(r, depth + 1, out)
  }
}

describe('single-pass DAG-CBOR decoder', () => {
  it('decodes every real frame as the reference decoder does', () => {
    for (const frame of loadFrames()) {
      const headerLength = cborItemLength(frame)
      const first = fastDecodeFirst(frame, 0)
      assert.equal(first.end, headerLength)
      const second = fastDecodeFirst(frame, first.end)
      assert.equal(second.end, frame.length)
      assert.deepEqual(norm(first.value), norm(decodeDagCbor(frame.subarray(0, headerLength))))
      assert.deepEqual(norm(second.value), norm(decodeDagCbor(frame.subarray(headerLength))))
    }
  })

  it('agrees with the reference on random and malformed input whenever it accepts it', () => {
    const r = random(20261122)
    let accepted = 0
    for (let i = 0; i < 30_000; i++) {
      const out: number[] = []
      item(r, 0, out)
      let bytes = Uint8Array.from(out)
      if (r.next() < 0.05) bytes = bytes.subarray(0, r.int(bytes.length))
      if (r.next() < 0.03) bytes = Uint8Array.from([...bytes, 0])
      const hex = Buffer.from(bytes).toString('hex')
      const fast = outcome(() => {
        const d = fastDecodeFirst(bytes, 0)
        if (d.end !== bytes.length) throw new Error('trailing bytes')
        return d.value
      })
      if ('ok' in fast) {
        accepted++
        assert.ok(
          isDeepStrictEqual(
            fast,
            outcome(() => decodeDagCbor(bytes)),
          ),
          `value ${hex}`,
        )
      }
      const json = outcome(() => fastDecodeRecordJson(bytes))
      if ('ok' in json) {
        const reference = outcome(() => ipldToJson(decodeDagCbor(bytes)))
        assert.ok(isDeepStrictEqual(json, reference), `record JSON ${hex}`)
      }
    }
    assert.ok(accepted > 10_000, `${accepted} accepted`)
  })
})

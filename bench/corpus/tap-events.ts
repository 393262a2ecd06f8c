import { decodeAll } from '@atproto/lex-cbor'
import type { Cid } from '@atproto/lex-data'
import { lexToJson } from '@atproto/lex-json'
import { cborToLexRecord, readCar } from '@atproto/repo'

/**
 * Tap `/channel` events made from relay frames, as Tap itself would send them for a backfill:
 * one `record` event per op (with the record as lexicon JSON), one `identity` event per
 * `#identity` or `#account`. Each is the JSON text without its `id`, which the replay Tap
 * prepends when it sends the event: `{"id":N,` + body.
 *
 * Decoded with @atproto/repo and @atproto/lex-json, not with atkafka's own decoder.
 */
export interface TapEventBody {
  did: string
  /** The JSON after `{"id":N,`. */
  body: string
}

type Obj = Record<string, unknown>

export async function tapEventsOf(
  frames: readonly Uint8Array[],
  live = false,
): Promise<TapEventBody[]> {
  const out: TapEventBody[] = []
  for (const frame of frames) {
    const [header, body] = [...decodeAll(frame)] as [Obj, Obj]
    const t = header['t']
    if (t === '#commit') {
      const did = body['repo'] as string
      const rev = body['rev'] as string
      const car = await readCar(body['blocks'] as Uint8Array)
      for (const op of body['ops'] as Obj[]) {
        const path = op['path'] as string
        const slash = path.indexOf('/')
        const action = op['action'] as string
        const rec: Obj = {
          live,
          did,
          rev,
          collection: path.slice(0, slash),
          rkey: path.slice(slash + 1),
          action,
        }
        if (action !== 'delete') {
          const cid = op['cid'] as Cid
          const bytes = car.blocks.get(cid)
          if (bytes === undefined) continue
          rec['record'] = lexToJson(cborToLexRecord(bytes))
          rec['cid'] = cid.toString()
        }
        out.push({ did, body: `"type":"record","record":${JSON.stringify(rec)}}` })
      }
    } else if (t === '#identity' || t === '#account') {
      const did = body['did'] as string
      const active = t === '#identity' || body['active'] === true
      const identity = {
        did,
        handle: typeof body['handle'] === 'string' ? body['handle'] : '',
        is_active: active,
        status: active ? 'active' : String(body['status'] ?? 'deactivated'),
      }
      out.push({ did, body: `"type":"identity","identity":${JSON.stringify(identity)}}` })
    }
  }
  return out
}

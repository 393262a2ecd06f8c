import type { JsonObject, JsonValue } from '../events.ts'

/** A multiformats CID as decoded by @ipld/dag-cbor, recognised without depending on its class. */
export interface CidLike {
  readonly bytes: Uint8Array
  readonly '/': Uint8Array
  toString(): string
}

export function isCid(value: unknown): value is CidLike {
  if (typeof value !== 'object' || value === null) return false
  const slash = (value as { '/'?: unknown })['/']
  return slash !== undefined && slash === (value as { bytes?: unknown }).bytes
}

/**
 * Convert a decoded DAG-CBOR value to its AT Protocol JSON form: CIDs become `{"$link": …}`,
 * bytes become `{"$bytes": <base64, no padding>}`. Blobs need no special case: their `ref` is a CID.
 */
export function ipldToJson(value: unknown): JsonValue {
  if (value === null || typeof value !== 'object') {
    if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') {
      return value
    }
    if (value === null) return null
    throw new TypeError(`unsupported value of type ${typeof value}`)
  }
  if (Array.isArray(value)) {
    const out: JsonValue[] = new Array(value.length)
    for (let i = 0; i < value.length; i++) out[i] = ipldToJson(value[i])
    return out
  }
  if (value instanceof Uint8Array) return { $bytes: toBase64(value) }
  if (isCid(value)) return { $link: value.toString() }
  const out: JsonObject = {}
  for (const key in value) {
    out[key] = ipldToJson((value as Record<string, unknown>)[key])
  }
  return out
}

function toBase64(bytes: Uint8Array): string {
  const b64 = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64')
  let end = b64.length
  while (end > 0 && b64.charCodeAt(end - 1) === 0x3d) end--
  return end === b64.length ? b64 : b64.slice(0, end)
}

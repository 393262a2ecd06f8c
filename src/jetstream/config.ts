import { type FirehoseConfig, firehoseConfig } from '../config/config.ts'
import type { Values } from '../config/values.ts'
import { ConfigError } from '../errors.ts'
import { normalizeCollectionPattern } from '../filter.ts'
import { MIN_TIME_US } from './cursor.ts'

export const SUBSCRIBE_PATH = '/subscribe'
/** Jetstream's limits on one subscription. */
export const MAX_WANTED_COLLECTIONS = 100
export const MAX_WANTED_DIDS = 10000

export interface JetstreamConfig extends FirehoseConfig {
  /** `ws(s)://host[:port][/prefix]`, without the `/subscribe` path. */
  jetstreamHost: string
  /** Sent as `wantedCollections` (Jetstream's form of `--watched-collections`). */
  wantedCollections: string[]
  /** Sent as `wantedDids`. */
  wantedDids: string[]
  cursorFile: string
  /** Explicit start `time_us` (overrides the cursor file). */
  cursor?: number
}

/** `http(s)://` maps to `ws(s)://`; a trailing `/subscribe`, query and slashes are removed. */
export function normalizeJetstreamHost(raw: string): string {
  const url = new URL(raw)
  if (url.username !== '' || url.password !== '') {
    throw new ConfigError('--jetstream-host (ATKAFKA_JETSTREAM_HOST) must not contain credentials')
  }
  if (url.protocol === 'http:') url.protocol = 'ws:'
  if (url.protocol === 'https:') url.protocol = 'wss:'
  url.pathname = url.pathname.replace(/\/+$/, '').replace(/\/subscribe$/, '')
  url.search = ''
  url.hash = ''
  return url.toString().replace(/\/+$/, '')
}

/**
 * `--watched-collections` (already checked by the firehose config) as Jetstream's
 * `wantedCollections`: a full NSID (three segments or more) is sent as is, a namespace
 * (`app.bsky`, `app.bsky.*`) as `app.bsky.*`; `*` alone asks for everything (no filter).
 */
export function wantedCollectionsOf(watched: readonly string[]): string[] {
  const out = new Set<string>()
  for (const raw of watched) {
    const p = normalizeCollectionPattern(raw)
    if (p === '*') return []
    out.add(raw.trim().endsWith('*') || p.split('.').length < 3 ? `${p}.*` : p)
  }
  if (out.size > MAX_WANTED_COLLECTIONS) {
    throw new ConfigError(
      `--watched-collections has ${out.size} collections; Jetstream takes at most ${MAX_WANTED_COLLECTIONS}`,
    )
  }
  return [...out]
}

/** `--watched-dids`, checked against Jetstream's rules (DIDs, at most 10,000). */
export function wantedDidsOf(dids: readonly string[]): string[] {
  const out = new Set<string>()
  for (const raw of dids) {
    const did = raw.trim()
    if (!/^did:[a-z]+:[a-zA-Z0-9._:%-]*[a-zA-Z0-9._-]$/.test(did)) {
      throw new ConfigError(
        `invalid DID "${raw}" for --watched-dids: expected a DID such as did:plc:ewvi7nxzyoun6zhxrhs64oiz`,
      )
    }
    out.add(did)
  }
  if (out.size > MAX_WANTED_DIDS) {
    throw new ConfigError(
      `--watched-dids has ${out.size} DIDs; Jetstream takes at most ${MAX_WANTED_DIDS}`,
    )
  }
  return [...out]
}

/** `atkafka jetstream` config from resolved option values. */
export function jetstreamConfig(v: Values): JetstreamConfig {
  const firehose = firehoseConfig(v)
  const cursor = v.int('cursor')
  if (cursor !== undefined && cursor < MIN_TIME_US) {
    throw new ConfigError(
      `invalid value ${cursor} for --cursor (ATKAFKA_CURSOR): Jetstream's cursor is a time_us, microseconds since 1970 (e.g. ${Date.now() * 1000})`,
    )
  }
  return {
    ...firehose,
    jetstreamHost: normalizeJetstreamHost(v.reqStr('jetstream-host')),
    wantedCollections: wantedCollectionsOf(firehose.watchedCollections),
    wantedDids: wantedDidsOf(v.list('watched-dids')),
    cursorFile: v.reqStr('cursor-file'),
    cursor,
  }
}

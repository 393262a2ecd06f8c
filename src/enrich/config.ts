import type { Values } from '../config/values.ts'
import { ConfigError } from '../errors.ts'
import { normalizeServicePattern } from './service-filter.ts'

export interface CacheConfig {
  /** Entries kept; the least recently used go first. */
  max: number
  ttlMs: number
}

/** Event metadata lookups and service filters; absent from the config when `--plc-host` is not given. */
export interface EnrichConfig {
  /** `http(s)://host[:port]`, no trailing slash. */
  plcHost: string
  /** AppView for `app.bsky.actor.getProfile`; no profiles without it. */
  apiHost?: string
  /** Normalised patterns (`bsky.network` for `*.bsky.network`). */
  watchedServices: string[]
  ignoredServices: string[]
  verifyHandles: boolean
  timeoutMs: number
  concurrency: number
  plcRatePerSec: number
  apiRatePerSec: number
  identityCache: CacheConfig
  auditCache: CacheConfig
  profileCache: CacheConfig
}

/**
 * The enrichment part of a firehose config, with at-kafka's rules: watched and ignored services
 * exclude each other, and both need a PLC host.
 */
export function enrichConfig(v: Values): EnrichConfig | undefined {
  const watched = v.list('watched-services').map(normalizeServicePattern)
  const ignored = v.list('ignored-services').map(normalizeServicePattern)
  for (const [flag, list] of [
    ['watched-services', watched],
    ['ignored-services', ignored],
  ] as const) {
    if (list.some((p) => p === '')) {
      throw new ConfigError(
        `--${flag} has an empty pattern: expected host names such as *.bsky.network`,
      )
    }
  }
  if (watched.length > 0 && ignored.length > 0) {
    throw new ConfigError(
      '--watched-services and --ignored-services cannot be used together: give one list',
    )
  }
  const plcHost = v.str('plc-host')
  const apiHost = v.str('api-host')
  if (plcHost === undefined) {
    if (watched.length > 0 || ignored.length > 0) {
      throw new ConfigError(
        '--watched-services/--ignored-services need --plc-host (ATKAFKA_PLC_HOST): the PDS host comes from the DID document',
      )
    }
    if (apiHost !== undefined) {
      throw new ConfigError(
        '--api-host (ATKAFKA_API_HOST) needs --plc-host (ATKAFKA_PLC_HOST): profiles are part of eventMetadata',
      )
    }
    return undefined
  }
  const cache = (name: string): CacheConfig => ({
    max: v.reqInt(`${name}-cache-size`),
    ttlMs: v.reqInt(`${name}-cache-ttl`),
  })
  return {
    plcHost: stripSlash(plcHost),
    apiHost: apiHost === undefined ? undefined : stripSlash(apiHost),
    watchedServices: watched,
    ignoredServices: ignored,
    verifyHandles: !v.bool('skip-handle-verification'),
    timeoutMs: v.reqInt('lookup-timeout'),
    concurrency: v.reqInt('lookup-concurrency'),
    plcRatePerSec: v.reqInt('plc-rate-limit'),
    apiRatePerSec: v.reqInt('api-rate-limit'),
    identityCache: cache('identity'),
    auditCache: cache('audit'),
    profileCache: cache('profile'),
  }
}

function stripSlash(url: string): string {
  return url.replace(/\/+$/, '')
}

/** The enrichment settings worth a line in the start-up log (no credentials). */
export function describeEnrichment(
  config: EnrichConfig | undefined,
): Record<string, unknown> | 'off' {
  if (config === undefined) return 'off'
  return {
    plcHost: withoutCredentials(config.plcHost),
    apiHost: config.apiHost === undefined ? null : withoutCredentials(config.apiHost),
    watchedServices: config.watchedServices,
    ignoredServices: config.ignoredServices,
    verifyHandles: config.verifyHandles,
    timeoutMs: config.timeoutMs,
    concurrency: config.concurrency,
  }
}

function withoutCredentials(url: string): string {
  const u = new URL(url)
  if (u.username === '' && u.password === '') return url
  u.username = ''
  u.password = ''
  return u.toString().replace(/\/+$/, '')
}

import type { Values } from '../config/values.ts'
import { ConfigError } from '../errors.ts'
import { isServicePattern, normalizeServicePattern } from './service-filter.ts'

export interface CacheConfig {
  /** Entries kept; the least recently used go first. */
  max: number
  ttlMs: number
}

/** Event metadata lookups and service filters; absent from the config with `--no-event-metadata`. */
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
 * The enrichment part of a firehose config. On by default with at-kafka's PLC
 * (`https://plc.directory`); `--no-event-metadata` turns it off, and then the options that need
 * the lookups (services, AppView) are refused rather than ignored. Watched and ignored services
 * exclude each other.
 */
export function enrichConfig(v: Values): EnrichConfig | undefined {
  const watched = validServices(v, 'watched-services', 'ATKAFKA_WATCHED_SERVICES')
  const ignored = validServices(v, 'ignored-services', 'ATKAFKA_IGNORED_SERVICES')
  if (watched.length > 0 && ignored.length > 0) {
    throw new ConfigError(
      '--watched-services and --ignored-services cannot be used together: give one list',
    )
  }
  const plcHost = v.reqStr('plc-host')
  const apiHost = v.str('api-host')
  if (!v.bool('event-metadata')) {
    if (watched.length > 0 || ignored.length > 0) {
      throw new ConfigError(
        '--watched-services/--ignored-services need event metadata (the PDS host comes from the DID document): drop --no-event-metadata (ATKAFKA_EVENT_METADATA=false)',
      )
    }
    if (apiHost !== undefined) {
      throw new ConfigError(
        '--api-host (ATKAFKA_API_HOST) needs event metadata (profiles are part of it): drop --no-event-metadata (ATKAFKA_EVENT_METADATA=false)',
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

/** A service pattern list, normalised; a pattern that names no host is refused. */
function validServices(v: Values, flag: string, env: string): string[] {
  return v.list(flag).map((raw) => {
    const p = normalizeServicePattern(raw)
    if (!isServicePattern(p)) {
      throw new ConfigError(
        `invalid value "${raw}" for --${flag} (${env}): expected host names such as bsky.network or *.bsky.network, or * alone for every host`,
      )
    }
    return p
  })
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

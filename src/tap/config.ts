import { type FirehoseConfig, type Values, firehoseConfig } from '../config/config.ts'
import { ConfigError } from '../errors.ts'

export interface TapConfig extends FirehoseConfig {
  /** `ws(s)://host[:port][/prefix]`, without the `/channel` path. */
  tapHost: string
  /** Sent as HTTP Basic `admin:<password>` when set. */
  adminPassword?: string
  disableAcks: boolean
  /** Accepted for compatibility with at-kafka; no effect. */
  workers: number
}

/** `http(s)://` maps to `ws(s)://`; a trailing `/channel`, query and slashes are removed. */
export function normalizeTapHost(raw: string): string {
  const url = new URL(raw)
  if (url.username !== '' || url.password !== '') {
    throw new ConfigError(
      '--tap-host (ATKAFKA_TAP_HOST) must not contain credentials: use --tap-admin-password',
    )
  }
  if (url.protocol === 'http:') url.protocol = 'ws:'
  if (url.protocol === 'https:') url.protocol = 'wss:'
  url.pathname = url.pathname.replace(/\/channel\/?$/, '')
  url.search = ''
  url.hash = ''
  return url.toString().replace(/\/+$/, '')
}

export function tapConfig(v: Values): TapConfig {
  return {
    ...firehoseConfig(v),
    tapHost: normalizeTapHost(v.reqStr('tap-host')),
    adminPassword: v.str('tap-admin-password'),
    disableAcks: v.bool('disable-acks'),
    workers: v.reqInt('tap-workers'),
  }
}

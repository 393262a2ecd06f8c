import { hostname } from 'node:os'
import {
  type CommonConfig,
  type FormatConfig,
  type Values,
  commonConfig,
} from '../config/config.ts'
import { ConfigError } from '../errors.ts'
import { workerIdFromHostname } from '../snowflake.ts'

export const SUBSCRIBE_LABELS_PATH = '/xrpc/com.atproto.label.subscribeLabels'

export interface LabelsConfig extends CommonConfig {
  format: FormatConfig
  /** `ws(s)://host[:port][/prefix]`, without the XRPC path. */
  labelerHost: string
  cursorFile: string
  /** Explicit start seq (overrides the cursor file). */
  cursor?: number
}

/** `http(s)://` maps to `ws(s)://`; a trailing subscribeLabels path, query and slashes go. */
export function normalizeLabelerHost(raw: string): string {
  const url = new URL(raw)
  if (url.protocol === 'http:') url.protocol = 'ws:'
  if (url.protocol === 'https:') url.protocol = 'wss:'
  url.pathname = url.pathname.replace(/\/xrpc\/com\.atproto\.label\.subscribeLabels\/?$/, '')
  url.search = ''
  url.hash = ''
  return url.toString().replace(/\/+$/, '')
}

/** `atkafka labels` config from resolved option values. */
export function labelsConfig(v: Values): LabelsConfig {
  const host = v.str('labeler-host')
  if (host === undefined) {
    throw new ConfigError('--labeler-host (ATKAFKA_LABELER_HOST) is required for labels')
  }
  return {
    ...commonConfig(v),
    format: {
      osprey: v.bool('osprey-compatible'),
      workerId: v.int('osprey-worker-id') ?? workerIdFromHostname(hostname()),
    },
    labelerHost: normalizeLabelerHost(host),
    cursorFile: v.reqStr('cursor-file'),
    cursor: v.int('cursor'),
  }
}

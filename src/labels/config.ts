import {
  type CommonConfig,
  type FormatConfig,
  type Values,
  checkOspreyTopic,
  commonConfig,
  formatConfig,
  normalizeWsUrl,
} from '../config/config.ts'
import { ConfigError } from '../errors.ts'

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
  return normalizeWsUrl(raw, SUBSCRIBE_LABELS_PATH)
}

/** `atkafka labels` config from resolved option values. */
export function labelsConfig(v: Values): LabelsConfig {
  const host = v.str('labeler-host')
  if (host === undefined) {
    throw new ConfigError('--labeler-host (ATKAFKA_LABELER_HOST) is required for labels')
  }
  const common = commonConfig(v)
  const format = formatConfig(v)
  checkOspreyTopic(common.output, format)
  return {
    ...common,
    format,
    labelerHost: normalizeLabelerHost(host),
    cursorFile: v.reqStr('cursor-file'),
    cursor: v.int('cursor'),
  }
}

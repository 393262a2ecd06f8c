import { type CommonConfig, type Values, commonConfig, redactedOutput } from '../config/config.ts'
import { ConfigError } from '../errors.ts'

export interface OzoneConfig extends CommonConfig {
  /** `https://pds.example.com`, no trailing slash. */
  pdsHost: string
  identifier: string
  password: string
  labelerDid: string
  pollIntervalMs: number
  lookbackMs: number
  cursorFile: string
}

const DID = /^did:[a-z]+:[a-zA-Z0-9._:%-]*[a-zA-Z0-9._-]$/

function required(v: Values, flag: string, env: string): string {
  const s = v.str(flag)
  if (s === undefined) throw new ConfigError(`--${flag} (${env}) is required for ozone-events`)
  return s
}

/** `atkafka ozone-events` config from resolved option values. */
export function ozoneConfig(v: Values): OzoneConfig {
  const labelerDid = required(v, 'labeler-did', 'ATKAFKA_OZONE_LABELER_DID').trim()
  if (!DID.test(labelerDid)) {
    throw new ConfigError(
      `invalid value "${labelerDid}" for --labeler-did (ATKAFKA_OZONE_LABELER_DID): expected a DID such as did:plc:…`,
    )
  }
  return {
    ...commonConfig(v),
    pdsHost: required(v, 'pds-host', 'ATKAFKA_OZONE_PDS_HOST'),
    identifier: required(v, 'identifier', 'ATKAFKA_OZONE_IDENTIFIER').trim(),
    password: required(v, 'password', 'ATKAFKA_OZONE_PASSWORD'),
    labelerDid,
    pollIntervalMs: v.reqInt('poll-interval'),
    lookbackMs: v.reqInt('lookback'),
    cursorFile: v.reqStr('cursor-file'),
  }
}

/** The config without secrets, for the start-up log line. */
export function redactedOzoneConfig(config: OzoneConfig): Record<string, unknown> {
  return {
    pdsHost: config.pdsHost,
    identifier: config.identifier,
    labelerDid: config.labelerDid,
    pollIntervalMs: config.pollIntervalMs,
    lookbackMs: config.lookbackMs,
    cursorFile: config.cursorFile,
    output: redactedOutput(config.output),
  }
}

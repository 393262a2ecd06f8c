import { ConfigError } from '../errors.ts'
import { type Command, type OptionSpec, defaultFor, optionsFor, propertyOf } from './options.ts'

export type OptionValue = string | string[] | number | boolean
/** Typed option values by flag name; absent when neither flag, env nor default gave one. */
export type Resolved = ReadonlyMap<string, OptionValue>

const TRUE_WORDS = ['true', '1', 't', 'yes', 'y', 'on']
const FALSE_WORDS = ['false', '0', 'f', 'no', 'n', 'off']
const TRUE = new Set(TRUE_WORDS)
const FALSE = new Set(FALSE_WORDS)
/** The words a boolean flag or env var accepts (any case), as the README lists them. */
export const BOOLEAN_WORDS = `${TRUE_WORDS.join(', ')} or ${FALSE_WORDS.join(', ')}`

/** `true`/`false` for a boolean word (any case), `undefined` for anything else. */
export function parseBool(raw: string): boolean | undefined {
  const v = raw.trim().toLowerCase()
  if (TRUE.has(v)) return true
  if (FALSE.has(v) || v === '') return false
  return undefined
}

function describe(spec: OptionSpec, source: 'flag' | 'env' | 'default'): string {
  if (source === 'env') return `${spec.env} (--${spec.flag})`
  return `--${spec.flag}${spec.env ? ` (${spec.env})` : ''}`
}

function fail(
  spec: OptionSpec,
  source: 'flag' | 'env' | 'default',
  raw: string,
  expected: string,
): never {
  const shown = spec.secret ? '' : ` "${raw}"`
  throw new ConfigError(`invalid value${shown} for ${describe(spec, source)}: expected ${expected}`)
}

const UNIT_MS: Readonly<Record<string, number>> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3,
  ms: 1,
  s: 1000,
  m: 60000,
  h: 3600000,
}

/**
 * Parse a Go-style duration (`500ms`, `90s`, `1.5m`, `1h30m`, `2h45m10s`) or a bare number of
 * seconds; returns whole milliseconds.
 */
export function parseDuration(raw: string): number | undefined {
  const text = raw.trim()
  if (/^\d+(\.\d+)?$/.test(text)) return Math.round(Number(text) * 1000)
  if (!/^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$/.test(text)) return undefined
  let ms = 0
  for (const m of text.matchAll(/(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/g)) {
    ms += Number(m[1]) * UNIT_MS[m[2]!]!
  }
  return Math.round(ms)
}

/** What --help says of a duration's value. */
export const DURATION_HINT = 'a duration such as 500ms, 90s, 1h30m; a bare number is seconds'

function convert(
  spec: OptionSpec,
  raw: string | boolean,
  source: 'flag' | 'env' | 'default',
): OptionValue {
  if (typeof raw === 'boolean') return raw
  switch (spec.kind) {
    case 'string':
      if (raw.trim() === '') fail(spec, source, raw, 'a non-empty value')
      return raw
    case 'list':
      return splitList(spec, source, raw)
    case 'bool': {
      const b = parseBool(raw)
      if (b === undefined) fail(spec, source, raw, `one of ${BOOLEAN_WORDS}`)
      return b
    }
    case 'int': {
      const min = spec.min ?? Number.MIN_SAFE_INTEGER
      const max = spec.max ?? Number.MAX_SAFE_INTEGER
      const n = /^-?\d+$/.test(raw.trim()) ? Number(raw.trim()) : NaN
      if (!Number.isSafeInteger(n) || n < min || n > max) {
        fail(spec, source, raw, `an integer from ${min} to ${max}`)
      }
      return n
    }
    case 'choice':
      if (!spec.choices!.includes(raw.trim()))
        fail(spec, source, raw, `one of ${spec.choices!.join(', ')}`)
      return raw.trim()
    case 'url': {
      let url: URL
      try {
        url = new URL(raw.trim())
      } catch {
        return fail(spec, source, raw, `a URL (${spec.schemes!.join(' ')})`)
      }
      if (spec.schemes && !spec.schemes.includes(url.protocol)) {
        fail(
          spec,
          source,
          raw,
          `a URL with scheme ${spec.schemes.map((s) => s.slice(0, -1)).join(', ')}`,
        )
      }
      return raw.trim().replace(/\/+$/, '')
    }
    case 'duration': {
      const ms = parseDuration(raw)
      const min = spec.min ?? 0
      if (ms === undefined || ms < min) {
        fail(spec, source, raw, `${DURATION_HINT}${min > 0 ? ` (at least ${min} ms)` : ''}`)
      }
      return ms
    }
  }
}

/**
 * Items of a list value: comma separated, trimmed. An empty or blank value is an empty list; an
 * empty item between commas (`a,,b`) is refused.
 */
function splitList(spec: OptionSpec, source: 'flag' | 'env' | 'default', raw: string): string[] {
  if (raw.trim() === '') return []
  const items = raw.split(',').map((s) => s.trim())
  if (items.some((s) => s === '')) fail(spec, source, raw, 'items separated by single commas')
  return items
}

/**
 * Resolve every option of `command`: flag, else env var, else default — then convert and
 * validate. `cli` holds the command line's values by camelCase name (a list flag given several
 * times as an array), `env` the environment.
 */
export function resolveOptions(
  command: Command,
  cli: Readonly<Record<string, unknown>>,
  env: Readonly<Record<string, string | undefined>>,
): Resolved {
  const out = new Map<string, OptionValue>()
  for (const spec of optionsFor(command)) {
    const fromCli = cli[propertyOf(spec.flag)]
    let value: OptionValue | undefined
    if (Array.isArray(fromCli) && spec.kind === 'list') {
      value = fromCli.flatMap((raw) => splitList(spec, 'flag', String(raw)))
    } else if (typeof fromCli === 'string' || typeof fromCli === 'boolean') {
      value = convert(spec, fromCli, 'flag')
    } else if (spec.env !== undefined && env[spec.env] !== undefined) {
      value = convert(spec, env[spec.env]!, 'env')
    } else {
      const def = defaultFor(spec, command)
      if (def !== undefined) value = convert(spec, def, 'default')
    }
    if (value !== undefined) out.set(spec.flag, value)
  }
  return out
}

/**
 * All required options of `command` that no flag, env var or default gave, in one error (those
 * needed for Kafka only when `--stdout` is not given).
 */
export function checkRequired(command: Command, values: Resolved): void {
  const toKafka = values.get('stdout') !== true
  const missing = optionsFor(command).filter(
    (spec) =>
      (spec.required === 'always' || (spec.required === 'kafka' && toKafka)) &&
      (values.get(spec.flag) === undefined ||
        (Array.isArray(values.get(spec.flag)) && (values.get(spec.flag) as string[]).length === 0)),
  )
  if (missing.length === 0) return
  const names = missing.map((spec) => `--${spec.flag}${spec.env ? ` (${spec.env})` : ''}`)
  const kafkaOnly = missing.filter((spec) => spec.required === 'kafka').map((s) => `--${s.flag}`)
  const note =
    kafkaOnly.length === 0
      ? ''
      : ` (${kafkaOnly.join(' and ')} ${kafkaOnly.length > 1 ? 'are' : 'is'} not needed with --stdout)`
  throw new ConfigError(
    `missing required option${missing.length > 1 ? 's' : ''}: ${names.join(', ')}${note}`,
  )
}

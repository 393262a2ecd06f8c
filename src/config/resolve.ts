import { ConfigError } from '../errors.ts'
import { type Command, type OptionSpec, defaultFor, optionsFor, propertyOf } from './options.ts'

export type OptionValue = string | string[] | number | boolean
/** Typed option values by flag name; absent when neither flag, env nor default gave one. */
export type Resolved = ReadonlyMap<string, OptionValue>

const TRUE = new Set(['true', '1', 'yes', 'on', 't', 'y'])
const FALSE = new Set(['false', '0', 'no', 'off', 'f', 'n', ''])

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

/** Parse a duration such as `500ms`, `1s`, `1.5m`, `2h`, or plain seconds; returns milliseconds. */
export function parseDuration(raw: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(raw.trim())
  if (!m) return undefined
  const n = Number(m[1])
  const unit = m[2] ?? 's'
  const factor = unit === 'ms' ? 1 : unit === 's' ? 1000 : unit === 'm' ? 60000 : 3600000
  return Math.round(n * factor)
}

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
      return raw
        .split(',')
        .map((s) => s.trim())
        .filter((s) => s !== '')
    case 'bool': {
      const v = raw.trim().toLowerCase()
      if (TRUE.has(v)) return true
      if (FALSE.has(v)) return false
      return fail(spec, source, raw, 'true or false')
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
        fail(
          spec,
          source,
          raw,
          `a duration such as 500ms, 1s, 2m${min > 0 ? ` (at least ${min} ms)` : ''}`,
        )
      }
      return ms
    }
  }
}

/**
 * Resolve every option of `command`: flag, else env var, else default — then convert and
 * validate. `cli` holds commander's values (camelCase keys), `env` the environment.
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
    if (typeof fromCli === 'string' || typeof fromCli === 'boolean') {
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

/**
 * The `timestamp` of a Tap record event: Tap sends no event time, so, as at-kafka, it comes from
 * the record's `createdAt` when that parses, else from the record key when it is a TID, else it
 * is the current time. Always RFC 3339 UTC with milliseconds (`2024-05-01T12:00:00.000Z`).
 */

const TID_CHARS = '234567abcdefghijklmnopqrstuvwxyz'
const TID_RE = /^[234567abcdefghij][234567abcdefghijklmnopqrstuvwxyz]{12}$/
/**
 * RFC 3339 / ISO 8601 date-times: date, `T` or space, time with optional seconds and fraction,
 * optional zone (none means UTC).
 */
const DATETIME_RE =
  /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2})(?::(\d{2})(\.\d+)?)?(Z|z|[+-]\d{2}(?::?\d{2})?)?$/

/** Milliseconds since the epoch of a TID (`3jzfcijpj2z2a`), or undefined if it is not one. */
export function tidTimeMs(rkey: string): number | undefined {
  if (!TID_RE.test(rkey)) return undefined
  let value = 0n
  for (const c of rkey) value = (value << 5n) | BigInt(TID_CHARS.indexOf(c))
  // 1 zero bit, 53 bits of microseconds, 10 bits of clock id.
  return Number((value >> 10n) / 1000n)
}

/** Milliseconds since the epoch of a `createdAt` value, or undefined if it does not parse. */
export function createdAtMs(value: unknown): number | undefined {
  if (typeof value !== 'string') return undefined
  const m = DATETIME_RE.exec(value.trim())
  if (!m) return undefined
  const [, y, mo, d, h, mi, s = '00', frac = '', zone = 'Z'] = m
  const month = Number(mo)
  const day = Number(d)
  if (month < 1 || month > 12 || day < 1 || day > 31) return undefined
  if (Number(h) > 23 || Number(mi) > 59 || Number(s) > 60) return undefined
  let offset = zone.toUpperCase() === 'Z' ? 'Z' : zone
  if (offset !== 'Z' && !offset.includes(':')) {
    offset = offset.length === 3 ? `${offset}:00` : `${offset.slice(0, 3)}:${offset.slice(3)}`
  }
  const ms = frac === '' ? '' : frac.slice(0, 4).padEnd(4, '0')
  const sec = s === '60' ? '59' : s
  const t = Date.parse(`${y}-${mo}-${d}T${h}:${mi}:${sec}${ms}${offset}`)
  // Date.parse rolls 2023-02-31 over to March; reject days past the end of the month.
  if (!Number.isFinite(t) || day > daysInMonth(Number(y), month)) return undefined
  return t
}

function daysInMonth(year: number, month: number): number {
  if (month === 2) return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0 ? 29 : 28
  return [4, 6, 9, 11].includes(month) ? 30 : 31
}

const MIN_MS = Date.parse('0001-01-01T00:00:00.000Z')
const MAX_MS = Date.parse('9999-12-31T23:59:59.999Z')

function format(ms: number | undefined): string | undefined {
  if (ms === undefined || ms < MIN_MS || ms > MAX_MS) return undefined
  return new Date(ms).toISOString()
}

/**
 * `value` itself when it is already the output form of a valid time (nearly every record's
 * `createdAt` is): what it parses to prints back as exactly the same string.
 */
function canonical(value: unknown): string | undefined {
  if (typeof value !== 'string' || value.length !== 24 || value.charCodeAt(23) !== 0x5a) {
    return undefined
  }
  const t = Date.parse(value)
  if (!(t >= MIN_MS && t <= MAX_MS)) return undefined
  return new Date(t).toISOString() === value ? value : undefined
}

/** `createdAt` of the record, else the TID time of `rkey`, else `now`. */
export function recordTimestamp(
  record: { readonly [key: string]: unknown } | undefined,
  rkey: string,
  now: () => Date = () => new Date(),
): string {
  const createdAt = record?.['createdAt']
  return (
    canonical(createdAt) ??
    format(createdAtMs(createdAt)) ??
    format(tidTimeMs(rkey)) ??
    now().toISOString()
  )
}

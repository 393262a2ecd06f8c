/** Base class of every error atkafka raises on purpose. */
export class AtKafkaError extends Error {
  override name = 'AtKafkaError'
  /** Whether trying the same thing again may succeed. */
  readonly retryable: boolean

  constructor(message: string, opts: { cause?: unknown; retryable?: boolean } = {}) {
    super(message, { cause: opts.cause })
    this.retryable = opts.retryable ?? false
  }
}

/** A flag, env var or config value is wrong. The message names it and the accepted values. */
export class ConfigError extends AtKafkaError {
  override name = 'ConfigError'
}

/** Something the process depends on is broken and it must stop (e.g. the cursor cannot be saved). */
export class FatalError extends AtKafkaError {
  override name = 'FatalError'
}

export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message
  return String(err)
}

/**
 * The system error behind a network failure, e.g. `ECONNREFUSED 127.0.0.1:9` or
 * `ENOTFOUND pds.example`, found in the error's cause chain (fetch says only `fetch failed`).
 */
export function networkCause(err: unknown): string | undefined {
  let e: unknown = err
  for (let depth = 0; e instanceof Error && depth < 8; depth++) {
    if (e instanceof AggregateError && e.errors.length > 0) {
      e = e.errors[0]
      continue
    }
    const sys = e as NodeJS.ErrnoException & { address?: string; port?: number; hostname?: string }
    if (typeof sys.code === 'string' && /^E[A-Z]+$/.test(sys.code)) {
      const where =
        sys.hostname ??
        (sys.address === undefined
          ? undefined
          : sys.port === undefined
            ? sys.address
            : `${sys.address}:${sys.port}`)
      return where === undefined ? sys.code : `${sys.code} ${where}`
    }
    e = e.cause
  }
  return undefined
}

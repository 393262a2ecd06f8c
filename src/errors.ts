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

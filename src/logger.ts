import { pino, type Logger } from 'pino'

export type { Logger }

/** Paths pino blanks out wherever they appear in a log object. */
export const REDACT_PATHS = [
  'password',
  '*.password',
  'saslPassword',
  '*.saslPassword',
  'adminPassword',
  '*.adminPassword',
  'authorization',
  '*.authorization',
  'headers.authorization',
]

/**
 * The root logger: JSON lines on stdout, or on stderr when stdout carries the events.
 * Subsystems take `logger.child({ component })`.
 */
export function createLogger(opts: { debug: boolean; toStderr: boolean }): Logger {
  return pino(
    {
      level: opts.debug ? 'debug' : 'info',
      base: { service: 'atkafka' },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    },
    pino.destination({ fd: opts.toStderr ? 2 : 1, sync: true }),
  )
}

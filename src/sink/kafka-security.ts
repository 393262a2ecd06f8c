import { readFileSync } from 'node:fs'

/** How to reach the brokers: SASL and TLS, as configured (see src/config/). */
export interface KafkaSecurity {
  /** SASL mechanism, or undefined for none. */
  saslMechanism?: 'plain' | 'scram-sha-256' | 'scram-sha-512'
  saslUsername?: string
  saslPassword?: string
  ssl: boolean
  /** Path of a PEM CA bundle to trust (implies TLS). */
  sslCa?: string
}

/** Whether to use TLS, and the CA bundle's PEM text when one is configured. */
export function tlsSettings(security: KafkaSecurity): { tls: boolean; ca?: string } {
  if (security.sslCa !== undefined) return { tls: true, ca: readFileSync(security.sslCa, 'utf8') }
  return { tls: security.ssl }
}

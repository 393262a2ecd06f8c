import type { EnrichConfig } from './config.ts'
import type { Enricher, EnricherService } from './enricher.ts'

/**
 * The enrichment stage of a mode, or undefined when enrichment is off. Loaded on demand: the
 * identity resolvers weigh about 50 MB of resident memory that a service without `--plc-host`
 * never needs.
 */
export async function loadEnricher(
  config: EnrichConfig | undefined,
  service: EnricherService,
): Promise<Enricher | undefined> {
  if (config === undefined) return undefined
  const { createEnricher } = await import('./enricher.ts')
  return createEnricher(config, service)
}
